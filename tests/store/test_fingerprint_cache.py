"""The decode cache of candidate fingerprints: exact results, keyed by the bytes, bounded."""

from __future__ import annotations

import pytest

from prism.review.similarity.duplicates import value_parts
from prism.review.similarity.errors import SimilarityError
from prism.store.fingerprint_cache import FingerprintCache
from tests.review.similarity_support import corpus_fingerprints


def test_decoding_through_the_cache_equals_decoding_the_blob() -> None:
    cache = FingerprintCache()
    for name, fp in corpus_fingerprints().items():
        first = cache.decode(name, fp.to_blob())
        assert first.fingerprint == fp
        assert first.parts == value_parts(fp)
        assert cache.decode(name, fp.to_blob()) is first  # the same bytes again: decoded once
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (len(corpus_fingerprints()),) * 2
    assert stats.hit_rate == 0.5
    assert stats.entries == len(corpus_fingerprints())


def test_a_replaced_fingerprint_is_never_served_stale() -> None:
    fps = corpus_fingerprints()
    cache = FingerprintCache()
    cache.decode("s1", fps["gpt_mini"].to_blob())
    # The same submission re-fingerprinted (a new version, a re-run): other bytes, another entry.
    assert cache.decode("s1", fps["wavenet"].to_blob()).fingerprint == fps["wavenet"]
    assert cache.stats().misses == 2


def test_the_same_bytes_of_another_submission_are_another_entry() -> None:
    fp = corpus_fingerprints()["gpt_mini"]
    cache = FingerprintCache()
    cache.decode("a", fp.to_blob())
    cache.decode("b", fp.to_blob())
    assert cache.stats().misses == 2


def test_the_least_recently_used_entry_goes_first() -> None:
    blobs = [fp.to_blob() for fp in list(corpus_fingerprints().values())[:3]]
    cache = FingerprintCache(max_entries=2)
    cache.decode("a", blobs[0])
    cache.decode("b", blobs[1])
    cache.decode("a", blobs[0])  # a is now the most recent
    cache.decode("c", blobs[2])  # evicts b
    assert cache.stats().entries == 2
    before = cache.stats().misses
    cache.decode("a", blobs[0])
    assert cache.stats().misses == before
    cache.decode("b", blobs[1])
    assert cache.stats().misses == before + 1


def test_a_zero_bound_keeps_nothing_and_still_decodes() -> None:
    fp = corpus_fingerprints()["gpt_mini"]
    cache = FingerprintCache(max_entries=0)
    assert cache.decode("a", fp.to_blob()).fingerprint == fp
    assert cache.decode("a", fp.to_blob()).fingerprint == fp
    assert cache.stats().entries == 0 and cache.stats().hits == 0
    with pytest.raises(ValueError, match="max_entries"):
        FingerprintCache(max_entries=-1)


def test_a_corrupt_blob_raises_and_is_not_kept() -> None:
    cache = FingerprintCache()
    blob = corpus_fingerprints()["gpt_mini"].to_blob()
    for _ in range(2):
        with pytest.raises(SimilarityError):
            cache.decode("a", blob[:-3])
    assert cache.stats().entries == 0 and cache.stats().misses == 2


def test_stats_estimate_grows_with_entries_and_clear_empties() -> None:
    cache = FingerprintCache()
    fps = list(corpus_fingerprints().values())
    cache.decode("a", fps[0].to_blob())
    one = cache.stats().approx_bytes
    assert one > len(fps[0].hashes) * 8  # at least the values themselves
    cache.decode("b", fps[1].to_blob())
    assert cache.stats().approx_bytes > one
    cache.clear()
    cleared = cache.stats()
    assert (cleared.hits, cleared.misses, cleared.entries) == (0, 0, 0)
    assert cleared.approx_bytes < one
