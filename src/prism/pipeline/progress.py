"""Which stage is running now, for people watching a submission.

`Submission.stage` is the last *finished* stage (the worker writes it with the stage's result);
a reader who prints it as "running" is one stage behind, and says "llm_review" through minutes
of training. The order lives here, light enough for the API and the CLI to import (the stage
functions pull in the evaluation code); a test keeps it equal to `pipeline.stages.STAGES`.
"""

from __future__ import annotations

STAGE_ORDER: tuple[str, ...] = (
    "static_review",
    "source_duplicates",
    "llm_review",
    "inspect",
    "graph_duplicates",
    "train",
    "heldout",
    "validation",
    "claims_review",
    "score",
)


def running_stage(status: str, last_finished: str | None) -> str | None:
    """The stage a running submission is in: the one after the last finished, else None."""
    if status != "running":
        return None
    if last_finished is None or last_finished not in STAGE_ORDER:
        return STAGE_ORDER[0]
    index = STAGE_ORDER.index(last_finished) + 1
    return STAGE_ORDER[index] if index < len(STAGE_ORDER) else None
