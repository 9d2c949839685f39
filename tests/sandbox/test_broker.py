"""The broker backend against a stand-in broker that really runs each job in bubblewrap."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.sandbox.broker_server import SLUG, TOKEN, StandInBroker
from tests.sandbox.helpers import needs_bwrap

from prism.config import Settings
from prism.sandbox.broker import BrokerSandbox, build_broker_limits, build_broker_payload, split_drained_mounts
from prism.sandbox.errors import BrokerBusy, GpuRequestRefused, SandboxInfraError, SandboxUnavailable
from prism.sandbox.jobs import job_id_for
from prism.sandbox.spec import Limits, Mount, RunSpec


@pytest.fixture
def token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "broker-token"
    path.write_text(TOKEN)
    monkeypatch.setenv("PRISM_BROKER_TOKEN_FILE", str(path))
    return path


@pytest.fixture
def broker(tmp_path: Path, token_file: Path) -> Iterator[StandInBroker]:
    with StandInBroker(Settings(data_dir=tmp_path / "broker-data")) as server:
        yield server


def _spec(job_dir: Path, code: str, **limits: object) -> RunSpec:
    return RunSpec(
        command=("python3", "-c", code),
        mounts=(Mount(job_dir / "project", "/submission"),),
        artifacts_dir=job_dir / "artifacts",
        labels={"job_id": job_id_for("sub-1", 0, "train")},
        limits=Limits(**{"timeout_seconds": 30.0, "memory_bytes": 512 << 20, "memory_swap_bytes": 512 << 20, **limits}),  # type: ignore[arg-type]
    )


def test_payload_carries_every_limit(job_dir: Path) -> None:
    spec = _spec(job_dir, "pass", cpus=3.0, pids=77, gpu_count=2, gpu_type="H100", tmpfs_bytes=32 << 20)
    payload = build_broker_payload(spec, job_id="j1", task_id="t", image="img", uid=65534, gid=65534, gpu_type="H100")
    limits = payload["limits"]
    assert limits == {
        "cpus": 3.0, "memory": "512m", "memory_swap": "512m", "pids_limit": 77, "gpu_count": 2,
        "network": "none", "read_only": True, "user": "65534:65534",
        "tmpfs": [f"/tmp:rw,nosuid,nodev,size={32 << 20}"], "ulimits": ["core=0:0", "nofile=4096:4096"],
        "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "init": True, "privileged": False,
    }  # fmt: skip
    assert payload["labels"]["prism.job"] == payload["labels"]["job_id"] == "j1" and payload["timeout_seconds"] == 30
    assert payload["command"] == ["python3", "-c", "pass"]  # GPU jobs: Platform drains the mounts itself
    submission, artifacts = payload["mounts"]
    assert (submission["target"], submission["read_only"], artifacts["target"], artifacts["read_only"]) == (
        "/submission",
        True,
        "/artifacts",
        False,
    )
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(submission["archive_b64"])), mode="r:gz") as tar:
        assert tar.getnames() == ["model.py"]


def test_cpu_jobs_send_null_gpu_count_and_bad_counts_are_refused(job_dir: Path) -> None:
    assert build_broker_limits(_spec(job_dir, "pass"), uid=1, gid=1)["gpu_count"] is None
    spec = _spec(job_dir, "pass")
    object.__setattr__(spec.limits, "gpu_count", 9)  # past Limits' own check: the payload guards again
    with pytest.raises(GpuRequestRefused):
        build_broker_limits(spec, uid=1, gid=1)


def test_symlinks_never_travel_in_a_mount(job_dir: Path) -> None:
    (job_dir / "project" / "escape").symlink_to("/etc/passwd")
    payload = build_broker_payload(_spec(job_dir, "pass"), job_id="j", task_id="t", image="i", uid=1, gid=1)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(payload["mounts"][0]["archive_b64"])), mode="r:gz") as tar:
        assert tar.getnames() == ["model.py"]


def test_drained_mounts_are_split_from_stdout_last_block_wins() -> None:
    text = "job says hi\n@@BASE_BROKER_MOUNT_OUT[1]:BEGIN@@\nFAKE\n@@BASE_BROKER_MOUNT_OUT[1]:END@@\nmore\n"
    text += "@@BASE_BROKER_MOUNT_OUT[1]:BEGIN@@\nREAL\n@@BASE_BROKER_MOUNT_OUT[1]:END@@\n"
    stdout, drained = split_drained_mounts(text)
    assert stdout == "job says hi\nmore\n" and drained == {1: "REAL"}


@pytest.mark.sandbox
@needs_bwrap
def test_job_runs_through_the_broker_and_artifacts_come_back(broker: StandInBroker, job_dir: Path) -> None:
    sandbox = BrokerSandbox(Settings(broker_url=broker.url, challenge_slug=SLUG))
    code = (
        "import os\nprint(open('/submission/model.py').read().strip(), os.getuid())\n"
        "open('/artifacts/out.txt', 'w').write('42')\n"
    )
    result = sandbox.run(_spec(job_dir, code))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "VALUE = 42 65534\n"
    assert result.artifacts == {"out.txt": b"42"} and (job_dir / "artifacts" / "out.txt").read_bytes() == b"42"
    path, headers, payload = broker.requests[-1]
    assert path == "/v1/docker/run" and headers["Authorization"] == f"Bearer {TOKEN}"
    assert payload["job_id"] == job_id_for("sub-1", 0, "train")
    # Cleanup is repeatable: the second call finds nothing and still succeeds.
    assert [c["job_id"] for c in sandbox.list()["containers"]] == [payload["job_id"]]
    assert sandbox.cleanup(payload["job_id"]) == {"status": "ok"} == sandbox.cleanup(payload["job_id"])
    assert sandbox.list()["containers"] == []


@pytest.mark.sandbox
@needs_bwrap
def test_broker_reports_timeouts(broker: StandInBroker, job_dir: Path) -> None:
    sandbox = BrokerSandbox(Settings(broker_url=broker.url, challenge_slug=SLUG))
    result = sandbox.run(_spec(job_dir, "while True: pass", timeout_seconds=1.0))
    assert result.timed_out


def test_busy_and_auth_failures(broker: StandInBroker, job_dir: Path, token_file: Path) -> None:
    sandbox = BrokerSandbox(Settings(broker_url=broker.url, challenge_slug=SLUG))
    broker.busy = True
    with pytest.raises(BrokerBusy) as busy:
        sandbox.run(_spec(job_dir, "pass"))
    assert busy.value.retryable
    token_file.write_text("wrong-token")
    with pytest.raises(SandboxUnavailable, match="credentials"):
        BrokerSandbox(Settings(broker_url=broker.url, challenge_slug=SLUG)).run(_spec(job_dir, "pass"))
    with pytest.raises(SandboxInfraError):
        BrokerSandbox(Settings(broker_url="http://127.0.0.1:9", challenge_slug=SLUG)).run(_spec(job_dir, "pass"))


def test_hostile_archives_from_the_broker_are_refused() -> None:
    from prism.sandbox.archives import unpack_archive

    def archive(member: tarfile.TarInfo, data: bytes = b"") -> str:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
        return base64.b64encode(buffer.getvalue()).decode()

    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for bad in (archive(link), archive(tarfile.TarInfo("../escape"), b"x"), archive(tarfile.TarInfo("/abs"), b"x")):
        with pytest.raises(SandboxInfraError):
            unpack_archive(bad, max_bytes=1 << 20, max_files=10)
    with pytest.raises(SandboxInfraError):
        unpack_archive(archive(tarfile.TarInfo("big"), b"x" * 2048), max_bytes=1024, max_files=10)
    for garbage in ("not base64!", base64.b64encode(gzip.compress(b"not a tar" * 100)).decode()):
        with pytest.raises(SandboxInfraError):
            unpack_archive(garbage, max_bytes=1024, max_files=10)
