"""Seed the store through its own functions with submissions the console must show.

Shared by the TestClient tests and the headless-Chromium test. The source and the Mermaid
diagram are hostile on purpose: markup in them must arrive on the page as text.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from prism.evidence import Evidence
from prism.intake.project import Project
from prism.store.lifecycle import transition
from prism.store.models import Submission
from prism.store.models import SubmissionStatus as S
from prism.store.submissions import NewSubmission, create_submission, record_stage

HOSTILE_LINE = "payload = \"</pre><script>alert('xss-source')</script>\""
MODEL = f'''"""A model that also reads secrets."""
import torch
from torch import nn

{HOSTILE_LINE}


def build_model(ctx):
    key = open("/run/secrets/token").read()
    return nn.Sequential(nn.Embedding(ctx.vocab_size, 16), nn.Linear(16, ctx.vocab_size))
'''
CITED_LINE = 9  # the `open(...)` line above
MERMAID = """flowchart TD
    A[build_model] --> B["reads /run/secrets/token <img src=x onerror=alert('xss-mermaid')>"]
    B --> C[nn.Sequential]
"""
EARLIER = MODEL.replace("16", "32").replace("reads secrets", "is earlier")


@dataclass(frozen=True)
class Seeded:
    quarantined: str
    earlier: str


def submit_source(session: Session, hotkey: str, text: str) -> str:
    project = Project(files={"model.py": text})
    submission, _ = create_submission(
        session,
        NewSubmission(hotkey=hotkey, filename="model.zip", data=text.encode(), epoch=1),
        project=project,
        rejection=None,
        actor="test",
    )
    return submission.id


def seed_quarantined(session: Session) -> Seeded:
    """An earlier submission, and a quarantined one with static-style evidence, an LLM review whose
    rejection could not be verified (with a Mermaid diagram), and a duplicate report."""
    earlier = submit_source(session, "5EarlierHotkey", EARLIER)
    sub_id = submit_source(session, "5SuspectHotkey", MODEL)
    submission = session.get(Submission, sub_id)
    assert submission is not None
    transition(session, submission, S.RUNNING, actor="worker:test")
    line = MODEL.splitlines()[CITED_LINE - 1]
    record_stage(session, sub_id, "static_review", "passed", detail="no violation", data={"files_reviewed": 1})
    record_stage(
        session,
        sub_id,
        "source_duplicates",
        "passed",
        detail=f"closest earlier submission {earlier}",
        data={"candidates": [{"submission_id": earlier, "containment_new_in_old": 0.71, "hotkey": "5EarlierHotkey"}]},
    )
    evidence = Evidence.at(
        "llm.secret_exfiltration", "model.py", CITED_LINE, "reads a mounted secret <b>bold</b>", snippet=line, column=4
    )
    record_stage(
        session,
        sub_id,
        "llm_review",
        "quarantined",
        detail="rejection without verified evidence",
        evidence=(evidence,),
        data={
            "outcome": "quarantine",
            "mermaid": MERMAID,
            "chunks": [{"index": 0, "mermaid": MERMAID, "outcome": "quarantine"}],
            "unverified_claims": [
                {
                    "path": "model.py",
                    "line_start": 4,
                    "line_end": 4,
                    "quote": "<script>alert('xss-quote')</script>",
                    "rule_id": "llm.hidden_behaviour",
                    "explanation": "claims a hidden payload",
                    "problem": "the quote does not match lines 4-4",
                }
            ],
        },
    )
    submission.stage = "llm_review"
    transition(
        session,
        submission,
        S.QUARANTINED,
        actor="worker:test",
        reason_code="llm_review.unverified_rejection",
        reason="the reviewer suspects secret exfiltration",
        evidence=(evidence,),
    )
    session.commit()
    return Seeded(quarantined=sub_id, earlier=earlier)
