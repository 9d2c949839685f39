"""PRISM's broker client against Platform's broker rules: the request schema, the drained bytes.

The stand-in (tests/sandbox/broker_server.py) validates with the same rules as Platform's
`BrokerRunRequest` (unknown fields silently ignored, so the test asserts none is sent) and hands
back stdout as Platform does: CPU jobs capped to a 64,000-byte tail with no drain, GPU jobs with
the writable mount drained as `tar | base64`, wrapped at 76 columns.
"""

from __future__ import annotations

import base64
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from prism.config import Settings
from prism.sandbox.archives import unpack_archive
from prism.sandbox.broker import BrokerSandbox, build_broker_payload, drain_was_cut, job_id_of, split_drained_mounts
from prism.sandbox.errors import GpuRequestRefused, SandboxInfraError, SandboxUnavailable
from prism.sandbox.jobs import job_id_for
from prism.sandbox.spec import Limits, Mount, RunSpec
from tests.sandbox.broker_server import (
    SLUG,
    TOKEN,
    BrokerCleanupRequest,
    BrokerLimits,
    BrokerListRequest,
    BrokerRefusal,
    BrokerRunRequest,
    StandInBroker,
    check_hardening,
    ignored_fields,
)
from tests.sandbox.helpers import needs_bwrap


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInBroker]:
    token = tmp_path / "docker_broker_token"
    token.write_text(TOKEN)
    # Platform's own variable names, as its orchestrator sets them for a docker_executor challenge.
    monkeypatch.setenv("CHALLENGE_DOCKER_BROKER_TOKEN_FILE", str(token))
    with StandInBroker(Settings(data_dir=tmp_path / "broker-data")) as server:
        monkeypatch.setenv("CHALLENGE_DOCKER_BACKEND", "broker")
        monkeypatch.setenv("CHALLENGE_DOCKER_BROKER_URL", server.url)
        monkeypatch.setenv("BASE_CHALLENGE_SLUG", SLUG)
        yield server


def _spec(job_dir: Path, code: str, **limits: object) -> RunSpec:
    return RunSpec(
        command=("python3", "-c", code),
        mounts=(Mount(job_dir / "project", "/submission"),),
        artifacts_dir=job_dir / "artifacts",
        labels={"prism.submission": "sub-1", "prism.phase": "train", "prism.attempt": "1"},
        limits=Limits(**{"timeout_seconds": 60.0, "memory_bytes": 512 << 20, "memory_swap_bytes": 512 << 20, **limits}),  # type: ignore[arg-type]
    )


def test_every_field_prism_sends_is_one_platforms_broker_reads(job_dir: Path) -> None:
    for gpu in (0, 1):
        spec = _spec(job_dir, "pass", gpu_count=gpu, gpu_type="H100" if gpu else None, network=bool(gpu))
        payload = build_broker_payload(
            spec, job_id="j1", task_id="prism-evaluation", image="img", uid=65534, gid=65534, gpu_type="H100"
        )
        request = BrokerRunRequest.model_validate(payload)  # Platform's schema: 422 otherwise
        assert ignored_fields(BrokerRunRequest, payload) == []
        assert request.limits.tmpfs == (f"/tmp:rw,nosuid,nodev,size={256 << 20}",)
        assert request.limits.ulimits == ("core=0:0", "nofile=4096:4096")
        assert request.limits.network == ("default" if gpu else "none")
        assert request.limits.gpu_count == (1 if gpu else None)
        assert [m.target for m in request.mounts] == ["/submission", "/artifacts"]
        assert [m.read_only for m in request.mounts] == [True, False]
        assert request.labels["job_id"] == "j1"
    assert payload["labels"]["prism.gpu_type"] == "H100"
    assert BrokerListRequest.model_validate({"job_id": "j1"}).job_id == "j1"
    assert BrokerCleanupRequest.model_validate({"job_id": "j1"}).job_id == "j1"


def test_the_stand_in_refuses_what_platform_refused_from_prism() -> None:
    # The request shapes PRISM sent before (issue 14): each one fails Platform's schema rules.
    good = {"job_id": "j", "image": "i", "command": ["true"]}
    bad = [
        {**good, "mounts": [{"target": "/submission", "read_only": True, "archive": "H4sI"}]},
        {**good, "limits": {"tmpfs": {"/tmp": "rw,size=1"}}},
        {**good, "limits": {"ulimits": {"nofile": [1, 1]}}},
        {**good, "limits": {"gpu_count": 0}},
        {**good, "limits": {"gpu_count": True}},
    ]
    for payload in bad:
        with pytest.raises(ValidationError):
            BrokerRunRequest.model_validate(payload)
    assert ignored_fields(BrokerRunRequest, {**good, "limits": {"gpu_type": "H100"}}) == ["limits.gpu_type"]
    assert ignored_fields(BrokerListRequest, {"labels": {"job_id": "j"}}) == ["labels"]
    assert BrokerListRequest.model_validate({"labels": {"job_id": "j"}}).job_id is None  # lists everything
    with pytest.raises(BrokerRefusal, match="network") as refused:
        check_hardening(BrokerLimits(network="bridge"))
    assert refused.value.status == 400


def test_gpu_type_is_never_dropped_silently(job_dir: Path) -> None:
    spec = _spec(job_dir, "pass", gpu_count=1, gpu_type="H100")
    for declared in (None, "A100"):
        with pytest.raises(GpuRequestRefused, match="PRISM_BROKER_GPU_TYPE"):
            build_broker_payload(spec, job_id="j", task_id="t", image="i", uid=1, gid=1, gpu_type=declared)


def test_gpu_mounts_platform_cannot_carry_are_refused_before_sending(job_dir: Path) -> None:
    (job_dir / "project" / "data.bin").write_bytes(os.urandom(2 * 1024**2))
    (job_dir / "project" / "data.bin").chmod(0o644)
    spec = _spec(job_dir, "pass", gpu_count=1)
    with pytest.raises(SandboxUnavailable, match="environment"):
        build_broker_payload(spec, job_id="j", task_id="t", image="i", uid=1, gid=1)
    assert build_broker_payload(_spec(job_dir, "pass"), job_id="j", task_id="t", image="i", uid=1, gid=1)


def test_job_ids_are_deterministic_from_the_runner_labels(job_dir: Path) -> None:
    spec = _spec(job_dir, "pass")
    assert job_id_of(spec) == job_id_for("sub-1", 1, "train") == job_id_of(_spec(job_dir, "pass"))


def test_drained_archive_wrapped_at_76_columns_is_read() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = bytes(range(256)) * 40
        info = tarfile.TarInfo("./weights.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    wrapped = base64.encodebytes(buffer.getvalue()).decode()
    assert max(len(line) for line in wrapped.splitlines()) == 76
    stdout = f"log\n@@BASE_BROKER_MOUNT_OUT[2]:BEGIN@@\n{wrapped}@@BASE_BROKER_MOUNT_OUT[2]:END@@\n"
    rest, drained = split_drained_mounts(stdout)
    assert rest == "log\n"
    assert unpack_archive(drained[2], max_bytes=1 << 20, max_files=4) == {"weights.bin": data}
    with pytest.raises(SandboxInfraError, match="base64"):
        unpack_archive(drained[2].replace("A", "!", 1), max_bytes=1 << 20, max_files=4)
    assert drain_was_cut(stdout[stdout.index("BEGIN@@") + 10 :], 2) and not drain_was_cut(stdout, 2)


@pytest.mark.sandbox
@needs_bwrap
@pytest.mark.parametrize("gpu", [0, 1], ids=["cpu-self-drain", "gpu-platform-drain"])
def test_artifacts_come_back_from_cpu_and_gpu_jobs(broker: StandInBroker, job_dir: Path, gpu: int) -> None:
    settings = Settings(broker_gpu_type="H100")
    assert settings.sandbox_backend == "broker" and settings.broker_url == broker.url
    sandbox = BrokerSandbox(settings)
    code = (
        "import os\nprint(open('/submission/model.py').read().strip(), os.getuid())\n"
        "open('/artifacts/out.bin', 'wb').write(bytes(range(256)) * 64)\n"
    )
    result = sandbox.run(_spec(job_dir, code, gpu_count=gpu, gpu_type="H100" if gpu else None))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "VALUE = 42 65534\n"
    assert result.artifacts == {"out.bin": bytes(range(256)) * 64}
    assert broker.ignored == []
    argv = broker.argv[-1]
    assert ("--gpus" in argv) == bool(gpu) and argv[argv.index("--user") + 1] == "65534:65534"
    assert "--read-only" in argv and argv[argv.index("--network") : argv.index("--network") + 2] == [
        "--network",
        "none",
    ]
    job_id = job_id_for("sub-1", 1, "train")
    assert f"base.job={job_id}" in argv and f"job_id={job_id}" in argv
    # list filters by job id; cleanup by job id is repeatable.
    assert [c["job_id"] for c in sandbox.list(job_id)["containers"]] == [job_id]
    assert sandbox.list("prism-other")["containers"] == []
    assert sandbox.cleanup(job_id) == {"status": "ok"} == sandbox.cleanup(job_id)
    assert sandbox.list(job_id)["containers"] == []


@pytest.mark.sandbox
@needs_bwrap
def test_a_cpu_drain_cut_by_the_log_cap_is_an_infra_error(broker: StandInBroker, job_dir: Path) -> None:
    broker.log_limit_bytes = 2_000
    code = "import os\nopen('/artifacts/big.bin', 'wb').write(os.urandom(20_000))\n"
    with pytest.raises(SandboxInfraError, match="log cap"):
        BrokerSandbox(Settings()).run(_spec(job_dir, code))
