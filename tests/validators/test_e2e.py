"""Upload → weights through validators: PRISM, a stand-in Platform master, validator processes.

Four validator processes (bubblewrap as their broker) run the real `dispatch_assignment`:
a silent one (claims its unit, never answers), a liar (forges a self-consistent lower bits per
byte), and two honest ones. They come online in that order, so the liars get the first two
units: the silent one's lease runs out and a replacement unit opens; the liar's figure
disagrees with the first honest result, a tie-breaker opens, and the second honest result
decides. Each honest validator takes one unit and leaves, like a validator going offline; the
master reassigns what an offline validator held. The score is the honest figure, never the
liar's; the liar is recorded as the odd one out, the silent one as expired.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.pipeline.worker import Worker
from prism.store.models import Evaluation, StageResult, Submission
from prism.store.validators import ValidatorResult, ValidatorStanding, ValidatorUnit
from tests.conftest import TOKEN
from tests.live_server import live_server
from tests.pipeline.conftest import HOTKEYS, example_files, project_zip, use_runtime_config
from tests.validators.conftest import key, key_file, serve, validators_config
from tests.validators.platform_master import Master

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _wait(condition: Callable[[], bool], what: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _results(sessions: sessionmaker[Session]) -> dict[str, ValidatorResult]:
    with sessions() as session:
        return {r.validator_hotkey: r for r in session.scalars(select(ValidatorResult))}


def _status(sessions: sessionmaker[Session], submission_id: str) -> str:
    with sessions() as session:
        submission = session.get(Submission, submission_id)
        return submission.status if submission else "missing"


def test_upload_to_weights_through_validators_that_lie_and_go_silent(
    worker_settings: Settings, worker_sessions: sessionmaker[Session], dataset_dir: Path, tmp_path: Path
) -> None:
    use_runtime_config(worker_sessions, validators_config(lease_seconds=20, max_units=8))
    # The worker waits in the train stage for the whole test (timeouts below only guard a hang).
    settings = worker_settings.model_copy(update={"validators_wait_seconds": 3600.0})
    processes: list[subprocess.Popen[bytes]] = []
    with live_server(settings) as prism_url:
        master = Master(challenge_url=prism_url, token=TOKEN, interval=0.3, heartbeat_timeout=2.0)
        with serve(master.app) as master_url:
            threading.Thread(target=master.loop, daemon=True).start()

            def start(name: str, behaviour: str, units: int) -> None:
                env = {
                    "PATH": os.environ["PATH"],
                    "PRISM_VALIDATOR_HOTKEY_FILE": str(key_file(tmp_path, name)),
                    "PRISM_VALIDATOR_PRISM_URL": prism_url,
                    "PRISM_DATA_DIR": str(tmp_path / f"validator-{name}"),
                    "PRISM_DATASET_DIR": str(dataset_dir),
                }
                log = (tmp_path / f"{name}.log").open("wb")
                command = [sys.executable, "-m", "tests.validators.validator_agent", "--master", master_url]
                command += ["--key-file", env["PRISM_VALIDATOR_HOTKEY_FILE"], "--behaviour", behaviour]
                command += ["--units", str(units)]
                processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))

            finished = threading.Event()
            try:
                upload = httpx.post(
                    f"{prism_url}/internal/v1/bridge/submissions",
                    headers={
                        "Authorization": f"Bearer {TOKEN}",
                        "X-Base-Verified-Hotkey": HOTKEYS["alice"],
                        "X-Submission-Filename": "project.zip",
                    },
                    content=project_zip(example_files()),
                )
                assert upload.status_code == 201, upload.text
                submission_id = upload.json()["id"]

                def work() -> None:
                    # A real worker loop: an infrastructure retry (SQLite busy under load) comes back.
                    engine = Worker(settings, worker_sessions)
                    while not finished.is_set():
                        if engine.run_once() is None:
                            finished.wait(0.2)

                worker = threading.Thread(target=work, daemon=True)
                worker.start()

                start("silent", "silent", 0)
                start("liar", "forged_bpb", 1)
                _wait(lambda: key("liar").hotkey in _results(worker_sessions), "the liar's result")
                start("honest1", "honest", 1)
                _wait(lambda: key("honest1").hotkey in _results(worker_sessions), "the first honest result")
                start("honest2", "honest", 1)
                _wait(
                    lambda: _status(worker_sessions, submission_id) not in ("pending", "running", "held"), "a decision"
                )
            finally:
                finished.set()
                master.stopped.set()
                for process in processes:
                    process.kill()
                    process.wait(timeout=10)
                logs = {p.name: p.read_text(errors="replace")[-1500:] for p in tmp_path.glob("*.log")}

        with worker_sessions() as session:
            submission = session.get(Submission, submission_id)
            assert submission is not None and submission.status == "completed", (submission.reason, logs)
            evaluation = session.get(Evaluation, submission_id)
            assert evaluation is not None and evaluation.score_eligible
            results = {r.validator_hotkey: r for r in session.scalars(select(ValidatorResult))}
            honest = [results[key(n).hotkey] for n in ("honest1", "honest2")]
            liar = results[key("liar").hotkey]
            honest_bpb = [r.figures["train"]["bits_per_byte"] for r in honest]
            # The score is the honest validators' figure, never the forged one.
            assert evaluation.bits_per_byte in honest_bpb
            assert abs(honest_bpb[0] - honest_bpb[1]) <= 2e-3
            assert liar.figures["train"]["bits_per_byte"] < min(honest_bpb) - 0.1
            assert [r.verdict for r in honest] == ["agreed", "agreed"] and liar.verdict == "odd_one_out"
            standing = {s.hotkey: s for s in session.scalars(select(ValidatorStanding))}
            assert standing[key("liar").hotkey].odd_one_out == 1
            assert standing[key("silent").hotkey].expired == 1
            units = list(session.scalars(select(ValidatorUnit).where(ValidatorUnit.submission_id == submission_id)))
            silent_unit = next(u for u in units if u.validator_hotkey == key("silent").hotkey)
            assert silent_unit.status == "expired" and key("silent").hotkey not in results
            train = session.get(StageResult, (submission_id, "train"))
            assert train is not None and train.data["validators"]["odd_one_out"].keys() == {liar.unit_id}
            assert len(train.data["validators"]["figures"]) == 3

        def weights() -> object:
            answer = httpx.get(f"{prism_url}/internal/v1/get_weights", headers={"Authorization": f"Bearer {TOKEN}"})
            return answer.json()["weights"]

        _wait(lambda: weights() == {HOTKEYS["alice"]: pytest.approx(1.0)}, "the miner's weight", timeout=120)
        assert not [
            u
            for u in httpx.get(
                f"{prism_url}/internal/v1/work_units", headers={"Authorization": f"Bearer {TOKEN}"}
            ).json()["work_units"]
        ]
        assert len(master.assignments) >= 4
