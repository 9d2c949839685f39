"""CPU of one whole evaluation through the real pipeline against a bare script, in the same run.

The pipeline side is `evaluate_project` on `examples/tiny_transformer`, exactly as `prism evaluate`
runs it: static review, then inspect, train and heldout in one bubblewrap sandbox start
(`evaluation/joint.py`: the recorder, a fresh jailed model process per phase and the replicas,
all forked from the recorder), then manifest validation. The bare side is one Python process
that imports torch once, builds the same model under the same seed, trains it on the same train
split in the same order for the same steps (cross-entropy, backward, clip, AdamW step, as the
harness's default step) and scores the held-out split in the held-out order. Both sides run with
the same OpenMP settings (threads, passive waiting).

CPU is user + system seconds of everything each side ran, this process included, from a cgroup
of its own (`CpuMeter`); the host's share (review, staging, validation) is this process's own
rusage. Bare and pipeline runs alternate, so both see the same machine state; medians.

    .venv/bin/python benchmarks/evaluate.py [--steps 64] [--heldout-steps 64] [--repeat 2]

Needs root and bubblewrap (the sandbox's own requirements). Target: pipeline / bare <= 1.3.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prism.config import Settings  # noqa: E402
from prism.evaluation.data import LockedDataset, ensure_fixture_dataset  # noqa: E402
from prism.evaluation.evaluate import evaluate_project  # noqa: E402
from prism.evaluation.phase import RESULT_PREFIX, split_report_line  # noqa: E402
from prism.evaluation.runner import RECORDER_ENV  # noqa: E402
from prism.intake.directory import read_directory  # noqa: E402
from prism.intake.limits import IntakeLimits  # noqa: E402
from prism.runtime_config import DEFAULT_RUNTIME_CONFIG, RuntimeConfig  # noqa: E402
from prism.sandbox.bubblewrap import BubblewrapSandbox  # noqa: E402
from prism.sandbox.spec import RunResult, RunSpec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_meter import CpuMeter  # noqa: E402

EXAMPLE = ROOT / "examples" / "tiny_transformer"

BARE = """
import json, math, resource, sys, importlib.util
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
marks = {"start": cpu()}
import torch, torch.nn.functional as F
marks["import"] = cpu()
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
seq, batch = args["seq_len"], args["batch_size"]
spec = importlib.util.spec_from_file_location("model", args["model"])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
from prism.contract import ModelContext
ctx = ModelContext(seq_len=seq, batch_size=batch, seed=args["seed"])
torch.manual_seed(args["seed"])
model = mod.build_model(ctx)
opt = mod.configure_optimizer(model, ctx)
def split(paths):
    return torch.frombuffer(bytearray(b"".join(open(p, "rb").read() for p in paths)), dtype=torch.uint8)
def windows(data, starts):
    w = data[starts[:, None] * seq + torch.arange(seq + 1)]
    return w[:, :-1].long(), w[:, 1:].long()
def nats(logits, targets):
    return F.cross_entropy(logits.double().reshape(-1, 256), targets.reshape(-1)).item()
data = split(args["train"])
n = (data.numel() - 1) // seq
order = torch.randperm(n, generator=torch.Generator().manual_seed(args["order_seed"]))
marks["build"] = cpu()
losses = []
model.train()
for step in range(args["steps"]):
    x, y = windows(data, order[step * batch:(step + 1) * batch])
    logits = model(x)
    losses.append(nats(logits.detach(), y))
    loss = F.cross_entropy(logits.float().reshape(-1, 256), y.reshape(-1))
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
marks["train"] = cpu()
data = split(args["heldout"])
n = (data.numel() - 1) // seq
steps = min(args["heldout_steps"], n // batch)
held = []
model.eval()
with torch.inference_mode():
    for step in range(steps):
        x, y = windows(data, step + torch.arange(batch) * steps)
        held.append(nats(model(x), y))
marks["heldout"] = cpu()
print(json.dumps({"marks": marks, "bpb": sum(losses) / len(losses) / math.log(2),
                  "heldout_bpb": sum(held) / len(held) / math.log(2)}))
"""


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


METER: CpuMeter


@dataclass
class Metered:
    """The real bubblewrap backend, with each run's CPU (children's rusage) by phase."""

    inner: BubblewrapSandbox
    cpu: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    inside: dict[str, dict[str, float]] = field(default_factory=dict)
    name: str = "bubblewrap"
    accepts_stdin: bool = True
    live_stdout: bool = True

    def run(self, spec: RunSpec) -> RunResult:
        phase = spec.labels.get("prism.phase", "?")
        before, start = METER.seconds(), time.monotonic()
        result = self.inner.run(spec)
        self.cpu[phase] = METER.seconds() - before
        self.wall[phase] = time.monotonic() - start
        for line in result.stdout.splitlines():
            if line.startswith(RESULT_PREFIX):  # figures only; the runner verifies the MAC
                report = json.loads(split_report_line(line)[0])
                self.inside[str(report.get("phase"))] = dict(report.get("figures", {}).get("cpu_seconds", {}))
        return result


def pipeline(settings: Settings, config: RuntimeConfig, dataset: LockedDataset) -> dict[str, Any]:
    project = read_directory(EXAMPLE, limits=IntakeLimits.from_settings(settings))
    sandbox = Metered(BubblewrapSandbox(settings))
    host_before, before = _self_cpu(), METER.seconds()
    outcome = evaluate_project(
        project, settings=settings, runtime_config=config, mode="local_cpu_smoke", sandbox=sandbox, dataset=dataset
    )
    if outcome.decision != "accepted":
        raise SystemExit(f"the example was not accepted: {outcome.decision} {outcome.reason_code} {outcome.detail}")
    metrics = outcome.manifest.get("metrics", {})
    return {
        "host": _self_cpu() - host_before,
        "total": METER.seconds() - before,
        "phases": dict(sandbox.cpu),
        "wall": dict(sandbox.wall),
        "inside": dict(sandbox.inside),
        "bpb": float(metrics.get("bits_per_byte", 0.0)),
        "heldout_bpb": float(metrics.get("heldout_bits_per_byte", 0.0)),
    }


def bare(
    config: RuntimeConfig, dataset: LockedDataset, scratch: Path, steps: int, heldout_steps: int
) -> dict[str, Any]:
    budget = config.evaluation
    paths = {}
    for split in ("train", "validation"):
        folder = Path(tempfile.mkdtemp(prefix=f"bare-{split}-", dir=scratch))
        staged = dataset.stage_split(split, folder)
        paths[split] = [str(folder / s.path) for s in staged]
    args = {
        "model": str(EXAMPLE / "model.py"),
        "threads": max(1, int(budget.smoke_cpus)),
        "seq_len": budget.seq_len,
        "batch_size": budget.batch_size,
        "seed": budget.seed,
        "order_seed": budget.data_order_seed,
        "steps": steps,
        "heldout_steps": heldout_steps,
        "train": paths["train"],
        "heldout": paths["validation"],
    }
    threads = str(args["threads"])
    env = {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    env["OMP_WAIT_POLICY"] = RECORDER_ENV["OMP_WAIT_POLICY"]  # the same OpenMP waiting as the model's process
    env["PYTHONWARNINGS"] = "ignore"
    before = METER.seconds()
    out = subprocess.run(
        [sys.executable, "-c", BARE, json.dumps(args)], capture_output=True, text=True, env=env, check=True
    ).stdout
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    report["total"] = METER.seconds() - before
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--heldout-steps", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cpus", type=float, default=2.0, help="the smoke profile's CPUs (threads = int(cpus))")
    args = parser.parse_args()
    global METER
    METER = CpuMeter()
    try:
        run(args)
    finally:
        METER.close()


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as work:
        scratch = Path(work)
        scratch.chmod(0o755)
        settings = Settings(data_dir=scratch / "data")
        dataset = ensure_fixture_dataset(scratch / "dataset")
        evaluation = DEFAULT_RUNTIME_CONFIG.evaluation.model_copy(
            update={
                "smoke_token_budget": args.steps * DEFAULT_RUNTIME_CONFIG.evaluation.batch_size * 128,
                "heldout_tokens": args.heldout_steps * DEFAULT_RUNTIME_CONFIG.evaluation.batch_size * 128,
                "seq_len": 128,
                "smoke_cpus": args.cpus,
            }
        )
        config = DEFAULT_RUNTIME_CONFIG.model_copy(update={"evaluation": evaluation})
        bares, pipes = [], []
        for _ in range(args.repeat):
            bares.append(bare(config, dataset, scratch, args.steps, args.heldout_steps))
            pipes.append(pipeline(settings, config, dataset))
    report(args, bares, pipes)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(args: argparse.Namespace, bares: list[dict[str, Any]], pipes: list[dict[str, Any]]) -> None:
    def mark(b: dict[str, Any], end: str, begin: str) -> float:
        return float(b["marks"][end]) - float(b["marks"][begin])

    bare_total = _median([b["total"] for b in bares])
    pipe_total = _median([p["total"] for p in pipes])
    print(f"example tiny transformer, {args.steps} train steps, {args.heldout_steps} held-out batches, "
          f"{int(args.cpus)} thread(s), {args.repeat} interleaved runs (medians, CPU seconds)")  # fmt: skip
    print(f"bare script                    : {bare_total:8.2f}")
    print(f"  import torch                 : {_median([mark(b, 'import', 'start') for b in bares]):8.2f}")
    print(f"  build + data                 : {_median([mark(b, 'build', 'import') for b in bares]):8.2f}")
    print(f"  train                        : {_median([mark(b, 'train', 'build') for b in bares]):8.2f}")
    print(f"  held-out                     : {_median([mark(b, 'heldout', 'train') for b in bares]):8.2f}")
    print(f"pipeline                       : {pipe_total:8.2f}")
    print(f"  host (review, staging, checks): {_median([p['host'] for p in pipes]):7.2f}")
    for start in sorted({label for p in pipes for label in p["phases"]}):
        cpu = _median([p["phases"].get(start, 0.0) for p in pipes])
        wall = _median([p["wall"].get(start, 0.0) for p in pipes])
        print(f"  sandbox start {start:<15}: {cpu:8.2f}   ({wall:.1f} s wall)")
    for phase in ("inspect", "train", "heldout"):  # the recorder's figure is its process's total so far
        inside = [p["inside"].get(phase, {}) for p in pipes]
        parts = sorted({key for row in inside for key in row})
        if parts:
            text = ", ".join(f"{key} {_median([float(row.get(key, 0.0)) for row in inside]):.2f}" for key in parts)
            print(f"    {phase:<8} inside: {text}")
    print(f"bits per byte (bare / pipeline): {_median([b['bpb'] for b in bares]):.4f} / "
          f"{_median([p['bpb'] for p in pipes]):.4f}; held-out {_median([b['heldout_bpb'] for b in bares]):.4f} / "
          f"{_median([p['heldout_bpb'] for p in pipes]):.4f}")  # fmt: skip
    print(f"pipeline / bare CPU            : {pipe_total / bare_total:8.2f}  (target <= 1.3)")


if __name__ == "__main__":
    main()
