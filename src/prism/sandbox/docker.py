"""The Docker CLI backend: one `docker run --rm` per job, cleaned up by label after a timeout.

Limits map one to one onto Docker flags; the container runs as a non-root uid with every
capability dropped, no new privileges, an init reaping zombies, no network and a read-only root.
Known gaps against bubblewrap, on purpose kept visible: Docker has no size quota for a bind
mount (artifacts are capped when read back), and `--rm` discards the OOM flag, so `oom_killed` is
inferred from exit status 137 without a timeout.
"""

# ruff: noqa: S108 - every /tmp here is the sandbox's own private tmpfs, never the host's

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid

from prism.config import Settings
from prism.sandbox.artifacts import read_artifacts
from prism.sandbox.errors import SandboxInfraError, SandboxSpecRejected, SandboxUnavailable
from prism.sandbox.output import TailBuffer, build_result, feed_stdin, pump
from prism.sandbox.spec import ARTIFACTS_MOUNT, RunResult, RunSpec
from prism.sandbox.validate import check_spec

JOB_LABEL = "prism.job"
_DOCKER_ENV = (
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
)
_OOM_EXIT = 137
_DOCKER_FAILED = 125


def _mount_flag(source: str, target: str, *, read_only: bool) -> str:
    if "," in source or "," in target or "=" in source:
        raise SandboxSpecRejected(f"mount path {source!r} cannot be passed to docker --mount (',' or '=')")
    return f"type=bind,source={source},target={target}" + (",readonly" if read_only else "")


def build_docker_argv(spec: RunSpec, *, binary: str, image: str, job_id: str, uid: int, gid: int) -> list[str]:
    limits = spec.limits
    argv = [binary, "run", "--rm", "--name", job_id, "--network", "bridge" if limits.network else "none"]
    if spec.stdin or spec.stdin_reply:
        argv.append("--interactive")  # the report key arrives on stdin, never in env, argv or a file
    if limits.read_only:
        argv.append("--read-only")
    argv += [
        "--cpus", f"{limits.cpus:g}",
        "--memory", f"{limits.memory_bytes}b",
        "--memory-swap", f"{limits.memory_swap_bytes}b",
        "--pids-limit", str(limits.pids),
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--init",
        "--user", f"{uid}:{gid}",
        "--tmpfs", f"/tmp:rw,nosuid,nodev,size={limits.tmpfs_bytes}",
        "--shm-size", f"{limits.tmpfs_bytes}b",
        "--ulimit", "core=0:0",
        "--ulimit", "nofile=4096:4096",
        "--workdir", spec.workdir,
        "--label", f"{JOB_LABEL}={job_id}",
    ]  # fmt: skip
    if limits.gpu_count > 0:
        argv += ["--gpus", str(limits.gpu_count)]
        if limits.gpu_type:
            argv += ["--label", f"prism.gpu_type={limits.gpu_type}"]
    for key, value in sorted(spec.labels.items()):
        if key != JOB_LABEL:
            argv += ["--label", f"{key}={value}"]
    for mount in spec.mounts:
        argv += ["--mount", _mount_flag(str(mount.source), mount.target, read_only=True)]
    if spec.artifacts_dir is not None:
        argv += ["--mount", _mount_flag(str(spec.artifacts_dir), ARTIFACTS_MOUNT, read_only=False)]
    env = {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", **spec.env}
    for key, value in sorted(env.items()):
        argv += ["--env", f"{key}={value}"]
    return [*argv, image, *spec.command]


class DockerSandbox:
    name = "docker"
    accepts_stdin = True
    live_stdout = True  # `stdout_tap` sees each chunk as the job writes it

    def __init__(self, settings: Settings) -> None:
        if settings.sandbox_uid == 0:
            raise SandboxUnavailable("sandbox_uid must not be 0: containers never run as root")
        self.binary = settings.docker_binary
        self.image = settings.docker_image
        self.uid, self.gid = settings.sandbox_uid, settings.sandbox_gid
        self.secrets = settings.known_secrets()

    def _docker(self) -> str:
        found = shutil.which(self.binary)
        if found is None:
            raise SandboxUnavailable(f"the docker CLI ({self.binary}) is not installed")
        return found

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k in _DOCKER_ENV}

    def cleanup(self, job_id: str) -> list[str]:
        """Remove every container carrying this job's label; safe to repeat. Returns the ids removed."""
        return self.cleanup_labelled(JOB_LABEL, job_id)

    def cleanup_labelled(self, label: str, value: str) -> list[str]:
        """Remove every container with `label=value` (e.g. all of one submission's phases)."""
        docker = self._docker()
        listed = subprocess.run(
            [docker, "ps", "--all", "--quiet", "--filter", f"label={label}={value}"],
            env=self._env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if listed.returncode != 0:
            raise SandboxInfraError(f"docker ps failed: {listed.stderr.strip()[:500]}")
        ids = listed.stdout.split()
        if ids:
            removed = subprocess.run(
                [docker, "rm", "--force", *ids],
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if removed.returncode != 0:
                raise SandboxInfraError(f"docker rm failed: {removed.stderr.strip()[:500]}")
        return ids

    def run(self, spec: RunSpec) -> RunResult:
        check_spec(spec)
        docker = self._docker()
        job_id = spec.labels.get("job_id") or f"prism-{uuid.uuid4().hex[:24]}"
        if spec.artifacts_dir is not None:
            os.chown(spec.artifacts_dir, self.uid, self.gid)
            spec.artifacts_dir.chmod(0o700)
        argv = build_docker_argv(spec, binary=docker, image=self.image, job_id=job_id, uid=self.uid, gid=self.gid)
        limits = spec.limits
        out = TailBuffer(limits.output_bytes, slack=256, tap=spec.stdout_tap)
        err = TailBuffer(limits.output_bytes, slack=256)
        start = time.monotonic()
        proc = subprocess.Popen(
            argv,
            env=self._env(),
            stdin=subprocess.PIPE if spec.stdin or spec.stdin_reply else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            feed_stdin(proc, spec.stdin, spec.stdin_reply)  # `docker run -i` forwards it to the container's fd 0
            streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
            timed_out = pump(streams, deadline=start + limits.timeout_seconds, done=lambda: proc.poll() is not None)
            if timed_out:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    subprocess.run(
                        [docker, "kill", job_id], env=self._env(), capture_output=True, timeout=30, check=False
                    )
                proc.kill()
                self.cleanup(job_id)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        duration = time.monotonic() - start
        secrets = (*self.secrets, *spec.redact)
        if not timed_out and code == _DOCKER_FAILED:
            raise SandboxInfraError(f"docker could not start the container: {err.text(secrets)[-2000:]}")
        readback = None
        if spec.artifacts_dir is not None:
            readback = read_artifacts(spec.artifacts_dir, max_total_bytes=limits.artifact_read_bytes)
        return build_result(
            backend=self.name,
            exit_code=code,
            timed_out=timed_out,
            oom_killed=not timed_out and code == _OOM_EXIT,
            out=out,
            err=err,
            secrets=secrets,
            duration=duration,
            readback=readback,
        )
