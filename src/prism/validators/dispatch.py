"""The validator side: run one PRISM work unit on the validator's own broker and report it, signed.

Platform's validator agent imports `prism_challenge.validator_dispatch.dispatch_assignment` and
awaits it with the assignment's `work_unit_id` and `payload` and the validator's broker. This
module does the work:

1. claim the unit at PRISM (signed envelope) → the job: budgets, seeds, GPU profile, the unit's
   own probe seed, the dataset fingerprint; the lease is renewed (signed `progress`) while the
   unit runs;
2. fetch the archive by its sha256 (signed) and check the bytes against it;
3. read it with PRISM's intake (in memory; nothing is imported here) and run the challenge-owned
   harness — `inspect` and `train`, the same `prism.evaluation.runner` PRISM runs — on the
   validator's broker, with the locked train split from the validator's own disk (its
   fingerprint must equal the job's); held-out scoring stays with PRISM;
4. post the one result (figures, loss curve, trained weights) signed with the validator's hotkey.

Validator configuration (environment): `PRISM_VALIDATOR_HOTKEY_FILE` (hex sr25519 seed, or a
bittensor hotkey JSON with `secretSeed`), `PRISM_VALIDATOR_PRISM_URL` (optional: overrides the
payload's `prism_url`), `PRISM_DATASET_DIR` (the locked dataset; the built-in fixture when unset),
`PRISM_DATA_DIR` (scratch). `broker_url` `http(s)://…` is Platform's broker;
`bubblewrap:` or `docker:` run on this host's own backend (a validator without a broker, and the
tests).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from prism.config import Settings, get_settings
from prism.errors import PrismError
from prism.evaluation.errors import EvaluationRejected, MinerCodeFailed
from prism.evaluation.evaluate import locked_dataset
from prism.evaluation.jobs import EvaluationJob
from prism.evaluation.phase import LOSS_CURVE_FILE, WEIGHTS_FILE
from prism.evaluation.runner import run_inspect, run_train, verified_artifact
from prism.evidence import evidence_to_json
from prism.intake.archive import read_project
from prism.intake.limits import IntakeLimits
from prism.runtime_config import EvaluationBudget
from prism.sandbox import get_sandbox
from prism.sandbox.spec import Sandbox
from prism.validators.signing import Kind, ValidatorKey

log = logging.getLogger(__name__)
HTTP_TIMEOUT = 60.0
JOB_FIELDS = (
    "submission_id",
    "code_hash",
    "attempt",
    "mode",
    "score_eligible",
    "gpu_count",
    "gpu_type",
    "parameter_cap",
    "token_budget",
    "wall_clock_seconds",
    "cpus",
    "memory_bytes",
    "memory_swap_bytes",
    "pids",
    "tmpfs_bytes",
)


class DispatchError(PrismError):
    """The unit could not be run here (refused claim, wrong dataset, broker down). No result is
    posted: PRISM's lease runs out and another validator gets a replacement unit."""


@dataclass(frozen=True, slots=True)
class ValidatorSetup:
    key: ValidatorKey
    settings: Settings
    prism_url: str

    @classmethod
    def from_environment(cls, payload: Mapping[str, Any]) -> ValidatorSetup:
        key_file = os.environ.get("PRISM_VALIDATOR_HOTKEY_FILE")
        if not key_file:
            raise DispatchError("PRISM_VALIDATOR_HOTKEY_FILE is not set: the validator cannot sign its result")
        url = os.environ.get("PRISM_VALIDATOR_PRISM_URL") or payload.get("prism_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise DispatchError("no PRISM URL: set PRISM_VALIDATOR_PRISM_URL or PRISM_VALIDATORS_PUBLIC_URL on PRISM")
        return cls(ValidatorKey.from_file(Path(key_file)), get_settings(), url.rstrip("/"))


def validator_sandbox(settings: Settings, broker_url: str, token: str | None, token_file: str | None) -> Sandbox:
    """The validator's own execution backend, named by Platform's `broker_url`."""
    scheme = broker_url.split(":", 1)[0]
    if scheme in ("bubblewrap", "docker"):
        return get_sandbox(settings.model_copy(update={"sandbox_backend": scheme}))
    if scheme not in ("http", "https"):
        raise DispatchError(f"broker_url {broker_url!r} is neither http(s) nor bubblewrap:/docker:")
    broker = settings.model_copy(update={"sandbox_backend": "broker", "broker_url": broker_url})
    if token_file:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    if token:
        # `broker_token` is a cached property read from PRISM's own variables; the validator's
        # token comes from Platform's agent instead.
        broker.__dict__["broker_token"] = token
    return get_sandbox(broker)


class PrismClient:
    """Signed requests to PRISM for one unit."""

    def __init__(self, setup: ValidatorSetup, *, work_unit_id: str, archive_sha256: str) -> None:
        self.setup = setup
        self.work_unit_id = work_unit_id
        self.archive_sha256 = archive_sha256

    def post(self, path: str, kind: Kind, payload: Mapping[str, Any]) -> httpx.Response:
        envelope = self.setup.key.sign(
            slug=self.setup.settings.challenge_slug,
            kind=kind,
            work_unit_id=self.work_unit_id,
            archive_sha256=self.archive_sha256,
            payload=payload,
        )
        try:
            response = httpx.post(f"{self.setup.prism_url}{path}", json=envelope.to_json(), timeout=HTTP_TIMEOUT)
        except httpx.HTTPError as exc:
            raise DispatchError(f"PRISM {path} failed: {exc}") from exc
        if response.status_code >= 400:
            raise DispatchError(f"PRISM refused {kind} for {self.work_unit_id}: {response.status_code} {response.text}")
        return response


def _job(answer: Mapping[str, Any], settings: Settings, work_dir: Path) -> EvaluationJob:
    job = answer["job"]
    dataset = locked_dataset(settings)
    if dataset.fingerprint != job.get("dataset_fingerprint"):
        raise DispatchError(
            f"this validator's locked dataset is {dataset.fingerprint}, the unit needs {job.get('dataset_fingerprint')}"
        )
    values = {name: job[name] for name in JOB_FIELDS}
    return EvaluationJob(
        **values,
        budget=EvaluationBudget.model_validate(job["budget"]),
        work_dir=work_dir,
        dataset=dataset,
        probe_seed=int(job["probe_seed"]),
    )


def run_unit(
    setup: ValidatorSetup, sandbox: Sandbox, *, work_unit_id: str, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """Claim, fetch, run inspect and train, and post the signed result. Returns PRISM's answer."""
    archive_sha256 = str(payload.get("archive_sha256", ""))
    client = PrismClient(setup, work_unit_id=work_unit_id, archive_sha256=archive_sha256)
    claim_path = str(payload.get("claim_path") or f"/v1/validators/work_units/{work_unit_id}/claim")
    answer = client.post(claim_path, "claim", {}).json()
    archive = client.post(str(answer["archive_path"]), "archive", {}).content
    if hashlib.sha256(archive).hexdigest() != archive_sha256:
        raise DispatchError("the archive PRISM sent does not match its sha256")
    project = read_project(archive, str(answer["job"]["filename"]), limits=IntakeLimits.from_settings(setup.settings))
    scratch = Path(tempfile.mkdtemp(prefix="prism-validator-", dir=_scratch_root(setup.settings)))
    renewing = threading.Event()
    renewer = threading.Thread(
        target=_renew,
        args=(client, str(answer["progress_path"]), float(answer["lease_seconds"]), renewing),
        daemon=True,
    )
    renewer.start()
    try:
        scratch.chmod(0o755)
        job = _job(answer, setup.settings, scratch)
        result = _evaluate(job, project, sandbox)
    finally:
        renewing.set()
        renewer.join(timeout=HTTP_TIMEOUT)
        shutil.rmtree(scratch, ignore_errors=True)
    posted: dict[str, Any] = client.post(str(answer["result_path"]), "result", result).json()
    train = result.get("figures", {}).get("train", {})
    return {
        "work_unit_id": work_unit_id,
        "status": result["status"],
        "bits_per_byte": train.get("bits_per_byte"),
        "prism": posted,
    }


def _renew(client: PrismClient, path: str, lease_seconds: float, stop: threading.Event) -> None:
    """Keep the unit's lease while the run lasts (a third of the lease between renewals)."""
    while not stop.wait(max(1.0, lease_seconds / 3)):
        try:
            client.post(path, "progress", {})
        except DispatchError:
            log.warning("could not renew the lease of %s", client.work_unit_id)


def _scratch_root(settings: Settings) -> Path:
    root = Path(settings.data_dir) / "validator-work"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _evaluate(job: EvaluationJob, project: Any, sandbox: Sandbox) -> dict[str, Any]:
    """The result payload: what the harness measured, or the rejection/failure it recorded."""
    try:
        inspect = run_inspect(job, project, sandbox)
        train = run_train(job, project, sandbox, inspect)
    except EvaluationRejected as exc:
        return {
            "status": "rejected",
            "reason_code": exc.reason_code[:64],
            "figures": {"evidence": evidence_to_json(exc.evidence)},
        }
    except MinerCodeFailed as exc:
        return {"status": "failed", "reason_code": exc.reason_code[:64], "figures": {"detail": exc.detail[:2000]}}
    curve = verified_artifact(job, "train", LOSS_CURVE_FILE).read_bytes()
    weights = verified_artifact(job, "train", WEIGHTS_FILE).read_bytes()
    return {
        "status": "ok",
        "figures": {"inspect": inspect.to_json(), "train": train.to_json()},
        "artifacts": {
            "loss_curve": base64.b64encode(curve).decode("ascii"),
            "weights": base64.b64encode(weights).decode("ascii"),
        },
    }


async def dispatch_assignment(
    *,
    work_unit_id: str,
    payload: Mapping[str, Any],
    broker_url: str,
    broker_token: str | None = None,
    broker_token_file: str | None = None,
    **_ignored: Any,
) -> Mapping[str, Any]:
    """Platform's entrypoint (`PrismCycleExecutor`): run the unit, return what to post to the master.

    Raises `DispatchError` when the unit cannot run here; Platform then records a failed
    assignment and PRISM replaces the unit when its lease runs out.
    """
    setup = ValidatorSetup.from_environment(payload)
    sandbox = validator_sandbox(setup.settings, broker_url, broker_token, broker_token_file)
    return await asyncio.to_thread(run_unit, setup, sandbox, work_unit_id=work_unit_id, payload=payload)
