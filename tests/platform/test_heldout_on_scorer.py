"""Held-out where only the scorer runs: on Platform, the train phase goes to the broker and the
held-out phase runs in a local bubblewrap sandbox on PRISM's host (`PRISM_HELDOUT_SANDBOX`).

Platform mounts the secret val split only on the manager host where PRISM's worker runs
(`/secret/val`, `PRISM_BASE_EVAL_VAL_DATA_DIR`), and carries a GPU job's mounts in the job's
environment (~1.5 MiB): the trained weights of any but a tiny model cannot travel back to a GPU
node, and the val bytes must not. Here the worker drives submissions through the stand-in broker
(the real protocol over a real socket; its jobs really run) and the held-out phase never reaches it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from prism.api.app import create_app
from prism.api.console_views import sandbox_health
from prism.cli import app
from prism.config import Settings, get_settings
from prism.errors import ConfigError
from prism.evaluation.evaluate import locked_dataset
from prism.evaluation.heldout_host import run_heldout_here
from prism.evaluation.jobs import make_job
from prism.evaluation.manifest import build_manifest, validate_manifest
from prism.evaluation.phase import HELDOUT_WINDOW_FILE, JOB_FILE, WEIGHTS_FILE
from prism.evaluation.runner import run_inspect, run_train
from prism.evaluation.suspicion import suspicions
from prism.intake.project import Project
from prism.pipeline.worker import Worker
from prism.runtime_config import RuntimeConfig
from prism.sandbox import get_heldout_sandbox, heldout_backend
from prism.sandbox.archives import unpack_archive
from prism.sandbox.broker import MAX_GPU_MOUNT_BYTES
from prism.sandbox.bubblewrap import BubblewrapSandbox
from prism.sandbox.spec import RunResult, RunSpec
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import AuditEvent, Evaluation, StageResult, Submission
from prism.store.runtime_configs import set_runtime_config
from tests.pipeline.conftest import HOTKEYS, example_files, project_zip, submit
from tests.sandbox.broker_server import SLUG, TOKEN, StandInBroker
from tests.sandbox.helpers import needs_bwrap

from .locked_layout import write_platform_layout

MOUNT = "/data/fineweb-edu/train"
DOCS = {"train": 300, "val": 60, "test": 20}
EVALUATION: dict[str, Any] = {
    "seq_len": 64,
    "batch_size": 4,
    "token_budget": 2048,
    "smoke_token_budget": 2048,
    "heldout_tokens": 1024,
}
# Official and score-eligible on CPUs: the profile Platform would give a GPU, minus the GPU.
CPU_OFFICIAL: dict[str, Any] = {
    "gpu": {"official_profile": {"gpu_count": 0, "gpu_type": None, "cpus": 2, "memory": "4g", "memory_swap": "4g"}},
    "evaluation": EVALUATION,
}


# -- the decision ------------------------------------------------------------------------------------


def test_auto_runs_held_out_locally_only_where_platforms_val_split_is_mounted(tmp_path: Path) -> None:
    val = tmp_path / "val"
    broker = {"sandbox_backend": "broker", "broker_url": "http://broker"}
    assert heldout_backend(Settings(**broker, base_eval_val_data_dir=val)) == "bubblewrap"
    assert heldout_backend(Settings(**broker)) is None  # a broker elsewhere: as before
    assert heldout_backend(Settings(base_eval_val_data_dir=val)) is None  # bubblewrap already runs here
    assert heldout_backend(Settings(**broker, base_eval_val_data_dir=val, heldout_sandbox="same")) is None
    assert heldout_backend(Settings(**broker, heldout_sandbox="docker")) == "docker"
    assert heldout_backend(Settings(heldout_sandbox="bubblewrap")) is None  # the main backend already


def test_the_held_out_sandbox_is_never_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_HELDOUT_SANDBOX", "broker")
    with pytest.raises(ConfigError, match="PRISM_HELDOUT_SANDBOX"):
        get_settings()


@needs_bwrap
def test_readiness_checks_the_held_out_sandbox_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "broker-token"
    token.write_text(TOKEN)
    monkeypatch.setenv("PRISM_BROKER_TOKEN_FILE", str(token))
    on_platform = Settings(sandbox_backend="broker", broker_url="http://broker", base_eval_val_data_dir=tmp_path)
    ready = sandbox_health(on_platform)
    assert (ready.backend, ready.healthy) == ("broker (held-out: bubblewrap)", True), ready.detail
    broken = sandbox_health(on_platform.model_copy(update={"sandbox_bwrap_binary": "prism-no-such-bwrap"}))
    assert (broken.backend, broken.healthy) == ("broker (held-out: bubblewrap)", False)
    assert "PRISM_HELDOUT_SANDBOX=auto" in broken.detail and "prism-no-such-bwrap" in broken.detail
    assert sandbox_health(on_platform.model_copy(update={"heldout_sandbox": "same"})).backend == "broker"


@pytest.mark.sandbox
@pytest.mark.slow
@needs_bwrap
def test_sandbox_check_checks_the_held_out_sandbox_after_the_main_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PRISM_HELDOUT_SANDBOX", "docker")
    monkeypatch.setenv("PRISM_DOCKER_BINARY", "prism-no-such-docker")
    result = CliRunner().invoke(app, ["sandbox", "check"])
    assert result.exit_code == 1, result.output
    main, _, held = result.output.partition("held-out backend: docker")
    assert "backend: bubblewrap" in main and main.count("PASS") == 11 and "FAIL" not in main
    assert "FAIL  network blocked" in held and "PASS" not in held
    assert "prism-no-such-docker" in result.output


# -- Platform's data and the stand-in broker ---------------------------------------------------------


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return write_platform_layout(tmp_path / "locked", docs=DOCS)


def _volume(staged: Path, split: str, dest: Path) -> Path:
    shutil.copytree(staged / split, dest)
    dest.chmod(0o755)
    return dest


@pytest.fixture
def broker(staged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInBroker]:
    token = tmp_path / "docker_broker_token"
    token.write_text(TOKEN)
    monkeypatch.setenv("CHALLENGE_DOCKER_BROKER_TOKEN_FILE", str(token))
    node_train = _volume(staged, "train", tmp_path / "gpu-node" / "prism_fineweb_edu_train")
    with StandInBroker(Settings(data_dir=tmp_path / "broker-data"), readonly_mounts={MOUNT: node_train}) as server:
        server.log_limit_bytes = 16 * 1024**2  # CPU jobs drain through the log: the operator raises its cap
        yield server


@pytest.fixture
def platform(settings: Settings, staged: Path, broker: StandInBroker, tmp_path: Path) -> Settings:
    """PRISM on the manager host as Platform's install script configures it."""
    return settings.model_copy(
        update={
            "sandbox_backend": "broker",
            "broker_url": broker.url,
            "challenge_slug": SLUG,
            "base_eval_train_data_dir": _volume(staged, "train", tmp_path / "manager" / "train"),
            "base_eval_val_data_dir": _volume(staged, "val", tmp_path / "manager" / "val"),
            "dataset_manifest": staged / "MANIFEST.json",
            "worker_retry_base_seconds": 0.0,
            "worker_heartbeat_seconds": 1.0,
        }
    )


@pytest.fixture
def sessions(platform: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(platform.resolved_database_url)
    upgrade(engine)
    with make_session_factory(engine)() as session, session.begin():
        set_runtime_config(session, CPU_OFFICIAL, actor="test")
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def api(platform: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    engine = make_engine(platform.resolved_database_url)
    with TestClient(create_app(platform, engine=engine)) as client:
        yield client
    engine.dispose()


def _validation_bytes(settings: Settings) -> bytes:
    dataset = locked_dataset(settings)
    return b"".join((dataset.root / s.path).read_bytes() for s in dataset.manifest.split("validation"))


def _carried(broker: StandInBroker) -> list[dict[str, bytes]]:
    """Every file of every mount of every request the broker received."""
    return [
        unpack_archive(mount["archive_b64"], max_bytes=1 << 30, max_files=1000)
        for _, _, payload in broker.requests
        for mount in payload.get("mounts", [])
    ]


@pytest.mark.sandbox
@pytest.mark.slow
@needs_bwrap
def test_platform_trains_on_the_broker_and_scores_held_out_on_the_scorer(
    platform: Settings, broker: StandInBroker, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    sid = submit(api, HOTKEYS["alice"], project_zip(example_files()))
    assert Worker(platform, sessions).drain() == 1
    with sessions() as session:
        submission = session.get(Submission, sid)
        assert submission is not None and submission.status == "completed", (submission.reason_code, submission.reason)
        evaluation = session.get(Evaluation, sid)
        heldout = session.scalars(
            select(StageResult).where(StageResult.submission_id == sid, StageResult.stage == "heldout")
        ).one()
    assert evaluation is not None and evaluation.score_eligible and evaluation.mode == "official"
    assert 0 < evaluation.heldout_bits_per_byte < 8.0
    assert heldout.data["heldout_ran_on"] == {"sandbox": "bubblewrap", "device": "cpu"}
    assert heldout.data["heldout"]["heldout_bits_per_byte"] == evaluation.heldout_bits_per_byte

    # The broker saw inspect and train only; nothing it received carries the weights or val bytes.
    phases = [p["labels"]["prism.phase"] for path, _, p in broker.requests if path == "/v1/docker/run"]
    assert phases == ["inspect", "train"]
    with sessions() as session:
        trained = session.scalars(
            select(StageResult).where(StageResult.submission_id == sid, StageResult.stage == "train")
        ).one()
    weights_sha256 = trained.data["train"]["weights_sha256"]
    assert heldout.data["heldout"]["weights_sha256"] == weights_sha256  # the weights held-out loaded
    # float32 weights too big for a GPU job's transport: held-out could not have gone back to the broker.
    assert 4 * trained.data["train"]["weights_numel"] > MAX_GPU_MOUNT_BYTES
    validation = _validation_bytes(platform)
    for files in _carried(broker):
        assert WEIGHTS_FILE not in files and HELDOUT_WINDOW_FILE not in files
        for data in files.values():
            assert hashlib.sha256(data).hexdigest() != weights_sha256
            assert validation[:256] not in data and validation[-256:] not in data


@pytest.mark.sandbox
@pytest.mark.slow
@needs_bwrap
def test_a_held_out_sandbox_that_cannot_run_is_our_fault_never_a_score(
    platform: Settings, broker: StandInBroker, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    broken = platform.model_copy(update={"sandbox_bwrap_binary": "prism-no-such-bwrap"})
    sid = submit(api, HOTKEYS["bob"], project_zip(example_files()))
    worker = Worker(broken, sessions)
    assert worker.run_once() == sid
    with sessions() as session:
        submission = session.get(Submission, sid)
        assert submission is not None
        assert submission.status == "pending"
        (retry,) = session.scalars(
            select(AuditEvent).where(AuditEvent.submission_id == sid, AuditEvent.reason_code == "infrastructure_retry")
        ).all()
        assert retry.data["stage"] == "heldout"
        assert "PRISM_HELDOUT_SANDBOX=auto" in (retry.reason or "")
        assert "prism-no-such-bwrap" in (retry.reason or "")
        assert session.get(Evaluation, sid) is None
    # Training went to the broker once; the retry resumes at held-out, once the sandbox is fixed.
    assert [p["labels"]["prism.phase"] for _, _, p in broker.requests if "labels" in p] == ["inspect", "train"]
    assert Worker(platform, sessions).run_once() == sid
    with sessions() as session:
        submission = session.get(Submission, sid)
        assert submission is not None and submission.status == "completed", submission.reason
    assert len([p for path, _, p in broker.requests if path == "/v1/docker/run"]) == 2


# -- a GPU job's held-out on the scorer's CPU ---------------------------------------------------------


class Recording:
    """A real sandbox that keeps each run's limits and job spec (the /job/job.json it was given)."""

    def __init__(self, inner: BubblewrapSandbox) -> None:
        self.inner = inner
        self.name = inner.name
        self.accepts_stdin = inner.accepts_stdin
        self.runs: list[tuple[RunSpec, dict[str, Any]]] = []

    def run(self, spec: RunSpec) -> RunResult:
        (job,) = [m.source for m in spec.mounts if m.target == "/job"]
        self.runs.append((spec, json.loads((job / JOB_FILE).read_text(encoding="utf-8"))))
        return self.inner.run(spec)


@pytest.mark.sandbox
@pytest.mark.slow
@needs_bwrap
def test_a_gpu_jobs_held_out_runs_on_the_cpu_and_its_figures_are_accepted(platform: Settings, tmp_path: Path) -> None:
    local = get_heldout_sandbox(platform)
    assert isinstance(local, BubblewrapSandbox)
    config = RuntimeConfig.model_validate(CPU_OFFICIAL)
    work = tmp_path / "work"
    work.mkdir(mode=0o755)
    job = make_job(
        submission_id="gpu-trained",
        code_hash="0" * 64,
        mode="official",
        runtime_config=config,
        dataset=locked_dataset(platform),
        work_dir=work,
    )
    project = Project(files=example_files())
    inspect = run_inspect(job, project, local)
    train = run_train(job, project, local, inspect)
    # What the worker holds after a GPU train job on Platform: the same record, a lease with a GPU.
    leased = replace(job, gpu_count=1, gpu_type="H200")
    recording = Recording(local)
    heldout = run_heldout_here(leased, project, recording, train, platform)

    ((spec, phase),) = recording.runs
    assert (spec.limits.gpu_count, spec.limits.gpu_type) == (0, None)
    assert (spec.limits.cpus, spec.limits.memory_bytes) == (leased.cpus, leased.memory_bytes)
    assert (phase["phase"], phase["device"], phase["data_source"]) == ("heldout", "cpu", "job")
    assert phase["weights_sha256"] == train.weights_sha256
    manifest = build_manifest(leased, inspect, train, heldout)
    report = validate_manifest(manifest, job=leased, inspect=inspect, train=train, heldout=heldout)
    assert report.ok, report.to_json()
    assert manifest["compute"]["gpu_count"] == 1  # the lease training had, recorded as it was
    assert not suspicions(inspect, train, heldout)
