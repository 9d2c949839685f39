"""Inspect and held-out on PRISM when validators train.

With validators training, the job is the official one (the validators' GPUs honour the fixed
profile) even where PRISM itself has no GPU. What PRISM still runs itself — inspect (parameter
count, graph, FLOPs: device-independent) and held-out scoring of the returned weights — runs on
this host's own devices: the job's GPUs where this host or its broker has them, else the CPU;
on Platform (`PRISM_HELDOUT_SANDBOX`), in a local sandbox on the CPU (`heldout_host`).
In `embedded` mode both steps are the usual ones.
"""

from __future__ import annotations

import shutil

from prism.evaluation.evaluate import locked_dataset
from prism.evaluation.heldout_host import run_heldout_here
from prism.evaluation.jobs import make_job
from prism.evaluation.results import TrainResult
from prism.evaluation.runner import run_heldout, run_inspect
from prism.pipeline.context import StepContext, StepOutcome
from prism.pipeline.eval_steps import JOB_RECORD, heldout_step, inspect_step, load_job
from prism.validators.stage import on_this_host, save_job


def validator_inspect_step(ctx: StepContext) -> StepOutcome:
    if ctx.runtime_config.validators.mode == "embedded":
        return inspect_step(ctx)
    dataset = locked_dataset(ctx.settings)
    if ctx.work_dir.exists():
        shutil.rmtree(ctx.work_dir)
    ctx.work_dir.mkdir(parents=True, mode=0o755)
    job = make_job(
        submission_id=ctx.submission.id,
        code_hash=ctx.project.code_hash,
        mode="official",
        runtime_config=ctx.runtime_config,
        dataset=dataset,
        work_dir=ctx.work_dir,
        attempt=ctx.submission.infra_attempts + 1,
    )
    save_job(ctx.work_dir / JOB_RECORD, job)
    inspect = run_inspect(on_this_host(ctx, job), ctx.project, ctx.sandbox)
    return StepOutcome.passed(
        f"{inspect.parameter_count:,} parameters, graph {inspect.architecture_graph_hash[:12]}, mode official "
        f"(validators train)",
        mode="official",
        score_eligible=job.score_eligible,
        gpu_count=job.gpu_count,
        gpu_type=job.gpu_type,
        dataset_fingerprint=dataset.fingerprint,
        runtime_config_version=ctx.runtime_config_version,
        inspect=inspect.to_json(),
    )


def validator_heldout_step(ctx: StepContext) -> StepOutcome:
    if ctx.runtime_config.validators.mode == "embedded":
        return heldout_step(ctx)
    job = load_job(ctx)
    train = TrainResult.from_json(ctx.records["train"]["train"])
    local = ctx.heldout_sandbox  # on Platform: a local sandbox beside the secret val split
    if local is None:
        heldout = run_heldout(on_this_host(ctx, job), ctx.project, ctx.sandbox, train)
    else:
        heldout = run_heldout_here(job, ctx.project, local, train, ctx.settings)
    return StepOutcome.passed(
        f"{heldout.heldout_bits_per_byte:.4f} held-out bits/byte (PRISM, on the validators' weights)",
        heldout=heldout.to_json(),
    )
