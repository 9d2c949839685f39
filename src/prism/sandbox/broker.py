"""The Platform Docker broker backend: the job travels as one HTTP request and comes back whole.

Platform's contract (`base.schemas.docker_broker`, pydantic models that ignore unknown fields, so
a field the broker does not know is silently dropped; we send none):

    POST /v1/docker/run      {job_id, task_id, image, command, workdir, env, labels,
                              limits: {cpus, memory, memory_swap, pids_limit, gpu_count, network,
                                       read_only, user, tmpfs: [str], ulimits: [str], cap_drop,
                                       security_opt, init, privileged},
                              mounts: [{target, read_only, source_type, source_name, archive_b64}],
                              timeout_seconds}
                          -> {container_name, stdout, stderr, returncode, timed_out}
    POST /v1/docker/cleanup  {job_id}            (repeatable: job ids are deterministic)
    POST /v1/docker/list     {job_id?}           -> {containers: [...]}

Artifacts come back through stdout between `@@BASE_BROKER_MOUNT_OUT[i]:BEGIN@@` and `...:END@@`
(i is the writable mount's index), as `tar -czf - | base64`: base64 wrapped at 76 columns.
Platform's swarm broker drains writable mounts itself only for GPU jobs (they run on another
node); a CPU job's writable mount is a bind mount deleted with the broker's workspace. So PRISM
wraps every CPU job in the same drain (`self_drain_command`): after the job it kills every process
left in the container, then prints the archive. A CPU job's stdout is capped by the broker
(`log_limit_bytes`, 64 kB tail by default), so an archive larger than the cap comes back cut; that
is detected and reported as an infrastructure error naming the cap, never read as a partial result.

The broker has no field for a GPU type: it schedules on `gpu_count` alone. A job that asks for a
type is sent only when the operator declares that the broker's GPU workers are of that type
(`PRISM_BROKER_GPU_TYPE`); the type also travels as the `prism.gpu_type` label for the record.

429 means the broker has no capacity: `BrokerBusy`, retry later. Authentication is a bearer token
read from a secret file plus the challenge slug header.

Platform's broker adds read-only mounts of its own to every job of the prism slug (its
`DEFAULT_PRISM_EVAL_READONLY_MOUNTS`): the locked train split at `/data/fineweb-edu/train`.
`train_mount` says where (`PRISM_BASE_EVAL_DATA_DIR`), so the runner sends no copy of it.
"""

# ruff: noqa: S108 - every /tmp here is the sandbox's own private tmpfs, never the host's

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx

from prism.config import Settings
from prism.runtime_config import MAX_GPU_COUNT
from prism.sandbox.archives import pack_directory, unpack_archive, write_files
from prism.sandbox.artifacts import read_artifacts
from prism.sandbox.errors import (
    BrokerBusy,
    GpuRequestRefused,
    SandboxInfraError,
    SandboxSpecRejected,
    SandboxUnavailable,
)
from prism.sandbox.jobs import job_id_for
from prism.sandbox.output import TailBuffer, build_result
from prism.sandbox.sizes import format_size
from prism.sandbox.spec import ARTIFACTS_MOUNT, RunResult, RunSpec
from prism.sandbox.validate import check_spec

MAX_UPLOAD_BYTES = 256 * 1024**2
# Platform carries a GPU job's mounts to the GPU node inside the job's environment (96 KiB chunks),
# and a process's argv + environment must fit the kernel's ARG_MAX (2 MiB with the default stack):
# past this, `docker service create` or the container's shell fails with E2BIG.
MAX_GPU_MOUNT_BYTES = 1536 * 1024
_OOM_EXIT = 137
_BEGIN = "@@BASE_BROKER_MOUNT_OUT[{index}]:BEGIN@@"
_END = "@@BASE_BROKER_MOUNT_OUT[{index}]:END@@"
_DRAIN = re.compile(
    r"@@BASE_BROKER_MOUNT_OUT\[(\d+)\]:BEGIN@@\n?(.*?)\n?@@BASE_BROKER_MOUNT_OUT\[\1\]:END@@\n?", re.DOTALL
)


def _shq(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def self_drain_command(command: tuple[str, ...], *, index: int, target: str = ARTIFACTS_MOUNT) -> tuple[str, ...]:
    """`command` wrapped so that, once it exits, the writable mount is printed like Platform's drain.

    `kill -9 -1` first ends every process the job left behind (everything this uid can signal but
    pid 1 and the shell), so nothing can print a forged block after ours: the last block wins.
    """
    script = "\n".join(
        (
            '"$@"',
            "__prism_rc=$?",
            "kill -9 -1 2>/dev/null",
            f"printf '%s\\n' {_shq(_BEGIN.format(index=index))}",
            f"tar -czf - -C {_shq(target)} . | base64",
            f"printf '%s\\n' {_shq(_END.format(index=index))}",
            "exit $__prism_rc",
        )
    )
    return ("sh", "-c", script, "sh", *command)


def _check_gpu(spec: RunSpec, declared_type: str | None) -> int:
    gpu = spec.limits.gpu_count
    if isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0 or gpu > MAX_GPU_COUNT:
        raise GpuRequestRefused(f"gpu_count must be an int from 0 to {MAX_GPU_COUNT}, got {gpu!r}")
    wanted = spec.limits.gpu_type
    if gpu >= 1 and wanted and wanted != declared_type:
        raise GpuRequestRefused(
            f"the job needs GPU type {wanted!r} but Platform's broker cannot choose a GPU type; "
            f"set PRISM_BROKER_GPU_TYPE to the type its GPU workers have (now {declared_type!r})"
        )
    return gpu


def build_broker_limits(spec: RunSpec, *, uid: int, gid: int, gpu_type: str | None = None) -> dict[str, Any]:
    """Platform's `BrokerLimits`, field for field. `gpu_type` is what the broker's GPU workers are."""
    limits = spec.limits
    gpu = _check_gpu(spec, gpu_type)
    return {
        "cpus": float(limits.cpus),
        "memory": format_size(limits.memory_bytes),
        "memory_swap": format_size(limits.memory_swap_bytes),
        "pids_limit": limits.pids,
        "gpu_count": gpu if gpu >= 1 else None,  # the broker wants a strict int >= 1, or null
        "network": "default" if limits.network else "none",
        "read_only": limits.read_only,
        "user": f"{uid}:{gid}",
        "tmpfs": [f"/tmp:rw,nosuid,nodev,size={limits.tmpfs_bytes}"],
        "ulimits": ["core=0:0", "nofile=4096:4096"],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "init": True,
        "privileged": False,
    }


def _mount(target: str, *, read_only: bool, archive: str) -> dict[str, Any]:
    return {
        "target": target,
        "read_only": read_only,
        "source_type": "directory",
        "source_name": ".",
        "archive_b64": archive,
    }


def build_broker_payload(
    spec: RunSpec, *, job_id: str, task_id: str, image: str, uid: int, gid: int, gpu_type: str | None = None
) -> dict[str, Any]:
    """Platform's `BrokerRunRequest` for `spec`; CPU jobs with artifacts get PRISM's own drain."""
    limits = build_broker_limits(spec, uid=uid, gid=gid, gpu_type=gpu_type)
    mounts: list[dict[str, Any]] = []
    budget = MAX_UPLOAD_BYTES
    for mount in spec.mounts:
        archive = pack_directory(mount.source, max_bytes=budget)
        budget -= len(archive)
        mounts.append(_mount(mount.target, read_only=True, archive=archive))
    if limits["gpu_count"] is not None:
        carried = sum(len(m["archive_b64"]) for m in mounts)
        if carried > MAX_GPU_MOUNT_BYTES:
            raise SandboxUnavailable(
                f"this GPU job's mounts are {carried:,} bytes of base64; Platform's broker carries a GPU job's "
                f"mounts in its environment, which holds at most ~{MAX_GPU_MOUNT_BYTES:,}: data this size must be "
                "staged on the GPU node (see docs/operators.md, the data)"
            )
    command = tuple(spec.command)
    if spec.artifacts_dir is not None:
        empty = pack_directory(spec.artifacts_dir, max_bytes=0)
        mounts.append(_mount(ARTIFACTS_MOUNT, read_only=False, archive=empty))
        if limits["gpu_count"] is None:
            command = self_drain_command(command, index=len(mounts) - 1)
    labels = {**spec.labels, "prism.job": job_id, "job_id": job_id}
    if limits["gpu_count"] is not None and spec.limits.gpu_type:
        labels["prism.gpu_type"] = spec.limits.gpu_type
    return {
        "job_id": job_id,
        "task_id": task_id,
        "image": image,
        "command": list(command),
        "workdir": spec.workdir,
        "env": {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", **spec.env},
        "labels": labels,
        "limits": limits,
        "mounts": mounts,
        "timeout_seconds": max(1, int(spec.limits.timeout_seconds)),
    }


def job_id_of(spec: RunSpec) -> str:
    """Deterministic where the spec says which submission, attempt and phase it is (cleanup hits
    exactly that job after a crash); a fresh id only for one-off jobs such as self-tests."""
    labels = spec.labels
    if labels.get("job_id"):
        return labels["job_id"]
    submission, phase, attempt = labels.get("prism.submission"), labels.get("prism.phase"), labels.get("prism.attempt")
    if submission and phase and attempt and attempt.isdigit():
        return job_id_for(submission, int(attempt), phase)
    return f"prism-{uuid.uuid4().hex[:24]}"


def split_drained_mounts(stdout: str) -> tuple[str, dict[int, str]]:
    """The job's own stdout, and mount index -> archive. The last block per index wins: the
    broker's drain is appended after the job, so a block the job printed itself comes earlier."""
    drained: dict[int, str] = {}
    for match in _DRAIN.finditer(stdout):
        drained[int(match.group(1))] = match.group(2).strip()
    return _DRAIN.sub("", stdout), drained


def drain_was_cut(stdout: str, index: int) -> bool:
    """An END marker with no BEGIN before it: the broker's log cap kept only the archive's tail."""
    end = stdout.rfind(_END.format(index=index))
    return end >= 0 and stdout.rfind(_BEGIN.format(index=index), 0, end) < 0


class BrokerSandbox:
    name = "broker"

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.broker_url:
            raise SandboxUnavailable("sandbox_backend is 'broker' but PRISM_BROKER_URL is not set")
        if settings.sandbox_uid == 0:
            raise SandboxUnavailable("sandbox_uid must not be 0: containers never run as root")
        self.settings = settings
        self.url = settings.broker_url.rstrip("/")
        self._transport = transport
        # Where the broker mounts the locked train split in every job (None: it does not).
        self.train_mount: str | None = settings.base_eval_data_dir or None

    def _client(self, timeout: float) -> httpx.Client:
        token = self.settings.broker_token
        if not token:
            raise SandboxUnavailable("the broker token is missing: set PRISM_BROKER_TOKEN_FILE")
        headers = {"Authorization": f"Bearer {token}", "X-Base-Challenge-Slug": self.settings.challenge_slug}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=self._transport)

    def _post(self, path: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        try:
            with self._client(timeout) as client:
                response = client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise SandboxInfraError(f"broker {path} failed: {exc}") from exc
        if response.status_code == 429:
            raise BrokerBusy(f"broker is busy (429); retry after {response.headers.get('Retry-After', 'a while')}")
        if response.status_code in (401, 403):
            raise SandboxUnavailable(f"broker refused our credentials ({response.status_code})")
        if 400 <= response.status_code < 500:
            raise SandboxSpecRejected(f"broker rejected the job ({response.status_code}): {response.text[:500]}")
        if response.status_code != 200:
            raise SandboxInfraError(f"broker {path} answered {response.status_code}: {response.text[:500]}")
        try:
            data = response.json()
        except ValueError as exc:
            raise SandboxInfraError(f"broker {path} answered something that is not JSON") from exc
        if not isinstance(data, dict):
            raise SandboxInfraError(f"broker {path} answered {type(data).__name__}, not an object")
        return data

    def cleanup(self, job_id: str) -> dict[str, Any]:
        """Remove every container of `job_id` (Platform: `{"status": "ok"}`; repeatable)."""
        return self._post("/v1/docker/cleanup", {"job_id": job_id}, timeout=60)

    def list(self, job_id: str | None = None) -> dict[str, Any]:
        """`{"containers": [...]}` of this challenge, or of one job: the broker filters by job id only."""
        return self._post("/v1/docker/list", {"job_id": job_id} if job_id else {}, timeout=60)

    def run(self, spec: RunSpec) -> RunResult:
        check_spec(spec)
        job_id = job_id_of(spec)
        payload = build_broker_payload(
            spec,
            job_id=job_id,
            task_id=self.settings.broker_task_id,
            image=self.settings.docker_image,
            uid=self.settings.sandbox_uid,
            gid=self.settings.sandbox_gid,
            gpu_type=self.settings.broker_gpu_type,
        )
        start = time.monotonic()
        data = self._post(
            "/v1/docker/run", payload, timeout=spec.limits.timeout_seconds + self.settings.broker_request_slack_seconds
        )
        duration = time.monotonic() - start
        stdout, stderr, code, timed_out = (
            data.get("stdout"),
            data.get("stderr"),
            data.get("returncode"),
            data.get("timed_out"),
        )
        if not isinstance(stdout, str) or not isinstance(stderr, str) or not isinstance(timed_out, bool):
            raise SandboxInfraError("broker response lacks stdout/stderr/timed_out of the right types")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise SandboxInfraError(f"broker returncode {code!r} is not an int")
        job_stdout, drained = split_drained_mounts(stdout)
        readback = None
        if spec.artifacts_dir is not None:
            index = len(spec.mounts)  # the writable mount comes after the read-only ones
            if index in drained:
                files = unpack_archive(
                    drained[index], max_bytes=spec.limits.artifacts_bytes, max_files=spec.limits.artifact_max_files
                )
                write_files(spec.artifacts_dir, files)
            elif drain_was_cut(stdout, index):
                raise SandboxInfraError(
                    f"job {job_id}: the artifacts came back cut by the broker's log cap (its log_limit_bytes); "
                    "raise that cap or run the job with a GPU, whose mounts the broker drains uncapped"
                )
            elif not timed_out:
                raise SandboxInfraError(f"job {job_id}: the broker returned no artifacts for /artifacts")
            readback = read_artifacts(spec.artifacts_dir, max_total_bytes=spec.limits.artifact_read_bytes)
        secrets = (*self.settings.known_secrets(), *spec.redact)
        out, err = TailBuffer(spec.limits.output_bytes, slack=256), TailBuffer(spec.limits.output_bytes, slack=256)
        out.feed(job_stdout.encode())
        err.feed(stderr.encode())
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
