"""How far apart two honest validators' records are: the tolerance the agreement rule needs.

Runs the real `inspect` + `train` phases (bubblewrap, the example tiny transformer, the fixture)
several times for one job, changing only what differs between two honest validators:
the per-unit probe seed (every unit gets its own), the intra-op thread count (another host's
CPU count), and nothing at all (a second run on the same host). Prints, against the first run,
the gap in prequential bits per byte, the worst per-step loss gap in bits, and whether the
trained weights are bit-identical.

    .venv/bin/python benchmarks/validator_agreement.py [--tokens 8192]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prism.config import Settings  # noqa: E402
from prism.evaluation.data import ensure_fixture_dataset  # noqa: E402
from prism.evaluation.jobs import make_job  # noqa: E402
from prism.evaluation.metrics import LossCurve  # noqa: E402
from prism.evaluation.phase import LOSS_CURVE_FILE  # noqa: E402
from prism.evaluation.runner import run_inspect, run_train, verified_artifact  # noqa: E402
from prism.intake.directory import read_directory  # noqa: E402
from prism.intake.limits import IntakeLimits  # noqa: E402
from prism.runtime_config import RuntimeConfig  # noqa: E402
from prism.sandbox import get_sandbox  # noqa: E402

EXAMPLE = ROOT / "examples" / "tiny_transformer"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=8192)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="prism-agreement-"))
    scratch.chmod(0o755)
    settings = Settings(data_dir=scratch / "data")
    dataset = ensure_fixture_dataset(scratch / "dataset")
    config = RuntimeConfig.model_validate(
        {
            "gpu": {"official_profile": {"gpu_count": 0, "gpu_type": None, "cpus": 1, "memory": "4g"}},
            "evaluation": {"seq_len": 64, "batch_size": 4, "token_budget": args.tokens, "causality_probes": 2},
        }
    )
    project = read_directory(EXAMPLE, limits=IntakeLimits.from_settings(settings))
    sandbox = get_sandbox(settings)
    variants = [("first run", 1, 11), ("same host again", 1, 11), ("other probe seed", 1, 97), ("2 threads", 2, 11)]
    runs = []
    for name, cpus, probe_seed in variants:
        work = scratch / name.replace(" ", "-")
        work.mkdir()
        work.chmod(0o755)
        job = make_job(
            submission_id="agreement",
            code_hash=project.code_hash,
            mode="official",
            runtime_config=config,
            dataset=dataset,
            work_dir=work,
            probe_seed=probe_seed,
        )
        job = replace(job, cpus=float(cpus))
        inspect = run_inspect(job, project, sandbox)
        train = run_train(job, project, sandbox, inspect)
        curve = LossCurve.decode(verified_artifact(job, "train", LOSS_CURVE_FILE).read_bytes())
        runs.append((name, train, curve))
    _, base, base_curve = runs[0]
    print(f"{'variant':<18} {'bpb':>12} {'|Δbpb|':>10} {'max |Δloss| bits':>17} {'same weights':>13}")
    for name, train, curve in runs:
        gap = abs(train.bits_per_byte - base.bits_per_byte)
        worst = max(abs(a - b) / math.log(2) for a, b in zip(curve.losses_nats, base_curve.losses_nats, strict=True))
        same = train.weights_sha256 == base.weights_sha256
        print(f"{name:<18} {train.bits_per_byte:>12.8f} {gap:>10.2e} {worst:>17.2e} {same!s:>13}")


if __name__ == "__main__":
    main()
