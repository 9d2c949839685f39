"""The trusted recorder: `python -m prism.evaluation.harness`, one phase per sandbox run.

This process owns the data, its order, the loss and the record. It makes itself non-dumpable
(`prctl(PR_SET_DUMPABLE, 0)`) before it starts the model's process, so the model's process, though
it runs as the same user, cannot read or write this one's memory through `/proc/<pid>/mem`, read
its environment or descriptors, or ptrace it. It never imports the submission. The model's
process gets inputs and returns logits over pipes as raw tensor frames (`wire`), and only after
the loss of a batch is fixed by logits already received does it get that batch's targets.

The phase result is one line on this process's stdout (`phase.RESULT_PREFIX`); the model's
process writes to our stderr, never to our stdout. Artifacts go to /artifacts with their sha256
in that line, so the host can tell ours from anything else found there.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prism.evaluation import probes, replay
from prism.evaluation.phase import RESULT_PREFIX, PhaseReport, PhaseSpec
from prism.evaluation.probes import InfraFailure, MinerFailure, Rejected
from prism.evaluation.wire import Channel, Frame, WireError, WireTimeout

PR_SET_DUMPABLE = 4
_CHILD_ENV_KEYS = ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "LANG")


def make_undumpable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise InfraFailure(f"prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}")


@dataclass
class ModelProcess:
    """The model's process and our end of its pipes."""

    proc: subprocess.Popen[bytes]
    channel: Channel

    @classmethod
    def start(cls, spec: PhaseSpec, submission: Path) -> ModelProcess:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = {key: os.environ[key] for key in _CHILD_ENV_KEYS if key in os.environ}
        env.update(
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONHASHSEED="0",
            OMP_NUM_THREADS=str(spec.threads),
            MKL_NUM_THREADS=str(spec.threads),
            CUBLAS_WORKSPACE_CONFIG=":4096:8",
            HOME="/tmp",  # noqa: S108 - the sandbox's private tmpfs
        )
        proc = subprocess.Popen(
            [sys.executable, "-B", "-m", "prism.evaluation.model_proc", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),  # the model's prints never reach the report stream
            stderr=sys.stderr.fileno(),
            env=env,
            cwd="/",
        )
        os.close(to_child_r)
        os.close(from_child_w)
        channel = Channel(from_child_r, to_child_w)
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
        return cls(proc, channel)

    def reply(self, timeout: float) -> Frame:
        """The next frame; an error report, a hang or a crash of the model's process is its failure."""
        try:
            frame = self.channel.recv(timeout=max(timeout, 0.001))
        except WireTimeout as exc:
            self.kill()
            raise MinerFailure("timeout", f"the model did not answer within {timeout:.1f}s") from exc
        except WireError as exc:
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Alive but unreadable (e.g. a frame over the wire's limits): the model's fault.
                self.kill()
                raise MinerFailure("protocol", f"the model's process broke the wire protocol: {exc}") from exc
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

    def tensor(self, timeout: float) -> Any:
        frame = self.reply(timeout)
        try:
            return frame.tensor()
        except WireError as exc:
            raise Rejected("protocol", f"the model's process sent a malformed tensor: {exc}", {}) from exc

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


def _ready(model: ModelProcess, timeout: float) -> dict[str, Any]:
    ready = model.message(timeout, "ready")
    return {
        "parameter_count": probes.as_int(ready.get("parameter_count"), "parameter_count"),
        "buffer_count": probes.as_int(ready.get("buffer_count"), "buffer_count"),
        "graph_hash": probes.as_hex(ready.get("graph_hash"), "graph_hash"),
    }


def run_phase(spec: PhaseSpec, *, data: Path, submission: Path, artifacts: Path, job_dir: Path) -> PhaseReport:
    from prism.evaluation import phases

    started = time.monotonic()
    deadline = started + spec.wall_clock_seconds + spec.grace_seconds
    model = ModelProcess.start(spec, submission)
    # The replica (replay) starts alongside, through the same spawn path, so both build at once.
    replica = ModelProcess.start(spec, submission) if spec.phase != "inspect" else None
    try:
        try:
            identity = _ready(model, deadline - time.monotonic())
            if spec.phase == "inspect":
                figures = phases.inspect(spec, model, identity, artifacts, deadline)
            elif spec.phase == "train" and replica is not None:
                figures = phases.train(spec, model, identity, data, artifacts, started, replica)
            elif replica is not None:
                figures = phases.heldout(spec, model, identity, data, job_dir, artifacts, deadline, replica)
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
        model.close()
        if replica is not None:
            replica.close()
    figures["duration_seconds"] = round(time.monotonic() - started, 3)
    return PhaseReport(phase=spec.phase, status="ok", figures=figures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prism.evaluation.harness")
    parser.add_argument("--job", type=Path, default=Path("/job/job.json"))
    parser.add_argument("--data", type=Path, default=Path("/data"))
    parser.add_argument("--submission", type=Path, default=Path("/submission"))
    parser.add_argument("--artifacts", type=Path, default=Path("/artifacts"))
    args = parser.parse_args(argv)
    make_undumpable()
    import torch

    torch.set_num_threads(1)  # the model's process gets the cores; the recorder's work is small
    spec = PhaseSpec.from_json(json.loads(args.job.read_text(encoding="utf-8")))
    try:
        report = run_phase(
            spec, data=args.data, submission=args.submission, artifacts=args.artifacts, job_dir=args.job.parent
        )
    except InfraFailure as exc:
        report = PhaseReport(phase=spec.phase, status="failed", reason_code="infrastructure", detail=str(exc))
    except Exception as exc:
        # Not the miner's doing (those are Rejected/MinerFailure above): ours, so the host retries.
        detail = f"recorder error: {type(exc).__name__}: {exc}"[:2000]
        report = PhaseReport(phase=spec.phase, status="failed", reason_code="infrastructure", detail=detail)
    sys.stdout.write(RESULT_PREFIX + json.dumps(report.to_json(), sort_keys=True, allow_nan=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
