"""Platform's staged FineWeb-Edu splits read as a locked dataset: pin and every shard verified.

Platform stages the data the reference evaluator's `evaluator/dataset.py` writes:

    MANIFEST.json   {"schema_version": "prism_locked_data.v1",
                     "dataset": {"name", "pin_sha", "license", ...},
                     "splits": {"train": {"shards": [{"path", "sha256", "bytes", "doc_count", ...}], ...},
                                "val": {...}, "test": {...}}}
    train/train-00000.jsonl ...   one JSON document per line: {"id", "text", ...}
    val/val-00000.jsonl ...

and copies each split *flat* into its own volume (`<split>-*.jsonl` at the volume root, without
the manifest): the train volume is what evaluation containers see at /data/fineweb-edu/train,
the val volume only the scorer's host (/secret/val). `find_shard` accepts both: the prep root
(`<root>/<split>/<name>`) and a flat directory (`<root>/<name>`) with the manifest given apart.

Nothing is trusted before it is checked: the pinned revision must be the one the operator
expects, each listed shard must exist with its byte count and sha256, and no unlisted
`<split>-*.jsonl` may sit beside them. Any mismatch refuses the whole dataset.

`lock_platform_dataset` then writes PRISM's own locked dataset (bytes are tokens: each document's
`text` as UTF-8, joined by a blank line, Platform's train split as `train` and its `val` split as
`validation`, in manifest order), whose fingerprint covers the pin in its datasheet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prism.evaluation.data import (
    MANIFEST_NAME,
    DatasetManifest,
    Datasheet,
    LockedDataset,
    Shard,
    Split,
    load_locked_dataset,
    sha256_file,
)
from prism.evaluation.errors import DatasetError

PLATFORM_SCHEMA = "prism_locked_data.v1"
# The immutable HuggingFace commit Platform's reference evaluator pins (not a moving tag).
FINEWEB_EDU_PIN = "87f09149ef4734204d70ed1d046ddc9ca3f2b8f9"
# Platform's split names -> PRISM's. `test` is never read: it stays held back by Platform.
SPLIT_NAMES: dict[str, Split] = {"train": "train", "val": "validation"}
_SHARD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PlatformShard:
    path: str  # as listed, e.g. "train/train-00000.jsonl"
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class PlatformManifest:
    pin_sha: str
    name: str
    license: str
    splits: dict[str, tuple[PlatformShard, ...]]


def is_platform_layout(root: Path) -> bool:
    """Whether `root` holds a MANIFEST.json in Platform's schema (not PRISM's)."""
    try:
        document = json.loads((root / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("schema_version") == PLATFORM_SCHEMA


def _shard(split: str, item: object) -> PlatformShard:
    if not isinstance(item, dict):
        raise DatasetError(f"split {split!r} lists a shard that is not an object")
    try:
        path, digest, size = str(item["path"]), str(item["sha256"]), int(item["bytes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"split {split!r} lists a malformed shard: {exc}") from exc
    name = path.rsplit("/", 1)[-1]
    parts = path.split("/")
    if ".." in parts or path.startswith("/") or not name.startswith(f"{split}-") or not name.endswith(".jsonl"):
        raise DatasetError(f"shard path {path!r} is not {split}/{split}-*.jsonl")
    if len(digest) != 64 or size < 0:
        raise DatasetError(f"shard {path!r} has a malformed sha256 or byte count")
    return PlatformShard(path=path, sha256=digest, size=size)


def read_platform_manifest(path: Path) -> PlatformManifest:
    try:
        document: Any = json.loads(path.read_bytes())
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("schema_version") != PLATFORM_SCHEMA:
        raise DatasetError(f"{path} is not a {PLATFORM_SCHEMA} manifest")
    dataset, splits = document.get("dataset"), document.get("splits")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("pin_sha"), str):
        raise DatasetError(f"{path} has no dataset.pin_sha")
    if not isinstance(splits, dict):
        raise DatasetError(f"{path} has no splits")
    parsed: dict[str, tuple[PlatformShard, ...]] = {}
    for split, body in splits.items():
        shards = body.get("shards") if isinstance(body, dict) else None
        if not isinstance(shards, list):
            raise DatasetError(f"split {split!r} in {path} has no shard list")
        parsed[str(split)] = tuple(_shard(str(split), item) for item in shards)
    return PlatformManifest(
        pin_sha=dataset["pin_sha"],
        name=str(dataset.get("name", "HuggingFaceFW/fineweb-edu")),
        license=str(dataset.get("license", "unknown")),
        splits=parsed,
    )


def find_shard(root: Path, shard: PlatformShard) -> Path:
    """The shard under the prep root (`<root>/<split>/<name>`) or in a flat split volume (`<root>/<name>`)."""
    for candidate in (root / shard.path, root / shard.name):
        if candidate.is_file() and not candidate.is_symlink():
            return candidate
    raise DatasetError(f"listed shard {shard.path} is missing under {root}")


def verify_platform_dataset(
    root: Path, *, pin: str = FINEWEB_EDU_PIN, manifest: Path | None = None, splits: tuple[str, ...] = ("train", "val")
) -> PlatformManifest:
    """The manifest, after the pin and every shard of `splits` checked; `DatasetError` naming every problem."""
    parsed = read_platform_manifest(manifest or root / MANIFEST_NAME)
    problems: list[str] = []
    if parsed.pin_sha != pin:
        problems.append(f"pinned revision {parsed.pin_sha!r} is not the expected {pin!r}")
    for split in splits:
        shards = parsed.splits.get(split)
        if not shards:
            problems.append(f"split {split!r} lists no shards")
            continue
        listed: set[Path] = set()
        for shard in shards:
            try:
                path = find_shard(root, shard)
            except DatasetError as exc:
                problems.append(str(exc))
                continue
            listed.add(path.resolve())
            size = path.stat().st_size
            if size != shard.size:
                problems.append(f"shard {shard.path} has {size} bytes, the manifest says {shard.size}")
            elif sha256_file(path) != shard.sha256:
                problems.append(f"shard {shard.path} does not match its sha256")
        for folder in {p.parent for p in listed}:
            for extra in sorted(folder.glob(f"{split}-*.jsonl")):
                if extra.resolve() not in listed:
                    problems.append(f"unlisted shard {extra.name} beside the {split} split")
    if problems:
        raise DatasetError("Platform's locked dataset is refused: " + "; ".join(problems))
    return parsed


def _texts(path: Path, label: str) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise DatasetError(f"{label}:{number} is not valid JSON") from exc
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise DatasetError(f"{label}:{number} has no string field 'text'")
            yield text.encode("utf-8")


def _write_shard(out: Path, split: Split, written: list[Shard], data: bytearray) -> Shard:
    name = f"{split}-{sum(1 for s in written if s.split == split):05d}.bin"
    (out / name).write_bytes(bytes(data))
    (out / name).chmod(0o444)
    return Shard(path=name, split=split, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def lock_platform_dataset(
    root: Path, out: Path, *, pin: str = FINEWEB_EDU_PIN, manifest: Path | None = None
) -> LockedDataset:
    """Verify Platform's layout under `root`, then write PRISM's locked dataset into an empty `out`."""
    parsed = verify_platform_dataset(root, pin=pin, manifest=manifest)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty; a locked dataset is never overwritten")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Shard] = []
    for source_split, split in SPLIT_NAMES.items():
        buffer = bytearray()
        for shard in parsed.splits[source_split]:
            path = find_shard(root, shard)
            if sha256_file(path) != shard.sha256:  # read again: it must not change between check and use
                raise DatasetError(f"shard {shard.path} changed while it was being locked")
            for text in _texts(path, shard.path):
                buffer += text + b"\n\n"
                if len(buffer) >= _SHARD_BYTES:
                    written.append(_write_shard(out, split, written, buffer))
                    buffer = bytearray()
        if buffer:
            written.append(_write_shard(out, split, written, buffer))
        if not any(s.split == split for s in written):
            raise DatasetError(f"Platform's {source_split} split holds no documents")
    sheet = Datasheet(
        name=f"{parsed.name} (Platform locked splits)",
        source=f"{parsed.name}@{parsed.pin_sha}",
        revision=parsed.pin_sha,
        transformations=(
            f"Platform's {PLATFORM_SCHEMA} splits, verified: pin and every shard's sha256",
            "train -> train, val -> validation; test not read",
            "each JSONL line's 'text' as UTF-8, in manifest then line order, joined by a blank line; bytes are tokens",
        ),
        license=parsed.license,
    )
    (out / MANIFEST_NAME).write_bytes(DatasetManifest(datasheet=sheet, shards=tuple(written)).encode())
    return load_locked_dataset(out)


def platform_dataset(root: Path, cache: Path, *, pin: str = FINEWEB_EDU_PIN) -> LockedDataset:
    """PRISM's locked dataset for Platform's layout at `root`, converted once into `cache` and
    re-verified against the source manifest's bytes on every call."""
    source = (root / MANIFEST_NAME).read_bytes()
    key = hashlib.sha256(source + pin.encode()).hexdigest()[:16]
    out = cache / f"platform-{key}"
    if (out / MANIFEST_NAME).is_file():
        verify_platform_dataset(root, pin=pin)
        return load_locked_dataset(out)
    return lock_platform_dataset(root, out, pin=pin)
