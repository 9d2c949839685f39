"""`GET /v1/challenge`: what a miner is held to, published (budgets, data sheet, scoring, epoch).

Everything here is already decided by the operator (runtime config) or the code (contract,
scoring rule); nothing secret is in it: not the data-order seed, not the causality-probe seed,
not a path or token. A miner reads it before writing a line, and the same figures reach the
model in `ctx`.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

import prism
from prism.api.state import app_state, session_scope
from prism.config import Settings
from prism.contract import VOCAB_SIZE
from prism.errors import PrismError
from prism.evaluation.data import MANIFEST_NAME, Datasheet
from prism.evaluation.fixture import FIXTURE_DATASHEET
from prism.runtime_config import RuntimeConfig
from prism.scoring.claims import CLAIM_TOLERANCE
from prism.store.base import utcnow
from prism.store.runtime_configs import load_runtime_config
from prism.store.submissions import epoch_at

router = APIRouter()


class Budget(BaseModel):
    mode: Literal["official", "local_cpu_smoke"]
    score_eligible: bool
    seq_len: int
    batch_size: int
    token_budget: int = Field(description="bytes of training data the model sees (one pass, in order)")
    heldout_tokens: int = Field(description="validation bytes scored after training")
    parameter_cap: int
    wall_clock_seconds: float = Field(description="outer bound for the whole training phase")
    gpu_count: int
    gpu_type: str | None
    cpus: float
    memory: str


class DataSheetView(BaseModel):
    name: str
    source: str
    revision: str
    transformations: list[str]
    intended_use: str
    license: str
    public_fixture: bool = Field(description="true: the bundled synthetic corpus, fine for smoke runs, not a contest")


class Scoring(BaseModel):
    metric: str
    formula: str
    ranking: str
    claims: str


class Epoch(BaseModel):
    epoch: int
    epoch_seconds: int
    starts_at: int
    ends_at: int


class Contract(BaseModel):
    vocab_size: int
    entrypoint: str
    hooks: list[str]
    seed: int = Field(description="the model's init seed, given in ctx.seed (not the data order)")


class ChallengeParameters(BaseModel):
    challenge_slug: str
    challenge_version: str
    runtime_config_version: int | None
    contract: Contract
    official: Budget
    smoke: Budget
    this_host_scores: bool = Field(description="whether submissions run here today are score-eligible")
    data: DataSheetView
    scoring: Scoring
    epoch: Epoch


def _datasheet(settings: Settings) -> DataSheetView:
    from prism.evaluation.evaluate import platform_manifest_path
    from prism.evaluation.platform_data import platform_datasheet, read_platform_manifest

    sheet: Datasheet = FIXTURE_DATASHEET
    platform = platform_manifest_path(settings)  # Platform's splits: the datasheet PRISM locks them under
    fixture = settings.dataset_dir is None and platform is None
    if not fixture:
        try:
            if platform is not None:
                sheet = platform_datasheet(read_platform_manifest(platform))
            else:
                assert settings.dataset_dir is not None
                document = json.loads((settings.dataset_dir / MANIFEST_NAME).read_bytes())
                sheet = Datasheet.from_json(document["datasheet"])
        except (OSError, ValueError, KeyError, TypeError, PrismError):
            sheet = Datasheet(name="unavailable", source="the dataset manifest cannot be read", revision="")
    return DataSheetView(**sheet.to_json(), public_fixture=fixture)


def _host_scores(settings: Settings, config: RuntimeConfig) -> bool:
    from prism.pipeline.eval_steps import choose_mode  # the worker's own rule, not a copy of it

    return choose_mode(settings.sandbox_backend, config) == "official"


def challenge_parameters(settings: Settings, config: RuntimeConfig, version: int | None) -> ChallengeParameters:
    budget = config.evaluation
    profile = config.gpu.official_profile
    epoch = epoch_at(utcnow(), settings.epoch_seconds)
    common = {
        "seq_len": budget.seq_len,
        "batch_size": budget.batch_size,
        "heldout_tokens": budget.heldout_tokens,
        "parameter_cap": budget.parameter_cap,
    }
    return ChallengeParameters(
        challenge_slug=settings.challenge_slug,
        challenge_version=prism.CHALLENGE_VERSION,
        runtime_config_version=version,
        contract=Contract(
            vocab_size=VOCAB_SIZE,
            entrypoint="model.py: build_model(ctx) -> torch.nn.Module (prism.yaml may name another file)",
            hooks=["configure_optimizer(model, ctx)", "train_step(model, batch, optimizer, ctx)"],
            seed=budget.seed,
        ),
        official=Budget(
            mode="official",
            score_eligible=True,
            token_budget=budget.token_budget,
            wall_clock_seconds=budget.wall_clock_seconds,
            gpu_count=profile.gpu_count,
            gpu_type=profile.gpu_type,
            cpus=profile.cpus,
            memory=profile.memory,
            **common,
        ),
        smoke=Budget(
            mode="local_cpu_smoke",
            score_eligible=False,
            token_budget=budget.smoke_token_budget,
            wall_clock_seconds=budget.smoke_wall_clock_seconds,
            gpu_count=0,
            gpu_type=None,
            cpus=budget.smoke_cpus,
            memory=budget.smoke_memory,
            **common,
        ),
        this_host_scores=_host_scores(settings, config),
        data=_datasheet(settings),
        scoring=Scoring(
            metric="prequential bits per byte: the loss on every training batch before the model's update",
            formula="final_score = 2 ** (-bits_per_byte)",
            ranking="per epoch, each hotkey's best score-eligible result; ties go to the earlier submission",
            claims=(
                f"prism.yaml claims are never scored; a numeric claim more than {CLAIM_TOLERANCE:.0%} off the "
                "measurement quarantines the submission"
            ),
        ),
        epoch=Epoch(
            epoch=epoch,
            epoch_seconds=settings.epoch_seconds,
            starts_at=epoch * settings.epoch_seconds,
            ends_at=(epoch + 1) * settings.epoch_seconds,
        ),
    )


@router.get("/v1/challenge", tags=["public"], summary="What a miner is held to: budgets, data, scoring, epoch")
def get_challenge(request: Request, session: Annotated[Session, Depends(session_scope)]) -> ChallengeParameters:
    settings = app_state(request).settings
    active = load_runtime_config(session)
    return challenge_parameters(settings, active.config, active.version)
