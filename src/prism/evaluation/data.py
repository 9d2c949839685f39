"""Locked data: shards of raw bytes plus a `MANIFEST.json` whose hash is the dataset's fingerprint.

A dataset directory holds `MANIFEST.json` and shard files. The manifest lists every shard with
its split (`train` or `validation`), size and sha256, and a datasheet (Gebru et al.: source and
revision, transformations applied, intended use, license). The fingerprint is the sha256 of the
manifest's bytes, so changing a shard, its split, or the datasheet changes the fingerprint, and
`load_locked_dataset` refuses a shard whose bytes no longer match.

Bytes are tokens (vocab 256), so shards are plain bytes: no tokenizer to trust or version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prism.evaluation.errors import DatasetError

MANIFEST_NAME = "MANIFEST.json"
SCHEMA = "prism.dataset.v1"
Split = Literal["train", "validation"]
SPLITS: tuple[Split, ...] = ("train", "validation")
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Datasheet:
    """Provenance fields every locked dataset carries (Datasheets for Datasets)."""

    name: str
    source: str
    revision: str
    transformations: tuple[str, ...] = ()
    intended_use: str = "PRISM evaluation: prequential bits-per-byte training and held-out scoring"
    license: str = "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "revision": self.revision,
            "transformations": list(self.transformations),
            "intended_use": self.intended_use,
            "license": self.license,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Datasheet:
        try:
            return cls(
                name=str(data["name"]),
                source=str(data["source"]),
                revision=str(data["revision"]),
                transformations=tuple(str(t) for t in data.get("transformations", ())),
                intended_use=str(data["intended_use"]),
                license=str(data["license"]),
            )
        except (KeyError, TypeError) as exc:
            raise DatasetError(f"datasheet is missing a field: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Shard:
    path: str
    split: Split
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "split": self.split, "bytes": self.size, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Shard:
        try:
            path, split, size, digest = str(data["path"]), data["split"], int(data["bytes"]), str(data["sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"malformed shard entry: {exc}") from exc
        if split not in SPLITS:
            raise DatasetError(f"shard {path!r} has unknown split {split!r}")
        # Shard names are plain file names inside the dataset directory: nothing to traverse.
        if "/" in path or "\\" in path or path in ("", ".", "..") or path == MANIFEST_NAME:
            raise DatasetError(f"shard path {path!r} is not a plain file name")
        if len(digest) != 64:
            raise DatasetError(f"shard {path!r} has a malformed sha256")
        return cls(path=path, split=split, size=size, sha256=digest)


@dataclass(frozen=True, slots=True)
class DatasetManifest:
    datasheet: Datasheet
    shards: tuple[Shard, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "datasheet": self.datasheet.to_json(),
            "shards": [shard.to_json() for shard in self.shards],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatasetManifest:
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
            raise DatasetError(f"dataset manifest schema is not {SCHEMA}")
        shards = data.get("shards")
        if not isinstance(shards, list) or not shards:
            raise DatasetError("dataset manifest lists no shards")
        datasheet = data.get("datasheet")
        if not isinstance(datasheet, Mapping):
            raise DatasetError("dataset manifest has no datasheet")
        parsed = tuple(Shard.from_json(item) for item in shards)
        if len({s.path for s in parsed}) != len(parsed):
            raise DatasetError("dataset manifest lists a shard twice")
        return cls(datasheet=Datasheet.from_json(datasheet), shards=parsed)

    def encode(self) -> bytes:
        """The canonical bytes written to MANIFEST.json (sorted keys, fixed separators)."""
        return (json.dumps(self.to_json(), sort_keys=True, indent=2) + "\n").encode("utf-8")

    def split(self, split: Split) -> tuple[Shard, ...]:
        return tuple(shard for shard in self.shards if shard.split == split)

    def split_bytes(self, split: Split) -> int:
        return sum(shard.size for shard in self.split(split))


@dataclass(frozen=True, slots=True)
class LockedDataset:
    """A verified dataset: the fingerprint is the sha256 of MANIFEST.json's bytes."""

    root: Path
    manifest: DatasetManifest
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {"root": str(self.root), "fingerprint": self.fingerprint, "manifest": self.manifest.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LockedDataset:
        """Rebuild a persisted reference and re-verify it against the disk (data may have moved)."""
        dataset = load_locked_dataset(Path(str(data["root"])))
        if dataset.fingerprint != data.get("fingerprint"):
            raise DatasetError(
                f"dataset at {dataset.root} now has fingerprint {dataset.fingerprint}, "
                f"the job was locked to {data.get('fingerprint')}"
            )
        return dataset

    def stage_split(self, split: Split, dest: Path) -> tuple[Shard, ...]:
        """Place only `split`'s shards in `dest` (hard links, or copies across file systems),
        checking each one's sha256 again, so a phase can mount exactly one split."""
        dest.mkdir(parents=True, exist_ok=True)
        shards = self.manifest.split(split)
        if not shards:
            raise DatasetError(f"dataset {self.fingerprint[:12]} has no {split} shards")
        for shard in shards:
            source = self.root / shard.path
            target = dest / shard.path
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            target.chmod(0o444)
            if sha256_file(target) != shard.sha256:
                raise DatasetError(f"shard {shard.path} changed after the dataset was locked")
        return shards


def load_locked_dataset(path: Path) -> LockedDataset:
    """Read MANIFEST.json and verify every shard's size and sha256; `DatasetError` otherwise."""
    manifest_path = path / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"no readable {MANIFEST_NAME} in {path}: {exc.strerror}") from exc
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{manifest_path} is not valid JSON: {exc}") from exc
    manifest = DatasetManifest.from_json(document)
    for shard in manifest.shards:
        shard_path = path / shard.path
        if not shard_path.is_file() or shard_path.is_symlink():
            raise DatasetError(f"shard {shard.path} listed in {MANIFEST_NAME} is missing from {path}")
        if shard_path.stat().st_size != shard.size:
            raise DatasetError(f"shard {shard.path} has {shard_path.stat().st_size} bytes, manifest says {shard.size}")
        if sha256_file(shard_path) != shard.sha256:
            raise DatasetError(f"shard {shard.path} does not match its sha256 in {MANIFEST_NAME}")
    return LockedDataset(root=path, manifest=manifest, fingerprint=hashlib.sha256(raw).hexdigest())


# -- building -------------------------------------------------------------------------------------


def _documents(src: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every document under src: each .txt file is one, each JSONL line's `text` is one."""
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix in (".txt", ".jsonl", ".json"))
    if not files:
        raise DatasetError(f"{src} holds no .txt or .jsonl files")
    for file in files:
        rel = file.relative_to(src).as_posix()
        if file.suffix == ".txt":
            yield rel, file.read_bytes()
            continue
        with file.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{rel}:{number} is not valid JSON: {exc}") from exc
                text = record.get("text") if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise DatasetError(f"{rel}:{number} has no string field 'text'")
                yield f"{rel}:{number}", text.encode("utf-8")


def _split_of(document: bytes, validation_per_mille: int) -> Split:
    # A document's split is a function of its bytes alone: stable under reordering and re-runs.
    bucket = int.from_bytes(hashlib.sha256(document).digest()[:4], "big") % 1000
    return "validation" if bucket < validation_per_mille else "train"


def write_dataset(
    documents: Iterable[bytes],
    out: Path,
    *,
    datasheet: Datasheet,
    validation_fraction: float = 0.1,
    shard_bytes: int = 64 * 1024 * 1024,
) -> DatasetManifest:
    """Write shards and MANIFEST.json for `documents` (joined by a blank line) into an empty `out`."""
    if not 0 < validation_fraction < 1:
        raise DatasetError("validation_fraction must be between 0 and 1")
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty; a locked dataset is never overwritten")
    out.mkdir(parents=True, exist_ok=True)
    per_mille = max(1, round(validation_fraction * 1000))
    buffers: dict[Split, bytearray] = {"train": bytearray(), "validation": bytearray()}
    shards: list[Shard] = []

    def flush(split: Split) -> None:
        data = bytes(buffers[split])
        if not data:
            return
        index = sum(1 for s in shards if s.split == split)
        name = f"{split}-{index:05d}.bin"
        (out / name).write_bytes(data)
        (out / name).chmod(0o444)
        shards.append(Shard(path=name, split=split, size=len(data), sha256=hashlib.sha256(data).hexdigest()))
        buffers[split] = bytearray()

    for document in documents:
        split = _split_of(document, per_mille)
        buffers[split] += document + b"\n\n"
        if len(buffers[split]) >= shard_bytes:
            flush(split)
    for split in SPLITS:
        flush(split)
    for split in SPLITS:
        if not any(s.split == split for s in shards):
            raise DatasetError(f"the source produced no {split} documents; add more documents")
    manifest = DatasetManifest(datasheet=datasheet, shards=tuple(shards))
    (out / MANIFEST_NAME).write_bytes(manifest.encode())
    return manifest


def build_dataset(
    src: Path,
    out: Path,
    *,
    datasheet: Datasheet,
    validation_fraction: float = 0.1,
    shard_bytes: int = 64 * 1024 * 1024,
) -> DatasetManifest:
    """Lock a folder of .txt / .jsonl documents into `out` (which must be empty or absent)."""
    if not src.is_dir():
        raise DatasetError(f"{src} is not a directory")
    transformations = (
        *datasheet.transformations,
        "documents: each .txt file, each JSONL line's 'text' field (UTF-8), sorted by path",
        "documents joined by a blank line; bytes are tokens",
        f"split by sha256 of each document: {validation_fraction:.3f} validation",
    )
    sheet = Datasheet(
        name=datasheet.name,
        source=datasheet.source,
        revision=datasheet.revision,
        transformations=transformations,
        intended_use=datasheet.intended_use,
        license=datasheet.license,
    )
    return write_dataset(
        (doc for _, doc in _documents(src)),
        out,
        datasheet=sheet,
        validation_fraction=validation_fraction,
        shard_bytes=shard_bytes,
    )


def ensure_fixture_dataset(path: Path) -> LockedDataset:
    """The embedded default: build the synthetic fixture corpus on first use, verify it after.

    An existing but altered directory is an error, never silently regenerated: that would hide
    tampering with the data a score was computed on.
    """
    from prism.evaluation.fixture import FIXTURE_DATASHEET, fixture_documents

    if not (path / MANIFEST_NAME).exists():
        if path.exists() and any(path.iterdir()):
            raise DatasetError(f"{path} exists, is not empty, and holds no {MANIFEST_NAME}")
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fixture-", dir=path.parent))
        try:
            write_dataset(fixture_documents(), staging, datasheet=FIXTURE_DATASHEET, validation_fraction=0.1)
            staging.chmod(0o755)
            if path.exists():
                path.rmdir()
            staging.rename(path)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    return load_locked_dataset(path)
