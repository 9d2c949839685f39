"""A stand-in Platform broker: the real protocol over a real socket, jobs really run in bubblewrap.

Only the broker service is replaced (it is unreachable from here). It applies the rules of
Platform's broker (`base.master.docker_broker` and `base.schemas.docker_broker`, read, not copied):

- the request models are pydantic models that *ignore* unknown fields, as Platform's do: a field
  the broker does not know is dropped without a word. The stand-in records every such field in
  `ignored`, so a test can assert that PRISM sends nothing the real broker would drop;
- required `archive_b64` per mount, decoded with `validate=True`; tar members must be relative,
  without `..`, links or devices (400 "unsafe mount archive");
- `tmpfs` and `ulimits` are lists of strings; `gpu_count` a strict int >= 1 or null; `network`
  "none", "default" or a "base_" network (400 otherwise); read-only root, init, cap_drop ALL and
  no-new-privileges required (400); privileged refused (403);
- labels gain `base.challenge`, `base.job` and `base.task`; `list` and `cleanup` take `job_id` only;
- the swarm backend's per-slug read-only mounts (`_eval_readonly_mounts`, Platform's
  `DEFAULT_PRISM_EVAL_READONLY_MOUNTS` for prism): `readonly_mounts` (container path -> host
  directory) are added, read-only, to every job of the slug, beside the request's own mounts,
  and appear in `argv` as `--mount type=bind,source=...,destination=...,readonly`;
- the swarm backend's output rules: a CPU job runs on the broker node with bind mounts and its
  stdout is capped to the last `log_limit_bytes` (64,000): nothing is drained. A GPU job runs
  "on another node": its writable mounts are drained after the job as `tar -czf - | base64`
  (coreutils wraps at 76 columns) between the `@@BASE_BROKER_MOUNT_OUT[i]` sentinels, appended
  uncapped after the capped log.

Errors use Platform's FastAPI envelope: `{"detail": ...}`; schema errors are 422.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import secrets
import tarfile
import tempfile
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from prism.config import Settings
from prism.sandbox.bubblewrap import BubblewrapSandbox
from prism.sandbox.sizes import parse_size
from prism.sandbox.spec import Limits, Mount, RunSpec

TOKEN = "broker-token-for-tests"
SLUG = "prism"
LOG_LIMIT_BYTES = 64_000


class BrokerMount(BaseModel):
    target: str = Field(..., min_length=1)
    read_only: bool = True
    source_type: str = "directory"
    source_name: str = "."
    archive_b64: str = Field(..., min_length=1)


class BrokerLimits(BaseModel):
    cpus: float = Field(default=2.0, gt=0)
    memory: str = Field(default="4g", min_length=1)
    memory_swap: str | None = Field(default="4g", min_length=1)
    pids_limit: int = Field(default=512, ge=1)
    gpu_count: Annotated[int, Field(strict=True, ge=1)] | None = None
    network: str = "none"
    read_only: bool = True
    user: str | None = None
    tmpfs: tuple[str, ...] = ("/tmp:rw,noexec,nosuid,size=512m",)
    ulimits: tuple[str, ...] = ("nofile=1024:1024",)
    cap_drop: tuple[str, ...] = ("ALL",)
    security_opt: tuple[str, ...] = ("no-new-privileges",)
    init: bool = True
    privileged: bool = False


class BrokerRunRequest(BaseModel):
    job_id: str = Field(..., min_length=1, max_length=128)
    task_id: str | None = Field(default=None, max_length=256)
    image: str = Field(..., min_length=1, max_length=255)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[str] = Field(..., min_length=1)
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    limits: BrokerLimits = Field(default_factory=BrokerLimits)
    mounts: list[BrokerMount] = Field(default_factory=list)
    timeout_seconds: int = Field(default=900, ge=1, le=86_400)


class BrokerListRequest(BaseModel):
    job_id: str | None = Field(default=None, max_length=128)


class BrokerCleanupRequest(BaseModel):
    job_id: str = Field(..., min_length=1, max_length=128)


_MODELS: dict[str, type[BaseModel]] = {
    "/v1/docker/run": BrokerRunRequest,
    "/v1/docker/list": BrokerListRequest,
    "/v1/docker/cleanup": BrokerCleanupRequest,
}


def ignored_fields(model: type[BaseModel], payload: object, prefix: str = "") -> list[str]:
    """Every key of `payload` that `model` does not declare: what Platform's broker drops silently."""
    if not isinstance(payload, dict):
        return []
    found: list[str] = []
    for key, value in payload.items():
        field = model.model_fields.get(key)
        if field is None:
            found.append(f"{prefix}{key}")
            continue
        nested = {"limits": BrokerLimits, "mounts": BrokerMount}.get(key) if model is BrokerRunRequest else None
        if nested is BrokerLimits:
            found += ignored_fields(BrokerLimits, value, f"{prefix}limits.")
        elif nested is BrokerMount and isinstance(value, list):
            for index, item in enumerate(value):
                found += ignored_fields(BrokerMount, item, f"{prefix}mounts[{index}].")
    return found


class BrokerRefusal(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def check_hardening(limits: BrokerLimits) -> None:
    if limits.privileged:
        raise BrokerRefusal(403, "privileged broker jobs require the allowlisted escape hatch")
    if not limits.read_only:
        raise BrokerRefusal(400, "broker Docker jobs require a read-only root filesystem")
    if not limits.init:
        raise BrokerRefusal(400, "broker Docker jobs require Docker init for process cleanup")
    if "ALL" not in limits.cap_drop:
        raise BrokerRefusal(400, "broker Docker jobs must drop all Linux capabilities")
    if not any(opt.startswith("no-new-privileges") for opt in limits.security_opt):
        raise BrokerRefusal(400, "broker Docker jobs require no-new-privileges")
    if limits.network not in {"none", "default"} and not limits.network.startswith("base_"):
        raise BrokerRefusal(400, "Docker network must be 'none', 'default', or a base network")


def _materialize(mount: BrokerMount, dest: Path) -> None:
    try:
        raw = base64.b64decode(mount.archive_b64, validate=True)
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            for member in tar.getmembers():
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts or member.issym() or member.islnk() or member.isdev():
                    raise BrokerRefusal(400, "unsafe mount archive")
            tar.extractall(dest, filter="data")
    except (binascii.Error, tarfile.TarError, ValueError, OSError) as exc:
        raise BrokerRefusal(400, "invalid mount archive") from exc
    if mount.source_type != "directory":
        raise BrokerRefusal(400, f"unsupported mount source type: {mount.target}")


def docker_argv(
    request: BrokerRunRequest, slug: str, mounts: list[tuple[str, str, bool]], readonly: Mapping[str, Path] = {}
) -> list[str]:
    """The `docker run` Platform's executor would build (its flag order), for assertions."""
    limits = request.limits
    argv = ["docker", "run", "--rm", "--network", limits.network, "--cpus", str(limits.cpus)]
    argv += ["--memory", limits.memory, "--pids-limit", str(limits.pids_limit)]
    for cap in limits.cap_drop:
        argv += ["--cap-drop", cap]
    for opt in limits.security_opt:
        argv += ["--security-opt", opt]
    if limits.init:
        argv.append("--init")
    if limits.memory_swap:
        argv += ["--memory-swap", limits.memory_swap]
    if limits.read_only:
        argv.append("--read-only")
    if limits.gpu_count:
        argv += ["--gpus", str(limits.gpu_count)]
    if limits.user:
        argv += ["--user", limits.user]
    for tmpfs in limits.tmpfs:
        argv += ["--tmpfs", tmpfs]
    for ulimit in limits.ulimits:
        argv += ["--ulimit", ulimit]
    for source, target, read_only in mounts:
        argv += ["-v", f"{source}:{target}:{'ro' if read_only else 'rw'}"]
    for target, host in readonly.items():
        argv += ["--mount", f"type=bind,source={host},destination={target},readonly"]
    if request.workdir:
        argv += ["-w", request.workdir]
    labels = {**request.labels, "base.challenge": slug, "base.job": request.job_id}
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    return [*argv, request.image, *request.command]


def _drain(index: int, files: dict[str, bytes]) -> str:
    """What Platform's bootstrap prints for a writable mount: `tar -czf - -C target . | base64`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    wrapped = base64.encodebytes(buffer.getvalue()).decode("ascii")  # 76 columns, like coreutils
    return f"@@BASE_BROKER_MOUNT_OUT[{index}]:BEGIN@@\n{wrapped}@@BASE_BROKER_MOUNT_OUT[{index}]:END@@\n"


def _cap(text: str, limit: int) -> str:
    encoded = text.encode(errors="replace")
    return text if len(encoded) <= limit else encoded[-limit:].decode(errors="replace")


class _Handler(BaseHTTPRequestHandler):
    server: StandInBroker

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), payload))
        model = _MODELS.get(self.path)
        if model is None:
            return self._reply(404, {"detail": "Not Found"})
        try:
            request = model.model_validate(payload)
        except ValidationError as exc:
            return self._reply(422, {"detail": json.loads(exc.json())})
        self.server.ignored += ignored_fields(model, payload)
        slug = self.headers.get("X-Base-Challenge-Slug")
        if not slug:
            return self._reply(400, {"detail": "missing challenge slug"})
        expected = f"Bearer {TOKEN}" if slug == SLUG else None
        if expected is None:
            return self._reply(401, {"detail": "unknown challenge"})
        if not secrets.compare_digest(self.headers.get("Authorization", ""), expected):
            return self._reply(401, {"detail": "invalid broker token"})
        if isinstance(request, BrokerCleanupRequest):
            self.server.containers = [c for c in self.server.containers if c["job_id"] != request.job_id]
            return self._reply(200, {"status": "ok"})
        if isinstance(request, BrokerListRequest):
            rows = [c for c in self.server.containers if request.job_id in (None, c["job_id"])]
            return self._reply(200, {"containers": rows})
        assert isinstance(request, BrokerRunRequest)
        if self.server.busy:
            return self._reply(429, {"detail": "docker_quota_exceeded: no capacity"})
        try:
            return self._reply(200, self.server.run_job(slug, request))
        except BrokerRefusal as refusal:
            return self._reply(refusal.status, {"detail": refusal.detail})


class StandInBroker(ThreadingHTTPServer):
    def __init__(self, settings: Settings, *, readonly_mounts: Mapping[str, Path] = {}) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sandbox = BubblewrapSandbox(settings)
        self.readonly_mounts = dict(readonly_mounts)
        self.busy = False
        self.log_limit_bytes = LOG_LIMIT_BYTES
        self.containers: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.ignored: list[str] = []
        self.argv: list[list[str]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> StandInBroker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def run_job(self, slug: str, request: BrokerRunRequest) -> dict[str, Any]:
        limits = request.limits
        check_hardening(limits)
        gpu_job = bool(limits.gpu_count)
        with tempfile.TemporaryDirectory() as work:
            root = Path(work)
            root.chmod(0o755)
            mounts: list[Mount] = []
            writable: list[tuple[int, Path]] = []
            bound: list[tuple[str, str, bool]] = []
            for index, mount in enumerate(request.mounts):
                target = root / f"mount-{index}"
                target.mkdir(mode=0o755)
                _materialize(mount, target)
                bound.append((str(target), mount.target, mount.read_only))
                if mount.read_only:
                    mounts.append(Mount(target, mount.target))
                else:
                    target.chmod(0o1777)
                    writable.append((index, target))
            if len(writable) > 1:
                raise BrokerRefusal(400, "the stand-in runs one writable mount per job")
            mounts += [Mount(host, target) for target, host in self.readonly_mounts.items()]
            self.argv.append(docker_argv(request, slug, bound, self.readonly_mounts))
            name = f"{slug}-{request.job_id[:12]}"
            labels = {**request.labels, "base.challenge": slug, "base.job": request.job_id}
            if request.task_id:
                labels["base.task"] = request.task_id
            self.containers.append(
                {
                    "container_id": name,
                    "container_name": name,
                    "image": request.image,
                    "status": "exited",
                    "job_id": request.job_id,
                    "task_id": request.task_id,
                    "labels": {k: v for k, v in labels.items() if k.startswith("base.")},
                }
            )
            spec = RunSpec(
                command=tuple(request.command),
                mounts=tuple(mounts),
                artifacts_dir=writable[0][1] if writable else None,
                env=request.env,
                workdir=request.workdir or "/",
                limits=Limits(
                    cpus=limits.cpus,
                    memory_bytes=parse_size(limits.memory),
                    memory_swap_bytes=parse_size(limits.memory_swap or limits.memory),
                    pids=limits.pids_limit,
                    timeout_seconds=request.timeout_seconds,
                    output_bytes=4 * 1024**2,
                ),
            )
            result = self.sandbox.run(spec)
            stdout = _cap(result.stdout, self.log_limit_bytes)
            if gpu_job:
                stdout += "".join(_drain(index, dict(result.artifacts)) for index, _ in writable)
        return {
            "container_name": name,
            "stdout": stdout,
            "stderr": _cap(result.stderr, self.log_limit_bytes),
            "returncode": 124 if result.timed_out else (result.exit_code if result.exit_code is not None else 137),
            "timed_out": result.timed_out,
        }
