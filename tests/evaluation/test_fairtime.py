"""Fair time: the host's load is not charged to the model; its own computing or sleeping is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from prism.evaluation.fairtime import FairClock, Sample

from .conftest import HarnessRunner

SPIN = "import os, sys\nos.sched_setaffinity(0, {0})\nwhile True: pass\n"


def test_waiting_for_a_cpu_is_not_charged_unless_the_process_had_its_cores() -> None:
    clock = FairClock(model_pid=os.getpid(), cores=2)
    a = Sample(wall=100.0, waited=1.0, model_cpu=0.0)
    starved = Sample(wall=110.0, waited=7.0, model_cpu=3.0)
    assert clock.charged_between(a, starved) == pytest.approx(4.0)
    had_its_cores = Sample(wall=110.0, waited=7.0, model_cpu=19.0)
    assert clock.charged_between(a, had_its_cores) == pytest.approx(10.0)
    assert clock.charged_between(a, Sample(wall=110.0, waited=1.0, model_cpu=0.0)) == pytest.approx(10.0)


@contextmanager
def _spinners(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_process_starved_by_others_is_charged_a_fraction_of_the_wall() -> None:
    with _spinners(3):
        model = subprocess.Popen([sys.executable, "-c", SPIN])
        try:
            clock = FairClock(model_pid=model.pid, cores=1, recorder_pid=model.pid)
            start = clock.sample()
            time.sleep(3.0)
            end = clock.sample()
        finally:
            model.kill()
            model.wait()
    wall = end.wall - start.wall
    assert clock.charged_between(start, end) < 0.6 * wall


def test_a_sleeping_process_is_charged_the_wall() -> None:
    model = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        clock = FairClock(model_pid=model.pid, cores=1, recorder_pid=model.pid)
        start = clock.sample()
        time.sleep(1.5)
        end = clock.sample()
    finally:
        model.kill()
        model.wait()
    assert clock.charged_between(start, end) >= 0.9 * (end.wall - start.wall)


def test_a_deliberately_slow_model_still_fails_as_its_own_timeout(run_harness: HarnessRunner, tmp_path: Path) -> None:
    project = tmp_path / "slow"
    project.mkdir()
    (project / "model.py").write_text(
        "import torch\n\n\nclass Slow(torch.nn.Module):\n"
        "    def forward(self, x):\n        while True:\n            pass\n\n\n"
        "def build_model(ctx):\n    return Slow()\n"
    )
    report = run_harness("inspect", project, wall_clock_seconds=2.0, grace_seconds=1.0)
    assert report["status"] == "failed" and report["reason_code"] == "timeout", report
    assert "of its own time" in report["detail"]


def test_past_the_outer_wall_bound_with_budget_left_the_host_is_blamed(
    run_harness: HarnessRunner, tmp_path: Path
) -> None:
    from .conftest import EXAMPLE

    # Budget of 60 s of the model's own time, but no wall clock at all: the bound has passed by the
    # first reply, however fast the host (a forked model process is ready in well under 0.5 s),
    # with budget left, which is the host's fault, reported authenticated.
    report = run_harness("inspect", EXAMPLE, wall_clock_seconds=60.0, outer_wall_seconds=0.0)
    assert report["status"] == "failed" and report["reason_code"] == "infrastructure", report
    assert report["detail"].startswith("host_starved")
