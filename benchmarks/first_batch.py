"""The first-batch distribution under the forced seed, measured on honest models (not a test).

The recorder scores the first batch before any update, with a model built by `build_model(ctx)`
under the forced seed: whatever it knows about the data then came with the code. This measures
that figure for every honest model the project keeps (the example, the red-team benign corpus,
the metric corpus's honest controls) over several seeds, on the first batches of the fixture's
train split in the harness's order, and prints the distribution the quarantine threshold
(`suspicion.FIRST_BATCH_MIN_BPB`) is set against (docs/evaluation.md, "Measured").

Models run in this process: they are the project's own test models, not submissions.

    .venv/bin/python benchmarks/first_batch.py [--seeds 5] [--seq-len 128] [--batch 8]
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prism.contract import ModelContext  # noqa: E402
from prism.evaluation.data import ensure_fixture_dataset  # noqa: E402
from prism.evaluation.phases import _windows  # noqa: E402
from prism.evaluation.suspicion import FIRST_BATCH_MIN_BPB  # noqa: E402

ORDER_SEED = 20_240_611


def projects() -> list[Path]:
    found = [ROOT / "examples" / "tiny_transformer"]
    found += sorted(p for p in (ROOT / "tests" / "redteam" / "benign").iterdir() if p.is_dir())
    found += sorted(p.parent for p in (ROOT / "tests" / "redteam" / "metric" / "cheats").glob("honest_*.py"))[:1]
    return found


def entrypoints(project: Path) -> list[Path]:
    if project.name == "cheats":
        return sorted(project.glob("honest_*.py"))
    manifest = project / "prism.yaml"
    name = yaml.safe_load(manifest.read_text())["entrypoint"] if manifest.is_file() else "model.py"
    return [project / name]


def first_batch_bpb(entry: Path, seed: int, ctx: ModelContext, data: torch.Tensor) -> float:
    before = set(sys.modules)
    sys.path.insert(0, str(entry.parent))
    try:
        module = importlib.import_module(entry.stem)
        torch.manual_seed(seed)
        model = module.build_model(ctx)
        windows = (data.numel() - 1) // ctx.seq_len
        order = torch.randperm(windows, generator=torch.Generator().manual_seed(ORDER_SEED))
        inputs, targets = _windows(data, order[: ctx.batch_size], ctx.seq_len)
        model.train()
        with torch.no_grad():
            logits = model(inputs.long()).double()
        nats = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), targets.long().reshape(-1)).item()
        return float(nats / math.log(2))
    finally:
        sys.path.remove(str(entry.parent))
        for name in set(sys.modules) - before:  # the project's own modules, not torch's lazy ones
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(entry.parent)):
                del sys.modules[name]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    ctx = ModelContext(seq_len=args.seq_len, batch_size=args.batch)
    with tempfile.TemporaryDirectory() as scratch:
        dataset = ensure_fixture_dataset(Path(scratch) / "dataset")
        staged = dataset.stage_split("train", Path(scratch) / "data")
        raw = b"".join((Path(scratch) / "data" / s.path).read_bytes() for s in staged)
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    values: list[float] = []
    for project in projects():
        for entry in entrypoints(project):
            figures = [first_batch_bpb(entry, 1234 + k, ctx, data) for k in range(args.seeds)]
            values += figures
            print(f"{project.name + '/' + entry.name:45s} {min(figures):7.3f} .. {max(figures):7.3f} bits/byte")
    print(
        f"\n{len(values)} runs: min {min(values):.3f}, median {statistics.median(values):.3f}, "
        f"max {max(values):.3f}, stdev {statistics.pstdev(values):.3f}; quarantine below {FIRST_BATCH_MIN_BPB}"
    )


if __name__ == "__main__":
    main()
