"""`prism data build SRC OUT`: lock a folder of text or JSONL into a verified dataset.

`prism data lock SRC OUT`: lock Platform's staged FineWeb-Edu splits (verified pin and shards).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prism.cli import app
from prism.evaluation.data import Datasheet, build_dataset, load_locked_dataset
from prism.evaluation.errors import DatasetError
from prism.evaluation.platform_data import FINEWEB_EDU_PIN, lock_platform_dataset

data_app = typer.Typer(no_args_is_help=True, help="Build and verify locked datasets.")
app.add_typer(data_app, name="data")


@data_app.command("build")
def build(
    src: Annotated[Path, typer.Argument(help="folder of .txt files and/or .jsonl files with a 'text' field")],
    out: Annotated[Path, typer.Argument(help="empty or absent output directory")],
    name: Annotated[str, typer.Option(help="datasheet: dataset name")] = "",
    source: Annotated[str, typer.Option(help="datasheet: where the text came from")] = "",
    revision: Annotated[str, typer.Option(help="datasheet: source revision or snapshot")] = "unversioned",
    license: Annotated[str, typer.Option(help="datasheet: license of the text")] = "unknown",
    intended_use: Annotated[str, typer.Option(help="datasheet: intended use")] = "PRISM evaluation",
    validation_fraction: Annotated[float, typer.Option(help="share of documents held out")] = 0.1,
) -> None:
    """Write shards and MANIFEST.json; print the fingerprint (sha256 of the manifest)."""
    sheet = Datasheet(
        name=name or src.name,
        source=source or str(src),
        revision=revision,
        intended_use=intended_use,
        license=license,
    )
    try:
        build_dataset(src, out, datasheet=sheet, validation_fraction=validation_fraction)
        dataset = load_locked_dataset(out)
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"fingerprint: {dataset.fingerprint}")
    for split in ("train", "validation"):
        typer.echo(f"{split}: {dataset.manifest.split_bytes(split):,} bytes")


@data_app.command("lock")
def lock(
    src: Annotated[Path, typer.Argument(help="Platform's locked-data root (MANIFEST.json, train/, val/)")],
    out: Annotated[Path, typer.Argument(help="empty or absent output directory")],
    pin: Annotated[str, typer.Option(help="the revision the data must be pinned to")] = FINEWEB_EDU_PIN,
    manifest: Annotated[
        Path | None, typer.Option(help="Platform's MANIFEST.json when SRC is a flat split volume without one")
    ] = None,
) -> None:
    """Verify the pin and every shard's sha256, refuse on any mismatch, write a PRISM dataset."""
    try:
        dataset = lock_platform_dataset(src, out, pin=pin, manifest=manifest)
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"fingerprint: {dataset.fingerprint}")
    typer.echo(f"revision: {dataset.manifest.datasheet.revision}")
    for split in ("train", "validation"):
        typer.echo(f"{split}: {dataset.manifest.split_bytes(split):,} bytes")
