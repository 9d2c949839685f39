"""Start-up overhead of the bubblewrap backend against bare runs, measured in the same process.

    .venv/bin/python benchmarks/sandbox.py [--repeat N]

Needs root and bubblewrap (the sandbox's own requirements). Prints the median wall time of each
workload bare and sandboxed, and the ratio sandboxed / bare.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prism.config import Settings
from prism.sandbox.bubblewrap import BubblewrapSandbox
from prism.sandbox.spec import Limits, RunSpec

WORKLOADS = {"python -c pass": "pass", "import torch": "import torch"}


def bare(code: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={"PYTHONDONTWRITEBYTECODE": "1"}, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def sandboxed(sandbox: BubblewrapSandbox, code: str) -> float:
    with tempfile.TemporaryDirectory() as work:
        artifacts = Path(work) / "artifacts"
        artifacts.mkdir()
        spec = RunSpec(
            command=("python3", "-c", code),
            artifacts_dir=artifacts,
            limits=Limits(memory_bytes=2 << 30, memory_swap_bytes=2 << 30, timeout_seconds=120),
        )
        start = time.perf_counter()
        result = sandbox.run(spec)
        elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(f"sandboxed run failed: {result.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sandbox = BubblewrapSandbox(Settings())
    print(f"{'workload':<16} {'bare (s)':>9} {'bwrap (s)':>10} {'ratio':>6} {'overhead (s)':>13}")
    for label, code in WORKLOADS.items():
        bare(code), sandboxed(sandbox, code)  # warm the page cache for both
        bare_times = [bare(code) for _ in range(args.repeat)]
        box_times = [sandboxed(sandbox, code) for _ in range(args.repeat)]
        b, s = statistics.median(bare_times), statistics.median(box_times)
        print(f"{label:<16} {b:>9.3f} {s:>10.3f} {s / b:>6.2f} {s - b:>13.3f}")


if __name__ == "__main__":
    main()
