"""Start-up cost of the bubblewrap backend over the same interpreter run bare, in the same run.

    .venv/bin/python benchmarks/sandbox.py [--repeat 15]

Needs root and bubblewrap (the sandbox's own requirements). Bare and sandboxed runs alternate
(so drift in the machine's state falls on both), and both run the very interpreter the sandbox
runs (the runtime it discovers), with the same flags and an empty environment but for the
variables the sandbox also sets. Reported per workload: median CPU seconds of everything each
run costs (this process's share, the launcher, bubblewrap and the job, from a cpuacct cgroup of
our own: `cpu_meter.py`) and median wall time; the overhead is sandboxed minus bare.
Target: start-up overhead <= +50 ms CPU.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_meter import CpuMeter  # noqa: E402

from prism.config import Settings  # noqa: E402
from prism.sandbox.bubblewrap import BubblewrapSandbox  # noqa: E402
from prism.sandbox.spec import Limits, RunSpec  # noqa: E402

WORKLOADS = {"python -c pass": "pass", "import torch": "import torch"}
ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "LANG": "C.UTF-8"}


def bare(meter: CpuMeter, sandbox: BubblewrapSandbox, code: str) -> tuple[float, float]:
    runtime = sandbox.runtime  # the same interpreter and packages, at their host paths
    paths = [str(p) for p in (runtime.prism_src, *runtime.site_packages) if p is not None]
    env = {**ENV, "PYTHONPATH": ":".join(paths)}
    cpu, start = meter.seconds(), time.perf_counter()
    subprocess.run([str(runtime.python_executable), "-c", code], check=True, env=env, stderr=subprocess.DEVNULL)
    return meter.seconds() - cpu, time.perf_counter() - start


def sandboxed(meter: CpuMeter, sandbox: BubblewrapSandbox, code: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as work:
        artifacts = Path(work) / "artifacts"
        artifacts.mkdir()
        spec = RunSpec(
            command=("python3", "-c", code),
            artifacts_dir=artifacts,
            limits=Limits(memory_bytes=2 << 30, memory_swap_bytes=2 << 30, timeout_seconds=120),
        )
        cpu, start = meter.seconds(), time.perf_counter()
        result = sandbox.run(spec)
        elapsed, used = time.perf_counter() - start, meter.seconds() - cpu
    if result.exit_code != 0:
        raise SystemExit(f"sandboxed run failed: {result.stderr[-500:]}")
    return used, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sandbox = BubblewrapSandbox(Settings())
    python = str(sandbox.runtime.python_executable)
    meter = CpuMeter()
    try:
        print(f"interpreter: {python}; {args.repeat} interleaved pairs, medians")
        head = ("workload", "bare CPU", "bwrap CPU", "+CPU (ms)", "bare wall", "bwrap wall")
        print(f"{head[0]:<16} {head[1]:>9} {head[2]:>10} {head[3]:>10} {head[4]:>10} {head[5]:>11}")
        for label, code in WORKLOADS.items():
            bare(meter, sandbox, code), sandboxed(meter, sandbox, code)  # warm the page cache for both
            rows = [(bare(meter, sandbox, code), sandboxed(meter, sandbox, code)) for _ in range(args.repeat)]
            b_cpu = statistics.median(r[0][0] for r in rows)
            s_cpu = statistics.median(r[1][0] for r in rows)
            extra = statistics.median(r[1][0] - r[0][0] for r in rows)  # paired: drift cancels
            b_wall = statistics.median(r[0][1] for r in rows)
            s_wall = statistics.median(r[1][1] for r in rows)
            print(f"{label:<16} {b_cpu:>9.3f} {s_cpu:>10.3f} {extra * 1000:>10.0f} {b_wall:>10.3f} {s_wall:>11.3f}")
    finally:
        meter.close()


if __name__ == "__main__":
    main()
