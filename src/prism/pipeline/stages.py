"""The stages of one submission, in order. The worker runs them; each is a function of the context."""

from __future__ import annotations

from collections.abc import Callable

from prism.pipeline.context import StepContext, StepOutcome
from prism.pipeline.eval_steps import (
    graph_duplicates_step,
    score_step,
    validation_step,
)
from prism.pipeline.review_steps import (
    claims_review_step,
    llm_review_step,
    source_duplicates_step,
    static_review_step,
)
from prism.validators.host_steps import validator_heldout_step, validator_inspect_step
from prism.validators.stage import validator_train_step

Step = Callable[[StepContext], StepOutcome]

STAGES: tuple[tuple[str, Step], ...] = (
    ("static_review", static_review_step),
    ("source_duplicates", source_duplicates_step),  # before the LLM: its candidates go into the prompt
    ("llm_review", llm_review_step),
    ("inspect", validator_inspect_step),  # inspect_step, official when validators train
    ("graph_duplicates", graph_duplicates_step),  # after inspect, before any training
    ("train", validator_train_step),  # PRISM's sandbox, or validators that must agree (runtime config)
    ("heldout", validator_heldout_step),  # heldout_step; always on PRISM
    ("validation", validation_step),
    ("claims_review", claims_review_step),  # the miner's claims against what was measured
    ("score", score_step),
)
# Stages whose results live in the work directory; they restart together when it is lost.
EVALUATION_STAGES = ("inspect", "graph_duplicates", "train", "heldout", "validation", "claims_review", "score")
