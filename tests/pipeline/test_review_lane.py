"""A static rejection is decided while another submission trains, not after it."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.pipeline.review_lane import REVIEW_STAGES, ReviewLane
from prism.pipeline.worker import Worker
from prism.sandbox.errors import SandboxUnavailable
from prism.store.models import StageResult, Submission
from tests.pipeline.conftest import HOTKEYS, example_files, project_zip, submit

OTHER_MODEL = """import torch
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)

    def forward(self, inputs):
        return self.table(inputs)


def build_model(ctx):
    return Bigram(ctx.vocab_size)
"""

# Written independently of OTHER_MODEL: the hostile submission's code is prior art too (every
# earlier submission counts for copy detection), so the ordinary one must not be its copy.
THIRD_MODEL = """import torch
import torch.nn.functional as F
from torch import nn


class Mixer(nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mix = nn.Linear(width, width)
        self.out = nn.Linear(width, vocab)

    def forward(self, tokens):
        hidden = F.gelu(self.mix(self.embed(tokens)))
        return self.out(hidden)


def build_model(ctx):
    return Mixer(ctx.vocab_size, 32)
"""


class BlockingSandbox:
    """Stands in for a long training run: holds the worker inside the sandbox until released."""

    name = "blocking"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def run(self, spec: Any) -> Any:
        self.entered.set()
        self.release.wait(120)
        raise SandboxUnavailable("test sandbox: released")


def _status(sessions: sessionmaker[Session], sid: str) -> tuple[str, str | None]:
    with sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None
        return row.status, row.reason_code


def test_static_rejection_does_not_wait_behind_a_running_evaluation(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session]
) -> None:
    settings = worker_settings.model_copy(update={"worker_max_infra_retries": 5})
    sandbox = BlockingSandbox()
    worker = Worker(settings, worker_sessions, sandbox_factory=lambda: sandbox)
    lane = ReviewLane(settings, worker_sessions, sandbox_factory=lambda: sandbox)

    training = submit(api, HOTKEYS["alice"], project_zip(example_files()))
    hostile = submit(api, HOTKEYS["bob"], project_zip({"model.py": "import socket\n" + OTHER_MODEL}))
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:
        assert sandbox.entered.wait(120), "the worker never reached the sandbox"
        assert _status(worker_sessions, training)[0] == "running"

        # The worker is busy "training"; the review lane decides the hostile one now.
        assert lane.run_once() == hostile
        assert _status(worker_sessions, hostile) == ("rejected", "static.import.forbidden")
        assert _status(worker_sessions, training)[0] == "running"

        # An ordinary one is reviewed now and waits for evaluation in its place in the queue.
        ordinary = submit(api, HOTKEYS["charlie"], project_zip({"model.py": THIRD_MODEL}))
        assert lane.run_once() == ordinary
        assert _status(worker_sessions, ordinary)[0] == "pending"
        assert lane.run_once() is None  # nothing unreviewed is left; the lane never evaluates
        with worker_sessions() as session:
            outcomes = {row.stage: row.outcome for row in session.query(StageResult).filter_by(submission_id=ordinary)}
        assert outcomes == {"intake": "passed", **dict.fromkeys(REVIEW_STAGES, "passed")}
        view = api.get(f"/v1/submissions/{ordinary}").json()
        assert view["status"] == "pending" and view["stage"] == "llm_review" and view["queue_position"] == 1
        # The evaluation worker resumes after the last finished stage: the review is not redone.
        assert set(REVIEW_STAGES) <= worker._done_stages(ordinary)
    finally:
        sandbox.release.set()
        thread.join(timeout=120)
    assert _status(worker_sessions, training)[0] == "pending"  # our sandbox failed: an infra retry
