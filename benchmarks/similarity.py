"""Duplicate review benchmark: recall on obfuscated copies, false quarantines, lookup at scale.

    .venv/bin/python benchmarks/similarity.py [--snapshots 100000] [--variants 20]

1. Recall: every corpus model (tests/review/corpus and tests/redteam/benign) is put through the
   obfuscating copier (tests/review/variants.py: rename, reorder, dead code, comments/strings/
   whitespace, split/merge files, inline helpers, operand swaps, field shuffles, synonyms) and
   decided against its original from another hotkey. Detected = quarantine or reject.
2. False quarantines: every independent pair (original vs original, and each variant vs every
   other model's original) decided the same way; anything but allow is a false quarantine.
3. Scale: the originals plus N synthesized snapshots (each a real corpus fingerprint with most of
   its fingerprints replaced at random and random extra regions, so they are distinct programs
   sharing idioms with the corpus) are inserted through `save_fingerprints_bulk` into a real
   SQLite file. For new submissions (fresh variants of corpus models, and unrelated ones) it times
   `find_candidates` + `decide_source` (median), then a linear scan over the same rows in the same
   run, and prints the ratio.

Exits 1 when a target is missed. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from tests.review.variants import load_corpus, obfuscate  # noqa: E402

from prism.intake.project import Project  # noqa: E402
from prism.review.similarity import (  # noqa: E402
    Region,
    SourceFingerprint,
    assemble_fingerprint,
    containment,
    fingerprint_project,
)
from prism.review.similarity.duplicates import PRIOR_ART_STATUSES, Candidate, decide_source  # noqa: E402
from prism.runtime_config import SimilarityPolicy  # noqa: E402
from prism.store.base import Base  # noqa: E402
from prism.store.db import make_engine  # noqa: E402
from prism.store.fingerprints import SourceFingerprintRow, find_candidates, save_fingerprints_bulk  # noqa: E402
from prism.store.models import Miner, Submission  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = SimilarityPolicy()
DETECTED = ("quarantine", "reject")


def _corpus() -> dict[str, Project]:
    projects = load_corpus()
    benign = ROOT / "tests" / "redteam" / "benign"
    if benign.is_dir():
        projects |= {f"benign/{k}": v for k, v in load_corpus(benign).items()}
    return projects


def _candidate(fp: SourceFingerprint, sid: str, hotkey: str) -> Candidate:
    return Candidate(sid, hotkey, "completed", T0, 1, fp)


def recall_and_false_quarantine(
    projects: dict[str, Project], originals: dict[str, SourceFingerprint], variants_per_model: int
) -> tuple[float, float, int, int, dict[str, list[SourceFingerprint]]]:
    variants: dict[str, list[SourceFingerprint]] = {}
    detected = total = 0
    for name, project in projects.items():
        variants[name] = []
        for seed in range(variants_per_model):
            fp = fingerprint_project(obfuscate(project, 1000 + seed))
            variants[name].append(fp)
            report = decide_source(
                fp, hotkey="copier", candidates=[_candidate(originals[name], name, "owner")], policy=POLICY
            )
            total += 1
            detected += report.outcome in DETECTED
    false = pairs = 0
    for a in projects:
        for b in projects:
            if a == b:
                continue
            prior = [_candidate(originals[b], b, "owner")]
            for fp in [originals[a], *variants[a]]:
                report = decide_source(fp, hotkey="other", candidates=prior, policy=POLICY)
                pairs += 1
                false += report.outcome != "allow"
    return detected / total, false / pairs, total, pairs, variants


def _synthesize(base: SourceFingerprint, rng: random.Random, index: int) -> SourceFingerprint:
    """A distinct program sharing some idioms with `base`: most fingerprints replaced, regions added."""
    keep = rng.uniform(0.0, 0.5)
    regions = list(base.regions)
    region_hashes: list[dict[int, int]] = [{} for _ in regions]
    for value, region, line in zip(base.hashes, base.hash_regions, base.hash_lines, strict=True):
        region_hashes[region][value if rng.random() < keep else rng.getrandbits(64)] = line
    for extra in range(rng.randint(0, 3)):
        regions.append(Region("architecture", f"Extra{extra}", "model.py", 1, 2, ""))
        region_hashes.append({rng.getrandbits(64): 1 for _ in range(rng.randint(5, 30))})
    tag = f"{index:064x}"
    return assemble_fingerprint(
        regions=tuple(regions),
        region_hashes=region_hashes,
        source_sha256=tag,
        normalized_sha256=tag,
        architecture_sha256=tag,
        training_sha256=tag,
    )


def build_database(
    url: str, originals: dict[str, SourceFingerprint], snapshots: int, seed: int
) -> tuple[float, float, dict[str, str]]:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    rng = random.Random(seed)
    pool = list(originals.values())
    owner_ids = {name: f"orig-{i:04d}" for i, name in enumerate(originals)}
    hotkeys = [f"hk-{i:05d}" for i in range(5000)]

    def items() -> Iterator[tuple[str, SourceFingerprint]]:
        for name, fp in originals.items():
            yield owner_ids[name], fp
        for i in range(snapshots):
            yield f"syn-{i:07d}", _synthesize(pool[i % len(pool)], rng, i)

    started = time.perf_counter()
    batch = list(items())
    synth_s = time.perf_counter() - started
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        session.execute(insert(Miner), [{"hotkey": h, "first_seen_at": T0} for h in [*hotkeys, "owner"]])
        rows = []
        for n, (sid, _) in enumerate(batch):
            status = "completed" if n % 10 else rng.choice(["failed", "rejected", "pending", "quarantined"])
            rows.append(
                {
                    "id": sid,
                    "hotkey": "owner" if sid.startswith("orig-") else hotkeys[n % len(hotkeys)],
                    "status": "completed" if sid.startswith("orig-") else status,
                    "archive_sha256": sid.ljust(64, "0"),
                    "filename": "model.zip",
                    "byte_size": 1,
                    "epoch": 0,
                    "origin": "bridge",
                    "submit_metadata": {},
                    "infra_attempts": 0,
                    "created_at": T0 + timedelta(seconds=n),
                    "updated_at": T0 + timedelta(seconds=n),
                }
            )
        session.execute(insert(Submission), rows)
        save_fingerprints_bulk(session, batch)
    insert_s = time.perf_counter() - started
    engine.dispose()
    return synth_s, insert_s, owner_ids


def linear_scan(session: Session, fp: SourceFingerprint, hotkey: str, limit: int) -> str:
    """The baseline: score every stored prior, keep the best `limit`, decide on those."""
    mine = fp.hash_set()
    scored: list[tuple[float, Candidate]] = []
    rows = session.execute(
        select(SourceFingerprintRow.submission_id, SourceFingerprintRow.data, Submission.hotkey, Submission.status)
        .join(Submission, Submission.id == SourceFingerprintRow.submission_id)
        .where(Submission.status.in_(PRIOR_ART_STATUSES))
    )
    for sid, data, owner, status in rows:
        prior = SourceFingerprint.from_blob(data)
        theirs = prior.hash_set()
        score = max(containment(mine, theirs), containment(theirs, mine))
        if score > 0:
            scored.append((score, Candidate(sid, owner, status, T0, 0, prior)))
    scored.sort(key=lambda s: -s[0])
    return decide_source(fp, hotkey=hotkey, candidates=[c for _, c in scored[:limit]], policy=POLICY).outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshots", type=int, default=100_000)
    parser.add_argument("--variants", type=int, default=20, help="obfuscated variants per corpus model")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--scan-queries", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    ok = True

    projects = _corpus()
    started = time.perf_counter()
    originals = {name: fingerprint_project(p) for name, p in projects.items()}
    fp_ms = (time.perf_counter() - started) * 1000 / len(originals)
    print(f"corpus: {len(projects)} independent models; fingerprint {fp_ms:.1f} ms per project")

    recall, fq_rate, n_var, n_pairs, _ = recall_and_false_quarantine(projects, originals, args.variants)
    ok &= recall >= 0.95 and fq_rate <= 0.01
    print(f"recall on obfuscated copies: {recall:.4f} over {n_var} variants (target >= 0.95)")
    print(f"false-quarantine rate between independent models: {fq_rate:.4f} over {n_pairs} pairs (target <= 0.01)")

    with tempfile.TemporaryDirectory(prefix="prism-sim-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        synth_s, insert_s, owner_ids = build_database(url, originals, args.snapshots, args.seed)
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 1e6
        print(
            f"stored {args.snapshots + len(originals)} snapshots: synthesized in {synth_s:.1f} s, "
            f"bulk-inserted in {insert_s:.1f} s, database {size_mb:.0f} MB"
        )
        rng = random.Random(args.seed + 1)
        names = list(projects)
        queries: list[tuple[str | None, SourceFingerprint]] = []
        for i in range(args.queries):
            if i % 3 == 2:  # an unrelated new program
                queries.append((None, _synthesize(originals[names[i % len(names)]], rng, 10**9 + i)))
            else:
                name = names[i % len(names)]
                queries.append((name, fingerprint_project(obfuscate(projects[name], 5000 + i))))
        engine = make_engine(url)
        index_ms: list[float] = []
        found = detected = copies = 0
        outcomes: list[str] = []
        with Session(engine) as session:
            find_candidates(session, queries[0][1])  # warm the page cache like a running worker
            for query_name, fp in queries:
                started = time.perf_counter()
                candidates = find_candidates(session, fp, limit=POLICY.candidate_limit)
                report = decide_source(fp, hotkey="new-miner", candidates=candidates, policy=POLICY)
                index_ms.append((time.perf_counter() - started) * 1000)
                outcomes.append(report.outcome)
                if query_name is not None:
                    copies += 1
                    found += any(c.submission_id == owner_ids[query_name] for c in candidates)
                    detected += report.outcome in DETECTED
            scan_ms: list[float] = []
            agree = 0
            for i, (_, fp) in enumerate(queries[: args.scan_queries]):
                started = time.perf_counter()
                outcome = linear_scan(session, fp, "new-miner", POLICY.candidate_limit)
                scan_ms.append((time.perf_counter() - started) * 1000)
                agree += outcome == outcomes[i]
        engine.dispose()
    median_index, median_scan = statistics.median(index_ms), statistics.median(scan_ms)
    ok &= median_index <= 50 and found == copies
    print(
        f"index lookup + decision at {args.snapshots} snapshots: median {median_index:.1f} ms, "
        f"p90 {sorted(index_ms)[int(0.9 * len(index_ms))]:.1f} ms over {len(index_ms)} queries (target <= 50 ms)"
    )
    print(f"  original found among candidates for {found}/{copies} copies; decided quarantine/reject for {detected}")
    print(f"linear scan + decision over the same rows: median {median_scan:.0f} ms over {len(scan_ms)} queries")
    print(f"  ratio scan/index: {median_scan / median_index:.0f}x; same outcome as the index in {agree}/{len(scan_ms)}")
    print("PASS" if ok else "FAIL: a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
