"""What live progress costs: a whole phase's progress lines against training steps, in the same run.

The recorder's side (`ProgressEmitter.record` every step, a MAC'd line every `ceil(steps/200)`
steps, written to a real pipe) and the host's side (`ProgressTap` verifying those lines, fed in
4 KiB chunks as a backend reads them) are timed for a phase of `--steps` steps. The baseline is
one training step of the example tiny transformer (forward, loss, backward, optimizer step) at
the benchmark's batch, measured here in the same process.

    .venv/bin/python benchmarks/progress.py [--steps 10000] [--threads 1] [--repeat 5]

Target: a whole phase's progress (recorder + host) costs less than one training step.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from prism.contract import ModelContext  # noqa: E402
from prism.evaluation.progress import ProgressEmitter, ProgressPoint, ProgressTap  # noqa: E402

KEY = bytes(range(32))
SEQ_LEN, BATCH = 128, 8


def training_step_seconds(threads: int, repeat: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    spec = importlib.util.spec_from_file_location("example", ROOT / "examples" / "tiny_transformer" / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ctx = ModelContext(seq_len=SEQ_LEN, batch_size=BATCH)
    model = module.build_model(ctx)
    optimizer = module.configure_optimizer(model, ctx)
    x = torch.randint(0, 256, (BATCH, SEQ_LEN))
    y = torch.randint(0, 256, (BATCH, SEQ_LEN))
    times = []
    for _ in range(repeat + 1):  # the first one warms up
        start = time.perf_counter()
        loss = F.cross_entropy(model(x).float().reshape(-1, 256), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def progress_seconds(steps: int) -> tuple[float, float, int]:
    """(recorder seconds, host seconds, points) for one phase of `steps` steps, through a pipe."""
    read_fd, write_fd = os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(read_fd, 4096):
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(write_fd, "w") as stream:
        emitter = ProgressEmitter(KEY, "train", stream)
        emitter.start(steps)
        start = time.perf_counter()
        for step in range(steps):
            emitter.record(step, math.log(256) * (1 - step / (2 * steps)), BATCH * SEQ_LEN)
        recorder = time.perf_counter() - start
    reader.join()
    os.close(read_fd)
    points: list[ProgressPoint] = []
    tap = ProgressTap(KEY, "train", points.append)
    start = time.perf_counter()
    for chunk in chunks:
        tap(chunk)
    host = time.perf_counter() - start
    return recorder, host, len(points)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    step = training_step_seconds(args.threads, args.repeat)
    runs = [progress_seconds(args.steps) for _ in range(args.repeat)]
    recorder = min(r for r, _, _ in runs)
    host = min(h for _, h, _ in runs)
    points = runs[0][2]
    print(f"phase of {args.steps} steps, batch {BATCH} x {SEQ_LEN}, {args.threads} thread(s), best of {args.repeat}")
    print(f"one training step (example model)  : {step * 1e3:10.3f} ms")
    print(f"progress, recorder side ({points} lines): {recorder * 1e3:10.3f} ms")
    print(f"progress, host side (verify, parse) : {host * 1e3:10.3f} ms")
    print(f"whole phase's progress / one step   : {(recorder + host) / step:10.3f}  (target < 1)")


if __name__ == "__main__":
    main()
