"""Duplicate review benchmark: recall and false flags on a plagiarism corpus, lookup at scale.

    .venv/bin/python benchmarks/similarity.py [--sizes 1000,10000,100000] [--variants 10] [--combos 8]

1. Recall, per copier (each copy decided against its original from another hotkey; detected =
   quarantine or reject):
   - `variants`: tests/review/variants.py (rename, reorder, dead code, comments/strings/whitespace,
     split/merge files, inline helpers, operand swaps, field shuffles, synonyms), all at once;
   - `edit:<name>`: tests/review/plagiarist.py, one equivalent-form edit alone (F.relu <-> nn.ReLU
     <-> torch.relu, module <-> functional, view <-> reshape, permute/transpose forms, chunk <->
     split, Sequential <-> named layers, config field names, width tweaks, wrapping);
   - `combo`: a random half or more of those edits, wrapping at random, then every `variants`
     transform on top: combinations of cosmetic edits (the case issue 15 found at 4 of 4 allowed).
2. False flags: every independent pair (each original, variant and copy against every *other*
   model's original) decided the same way; anything but allow is a false flag (target: 0).
3. Scale (issue 19): N snapshots in a real SQLite file through `save_fingerprints_bulk`, with
   families: 30% are forks of a few popular corpus models (Zipf-weighted; each fork keeps 70-95%
   of its base's fingerprints), the rest independent programs sharing idioms; the corpus originals
   are inserted at random times among them, each before its own forks, not all first. For copies
   of corpus models (and unrelated programs) it times `find_candidates` + `decide_source`
   (median, CPU), then the baseline in the same run: a linear scan over every snapshot's hash set
   held in memory (containment both ways, best `candidate_limit`, the same decision). Prints the
   ratio, whether the copied original was among the candidates, and memory per snapshot (the
   database file, and the baseline's in-memory sets, both divided by N).

Exits 1 when a recall or false-flag target is missed. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from tests.review.plagiarist import EDITS, plagiarize  # noqa: E402
from tests.review.variants import load_corpus, obfuscate  # noqa: E402

from prism.intake.project import Project  # noqa: E402
from prism.review.similarity import (  # noqa: E402  # noqa: E402
    Candidate,
    Region,
    SourceFingerprint,
    assemble_fingerprint,
    decide_source,
    fingerprint_project,
)
from prism.runtime_config import SimilarityPolicy  # noqa: E402
from prism.store.base import Base  # noqa: E402
from prism.store.db import make_engine  # noqa: E402
from prism.store.fingerprints import find_candidates, save_fingerprints_bulk  # noqa: E402
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
    return Candidate(sid, hotkey, "completed", T0, 1, fp, scored=True)


CALIBRATION: dict[str, list[float]] = {"copy": [], "independent": []}


def _best(report: object) -> float:
    candidates = getattr(report, "candidates", ())
    return max((max(c.new_in_prior, c.prior_in_new) for c in candidates), default=0.0)


def copies_of(project: Project, variants: int, combos: int) -> dict[str, list[Project]]:
    """Every copy the benchmark makes of one model, by copier."""
    out: dict[str, list[Project]] = {"variants": [obfuscate(project, 1000 + i) for i in range(variants)]}
    for edit in [*EDITS, "wrap"]:
        out[f"edit:{edit}"] = [plagiarize(project, 7, edits=(edit,), cosmetic=False)]
    out["combo"] = [plagiarize(project, 100 + i) for i in range(combos)]
    return out


def recall_and_false_flags(
    projects: dict[str, Project], originals: dict[str, SourceFingerprint], variants: int, combos: int
) -> tuple[dict[str, tuple[int, int]], int, int, list[str]]:
    """Per copier (detected, total); false flags and pairs over independent models; misses."""
    per: dict[str, list[int]] = {}
    copies: dict[str, list[SourceFingerprint]] = {}
    misses: list[str] = []
    for name, project in projects.items():
        copies[name] = []
        for copier, made in copies_of(project, variants, combos).items():
            for copy in made:
                fp = fingerprint_project(copy)
                copies[name].append(fp)
                report = decide_source(
                    fp, hotkey="copier", candidates=[_candidate(originals[name], name, "owner")], policy=POLICY
                )
                hit = report.outcome in DETECTED
                CALIBRATION["copy"].append(_best(report))
                counts = per.setdefault(copier, [0, 0])
                counts[0] += hit
                counts[1] += 1
                if not hit:
                    best = max((max(c.new_in_prior, c.prior_in_new) for c in report.candidates), default=0.0)
                    misses.append(f"{copier} of {name}: {report.reason_code} (containment {best:.2f})")
    false = pairs = 0
    for a in projects:
        for b in projects:
            if a == b:
                continue
            prior = [_candidate(originals[b], b, "owner")]
            for fp in [originals[a], *copies[a]]:
                report = decide_source(fp, hotkey="other", candidates=prior, policy=POLICY)
                CALIBRATION["independent"].append(_best(report))
                pairs += 1
                if report.outcome != "allow":
                    false += 1
                    misses.append(f"FALSE FLAG: {a} (or a copy of it) vs {b}: {report.reason_code}")
    return {k: (v[0], v[1]) for k, v in per.items()}, false, pairs, misses


def _synthesize(
    base: SourceFingerprint, rng: random.Random, index: int, keep: float | None = None
) -> SourceFingerprint:
    """A program from `base`: with `keep` near 1 a fork of it, with a low one a distinct program."""
    keep = rng.uniform(0.0, 0.5) if keep is None else keep
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


POPULAR = 5  # models that 30% of all snapshots fork
FORK_SHARE = 0.3


def build_database(
    url: str, originals: dict[str, SourceFingerprint], snapshots: int, seed: int
) -> tuple[float, dict[str, str], list[frozenset[int]], list[tuple[str, str, str]], list[SourceFingerprint]]:
    """Snapshots with families; returns insert seconds, corpus ids, and the baseline's in-memory rows."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    rng = random.Random(seed)
    names = list(originals)
    pool = list(originals.values())
    popular = rng.sample(names, POPULAR)
    weights = [1 / (rank + 1) for rank in range(POPULAR)]  # Zipf
    owner_ids = {name: f"orig-{i:04d}" for i, name in enumerate(names)}
    # Each corpus original lands at a random time in the first half; its forks come after it.
    slots = sorted(rng.sample(range(max(snapshots // 2, len(names))), len(names)))
    position = dict(zip(rng.sample(names, len(names)), slots, strict=True))
    hotkeys = [f"hk-{i:05d}" for i in range(5000)]
    batch: list[tuple[str, SourceFingerprint]] = []
    meta: list[tuple[str, str, str]] = []
    placed: set[str] = set()
    for i in range(snapshots):
        for name in names:
            if position[name] == i:
                batch.append((owner_ids[name], originals[name]))
                meta.append((owner_ids[name], "owner", "completed"))
                placed.add(name)
        base_name = rng.choices(popular, weights)[0]
        if rng.random() < FORK_SHARE and base_name in placed:
            fp = _synthesize(originals[base_name], rng, i, keep=rng.uniform(0.7, 0.95))
        else:
            fp = _synthesize(pool[i % len(pool)], rng, i)
        status = "completed" if i % 10 else rng.choice(["failed", "rejected", "pending", "quarantined"])
        batch.append((f"syn-{i:07d}", fp))
        meta.append((f"syn-{i:07d}", hotkeys[i % len(hotkeys)], status))
    for name in names:
        if name not in placed:
            batch.append((owner_ids[name], originals[name]))
            meta.append((owner_ids[name], "owner", "completed"))
    started = time.process_time()
    with Session(engine) as session, session.begin():
        session.execute(insert(Miner), [{"hotkey": h, "first_seen_at": T0} for h in [*hotkeys, "owner"]])
        rows = [
            {
                "id": sid, "hotkey": hotkey, "status": status, "archive_sha256": sid.ljust(64, "0"),
                "filename": "model.zip", "byte_size": 1, "epoch": 0, "origin": "bridge", "submit_metadata": {},
                "infra_attempts": 0, "created_at": T0 + timedelta(seconds=n), "updated_at": T0 + timedelta(seconds=n),
            }
            for n, (sid, hotkey, status) in enumerate(meta)
        ]  # fmt: skip
        session.execute(insert(Submission), rows)
        save_fingerprints_bulk(session, batch)
    insert_s = time.process_time() - started
    engine.dispose()
    sets = [fp.hash_set() for _, fp in batch]
    return insert_s, owner_ids, sets, meta, [fp for _, fp in batch]


def linear_scan(
    fp: SourceFingerprint, sets: list[frozenset[int]], meta: list[tuple[str, str, str]], limit: int,
    fingerprints: list[SourceFingerprint],
) -> str:  # fmt: skip
    """The baseline: every snapshot's hash set in memory, containment both ways, best `limit`, decide."""
    mine = fp.hash_set()
    scored: list[tuple[float, int]] = []
    for i, theirs in enumerate(sets):
        shared = len(mine & theirs)
        if shared:
            scored.append((max(shared / len(mine), shared / len(theirs)), i))
    scored.sort(reverse=True)
    candidates = [
        Candidate(meta[i][0], meta[i][1], meta[i][2], T0 + timedelta(seconds=i), 0, fingerprints[i])
        for _, i in scored[:limit]
    ]
    return decide_source(fp, hotkey="new-miner", candidates=candidates, policy=POLICY).outcome


def _set_bytes(sets: list[frozenset[int]]) -> int:
    """Bytes the baseline's sets hold: each set plus its int objects (shared small ints aside)."""
    return sum(sys.getsizeof(s) + sum(sys.getsizeof(v) for v in s) for s in sets)


def scale(
    originals: dict[str, SourceFingerprint], projects: dict[str, Project], size: int, args: argparse.Namespace
) -> None:
    with tempfile.TemporaryDirectory(prefix="prism-sim-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        insert_s, owner_ids, sets, meta, fingerprints = build_database(url, originals, size, args.seed)
        db_bytes = (Path(tmp) / "bench.db").stat().st_size
        rng = random.Random(args.seed + 1)
        names = list(projects)
        queries: list[tuple[str | None, SourceFingerprint]] = []
        for i in range(args.queries):
            if i % 3 == 2:  # an unrelated new program
                queries.append((None, _synthesize(originals[names[i % len(names)]], rng, 10**9 + i)))
            else:
                name = names[i % len(names)]
                queries.append((name, fingerprint_project(plagiarize(projects[name], 5000 + i))))
        engine = make_engine(url)
        index_ms: list[float] = []
        found = detected = copies = 0
        outcomes: list[str] = []
        with Session(engine) as session:
            find_candidates(session, queries[0][1])  # warm the page cache like a running worker
            for query_name, fp in queries:
                started = time.process_time()
                candidates = find_candidates(session, fp, limit=POLICY.candidate_limit)
                report = decide_source(fp, hotkey="new-miner", candidates=candidates, policy=POLICY)
                index_ms.append((time.process_time() - started) * 1000)
                outcomes.append(report.outcome)
                if query_name is not None:
                    copies += 1
                    found += any(c.submission_id == owner_ids[query_name] for c in candidates)
                    detected += report.outcome in DETECTED
        engine.dispose()
        scan_ms: list[float] = []
        agree = 0
        for i, (_, fp) in enumerate(queries[: args.scan_queries]):
            started = time.process_time()
            outcome = linear_scan(fp, sets, meta, POLICY.candidate_limit, fingerprints)
            scan_ms.append((time.process_time() - started) * 1000)
            agree += outcome == outcomes[i]
    median_index, median_scan = statistics.median(index_ms), statistics.median(scan_ms)
    print(
        f"  {size:>7} snapshots (+{len(originals)} originals, {FORK_SHARE:.0%} forks of {POPULAR} popular models): "
        f"insert {insert_s:.1f} s CPU; index lookup + decision median {median_index:.1f} ms CPU "
        f"(p90 {sorted(index_ms)[int(0.9 * len(index_ms))]:.1f}); in-memory scan median {median_scan:.1f} ms CPU; "
        f"ratio {median_scan / median_index:.1f}x (issue 19 goal >= 100x at 100k)"
    )
    print(
        f"    original among the candidates for {found}/{copies} copies; detected {detected}/{copies}; "
        f"scan and index agree {agree}/{len(scan_ms)}; memory per snapshot: database {db_bytes / len(meta):.0f} B, "
        f"in-memory baseline sets {_set_bytes(sets) / len(meta):.0f} B"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", default="1000,10000", help="snapshot counts for the scale part (e.g. 1000,10000,100000)"
    )
    parser.add_argument("--variants", type=int, default=10, help="variants.py copies per corpus model")
    parser.add_argument("--combos", type=int, default=8, help="combination copies per corpus model")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--scan-queries", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    projects = _corpus()
    started = time.process_time()
    originals = {name: fingerprint_project(p) for name, p in projects.items()}
    fp_ms = (time.process_time() - started) * 1000 / len(originals)
    print(f"corpus: {len(projects)} independent models; fingerprint {fp_ms:.1f} ms CPU per project")

    per, false, pairs, misses = recall_and_false_flags(projects, originals, args.variants, args.combos)
    detected = sum(d for d, _ in per.values())
    total = sum(t for _, t in per.values())
    for copier, (d, t) in sorted(per.items()):
        print(f"  recall {copier:24s} {d:4d}/{t:<4d} = {d / t:.3f}")
    recall = detected / total
    print(f"recall over every copy: {detected}/{total} = {recall:.4f} (target >= 0.95)")
    print(f"false flags between independent models: {false}/{pairs} = {false / pairs:.4f} (target 0)")
    copy, independent = sorted(CALIBRATION["copy"]), sorted(CALIBRATION["independent"])
    print(
        f"calibration (containment, max of both ways): copies min {copy[0]:.3f}, 5th percentile "
        f"{copy[len(copy) // 20]:.3f}; independent pairs max {independent[-1]:.3f}, 99.9th percentile "
        f"{independent[int(len(independent) * 0.999)]:.3f}; quarantine_threshold {POLICY.quarantine_threshold} "
        f"(copies below it are caught by the normalized digest or the architecture rule)"
    )
    for line in misses[:20]:
        print(f"  miss: {line}")
    ok = recall >= 0.95 and false == 0

    print("scale (CPU time, this machine):")
    for size in (int(s) for s in args.sizes.split(",") if s):
        scale(originals, projects, size, args)
    print("PASS" if ok else "FAIL: a recall or false-flag target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
