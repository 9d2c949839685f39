"""A bounded in-process cache of decoded candidate fingerprints, keyed by the stored bytes.

The candidate search returns each candidate's stored blob; decoding it (JSON header, regions,
columns) and splitting its values by part for the exact comparison was most of a lookup's CPU
after the statement (0.6-0.9 ms of ~1.2 ms for ~17 candidates, cache-cold, at 100k snapshots).
The same priors come back lookup after lookup: a key's postings are read oldest first and capped,
so the first holders of common keys (a popular model's original and its early forks) are
candidates of every later copy or fork of it. Those are decoded once per process.

Keyed by (submission id, blake2b of the blob): a fingerprint replaced in the database (a new
`FINGERPRINT_VERSION`, a re-fingerprint) has other bytes and so misses, so what the cache returns
is always exactly what decoding the row just read would return; nothing needs invalidating, and
every worker process and backend still reads the same committed rows. Bounded by entry count
(least recently used goes first); `stats()` reports hits, misses and an estimate of its bytes.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass

from prism.review.similarity.duplicates import ValueParts, value_parts
from prism.review.similarity.fingerprint import SourceFingerprint

# ~16 KB each (the decoded values and their split by part): 1,024 entries stay near 16 MB per
# process. Measured (benchmarks/similarity.py at 100k): twice that bound raised the hit rate over
# 200 lookups only from 56% to 59%.
DEFAULT_MAX_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class Decoded:
    """A stored fingerprint decoded, with its values split by part for the exact comparison."""

    fingerprint: SourceFingerprint
    parts: ValueParts


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    entries: int
    approx_bytes: int  # the entries' objects, estimated with sys.getsizeof (shared small ints aside)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class FingerprintCache:
    """LRU of `Decoded` by (submission id, blob digest); safe to share between threads."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, bytes], Decoded] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    @property
    def max_entries(self) -> int:
        return self._max

    def decode(self, submission_id: str, blob: bytes) -> Decoded:
        """The blob decoded (from the cache when these exact bytes were decoded before)."""
        if not self._max:  # the cache off: decoding alone, not even the digest
            fp = SourceFingerprint.from_blob(blob)
            with self._lock:
                self._misses += 1
            return Decoded(fp, value_parts(fp))
        key = (submission_id, hashlib.blake2b(blob, digest_size=16).digest())
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return found
            self._misses += 1
        fp = SourceFingerprint.from_blob(blob)  # outside the lock: raises on a corrupt blob
        decoded = Decoded(fp, value_parts(fp))
        with self._lock:
            self._entries[key] = decoded
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return decoded

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._hits = self._misses = 0

    def stats(self) -> CacheStats:
        with self._lock:
            entries = list(self._entries.items())
            hits, misses = self._hits, self._misses
        size = sys.getsizeof(self._entries) + sum(_key_bytes(k) + _decoded_bytes(d) for k, d in entries)
        return CacheStats(hits, misses, len(entries), size)


def _key_bytes(key: tuple[str, bytes]) -> int:
    return sys.getsizeof(key) + sys.getsizeof(key[0]) + sys.getsizeof(key[1])


def _decoded_bytes(decoded: Decoded) -> int:
    fp, parts = decoded.fingerprint, decoded.parts
    ints = fp.hashes + fp.hash_lines + fp.minhash + fp.band_keys  # ints are objects (small ones shared)
    total = sys.getsizeof(decoded) + sys.getsizeof(fp) + sum(sys.getsizeof(v) for v in ints)
    total += sum(sys.getsizeof(t) for t in (fp.hashes, fp.hash_regions, fp.hash_lines, fp.minhash, fp.band_keys))
    total += sum(sys.getsizeof(r) + sum(sys.getsizeof(getattr(r, f)) for f in _REGION_STRINGS) for r in fp.regions)
    total += sum(sys.getsizeof(s) for s in (parts, parts.architecture, parts.training))  # `all` is fp.hashes
    total += 4 * 64 + sys.getsizeof(fp.regions)  # the four digests' strings, roughly
    return total


_REGION_STRINGS = ("kind", "name", "path", "snippet_sha256")


# The process's cache, which `find_candidates` uses unless it is handed another.
CANDIDATE_CACHE = FingerprintCache()
