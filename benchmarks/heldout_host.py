"""What held-out scoring costs on the scorer's CPU (`PRISM_HELDOUT_SANDBOX`), against training.

On Platform the held-out phase runs in bubblewrap on PRISM's own host, on the CPU, under the job's
CPU and memory limits. This runs the reference model (examples/tiny_transformer) through inspect,
train and held-out in the local bubblewrap sandbox, all on this host's CPU in the same run, with
`--tokens` for train and for held-out (held-out is capped by the fixture's validation split,
36,864 tokens at the default batch shape), and prints:

- the train phase's seconds for those tokens (the baseline),
- the held-out phase's seconds (the model's forward on the window, the replica's replays, the
  state check), and held-out / train;
- the trained weights' size against the 1.5 MiB a GPU job's mounts may carry on Platform.

A GPU trains far faster than this CPU, so the ratio is an upper bound on held-out's share of the
evaluation only where train also ran on the CPU; the absolute seconds are the number an operator
sizes the manager node by. Needs root and bubblewrap.

    .venv/bin/python benchmarks/heldout_host.py [--tokens 65536] [--cpus 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prism.config import Settings
from prism.evaluation.data import ensure_fixture_dataset
from prism.evaluation.heldout_host import run_heldout_here
from prism.evaluation.jobs import make_job
from prism.evaluation.phase import WEIGHTS_FILE
from prism.evaluation.runner import run_inspect, run_train, verified_artifact
from prism.intake.project import Project
from prism.runtime_config import EvaluationBudget, RuntimeConfig
from prism.sandbox.broker import MAX_GPU_MOUNT_BYTES
from prism.sandbox.bubblewrap import BubblewrapSandbox

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny_transformer"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=65_536, help="train tokens = held-out tokens")
    parser.add_argument("--cpus", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prism-bench-heldout-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)
        settings = Settings(data_dir=root / "data")
        budget = EvaluationBudget(
            smoke_token_budget=args.tokens,
            heldout_tokens=args.tokens,
            smoke_cpus=args.cpus,
            smoke_wall_clock_seconds=3600.0,
        )
        work = root / "work"
        work.mkdir(mode=0o755)
        job = make_job(
            submission_id="bench-heldout",
            code_hash="0" * 64,
            mode="local_cpu_smoke",
            runtime_config=RuntimeConfig(evaluation=budget),
            dataset=ensure_fixture_dataset(root / "dataset"),
            work_dir=work,
        )
        project = Project(files={p.name: p.read_text() for p in EXAMPLE.iterdir() if p.suffix in (".py", ".yaml")})
        sandbox = BubblewrapSandbox(settings)
        inspect = run_inspect(job, project, sandbox)
        train = run_train(job, project, sandbox, inspect)
        # As on Platform: the lease training had (a GPU), held-out on this host's CPU.
        heldout = run_heldout_here(replace(job, gpu_count=1), project, sandbox, train, settings)
        weights = verified_artifact(job, "train", WEIGHTS_FILE).stat().st_size
    print(f"reference model: {inspect.parameter_count:,} parameters; cpus {args.cpus:g}")
    print(f"weights: {weights:,} bytes; a GPU job's mounts on Platform: at most {MAX_GPU_MOUNT_BYTES:,} (base64)")
    print(f"train   (baseline): {train.tokens:,} tokens in {train.train_seconds:.2f} s")
    print(f"heldout (local CPU): {heldout.heldout_tokens:,} tokens in {heldout.duration_seconds:.2f} s")
    print(f"heldout / train: {heldout.duration_seconds / train.train_seconds:.2f}")


if __name__ == "__main__":
    main()
