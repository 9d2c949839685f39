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
`validation`, in manifest order), whose fingerprint covers the pin in its datasheet, and keeps
Platform's manifest beside it (`SOURCE_MANIFEST`), so that a train phase can read the train split
from Platform's own read-only mount instead of a staged copy: the recorder converts each shard
with `jsonl_stream`, the very function used here, so the tokens are the same bytes
(docs/evaluation.md, "Where the data come from").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
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
# Platform's manifest, verbatim, beside the PRISM dataset locked from it (not in its fingerprint:
# a train phase that reads Platform's mount checks the bytes it builds against PRISM's shards).
SOURCE_MANIFEST = "PLATFORM_MANIFEST.json"
DOCUMENT_SEPARATOR = b"\n\n"
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
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc
    return read_platform_manifest_bytes(raw, str(path))


def read_platform_manifest_bytes(raw: bytes, path: str) -> PlatformManifest:
    try:
        document: Any = json.loads(raw)
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


def find_shard(root: Path, shard: PlatformShard, split_dir: Path | None = None) -> Path:
    """The shard under the prep root (`<root>/<split>/<name>`), in a flat split volume (`<root>/<name>`),
    or, where the split has a volume of its own (Platform's `/secret/val`), in `split_dir`."""
    candidates = (split_dir / shard.name,) if split_dir is not None else (root / shard.path, root / shard.name)
    for candidate in candidates:
        if candidate.is_file() and not candidate.is_symlink():
            return candidate
    raise DatasetError(f"listed shard {shard.path} is missing under {split_dir or root}")


def verify_platform_dataset(
    root: Path,
    *,
    pin: str = FINEWEB_EDU_PIN,
    manifest: Path | None = None,
    splits: tuple[str, ...] = ("train", "val"),
    split_dirs: Mapping[str, Path] | None = None,
) -> PlatformManifest:
    """The manifest, after the pin and every shard of `splits` checked; `DatasetError` naming every problem.

    `split_dirs` maps a split to the flat volume that holds it, where the splits are not under `root`.
    """
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
                path = find_shard(root, shard, (split_dirs or {}).get(split))
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


def _texts(raw: bytes, label: str) -> Iterator[bytes]:
    """Each JSONL line's `text` as UTF-8, in line order (lines split on LF only, as a file reads)."""
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{label}:{number} is not valid JSON") from exc
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise DatasetError(f"{label}:{number} has no string field 'text'")
        try:
            yield text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate escaped in the JSON
            raise DatasetError(f"{label}:{number} has text that is not valid Unicode") from exc


def jsonl_stream(raw: bytes, label: str) -> bytes:
    """The tokens of one Platform shard: every document's text, each followed by a blank line.

    The one conversion from Platform's JSONL to bytes: locking (`lock_platform_dataset`) and the
    recorder reading Platform's train mount (`phases.load_split`) both call it, so both see the
    same bytes. `raw` is the shard as read once and verified, never read again from disk.
    """
    return b"".join(text + DOCUMENT_SEPARATOR for text in _texts(raw, label))


def _write_shard(out: Path, split: Split, written: list[Shard], data: bytearray) -> Shard:
    name = f"{split}-{sum(1 for s in written if s.split == split):05d}.bin"
    (out / name).write_bytes(bytes(data))
    (out / name).chmod(0o444)
    return Shard(path=name, split=split, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def lock_platform_dataset(
    root: Path,
    out: Path,
    *,
    pin: str = FINEWEB_EDU_PIN,
    manifest: Path | None = None,
    split_dirs: Mapping[str, Path] | None = None,
) -> LockedDataset:
    """Verify Platform's layout under `root` (or in `split_dirs`), then write PRISM's locked dataset
    into an empty `out`, with Platform's manifest kept beside it as `SOURCE_MANIFEST`."""
    manifest_path = manifest or root / MANIFEST_NAME
    parsed = verify_platform_dataset(root, pin=pin, manifest=manifest_path, split_dirs=split_dirs)
    source = manifest_path.read_bytes()
    if read_platform_manifest_bytes(source, str(manifest_path)) != parsed:
        raise DatasetError(f"{manifest_path} changed while it was being locked")
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty; a locked dataset is never overwritten")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Shard] = []
    for source_split, split in SPLIT_NAMES.items():
        buffer = bytearray()
        for shard in parsed.splits[source_split]:
            raw = find_shard(root, shard, (split_dirs or {}).get(source_split)).read_bytes()
            if len(raw) != shard.size or hashlib.sha256(raw).hexdigest() != shard.sha256:
                raise DatasetError(f"shard {shard.path} changed while it was being locked")
            for text in _texts(raw, shard.path):  # the bytes just verified, never read again
                buffer += text + DOCUMENT_SEPARATOR
                if len(buffer) >= _SHARD_BYTES:
                    written.append(_write_shard(out, split, written, buffer))
                    buffer = bytearray()
        if buffer:
            written.append(_write_shard(out, split, written, buffer))
        if not any(s.split == split for s in written):
            raise DatasetError(f"Platform's {source_split} split holds no documents")
    sheet = platform_datasheet(parsed)
    (out / MANIFEST_NAME).write_bytes(DatasetManifest(datasheet=sheet, shards=tuple(written)).encode())
    _keep_source(out, source)
    return load_locked_dataset(out)


def platform_datasheet(parsed: PlatformManifest) -> Datasheet:
    """The datasheet of the PRISM dataset locked from `parsed` (part of its fingerprint)."""
    return Datasheet(
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


def _keep_source(out: Path, source: bytes) -> None:
    target = out / SOURCE_MANIFEST
    if target.is_file() and not target.is_symlink() and target.read_bytes() == source:
        return
    target.unlink(missing_ok=True)
    target.write_bytes(source)
    target.chmod(0o444)


def platform_source(dataset: LockedDataset) -> PlatformManifest | None:
    """Platform's manifest a dataset was locked from, or None (built by PRISM, or locked before
    the manifest was kept). Its pin must be the dataset's revision; its shard list is trusted no
    further: the recorder checks what it builds from the shards against the dataset's own."""
    path = dataset.root / SOURCE_MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    parsed = read_platform_manifest(path)
    if parsed.pin_sha != dataset.manifest.datasheet.revision:
        revision = dataset.manifest.datasheet.revision
        raise DatasetError(f"{path} is pinned to {parsed.pin_sha}, the dataset to {revision}")
    return parsed


def platform_dataset(
    root: Path,
    cache: Path,
    *,
    pin: str = FINEWEB_EDU_PIN,
    manifest: Path | None = None,
    split_dirs: Mapping[str, Path] | None = None,
) -> LockedDataset:
    """PRISM's locked dataset for Platform's layout at `root` (or its split volumes), converted once
    into `cache` and re-verified against the source manifest's bytes on every call."""
    manifest_path = manifest or root / MANIFEST_NAME
    try:
        source = manifest_path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read Platform's manifest {manifest_path}: {exc.strerror}") from exc
    key = hashlib.sha256(source + pin.encode()).hexdigest()[:16]
    out = cache / f"platform-{key}"
    if (out / MANIFEST_NAME).is_file():
        verify_platform_dataset(root, pin=pin, manifest=manifest_path, split_dirs=split_dirs)
        _keep_source(out, source)  # datasets locked before the manifest was kept gain it here
        return load_locked_dataset(out)
    return lock_platform_dataset(root, out, pin=pin, manifest=manifest_path, split_dirs=split_dirs)
