"""The trusted recorder: `python -m prism.evaluation.harness`, one or more phases per sandbox run.

This process owns the data, its order, the loss and the record. It makes itself non-dumpable
(`prctl(PR_SET_DUMPABLE, 0)`) before it starts the model's process, so the model's process, though
it runs as the same user, cannot read or write this one's memory through `/proc/<pid>/mem`, read
its environment or descriptors, or ptrace it. It never imports the submission. The model's
process gets inputs and returns logits over pipes as raw tensor frames (`wire`), and only after
the loss of a batch is fixed by logits already received does it get that batch's targets.

Each phase's result is one line on this process's stdout (`phase.RESULT_PREFIX`), signed with the
per-run key the host wrote to our stdin (read before any model process runs a line of the
submission; the model processes, forked first with torch imported (`prefork`), drop their stdin
before we read it, and never hold the stream the host's answer at a gate comes on). Where the
host asks for it (`PhaseSpec.then`), the phases of a whole evaluation run one after another in
this one process, each with fresh model processes: one sandbox start and one import of torch.
The model's process runs inside its jail (`walls.py`, `jail.py`) and writes to our stderr, never
to our stdout. Artifacts go to /artifacts with their sha256 in the report line, so the host can
tell ours from anything else found there.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prism.evaluation import prefork, probes, replay, walls
from prism.evaluation.fairtime import FairClock
from prism.evaluation.phase import (
    GO_LINE,
    KEY_BYTES,
    REPORT_KEY_FILE,
    WEIGHTS_FILE,
    PhaseReport,
    PhaseSpec,
    next_spec_file,
    report_line,
)
from prism.evaluation.probes import InfraFailure, MinerFailure, Rejected
from prism.evaluation.progress import ProgressEmitter
from prism.evaluation.wire import Channel, Frame, WireError, WireTimeout, pipe

PR_SET_DUMPABLE = 4
_CHILD_ENV_KEYS = (
    "PATH",
    "PYTHONPATH",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "LANG",
    "OMP_WAIT_POLICY",
)


def make_undumpable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise InfraFailure(f"prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}")


@dataclass
class ModelProcess:
    """The model's process and our end of its pipes."""

    proc: walls.ChildProcess
    channel: Channel
    scratch: Path
    walls: dict[str, Any]
    clock: FairClock
    outer_wall_seconds: float

    @classmethod
    def start(cls, spec: PhaseSpec, submission: Path, *, forbidden: tuple[Path, ...] = ()) -> ModelProcess:
        """Start a model's process inside its jail (`walls.spawn_jailed`): the one spawn path.

        Every model process of a phase, the main one and any replica, is started here, so each
        gets every wall. `forbidden` names paths (data, job, artifacts) that no read root of the
        jail may contain; a layout that would expose one fails closed as our fault.
        """
        env = {key: os.environ[key] for key in _CHILD_ENV_KEYS if key in os.environ}
        src = str(Path(__file__).resolve().parents[2])
        env.update(
            PYTHONPATH=":".join(p for p in (src, env.get("PYTHONPATH", "")) if p),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONHASHSEED="0",
            OMP_NUM_THREADS=str(spec.threads),
            MKL_NUM_THREADS=str(spec.threads),
            CUBLAS_WORKSPACE_CONFIG=":4096:8",
        )
        spare = prefork.take()
        if spare is not None:  # forked before anything secret was read: torch is already imported
            jailed = walls.start_forked(
                spare,
                submission=submission.resolve(),
                env=env,
                require=spec.require_walls,
                device=spec.device,
                forbidden=forbidden,
            )
            channel = spare.channel
        else:
            jailed, channel = _spawn(env, spec, submission, forbidden)
        proc = jailed.proc
        from prism.contract import ModelContext

        ctx = ModelContext(
            seq_len=spec.seq_len,
            batch_size=spec.batch_size,
            parameter_cap=spec.parameter_cap,
            seed=spec.seed,
            device=spec.device,
            token_budget=spec.token_budget,
            wall_clock_seconds=spec.wall_clock_seconds,
        )
        init = {
            "seed": spec.seed,
            "threads": spec.threads,
            "device": spec.device,
            "entrypoint": spec.entrypoint,
            "submission_root": str(submission.resolve()),
            "ctx": {field: getattr(ctx, field) for field in ctx.__dataclass_fields__},
            "memory_limit_bytes": replay.memory_limit_bytes(spec),
        }
        channel.send_json(init)
        clock = FairClock(model_pid=proc.pid, cores=max(spec.threads, 1))
        return cls(proc, channel, jailed.scratch, dict(jailed.walls), clock, spec.outer_wall_seconds)

    def reply(self, timeout: float) -> Frame:
        """The next frame within `timeout` seconds of the model's own (fair) time.

        An error report, a hang or a crash of the model's process is its failure. Time it spent
        waiting for a CPU is not charged (`fairtime`); past the outer wall-clock bound with budget
        left, the host was too slow to judge the model, which is our failure (`host_starved`).
        """
        # A frame already waiting was no wait at all: nothing to charge, no clock to read (each
        # reading is three /proc files, and a step's state arrives as one frame per tensor).
        waiting, _, _ = select.select([self.channel.read_fd], [], [], 0)
        if not waiting:
            self._wait_charged(timeout)
        outer_left = self.clock.origin + self.outer_wall_seconds - time.monotonic()
        try:
            # The frame has begun: the rest follows, however slow the host (bounded by the outer wall).
            frame = self.channel.recv(timeout=max(outer_left, 1.0))
        except WireTimeout as exc:
            self.kill()
            raise MinerFailure("timeout", "the model's process stopped in the middle of a frame") from exc
        except WireError as exc:
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Alive but unreadable (e.g. a frame over the wire's limits): the model's fault.
                self.kill()
                raise MinerFailure("protocol", f"the model's process broke the wire protocol: {exc}") from exc
            if code == -signal.SIGSYS:
                raise MinerFailure(
                    "forbidden_syscall",
                    "the jail's seccomp filter killed the model's process (SIGSYS) for a forbidden system call: "
                    "a new process, a signal to another process, a socket, ptrace, pidfd, namespaces or the like",
                ) from exc
            raise MinerFailure("crashed", f"the model's process exited with code {code}") from exc
        if frame.kind == 1:
            message = frame.json()
            if message.get("op") == "error":
                kind = str(message.get("kind", "miner_exception"))
                detail = str(message.get("detail", ""))[:2000]
                if kind == "guard_violation":
                    raise Rejected("runtime_guard", f"the runtime guard stopped the submission: {detail}", {})
                raise MinerFailure(kind, detail)
        return frame

    def _wait_charged(self, timeout: float) -> None:
        """Wait until a frame begins, charging the model only for the time it had a CPU."""
        begin = self.clock.sample()
        while True:
            now = self.clock.sample()
            charged = self.clock.charged_between(begin, now)
            outer_left = self.clock.origin + self.outer_wall_seconds - now.wall
            if charged >= timeout:
                self.kill()
                waited = now.waited - begin.waited
                raise MinerFailure(
                    "timeout",
                    f"the model did not answer within {timeout:.1f}s of its own time "
                    f"({now.wall - begin.wall:.1f}s wall, {waited:.1f}s of it waiting for a CPU)",
                )
            if outer_left <= 0:
                self.kill()
                raise InfraFailure(
                    f"host_starved: {now.wall - self.clock.origin:.0f}s wall clock passed with only "
                    f"{self.clock.charged_between(self.clock.start or begin, now):.0f}s charged to the model; "
                    "the host was too busy to judge it"
                )
            ready, _, _ = select.select([self.channel.read_fd], [], [], max(min(timeout - charged, outer_left), 0.001))
            if ready:
                return

    def tensor(self, timeout: float) -> Any:
        frame = self.reply(timeout)
        try:
            return frame.tensor()
        except WireError as exc:
            raise Rejected("protocol", f"the model's process sent a malformed tensor: {exc}", {}) from exc

    def tensors(self, timeout: float, count: int) -> list[Any]:
        """`count` tensors in one frame (a model's state)."""
        frame = self.reply(timeout)
        try:
            found = frame.tensors()
        except WireError as exc:
            raise Rejected("protocol", f"the model's process sent a malformed state: {exc}", {}) from exc
        if len(found) != count:
            raise Rejected("protocol", f"the model's process named {count} state tensors and sent {len(found)}", {})
        return found

    def message(self, timeout: float, op: str) -> dict[str, Any]:
        frame = self.reply(timeout)
        try:
            message = frame.json()
        except WireError as exc:
            raise Rejected("protocol", f"expected {op!r}, got a malformed frame: {exc}", {}) from exc
        if message.get("op") != op:
            raise Rejected("protocol", f"expected {op!r}, got {str(message.get('op'))[:64]!r}", {})
        return message

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self, timeout: float = 10.0) -> None:
        try:
            self.channel.send_json({"op": "shutdown"})
            self.proc.wait(timeout=timeout)
        except (WireError, subprocess.TimeoutExpired):
            pass
        self.kill()
        self.channel.close()
        self.clock.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _spawn(
    env: dict[str, str], spec: PhaseSpec, submission: Path, forbidden: tuple[Path, ...]
) -> tuple[walls.Jailed, Channel]:
    """A model's process in a fresh interpreter, started through the jail's trampoline."""
    to_child_r, to_child_w = pipe()
    from_child_r, from_child_w = pipe()
    try:
        jailed = walls.spawn_jailed(
            [sys.executable, "-B", "-m", "prism.evaluation.model_proc", str(to_child_r), str(from_child_w)],
            submission=submission.resolve(),
            env=env,
            pass_fds=(to_child_r, from_child_w),
            require=spec.require_walls,
            device=spec.device,
            forbidden=forbidden,
        )
    except BaseException:
        for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
            os.close(fd)
        raise
    os.close(to_child_r)
    os.close(from_child_w)
    return jailed, Channel(from_child_r, to_child_w)


def _ready(model: ModelProcess, timeout: float) -> dict[str, Any]:
    ready = model.message(timeout, "ready")
    return {
        "parameter_count": probes.as_int(ready.get("parameter_count"), "parameter_count"),
        "buffer_count": probes.as_int(ready.get("buffer_count"), "buffer_count"),
        "graph_hash": probes.as_hex(ready.get("graph_hash"), "graph_hash"),
    }


def run_phase(
    spec: PhaseSpec,
    *,
    data: Path,
    submission: Path,
    artifacts: Path,
    job_dir: Path,
    weights: Path | None = None,
    progress: ProgressEmitter | None = None,
) -> PhaseReport:
    """One phase, its model's processes started and ended here. `weights`: the held-out phase's
    trained weights (default `/job/weights.safetensors`; this recorder's own after its train phase)."""
    from prism.evaluation import phases

    data = phases.data_dir_for(spec, data=data, job_dir=job_dir)  # and so among the forbidden paths below
    started = time.monotonic()
    deadline = started + spec.wall_clock_seconds + spec.grace_seconds
    forbidden = (data, artifacts, job_dir)
    model = ModelProcess.start(spec, submission, forbidden=forbidden)
    # The replica (replay) starts alongside, through the same jailed spawn path, so both build at once.
    replica = ModelProcess.start(spec, submission, forbidden=forbidden) if spec.phase != "inspect" else None
    cpu: dict[str, float] = {}
    try:
        try:
            identity = _ready(model, deadline - model.clock.now())
            cpu.update(recorder_at_ready=_own_cpu_seconds(), model_at_ready=replay.cpu_seconds(model.proc.pid))
            if spec.phase == "inspect":
                figures = phases.inspect(spec, model, identity, artifacts, deadline)
            elif spec.phase == "train" and replica is not None:
                figures = phases.train(spec, model, identity, data, artifacts, started, replica, progress=progress)
            elif replica is not None:
                weights = weights or job_dir / WEIGHTS_FILE
                figures = phases.heldout(spec, model, identity, data, weights, artifacts, deadline, replica)
        except WireError as exc:
            # Our write failed because the model's process went away: its last words say why.
            model.reply(5.0)
            raise MinerFailure("crashed", "the model's process closed its channel") from exc
    except Rejected as exc:
        return PhaseReport(
            phase=spec.phase,
            status="rejected",
            reason_code=exc.reason_code,
            detail=exc.detail,
            evidence=(exc.evidence(),),
            figures=exc.figures,
        )
    except MinerFailure as exc:
        return PhaseReport(phase=spec.phase, status="failed", reason_code=exc.reason_code, detail=exc.detail)
    finally:
        cpu["model"] = replay.cpu_seconds(model.proc.pid)
        if replica is not None:
            cpu["replica"] = replay.cpu_seconds(replica.proc.pid)
        model.close()
        if replica is not None:
            replica.close()
    figures["duration_seconds"] = round(time.monotonic() - started, 3)
    # Where a phase's CPU went (start-up against work), for benchmarks/evaluate.py; never scored.
    figures["cpu_seconds"] = {name: round(value, 3) for name, value in {**cpu, "recorder": _own_cpu_seconds()}.items()}
    figures["walls"] = model.walls
    return PhaseReport(phase=spec.phase, status="ok", figures=figures)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def read_key(fd: int = 0) -> bytes:
    """The per-phase report key from the host (hex, one line on stdin); stdin is then /dev/null.

    Read before anything else runs but the fork of the model processes (`prefork`), which put
    `/dev/null` on their own stdin first: the key lives only in this non-dumpable process's
    memory. No key (a run not started by the host) leaves the key empty: every report is then
    unverifiable, which the host treats as a forgery.
    """
    data = b""
    with contextlib.suppress(OSError):
        while len(data) < 4 * KEY_BYTES:
            chunk = os.read(fd, 4 * KEY_BYTES - len(data))
            if not chunk or b"\n" in chunk:
                data += chunk
                break
            data += chunk
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, fd)
    os.close(null)
    try:
        return bytes.fromhex(data.decode("ascii", errors="replace").strip())
    except ValueError:
        return b""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="prism.evaluation.harness")
    parser.add_argument("--job", type=Path, default=Path("/job/job.json"))
    parser.add_argument("--data", type=Path, default=Path("/data"))
    parser.add_argument("--submission", type=Path, default=Path("/submission"))
    parser.add_argument("--artifacts", type=Path, default=Path("/artifacts"))
    # Model processes to fork up front: two a phase (the model and its replica), one for inspect.
    parser.add_argument("--pool", type=int, default=prefork.POOL_SIZE)
    return parser.parse_args(argv)


def await_go(fd: int | None) -> bool:
    """The host's answer at a gate: one line on our stdin, `GO_LINE` to go on. EOF stops."""
    if fd is None:
        return False
    line = b""
    with contextlib.suppress(OSError):
        while not line.endswith(b"\n") and len(line) < 64:
            chunk = os.read(fd, 1)
            if not chunk:
                break
            line += chunk
    return line == GO_LINE


def _reported(spec: PhaseSpec, key: bytes, args: argparse.Namespace, weights: Path | None) -> PhaseReport:
    """Run one phase and write its MAC'd report line; our own faults are reported as ours."""
    try:
        report = run_phase(
            spec,
            data=args.data,
            submission=args.submission,
            artifacts=args.artifacts,
            job_dir=args.job.parent,
            weights=weights,
            # Live points on the report stream, MAC'd apart from the report (`progress.py`).
            progress=ProgressEmitter(key, spec.phase, sys.stdout),
        )
    except InfraFailure as exc:
        report = PhaseReport(phase=spec.phase, status="failed", reason_code="infrastructure", detail=str(exc))
    except Exception as exc:  # a bug of ours, told to the host as ours (authenticated), so it is retried
        detail = f"recorder error: {type(exc).__name__}: {exc}"[:2000]
        report = PhaseReport(phase=spec.phase, status="failed", reason_code="infrastructure", detail=detail)
    body = json.dumps(report.to_json(), sort_keys=True, allow_nan=False)
    sys.stdout.write(report_line(key, spec.phase, body) + "\n")
    sys.stdout.flush()
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # Before anything secret is read: the model processes of every phase, forked with torch imported.
    prefork.fork_pool(args.pool)
    # The host's answer at a gate comes on the same stream after the key: kept on a descriptor of
    # our own (not inherited), while fd 0 becomes /dev/null.
    gate: int | None = None
    with contextlib.suppress(OSError):
        gate = os.dup(0)
    key = read_key()
    key_file = args.job.parent / REPORT_KEY_FILE
    if not key and key_file.is_file():  # the broker's way: no stdin, /job is beyond the model's walls
        with contextlib.suppress(ValueError, OSError):
            key = bytes.fromhex(key_file.read_text(encoding="ascii").strip())
    make_undumpable()
    import torch

    torch.set_num_threads(1)  # the model's process gets the cores; the recorder's work is small
    first = PhaseSpec.from_json(json.loads(args.job.read_text(encoding="utf-8")))
    try:
        report = _reported(first, key, args, None)
        for index, phase in enumerate(first.then):
            if report.status != "ok" or (index == 0 and first.gated and not await_go(gate)):
                break
            spec = PhaseSpec.from_json(json.loads((args.job.parent / next_spec_file(phase)).read_text("utf-8")))
            weights = None
            if spec.phase == "heldout" and not spec.weights_sha256 and report.phase == "train":
                # The weights this recorder just trained and wrote itself, checked again on reading.
                spec = replace(spec, weights_sha256=str(report.figures.get("weights_sha256", "")))
                weights = args.artifacts / WEIGHTS_FILE
            report = _reported(spec, key, args, weights)
    finally:
        prefork.discard()
        if gate is not None:
            with contextlib.suppress(OSError):
                os.close(gate)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The report is written and flushed, the artifacts closed: skip the interpreter's teardown of
    # torch's thousands of modules (half a second of CPU per phase, to free memory the exit frees).
    os._exit(status)
