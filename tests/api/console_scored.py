"""Seeds completed, scored submissions (through the store's own functions) for leaderboard pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from prism.config import Settings
from prism.intake.limits import IntakeLimits
from prism.intake.project import Project
from prism.intake.project_yaml import parse_project_config
from prism.store.lifecycle import transition
from prism.store.models import Evaluation, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.scores import claim_architecture, record_evaluation
from prism.store.submissions import NewSubmission, create_submission, epoch_at


@dataclass(frozen=True)
class Scored:
    sid: str
    hotkey: str
    name: str
    bpb: float
    params: int
    family: str


ENTRIES = (
    ("5AliceHotkeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "alpha-net", 2.0, 900_000, "a" * 64),
    ("5BobHotkeyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "bravo-net", 1.5, 50_000, "b" * 64),
    ("5CarolHotkeyCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", "charlie-net", 3.0, 4_000_000, "a" * 64),
)


def seed_scored(session: Session, settings: Settings) -> list[Scored]:
    out = []
    for index, (hotkey, name, bpb, params, family) in enumerate(ENTRIES):
        text = f"# model {index}\ndef build_model(ctx):\n    return None\n"
        yaml_text = f"name: {name}\n"
        project = Project(
            {"model.py": text, "prism.yaml": yaml_text}, parse_project_config(yaml_text, limits=IntakeLimits())
        )
        submission, _ = create_submission(
            session,
            NewSubmission(hotkey=hotkey, filename=f"{name}.zip", data=text.encode(), epoch=1),
            project=project,
            rejection=None,
            actor="test",
        )
        row = session.get(Submission, submission.id)
        assert row is not None
        transition(session, row, S.RUNNING, actor="worker:test")
        epoch = epoch_at(row.created_at, settings.epoch_seconds)
        if index < 2:
            claim_architecture(session, graph_hash=family, hotkey=hotkey, submission_id=row.id, graph={})
        record_evaluation(
            session,
            Evaluation(
                submission_id=row.id,
                hotkey=hotkey,
                epoch=epoch,
                mode="official",
                score_eligible=True,
                bits_per_byte=bpb,
                heldout_bits_per_byte=bpb + 0.1,
                final_score=2.0**-bpb,
                parameter_count=params,
                architecture_hash=family,
                manifest={},
            ),
        )
        row.architecture_hash = family
        transition(session, row, S.COMPLETED, actor="worker:test")
        out.append(Scored(row.id, hotkey, name, bpb, params, family))
    session.commit()
    return out
