"""A small HTTP client for the bridge and status routes, shared by `submit`, `status` and `demo`."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import typer

WAITING = ("pending", "running")


class PrismClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise typer.BadParameter(f"PRISM answered {response.status_code} without JSON") from exc
        if response.status_code >= 400:
            error = body.get("error", {})
            raise typer.BadParameter(f"PRISM answered {response.status_code}: {error.get('message', body)}")
        return body

    def submit(self, data: bytes, filename: str, hotkey: str) -> dict[str, Any]:
        headers = {
            "X-Base-Verified-Hotkey": hotkey,
            "X-Submission-Filename": filename,
            "Content-Type": "application/octet-stream",
        }
        return self._json(self.http.post("/internal/v1/bridge/submissions", headers=headers, content=data))

    def public(self, submission_id: str) -> dict[str, Any]:
        return self._json(self.http.get(f"/v1/submissions/{submission_id}"))

    def full(self, submission_id: str) -> dict[str, Any]:
        return self._json(self.http.get(f"/internal/v1/submissions/{submission_id}"))

    def wait(
        self,
        submission_id: str,
        *,
        on_change: Callable[[dict[str, Any]], None],
        timeout: float = 3600,
        poll: float = 1.0,
    ) -> dict[str, Any]:
        last: tuple[str, str | None] | None = None
        deadline = time.monotonic() + timeout
        while True:
            view = self.public(submission_id)
            key = (view["status"], view.get("stage"))
            if key != last:
                on_change(view)
                last = key
            if view["status"] not in WAITING or time.monotonic() > deadline:
                return view
            time.sleep(poll)


def zip_project(path: Path) -> tuple[bytes, str]:
    """A folder becomes a ZIP in memory; a .zip or .py is sent as it is."""
    if path.is_dir():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                archive.write(file, file.relative_to(path).as_posix())
        return buffer.getvalue(), f"{path.name or 'project'}.zip"
    if path.suffix in (".zip", ".py"):
        return path.read_bytes(), path.name
    raise typer.BadParameter(f"{path} is not a folder, a .zip or a .py file")


def print_journey(view: dict[str, Any]) -> None:
    typer.echo(f"\nsubmission {view['id']}  hotkey {view['hotkey']}")
    typer.echo(f"status     {view['status']}" + (f"  ({view['reason_code']})" if view.get("reason_code") else ""))
    if view.get("reason"):
        typer.echo(f"reason     {view['reason']}")
    typer.echo("journey:")
    for stage in view.get("stages", []):
        typer.echo(f"  {stage['stage']:<18} {stage['outcome']:<11} {stage.get('detail') or ''}")
        for item in stage.get("evidence", []):
            typer.echo(
                f"      ! [{item['rule_id']}] {item['path']}:{item['line']}  {item['explanation']}"
                f"  (snippet sha256 {item['snippet_sha256'][:12] or '-'})"
            )
    scores = view.get("scores")
    if scores:
        typer.echo(
            f"scores     final {scores['final_score']:.4f}  bits/byte {scores['bits_per_byte']:.4f}  "
            f"held-out {scores['heldout_bits_per_byte']:.4f}  mode {scores['mode']}  "
            f"score-eligible {scores['score_eligible']}"
        )
