"""Scored results written straight into the store (tests and benchmarks of the weights path).

Rows are inserted in bulk with the ORM's table objects, as a completed, score-eligible run
would leave them: a miner, a completed submission, its evaluation, and its family's owner, and
the weights generation bumped on commit.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from prism.store.base import utcnow
from prism.store.lifecycle import audit
from prism.store.models import Architecture, Evaluation, Miner, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.weights_generation import weights_changed


def fake_hotkey(index: int) -> str:
    return f"hk{index:012d}"


def seed_scored(session: Session, *, hotkeys: int, families: int, epoch: int, seed: int = 0, start: int = 0) -> None:
    """`hotkeys` completed, score-eligible results in `epoch`, spread over `families` families."""
    rng = random.Random(seed)
    now = utcnow()
    miners, submissions, evaluations, owners = [], [], [], {}
    for index in range(start, start + hotkeys):
        hotkey = fake_hotkey(index)
        submission_id = str(uuid.UUID(int=rng.getrandbits(128)))
        family = hashlib.sha256(f"family-{seed}-{index % families}".encode()).hexdigest()
        created = now - timedelta(seconds=hotkeys - index)
        bpb = rng.uniform(0.8, 4.0)
        miners.append({"hotkey": hotkey, "first_seen_at": created})
        submissions.append(
            {
                "id": submission_id,
                "hotkey": hotkey,
                "status": S.COMPLETED.value,
                "archive_sha256": hashlib.sha256(submission_id.encode()).hexdigest(),
                "filename": "project.zip",
                "byte_size": 100,
                "epoch": epoch,
                "origin": "bridge",
                "submit_metadata": {},
                "infra_attempts": 0,
                "architecture_hash": family,
                "created_at": created,
                "updated_at": created,
                "finished_at": created,
            }
        )
        evaluations.append(
            {
                "submission_id": submission_id,
                "hotkey": hotkey,
                "epoch": epoch,
                "mode": "official",
                "score_eligible": True,
                "bits_per_byte": bpb,
                "heldout_bits_per_byte": bpb,
                "final_score": 2.0**-bpb,
                "parameter_count": 1000,
                "architecture_hash": family,
                "manifest": {},
                "created_at": created,
            }
        )
        owners.setdefault(family, (hotkey, submission_id, created))
    for start_row in range(0, len(miners), 5000):
        session.execute(insert(Miner), miners[start_row : start_row + 5000])
        session.execute(insert(Submission), submissions[start_row : start_row + 5000])
        session.execute(insert(Evaluation), evaluations[start_row : start_row + 5000])
    session.execute(
        insert(Architecture),
        [
            # A stored graph of realistic size: reading weights must never need to decode it.
            {
                "graph_hash": h,
                "owner_hotkey": o,
                "owner_submission_id": s,
                "discovered_at": t,
                "graph": {"nodes": list(range(200))},
            }
            for h, (o, s, t) in owners.items()
        ],
    )
    audit(session, submission_id=None, actor="seed", action="seeded", data={"hotkeys": hotkeys})
    # Written around the store's writers, so it marks the change as they do (the refresher's cue).
    weights_changed(session)
