from __future__ import annotations

from prism.pipeline.progress import STAGE_ORDER, running_stage
from prism.pipeline.stages import STAGES


def test_the_light_stage_order_is_the_worker_order() -> None:
    assert tuple(name for name, _step in STAGES) == STAGE_ORDER


def test_running_stage_is_the_one_after_the_last_finished() -> None:
    assert running_stage("running", None) == "static_review"
    assert running_stage("running", "llm_review") == "inspect"
    assert running_stage("running", "inspect") == "graph_duplicates"
    assert running_stage("running", "score") is None
    assert running_stage("pending", "train") is None
    assert running_stage("completed", "score") is None
