"""The Docker backend's command line and cleanup, driven through a fake `docker` that records argv.

There is no Docker engine here; the fake stands in for the unreachable daemon only. The code
under test (argv building, output capture, timeout handling, cleanup by label) is the real one.
"""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from prism.config import Settings
from prism.sandbox.docker import DockerSandbox, build_docker_argv
from prism.sandbox.errors import SandboxInfraError, SandboxSpecRejected
from prism.sandbox.spec import Limits, Mount, RunSpec

FAKE = """#!/bin/sh
printf '%s\\n' "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")" >> "{log}"
case "$1" in
  run) {run} ;;
  ps) echo cafe01; echo cafe02 ;;
  *) exit 0 ;;
esac
"""


def _fake_docker(tmp_path: Path, run: str) -> tuple[Path, Path]:
    log = tmp_path / "docker.log"
    script = tmp_path / "docker"
    script.write_text(FAKE.format(log=log, run=run))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _spec(tmp_path: Path, **limits: object) -> RunSpec:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    project.chmod(0o755)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir(exist_ok=True)
    return RunSpec(
        command=("python3", "-m", "prism.evaluation.harness"),
        mounts=(Mount(project, "/submission"),),
        artifacts_dir=artifacts,
        env={"PRISM_PHASE": "train"},
        labels={"job_id": "prism-train-abc", "prism.submission": "s1"},
        limits=Limits(**limits),  # type: ignore[arg-type]
    )


def _flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_every_limit_maps_to_a_docker_flag(tmp_path: Path) -> None:
    spec = _spec(tmp_path, cpus=1.5, memory_bytes=2 << 30, memory_swap_bytes=3 << 30, pids=99, tmpfs_bytes=64 << 20)
    argv = build_docker_argv(spec, binary="docker", image="img:1", job_id="prism-train-abc", uid=65534, gid=65534)
    assert argv[:3] == ["docker", "run", "--rm"]
    assert _flag_values(argv, "--network") == ["none"]
    assert "--read-only" in argv and "--init" in argv
    assert _flag_values(argv, "--cpus") == ["1.5"]
    assert _flag_values(argv, "--memory") == [f"{2 << 30}b"]
    assert _flag_values(argv, "--memory-swap") == [f"{3 << 30}b"]
    assert _flag_values(argv, "--pids-limit") == ["99"]
    assert _flag_values(argv, "--cap-drop") == ["ALL"]
    assert _flag_values(argv, "--security-opt") == ["no-new-privileges"]
    assert _flag_values(argv, "--user") == ["65534:65534"]
    assert _flag_values(argv, "--tmpfs") == [f"/tmp:rw,nosuid,nodev,size={64 << 20}"]
    assert "prism.job=prism-train-abc" in _flag_values(argv, "--label")
    assert "prism.submission=s1" in _flag_values(argv, "--label")
    mounts = _flag_values(argv, "--mount")
    assert f"type=bind,source={tmp_path / 'project'},target=/submission,readonly" in mounts
    assert f"type=bind,source={tmp_path / 'artifacts'},target=/artifacts" in mounts
    assert "PRISM_PHASE=train" in _flag_values(argv, "--env")
    assert "--gpus" not in argv  # no GPU devices unless asked
    assert argv[-4:] == ["img:1", "python3", "-m", "prism.evaluation.harness"]


def test_gpus_network_and_writable_root_only_when_asked(tmp_path: Path) -> None:
    spec = _spec(tmp_path, gpu_count=2, gpu_type="H100", network=True, read_only=False)
    argv = build_docker_argv(spec, binary="docker", image="img", job_id="j", uid=1000, gid=1000)
    assert _flag_values(argv, "--gpus") == ["2"]
    assert "prism.gpu_type=H100" in _flag_values(argv, "--label")
    assert _flag_values(argv, "--network") == ["bridge"] and "--read-only" not in argv


def test_refusals(tmp_path: Path) -> None:
    bad = tmp_path / "a,b"
    bad.mkdir(mode=0o755)
    spec = RunSpec(command=("true",), mounts=(Mount(bad, "/submission"),))
    with pytest.raises(SandboxSpecRejected):
        build_docker_argv(spec, binary="docker", image="i", job_id="j", uid=1, gid=1)
    for limits in ({"gpu_count": True}, {"gpu_count": -1}, {"pids": 0}, {"memory_swap_bytes": 1 << 20}, {"cpus": 0}):
        with pytest.raises(SandboxSpecRejected):
            Limits(**limits)
    with pytest.raises(SandboxSpecRejected):
        DockerSandbox(Settings(docker_binary="docker")).run(
            RunSpec(command=("true",), mounts=(Mount(tmp_path, "/usr/lib"),))
        )


def test_run_returns_output_and_exit_code(tmp_path: Path) -> None:
    script, log = _fake_docker(tmp_path, run="echo hello from container; echo warn >&2; exit 3")
    sandbox = DockerSandbox(Settings(docker_binary=str(script), docker_image="img:2"))
    result = sandbox.run(_spec(tmp_path))
    assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (
        3,
        "hello from container\n",
        "warn\n",
        False,
    )
    calls = _calls(log)
    assert len(calls) == 1 and calls[0][0] == "run" and "img:2" in calls[0]


def test_stdout_reaches_the_tap_while_the_container_still_runs(tmp_path: Path) -> None:
    # The fake `docker run` goes on only once the host's tap has seen its first line.
    gate = tmp_path / "gate"
    run = (
        f"echo first; i=0; while [ ! -e {gate} ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done; "
        f"[ -e {gate} ] && echo second"
    )
    script, _ = _fake_docker(tmp_path, run=run)
    seen = bytearray()

    def tap(chunk: bytes) -> None:
        seen.extend(chunk)
        if b"first\n" in seen:
            gate.touch()

    result = DockerSandbox(Settings(docker_binary=str(script))).run(replace(_spec(tmp_path), stdout_tap=tap))
    assert result.exit_code == 0 and seen.decode() == result.stdout == "first\nsecond\n"


def test_timeout_kills_and_cleans_up_by_label(tmp_path: Path) -> None:
    script, log = _fake_docker(tmp_path, run="exec sleep 30")
    sandbox = DockerSandbox(Settings(docker_binary=str(script)))
    result = sandbox.run(_spec(tmp_path, timeout_seconds=0.5))
    assert result.timed_out and result.exit_code is None and result.duration_seconds < 10
    verbs = [call[0] for call in _calls(log)]
    assert verbs == ["run", "kill", "ps", "rm"]
    calls = _calls(log)
    assert calls[1] == ["kill", "prism-train-abc"]
    assert calls[2][-1] == "label=prism.job=prism-train-abc"
    assert calls[3] == ["rm", "--force", "cafe01", "cafe02"]


def test_daemon_failure_is_an_infra_error_and_oom_is_reported(tmp_path: Path) -> None:
    script, _ = _fake_docker(tmp_path, run="echo 'Cannot connect to the Docker daemon' >&2; exit 125")
    with pytest.raises(SandboxInfraError, match="Cannot connect"):
        DockerSandbox(Settings(docker_binary=str(script))).run(_spec(tmp_path))
    script, _ = _fake_docker(tmp_path, run="exit 137")
    (tmp_path / "artifacts").rmdir()
    assert DockerSandbox(Settings(docker_binary=str(script))).run(_spec(tmp_path)).oom_killed


def test_stdin_only_when_the_job_has_some(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    argv = build_docker_argv(spec, binary="docker", image="img", job_id="j", uid=1000, gid=1000)
    assert "--interactive" not in argv
    keyed = replace(spec, stdin=b"00ff\n")
    argv = build_docker_argv(keyed, binary="docker", image="img", job_id="j", uid=1000, gid=1000)
    assert "--interactive" in argv and not any("00ff" in a for a in argv)  # the key never in argv
