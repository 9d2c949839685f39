"""Stable hashing primitives: token streams, winnowing, one-permutation MinHash, LSH band keys.

Every hash here is blake2b over bytes, so fingerprints are identical across processes, machines
and Python versions (the salted built-in `hash()` is never used). Fingerprint values are unsigned
64-bit; band keys are signed 64-bit so they fit PostgreSQL's BIGINT.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from hashlib import blake2b

# A user-defined name after normalization (see similarity_normalize): matched as one token, so a
# local numbering shifted by leftover dead code does not move every later k-gram.
_PLACEHOLDER = re.compile(r"^(?:[vga]\d+|k)$")
_EMPTY = 1 << 64  # the value of an empty MinHash bin (larger than any real value)


def h64(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


def signed64(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big", signed=True)


@lru_cache(maxsize=65536)
def _token_bytes(label: str) -> bytes:
    return blake2b(label.encode("utf-8"), digest_size=8).digest()


def _label(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return "N:" + ("ID" if _PLACEHOLDER.match(node.id) else node.id)
    if isinstance(node, ast.Attribute):
        return "A:" + ("ID" if _PLACEHOLDER.match(node.attr) else node.attr)
    if isinstance(node, ast.Constant):
        return "C:" + repr(node.value)
    if isinstance(node, ast.keyword):
        return "K:" + ("ID" if node.arg is None or _PLACEHOLDER.match(node.arg) else node.arg)
    return type(node).__name__


Token = tuple[bytes, int]  # (token id, source line)


def tokens(node: ast.AST) -> list[Token]:
    """Pre-order AST tokens with block-end markers: the token stream and the AST shape at once."""
    out: list[Token] = []

    def visit(n: ast.AST, line: int) -> None:
        if isinstance(n, ast.expr_context):
            return
        line = getattr(n, "lineno", line) or line
        out.append((_token_bytes(_label(n)), line))
        for child in ast.iter_child_nodes(n):
            visit(child, line)
        if isinstance(n, ast.stmt) and hasattr(n, "body"):
            out.append((_token_bytes("}"), line))

    visit(node, getattr(node, "lineno", 0))
    return out


def statement_hashes(node: ast.AST, *, min_tokens: int) -> Iterator[tuple[int, int]]:
    """One hash per statement subtree of at least `min_tokens` tokens: (hash, line)."""
    for n in ast.walk(node):
        if isinstance(n, ast.stmt):
            toks = tokens(n)
            if len(toks) >= min_tokens:
                yield h64(b"S" + b"".join(t for t, _ in toks)), toks[0][1]


def winnow(toks: Sequence[Token], *, k: int, window: int) -> Iterator[tuple[int, int]]:
    """Schleimer, Wilkerson & Aiken's winnowing: every shared run of k+window-1 tokens is kept."""
    if not toks:
        return
    if len(toks) < k:
        yield h64(b"K" + b"".join(t for t, _ in toks)), toks[0][1]
        return
    grams = [(h64(b"K" + b"".join(t for t, _ in toks[i : i + k])), toks[i][1]) for i in range(len(toks) - k + 1)]
    last = -1
    for start in range(max(1, len(grams) - window + 1)):
        chunk = grams[start : start + window]
        # The rightmost minimum, so a run of equal windows selects one position only once.
        best = min(range(len(chunk)), key=lambda j: (chunk[j][0], -j))
        if start + best != last:
            last = start + best
            yield chunk[best]


def minhash(values: Iterable[int], *, bins: int) -> tuple[int, ...]:
    """One-permutation MinHash with rotation densification (Li et al. 2012; Shrivastava 2014).

    The fingerprints are already uniform 64-bit hashes, so the low bits pick the bin and the rest
    is the value: one pass over the set instead of one pass per permutation.
    """
    assert bins & (bins - 1) == 0 and bins <= 256
    mins = [_EMPTY] * bins
    for x in values:
        b = x & (bins - 1)
        v = x >> 8
        if v < mins[b]:
            mins[b] = v
    if all(m == _EMPTY for m in mins):
        return tuple(mins)
    out = list(mins)
    for j in range(bins):
        if mins[j] == _EMPTY:
            t = 1
            while mins[(j + t) % bins] == _EMPTY:
                t += 1
            out[j] = mins[(j + t) % bins] + t * (1 << 56)
    return tuple(out)


def band_keys(signature: Sequence[int], *, rows: int, scope: bytes) -> list[int]:
    """LSH band keys: two sets share a key when one band of `rows` MinHash values is identical."""
    if not signature or signature[0] == _EMPTY:
        return []
    keys = []
    for band in range(len(signature) // rows):
        chunk = signature[band * rows : (band + 1) * rows]
        payload = scope + band.to_bytes(2, "big") + b"".join(v.to_bytes(8, "big") for v in chunk)
        keys.append(signed64(payload))
    return keys


def estimate_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    if not a or len(a) != len(b):
        return 0.0
    return sum(1 for x, y in zip(a, b, strict=True) if x == y and x != _EMPTY) / len(a)
