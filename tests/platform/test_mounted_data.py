"""Platform's data where Platform puts it: the train split read from the broker's read-only mount,
the secret val split only on PRISM's host, which ships the held-out phase nothing but its window.

Platform's broker adds `prism_fineweb_edu_train` read-only at `/data/fineweb-edu/train` to every
prism job (`DEFAULT_PRISM_EVAL_READONLY_MOUNTS`); its install script mounts the train and val
volumes on the challenge service at `/secret/train` and `/secret/val` (`PRISM_BASE_EVAL_*`), each
a flat copy of one split without the MANIFEST.json. The stand-in broker adds the mount the same
way; the volumes on "the GPU node" are copies of their own, as Platform's named volumes are.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from prism.api.challenge import _datasheet
from prism.config import Settings
from prism.evaluation import phases, platform_data
from prism.evaluation.data import LockedDataset, load_locked_dataset
from prism.evaluation.errors import DatasetError, HarnessProtocolError
from prism.evaluation.evaluate import evaluate_project, locked_dataset
from prism.evaluation.jobs import make_job
from prism.evaluation.phase import HELDOUT_WINDOW_FILE, JOB_FILE, ShardRef
from prism.evaluation.platform_data import lock_platform_dataset, platform_source
from prism.evaluation.probes import InfraFailure
from prism.evaluation.runner import heldout_window, heldout_window_bytes
from prism.intake.project import Project
from prism.runtime_config import EvaluationBudget, RuntimeConfig
from prism.sandbox.archives import unpack_archive
from prism.sandbox.broker import MAX_GPU_MOUNT_BYTES, BrokerSandbox
from prism.sandbox.bubblewrap import BubblewrapSandbox
from tests.sandbox.broker_server import SLUG, TOKEN, StandInBroker
from tests.sandbox.helpers import needs_bwrap

from .locked_layout import write_platform_layout

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny_transformer" / "model.py"
HOSTILE = Path(__file__).resolve().parents[1] / "redteam" / "unreviewed" / "models"
DOCS = {"train": 300, "val": 60, "test": 20}
MOUNT = "/data/fineweb-edu/train"
CONFIG = RuntimeConfig(
    evaluation=EvaluationBudget(seq_len=64, batch_size=4, smoke_token_budget=2048, heldout_tokens=1024, smoke_cpus=2)
)


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return write_platform_layout(tmp_path / "locked", docs=DOCS)


def _volume(staged: Path, split: str, dest: Path) -> Path:
    """What `acquire-prism-fineweb-cache.sh` writes: one split's shards at the volume root, no manifest."""
    shutil.copytree(staged / split, dest)
    dest.chmod(0o755)
    return dest


@pytest.fixture
def volumes(staged: Path, tmp_path: Path) -> dict[str, Path]:
    return {split: _volume(staged, split, tmp_path / "manager" / split) for split in ("train", "val")}


def _platform_settings(staged: Path, volumes: dict[str, Path], data_dir: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        base_eval_train_data_dir=volumes["train"],
        base_eval_val_data_dir=volumes["val"],
        dataset_manifest=staged / "MANIFEST.json",
        **extra,
    )


# -- the recorder's bytes ---------------------------------------------------------------------------


def _refs(dataset: LockedDataset) -> tuple[ShardRef, ...]:
    return tuple(ShardRef(path=s.path, sha256=s.sha256, size=s.size) for s in dataset.manifest.split("train"))


def _sources(dataset: LockedDataset) -> tuple[ShardRef, ...]:
    source = platform_source(dataset)
    assert source is not None
    return tuple(ShardRef(path=s.name, sha256=s.sha256, size=s.size) for s in source.splits["train"])


def test_the_recorder_builds_the_locked_tokens_from_platforms_shards(
    staged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform_data, "_SHARD_BYTES", 4096)  # several locked shards, cut mid-shard
    dataset = lock_platform_dataset(staged, tmp_path / "out")
    assert len(dataset.manifest.split("train")) > 3
    volume = _volume(staged, "train", tmp_path / "volume")
    staged_tokens = phases.load_split(dataset.root, _refs(dataset))
    mounted_tokens = phases.load_split(volume, _refs(dataset), _sources(dataset))
    assert torch.equal(mounted_tokens, staged_tokens)
    assert mounted_tokens.numel() == dataset.manifest.split_bytes("train")


def test_a_tampered_or_missing_platform_shard_is_refused_as_ours(staged: Path, tmp_path: Path) -> None:
    dataset = lock_platform_dataset(staged, tmp_path / "out")
    volume = _volume(staged, "train", tmp_path / "volume")
    shard = volume / "train-00001.jsonl"
    original = shard.read_bytes()
    shard.write_bytes(original.replace(b"model", b"mode1", 1))  # same size, other bytes
    with pytest.raises(InfraFailure, match=re.escape("Platform shard train-00001.jsonl under")):
        phases.load_split(volume, _refs(dataset), _sources(dataset))
    shard.unlink()
    with pytest.raises(InfraFailure, match=re.escape("train-00001.jsonl is missing")):
        phases.load_split(volume, _refs(dataset), _sources(dataset))
    shard.write_bytes(original)
    # A shard list that lies (the source manifest is not in the fingerprint): the tokens built from
    # it differ from the locked shards, and the recorder refuses them.
    swapped = original.replace(b"model", b"mode1", 1)
    shard.write_bytes(swapped)
    lying = tuple(
        ShardRef(path=s.path, sha256=hashlib.sha256(swapped).hexdigest(), size=s.size)
        if s.path == "train-00001.jsonl"
        else s
        for s in _sources(dataset)
    )
    with pytest.raises(InfraFailure, match="differ from the locked shard"):
        phases.load_split(volume, _refs(dataset), lying)
    with pytest.raises(InfraFailure, match="not a plain file name"):
        phases.load_split(volume, _refs(dataset), (ShardRef(path="../x.jsonl", sha256="0" * 64, size=1),))


def _batches(data: torch.Tensor, budget: EvaluationBudget) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The held-out batches over `data`, by the recorder's arithmetic in `phases.heldout`."""
    seq_len, batch_size = budget.seq_len, budget.batch_size
    windows = (data.numel() - 1) // seq_len
    steps = min(budget.heldout_tokens // (batch_size * seq_len), windows // batch_size)
    order = phases.heldout_order(windows, batch_size, steps)
    return [phases._windows(data, order[step], seq_len) for step in range(steps)]


def test_the_held_out_window_scores_the_batches_the_whole_split_would(staged: Path, tmp_path: Path) -> None:
    dataset = lock_platform_dataset(staged, tmp_path / "out")
    whole = phases.load_split(
        dataset.root,
        tuple(ShardRef(path=s.path, sha256=s.sha256, size=s.size) for s in dataset.manifest.split("validation")),
    )
    for seq_len, batch_size, heldout_tokens in ((64, 4, 1024), (32, 3, 1000), (16, 2, 10**9)):
        budget = EvaluationBudget(seq_len=seq_len, batch_size=batch_size, heldout_tokens=heldout_tokens)
        job = make_job(
            submission_id="w",
            code_hash="c",
            mode="local_cpu_smoke",
            runtime_config=RuntimeConfig(evaluation=budget),
            dataset=dataset,
            work_dir=tmp_path,
        )
        path, ref = heldout_window(job)
        window = phases.load_split(tmp_path, (ref,))
        assert ref.path == HELDOUT_WINDOW_FILE == path.name
        assert window.numel() == min(heldout_window_bytes(job), whole.numel())
        assert torch.equal(window, whole[: window.numel()])

        ours, theirs = _batches(window, budget), _batches(whole, budget)
        assert ours and len(ours) == len(theirs)
        for (a_in, a_out), (b_in, b_out) in zip(ours, theirs, strict=True):
            assert torch.equal(a_in, b_in) and torch.equal(a_out, b_out)
    # The default budget's window, even incompressible, is a small part of what a GPU job can carry.
    default = EvaluationBudget()
    per_batch = default.batch_size * default.seq_len
    assert ((default.heldout_tokens // per_batch) * per_batch + 1) * 4 // 3 < MAX_GPU_MOUNT_BYTES // 10


# -- the host's settings --------------------------------------------------------------------------------


def test_platforms_split_volumes_are_locked_with_the_manifest_given_apart(
    staged: Path, volumes: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Platform's own variable names, as install-swarm.sh sets them on the challenge service.
    monkeypatch.setenv("PRISM_BASE_EVAL_TRAIN_DATA_DIR", str(volumes["train"]))
    monkeypatch.setenv("PRISM_BASE_EVAL_VAL_DATA_DIR", str(volumes["val"]))
    monkeypatch.setenv("PRISM_DATASET_MANIFEST", str(staged / "MANIFEST.json"))
    dataset = locked_dataset(Settings(data_dir=tmp_path / "data"))
    from_root = lock_platform_dataset(staged, tmp_path / "from-root")
    assert dataset.fingerprint == from_root.fingerprint  # the same data, whichever shape it came in
    assert platform_source(dataset) == platform_data.read_platform_manifest(staged / "MANIFEST.json")
    # The held-out split is refused on the host, before any job, when it is not the locked one.
    (volumes["val"] / "val-00000.jsonl").write_text('{"id": "x", "text": "swapped"}\n')
    with pytest.raises(DatasetError, match=re.escape("val-00000.jsonl has")):
        locked_dataset(Settings(data_dir=tmp_path / "data"))
    monkeypatch.delenv("PRISM_DATASET_MANIFEST")
    with pytest.raises(DatasetError, match="PRISM_DATASET_MANIFEST"):
        locked_dataset(Settings(data_dir=tmp_path / "data"))


def test_miners_see_platforms_datasheet_not_the_fixtures(
    staged: Path, volumes: dict[str, Path], tmp_path: Path
) -> None:
    sheet = _datasheet(_platform_settings(staged, volumes, tmp_path / "data"))  # GET /v1/challenge's `data`
    assert sheet.public_fixture is False
    assert sheet.revision == platform_data.FINEWEB_EDU_PIN
    assert sheet.name == locked_dataset(_platform_settings(staged, volumes, tmp_path / "data")).manifest.datasheet.name
    assert _datasheet(Settings(data_dir=tmp_path / "data", dataset_dir=staged)).revision == sheet.revision


def test_a_dataset_locked_before_the_manifest_was_kept_gains_it(staged: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", dataset_dir=staged)
    dataset = locked_dataset(settings)
    (dataset.root / platform_data.SOURCE_MANIFEST).unlink()
    assert platform_source(load_locked_dataset(dataset.root)) is None
    again = locked_dataset(settings)
    assert again.fingerprint == dataset.fingerprint and platform_source(again) is not None


def test_the_broker_backend_knows_platforms_train_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BrokerSandbox(Settings(broker_url="http://b")).train_mount == MOUNT
    monkeypatch.setenv("PRISM_BASE_EVAL_DATA_DIR", "")
    assert BrokerSandbox(Settings(broker_url="http://b")).train_mount is None  # stage the split instead
    monkeypatch.setenv("PRISM_BASE_EVAL_DATA_DIR", "data/train")
    with pytest.raises(ValidationError, match="absolute"):
        Settings()


# -- through the stand-in broker ----------------------------------------------------------------------


@pytest.fixture
def gpu_node_train(staged: Path, tmp_path: Path) -> Path:
    """The train volume on the node that runs the job: a copy of its own (Swarm volumes are per node)."""
    return _volume(staged, "train", tmp_path / "gpu-node" / "prism_fineweb_edu_train")


@pytest.fixture
def broker(tmp_path: Path, gpu_node_train: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInBroker]:
    token = tmp_path / "docker_broker_token"
    token.write_text(TOKEN)
    monkeypatch.setenv("CHALLENGE_DOCKER_BROKER_TOKEN_FILE", str(token))
    settings = Settings(data_dir=tmp_path / "broker-data")
    with StandInBroker(settings, readonly_mounts={MOUNT: gpu_node_train}) as server:
        server.log_limit_bytes = 16 * 1024**2  # CPU jobs drain through the log: the operator raises its cap
        monkeypatch.setenv("CHALLENGE_DOCKER_BACKEND", "broker")
        monkeypatch.setenv("CHALLENGE_DOCKER_BROKER_URL", server.url)
        monkeypatch.setenv("BASE_CHALLENGE_SLUG", SLUG)
        yield server


def _runs(broker: StandInBroker) -> dict[str, dict[str, Any]]:
    return {p["labels"]["prism.phase"]: p for path, _, p in broker.requests if path == "/v1/docker/run"}


def _mount_files(payload: dict[str, Any], target: str) -> dict[str, bytes]:
    (mount,) = [m for m in payload["mounts"] if m["target"] == target]
    return unpack_archive(mount["archive_b64"], max_bytes=1 << 30, max_files=1000)


def _evaluate(settings: Settings, sandbox: Any, work: Path, source: str, *, unreviewed: bool = False) -> Any:
    return evaluate_project(
        Project(files={"model.py": source}),
        settings=settings,
        runtime_config=CONFIG,
        mode="local_cpu_smoke",
        sandbox=sandbox,
        submission_id="mounted",
        work_dir=work,
        unreviewed=unreviewed,
    )


@pytest.mark.sandbox
@pytest.mark.slow
@needs_bwrap
def test_a_broker_run_reads_platforms_mount_and_scores_what_a_staged_run_scores(
    broker: StandInBroker, staged: Path, volumes: dict[str, Path], gpu_node_train: Path, tmp_path: Path
) -> None:
    settings = _platform_settings(staged, volumes, tmp_path / "data")
    mounted = _evaluate(settings, BrokerSandbox(settings), tmp_path / "work-broker", EXAMPLE.read_text())
    assert mounted.decision == "accepted", mounted.to_json()
    runs = _runs(broker)
    assert set(runs) == {"inspect", "train", "heldout"}
    # Train: no copy of the split travels; the spec lists Platform's shards, the broker mounts them.
    assert [m["target"] for m in runs["train"]["mounts"]] == ["/submission", "/job", "/artifacts"]
    spec = json.loads(_mount_files(runs["train"], "/job")[JOB_FILE])
    assert (spec["data_source"], spec["mount_dir"]) == ("mounted", MOUNT)
    assert [s["path"] for s in spec["source_shards"]] == sorted(p.name for p in gpu_node_train.glob("train-*.jsonl"))
    assert f"type=bind,source={gpu_node_train},destination={MOUNT},readonly" in broker.argv[1]
    # Held-out: only the window, in /job; no request ever carries the val split.
    assert [m["target"] for m in runs["heldout"]["mounts"]] == ["/submission", "/job", "/artifacts"]
    job_files = _mount_files(runs["heldout"], "/job")
    assert set(job_files) == {JOB_FILE, "report.key", "weights.safetensors", HELDOUT_WINDOW_FILE}
    dataset = locked_dataset(settings)
    validation = b"".join((dataset.root / s.path).read_bytes() for s in dataset.manifest.split("validation"))
    window = job_files[HELDOUT_WINDOW_FILE]
    assert len(window) == 1024 + 1 < len(validation) and validation.startswith(window)
    tail = validation[len(window) : len(window) + 200]
    for _, _, payload in broker.requests:
        for mount in payload.get("mounts", []):
            files = unpack_archive(mount["archive_b64"], max_bytes=1 << 30, max_files=1000)
            assert not any(name.startswith("val-") for name in files)
            assert not any(tail in data for data in files.values())
    # The same submission staged on bubblewrap scores the same: the tokens are the same bytes.
    staged_run = _evaluate(settings, BubblewrapSandbox(settings), tmp_path / "work-staged", EXAMPLE.read_text())
    assert staged_run.decision == "accepted", staged_run.to_json()
    assert mounted.manifest["metrics"]["bits_per_byte"] == staged_run.manifest["metrics"]["bits_per_byte"]
    assert (
        mounted.manifest["metrics"]["heldout_bits_per_byte"] == staged_run.manifest["metrics"]["heldout_bits_per_byte"]
    )
    assert mounted.manifest["dataset"]["fingerprint"] == staged_run.manifest["dataset"]["fingerprint"]


@pytest.mark.sandbox
@pytest.mark.slow
@needs_bwrap
def test_a_tampered_shard_on_the_node_is_our_failure_never_a_score(
    broker: StandInBroker, staged: Path, volumes: dict[str, Path], gpu_node_train: Path, tmp_path: Path
) -> None:
    settings = _platform_settings(staged, volumes, tmp_path / "data")
    shard = gpu_node_train / "train-00002.jsonl"
    shard.write_bytes(shard.read_bytes().replace(b"model", b"mode1", 1))
    with pytest.raises(HarnessProtocolError, match=re.escape(f"Platform shard train-00002.jsonl under {MOUNT}")):
        _evaluate(settings, BrokerSandbox(settings), tmp_path / "work", EXAMPLE.read_text())


@pytest.mark.sandbox
@pytest.mark.slow
@needs_bwrap
def test_the_model_cannot_read_platforms_mount(
    broker: StandInBroker, staged: Path, volumes: dict[str, Path], tmp_path: Path
) -> None:
    reader = (
        "import torch\nfrom helpers import Tiny\n\n\nclass Reader(Tiny):\n    def forward(self, x):\n"
        f"        torch.from_file({MOUNT + '/train-00000.jsonl'!r}, size=64, dtype=torch.uint8)\n"
        "        return super().forward(x)\n\n\ndef build_model(ctx):\n    return Reader()\n"
    )
    settings = _platform_settings(staged, volumes, tmp_path / "data")
    outcome = evaluate_project(
        Project(files={"model.py": reader, "helpers.py": (HOSTILE / "helpers.py").read_text()}),
        settings=settings,
        runtime_config=CONFIG,
        mode="local_cpu_smoke",
        sandbox=BrokerSandbox(settings),
        submission_id="reader",
        work_dir=tmp_path / "work",
        unreviewed=True,
    )
    assert (outcome.decision, outcome.reason_code) == ("failed", "jail_denied"), outcome.to_json()
    assert "Permission denied" in outcome.detail
