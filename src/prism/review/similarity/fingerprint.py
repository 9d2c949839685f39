"""Source fingerprints: what a submission's code is, independent of how it was dressed up.

`fingerprint_project` normalizes the project (see `similarity_normalize`), then per top-level
region (a function, class or constant after normalization) takes

- winnowed k-grams of the normalized token stream (Schleimer et al. 2003), and
- one hash per statement subtree (the AST shape, so whole functions match exactly),

minus the fingerprints of `similarity_boilerplate` that nearly every model shares. The union is
scored by containment in both directions; a one-permutation MinHash of the union and of each
region gives LSH band keys for the candidate index (regions are banded on their own so that a copy
padded with much extra code still shares the bands of every copied region).

Pure and deterministic: blake2b everywhere, no salted `hash()`, no I/O.
"""

from __future__ import annotations

import ast
import hashlib
import json
import struct
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from prism import pyast
from prism.intake.project import Project
from prism.review.similarity.boilerplate import HEADER, SNIPPETS, STUBS
from prism.review.similarity.errors import SimilarityError
from prism.review.similarity.hashing import band_keys, minhash, statement_hashes, tokens, winnow
from prism.review.similarity.normalize import NormalizedProgram, Region, RegionKind, normalize_files

# Bump when anything below changes what a fingerprint is: stored rows of another version are
# re-fingerprinted from their stored source, never compared with new ones.
FINGERPRINT_VERSION = 2  # 2: the table of equivalent forms, annotated fields as attributes
K_GRAM = 12
WINDOW = 8
MIN_STATEMENT_TOKENS = 10
PROJECT_BINS, PROJECT_ROWS = 32, 4  # 8 bands over the whole project
REGION_BINS, REGION_ROWS = 16, 4  # 4 bands per region
MIN_REGION_HASHES = 6  # smaller regions are too generic to index on their own

__all__ = [
    "FINGERPRINT_VERSION",
    "Region",
    "RegionKind",
    "SourceFingerprint",
    "assemble_fingerprint",
    "containment",
    "fingerprint_files",
    "fingerprint_project",
    "source_sha256",
]


@dataclass(frozen=True, slots=True)
class SourceFingerprint:
    version: int
    # The code as written: comments, docstrings and formatting ignored, names and order kept.
    # Equal means the same files resubmitted: the exact duplicate that is rejected.
    source_sha256: str
    # The whole normalized program: equal means a copy whatever its names, order or dead code.
    normalized_sha256: str
    architecture_sha256: str  # build_model and everything it reaches
    training_sha256: str  # configure_optimizer / train_step and what only they reach
    regions: tuple[Region, ...]
    hashes: tuple[int, ...]  # sorted, unique, boilerplate removed
    hash_regions: tuple[int, ...]  # parallel to `hashes`: index into `regions` (first occurrence)
    hash_lines: tuple[int, ...]  # parallel to `hashes`: line in that region's file
    minhash: tuple[int, ...]
    band_keys: tuple[int, ...]  # sorted, unique, signed 64-bit

    def hash_set(self, kinds: Iterable[RegionKind] | None = None) -> frozenset[int]:
        if kinds is None:
            return frozenset(self.hashes)
        wanted = {i for i, r in enumerate(self.regions) if r.kind in set(kinds)}
        return frozenset(h for h, r in zip(self.hashes, self.hash_regions, strict=True) if r in wanted)

    def locate(self, value: int) -> tuple[Region, int] | None:
        """The region and line where a fingerprint value occurs (binary search; hashes are sorted)."""
        lo, hi = 0, len(self.hashes)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.hashes[mid] < value:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(self.hashes) and self.hashes[lo] == value:
            return self.regions[self.hash_regions[lo]], self.hash_lines[lo]
        return None

    def to_blob(self) -> bytes:
        """Header JSON, then the columns; the MinHash and band keys binary after them when they fit.

        The first word is the header's length, its top bit set for that packed tail (parsing 64 big
        integers out of JSON was a third of decoding a candidate). Blobs without it still decode.
        """
        packed = all(0 <= v < _U64 for v in self.minhash)
        meta: dict[str, object] = {
            "version": self.version,
            "source_sha256": self.source_sha256,
            "normalized_sha256": self.normalized_sha256,
            "architecture_sha256": self.architecture_sha256,
            "training_sha256": self.training_sha256,
            "regions": [[r.kind, r.name, r.path, r.line, r.end_line, r.snippet_sha256] for r in self.regions],
        }
        if not packed:  # an empty MinHash holds a value past 64 bits
            meta |= {"minhash": list(self.minhash), "band_keys": list(self.band_keys)}
        header = json.dumps(meta, separators=(",", ":")).encode("utf-8")
        parts = [struct.pack("<II", len(header) | (_PACKED if packed else 0), len(self.hashes)), header]
        parts += [_pack("Q", self.hashes), _pack("I", self.hash_regions), _pack("I", self.hash_lines)]
        if packed:
            parts.append(struct.pack("<II", len(self.minhash), len(self.band_keys)))
            parts += [_pack("Q", self.minhash), _pack("q", self.band_keys)]
        return b"".join(parts)

    @classmethod
    def from_blob(cls, blob: bytes) -> SourceFingerprint:
        try:
            first, count = struct.unpack_from("<II", blob, 0)
            header_len = first & ~_PACKED
            offset = 8
            # Decoded here, not by json (which sniffs the encoding): this runs per candidate per lookup.
            meta = json.loads(blob[offset : offset + header_len].decode("utf-8"))
            offset += header_len
            hashes, offset = _unpack(blob, offset, "Q", count)
            hash_regions, offset = _unpack(blob, offset, "I", count)
            hash_lines, offset = _unpack(blob, offset, "I", count)
            if first & _PACKED:
                bins, keys = struct.unpack_from("<II", blob, offset)
                minhash, offset = _unpack(blob, offset + 8, "Q", bins)
                band_keys, offset = _unpack(blob, offset, "q", keys)
            else:
                minhash, band_keys = tuple(map(int, meta["minhash"])), tuple(map(int, meta["band_keys"]))
            if offset != len(blob):
                raise ValueError(f"{len(blob) - offset} bytes left over")
            return cls(
                version=int(meta["version"]),
                source_sha256=str(meta["source_sha256"]),
                normalized_sha256=str(meta["normalized_sha256"]),
                architecture_sha256=str(meta["architecture_sha256"]),
                training_sha256=str(meta["training_sha256"]),
                regions=tuple(Region(k, n, p, int(a), int(b), s) for k, n, p, a, b, s in meta["regions"]),
                hashes=hashes,
                hash_regions=hash_regions,
                hash_lines=hash_lines,
                minhash=minhash,
                band_keys=band_keys,
            )
        except (struct.error, ValueError, KeyError, TypeError) as exc:
            raise SimilarityError(f"stored fingerprint is corrupt: {exc}") from exc


_PACKED = 0x8000_0000
_U64 = 1 << 64


def _pack(code: str, values: Sequence[int]) -> bytes:
    arr = array(code, values)
    if sys.byteorder == "big":
        arr.byteswap()
    return arr.tobytes()


def _unpack(blob: bytes, offset: int, code: str, count: int) -> tuple[tuple[int, ...], int]:
    arr = array(code)
    end = offset + arr.itemsize * count
    if end > len(blob):
        raise ValueError("truncated")
    arr.frombytes(blob[offset:end])
    if sys.byteorder == "big":
        arr.byteswap()
    return tuple(arr), end


def containment(part: frozenset[int], whole: frozenset[int]) -> float:
    """How much of `part` is found in `whole` (0 for an empty `part`)."""
    return len(part & whole) / len(part) if part else 0.0


def _region_hashes(program: NormalizedProgram) -> list[dict[int, int]]:
    out: list[dict[int, int]] = []
    for normalized in program.regions:
        found: dict[int, int] = {}
        toks = tokens(normalized.node)
        for value, line in winnow(toks, k=K_GRAM, window=WINDOW):
            found.setdefault(value, line)
        for value, line in statement_hashes(normalized.node, min_tokens=MIN_STATEMENT_TOKENS):
            found.setdefault(value, line)
        out.append(found)
    return out


@lru_cache(maxsize=1)
def boilerplate_hashes() -> frozenset[int]:
    """Fingerprints of the idioms nearly every submission shares (computed once per process)."""
    found: set[int] = set()
    chunks = SNIPPETS.strip().split("\n\n\n")
    for chunk in chunks:
        program = normalize_files({"model.py": f"{HEADER}\n{chunk}\n{STUBS}"}, "model.py")
        for region_hashes in _region_hashes(program):
            found.update(region_hashes)
    return frozenset(found)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_sha256(files: Mapping[str, str]) -> str:
    """The Python files' syntax trees without docstrings: blind to comments and formatting only."""
    digest = hashlib.sha256()
    for path, text in sorted(files.items()):
        if path.endswith(".py"):
            tree = pyast.parse(text)
            for node in ast.walk(tree):
                body = getattr(node, "body", None)
                if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                    value = body[0].value
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
            digest.update(path.encode("utf-8") + b"\0" + ast.dump(tree).encode("utf-8") + b"\0")
    return digest.hexdigest()


def fingerprint_files(files: Mapping[str, str], entrypoint: str) -> SourceFingerprint:
    program = normalize_files(files, entrypoint)  # raises FingerprintError on unparsable files
    common = boilerplate_hashes()
    return assemble_fingerprint(
        regions=tuple(r.region for r in program.regions),
        region_hashes=[{h: line for h, line in rh.items() if h not in common} for rh in _region_hashes(program)],
        source_sha256=source_sha256(files),
        normalized_sha256=_sha(program.text()),
        architecture_sha256=_sha(program.text(["architecture"])),
        training_sha256=_sha(program.text(["training"])),
    )


def assemble_fingerprint(
    *,
    regions: tuple[Region, ...],
    region_hashes: Sequence[Mapping[int, int]],
    source_sha256: str,
    normalized_sha256: str,
    architecture_sha256: str,
    training_sha256: str,
) -> SourceFingerprint:
    """Build the fingerprint (MinHash, band keys) from per-region fingerprint values and lines."""
    first: dict[int, tuple[int, int]] = {}
    keys: set[int] = set()
    for index, kept in enumerate(region_hashes):
        for value, line in kept.items():
            first.setdefault(value, (index, line))
        if len(kept) >= MIN_REGION_HASHES:
            keys.update(band_keys(minhash(kept, bins=REGION_BINS), rows=REGION_ROWS, scope=b"R"))
    ordered = sorted(first)
    signature = minhash(ordered, bins=PROJECT_BINS)
    keys.update(band_keys(signature, rows=PROJECT_ROWS, scope=b"P"))
    return SourceFingerprint(
        version=FINGERPRINT_VERSION,
        source_sha256=source_sha256,
        normalized_sha256=normalized_sha256,
        architecture_sha256=architecture_sha256,
        training_sha256=training_sha256,
        regions=regions,
        hashes=tuple(ordered),
        hash_regions=tuple(first[h][0] for h in ordered),
        hash_lines=tuple(first[h][1] for h in ordered),
        minhash=signature,
        band_keys=tuple(sorted(keys)),
    )


def fingerprint_project(project: Project) -> SourceFingerprint:
    """The fingerprint of a project's Python files; `FingerprintError` if one does not parse."""
    return fingerprint_files(project.python_files, project.entrypoint)
