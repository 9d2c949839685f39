"""The leaderboard as people read it: rank, model name, scores, size, family, weight; sortable.

Shared by the console's leaderboard and the public `/leaderboard` page. The rank and the weight
are the scoring rules' own (`scoring.ranking`), computed over the same results the weights cache
uses; sorting by a column only changes the order rows are shown in, never the rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.intake.project_yaml import parse_project_config
from prism.scoring.ranking import compute_weights, leaderboard
from prism.store.models import Evaluation, SourceFile, Submission
from prism.store.runtime_configs import load_runtime_config
from prism.store.scores import eligible_results, owners

SortKey = Literal["rank", "name", "score", "bpb", "heldout", "params", "weight", "submitted"]
SORT_KEYS: tuple[SortKey, ...] = ("rank", "name", "score", "bpb", "heldout", "params", "weight", "submitted")


@dataclass(frozen=True, slots=True)
class BoardRow:
    rank: int
    hotkey: str
    submission_id: str
    model_name: str
    final_score: float
    bits_per_byte: float
    heldout_bits_per_byte: float | None
    parameter_count: int | None
    architecture_hash: str
    owns_architecture: bool
    weight: float
    submitted_at: datetime


def model_name(project_yaml: str | None, filename: str) -> str:
    """`name` from prism.yaml, else the uploaded file's name without its suffix."""
    text = project_yaml
    if text is not None:
        try:
            name = parse_project_config(text, limits=IntakeLimits()).name
        except IntakeRejected:
            name = None
        if name:
            return name
    return filename.rsplit(".", 1)[0]


def board_rows(session: Session, *, epoch: int) -> list[BoardRow]:
    results = eligible_results(session, epoch=epoch)
    ranked = leaderboard(results)
    family_owners = owners(session)
    weights = compute_weights(results, owners=family_owners, policy=load_runtime_config(session).config.rewards)
    ids = [row.result.submission_id for row in ranked]
    evaluations = {
        e.submission_id: e for e in session.scalars(select(Evaluation).where(Evaluation.submission_id.in_(ids)))
    }
    yaml_query = select(SourceFile.submission_id, SourceFile.text).where(
        SourceFile.submission_id.in_(ids), SourceFile.path == "prism.yaml"
    )
    configs: dict[str, str] = {row[0]: row[1] for row in session.execute(yaml_query).all()}
    name_query = select(Submission.id, Submission.filename).where(Submission.id.in_(ids))
    filenames: dict[str, str] = {row[0]: row[1] for row in session.execute(name_query).all()}
    rows = []
    for row in ranked:
        result = row.result
        evaluation = evaluations.get(result.submission_id)
        rows.append(
            BoardRow(
                rank=row.rank,
                hotkey=result.hotkey,
                submission_id=result.submission_id,
                model_name=model_name(configs.get(result.submission_id), filenames.get(result.submission_id, "")),
                final_score=result.final_score,
                bits_per_byte=result.bits_per_byte,
                heldout_bits_per_byte=evaluation.heldout_bits_per_byte if evaluation else None,
                parameter_count=evaluation.parameter_count if evaluation else None,
                architecture_hash=result.architecture_hash,
                owns_architecture=family_owners.get(result.architecture_hash) == result.hotkey,
                weight=weights.get(result.hotkey, 0.0),
                submitted_at=result.created_at,
            )
        )
    return rows


def sort_rows(rows: list[BoardRow], key: SortKey, descending: bool) -> list[BoardRow]:
    def value(row: BoardRow) -> tuple[int, float | str]:
        # Missing figures sort last whichever the direction.
        figures: dict[str, float | str | None] = {
            "rank": row.rank,
            "name": row.model_name.lower(),
            "score": row.final_score,
            "bpb": row.bits_per_byte,
            "heldout": row.heldout_bits_per_byte,
            "params": row.parameter_count,
            "weight": row.weight,
            "submitted": row.submitted_at.timestamp(),
        }
        figure = figures[key]
        return (0, figure) if figure is not None else (1, 0.0)

    present = [r for r in rows if value(r)[0] == 0]
    missing = [r for r in rows if value(r)[0] == 1]
    return sorted(present, key=value, reverse=descending) + missing
