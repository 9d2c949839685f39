"""A small HTTP client for `submit`, `status`, `demo` and the remote operator commands.

Every way a request can go wrong ends as one `CliFailure` line with an exit status that means
something, never a traceback or click's "Invalid value" banner:

| exit | meaning |
| --- | --- |
| 0 | completed (or, without `--wait`, stored) |
| 1 | PRISM could not be reached, or answered with an error |
| 2 | usage error |
| 3 | rejected |
| 4 | quarantined or held (waiting for an operator or a retry) |
| 5 | failed |
| 6 | `--wait` gave up (`--timeout`) while the submission was still pending or running |
"""

from __future__ import annotations

import functools
import io
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import httpx
import typer

P = ParamSpec("P")
R = TypeVar("R")
WAITING = ("pending", "running")
EXIT_COMPLETED = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_WAITING_FOR_OPERATOR = 4
EXIT_FAILED = 5
EXIT_TIMEOUT = 6
EXIT_BY_STATUS = {
    "completed": EXIT_COMPLETED,
    "rejected": EXIT_REJECTED,
    "quarantined": EXIT_WAITING_FOR_OPERATOR,
    "held": EXIT_WAITING_FOR_OPERATOR,
    "failed": EXIT_FAILED,
}


class CliFailure(Exception):
    """One line on stderr, a meaningful exit status, no usage banner (see `reports_failures`)."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def reports_failures(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so a `CliFailure` prints `prism: <message>` and exits with its status.

    (Typer renders its own exceptions as a boxed panel with a usage banner, which reads as "you
    typed it wrong" when PRISM is down or answered an error.)
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliFailure as exc:
            typer.echo(f"prism: {exc.message}", err=True)
            raise typer.Exit(exc.exit_code) from exc

    return run


def exit_code_for(status: str) -> int:
    """The exit status a final (or still waiting) submission state means."""
    return EXIT_BY_STATUS.get(status, EXIT_TIMEOUT)


class PrismClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise CliFailure(f"cannot reach PRISM at {self.url}: is it running? (`prism up` starts one)") from exc
        except httpx.TimeoutException as exc:
            raise CliFailure(f"PRISM at {self.url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise CliFailure(f"request to PRISM at {self.url} failed: {exc}") from exc
        return self._json(response)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                raise CliFailure(
                    f"PRISM answered {response.status_code} {error.get('code', 'error')}: {error.get('message', '')}"
                )
            raise CliFailure(f"PRISM answered {response.status_code}: {response.text[:200]}")
        if not isinstance(body, dict):
            raise CliFailure(f"PRISM answered {response.status_code} without a JSON object")
        return body

    def submit(self, data: bytes, filename: str, hotkey: str) -> dict[str, Any]:
        headers = {
            "X-Base-Verified-Hotkey": hotkey,
            "X-Submission-Filename": filename,
            "Content-Type": "application/octet-stream",
        }
        return self.request("POST", "/internal/v1/bridge/submissions", headers=headers, content=data)

    def public(self, submission_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/submissions/{submission_id}")

    def full(self, submission_id: str) -> dict[str, Any]:
        return self.request("GET", f"/internal/v1/submissions/{submission_id}")

    def curve(self, submission_id: str, *, after: int = -1) -> dict[str, Any]:
        """The training curve: live (advisory) points with `seq` > `after`, the signed one once final."""
        return self.request("GET", f"/v1/submissions/{submission_id}/curve", params={"after": after})

    def wait(
        self,
        submission_id: str,
        *,
        on_view: Callable[[dict[str, Any]], None],
        timeout: float | None = None,
        poll: float = 1.0,
        full: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Poll until the submission leaves pending/running; (last view, timed out)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            view = self.full(submission_id) if full else self.public(submission_id)
            on_view(view)
            if view["status"] not in WAITING:
                return view, False
            if deadline is not None and time.monotonic() >= deadline:
                return view, True
            time.sleep(poll)


# Left out of a folder upload: version control, caches, editor and OS litter. Intake would
# refuse most of them (`archive.unsupported_suffix`), and none belongs to the model.
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "venv", "env", "build", "dist"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".swp", "~")
_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    filename: str
    skipped: tuple[str, ...] = ()


def _skipped(relative: Path) -> bool:
    parts = relative.parts
    if any(part.startswith(".") for part in parts):  # .git/, .gitignore, .venv/, .DS_Store, .mypy_cache/
        return True
    if any(part in _SKIPPED_DIRS or part.endswith(".egg-info") for part in parts):
        return True
    return relative.name.endswith(_SKIPPED_SUFFIXES)


def upload_filename(name: str, suffix: str) -> str:
    """A name the bridge accepts (letters, digits, `._-`, starting with one of the first two)."""
    stem = _FILENAME_CHARS.sub("-", name).strip("-._")[: 127 - len(suffix)] or "project"
    return f"{stem}{suffix}"


def zip_project(path: Path) -> Upload:
    """A folder becomes a ZIP in memory (without VCS and cache files); a .zip or .py goes as it is."""
    if path.is_dir():
        buffer = io.BytesIO()
        skipped: list[str] = []
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                if file.is_symlink() or _skipped(relative):
                    if not any(relative.as_posix().startswith(s + "/") for s in skipped):
                        skipped.append(relative.as_posix())
                    continue
                if file.is_file():
                    archive.write(file, relative.as_posix())
        return Upload(buffer.getvalue(), upload_filename(path.resolve().name, ".zip"), tuple(skipped))
    if path.suffix in (".zip", ".py"):
        return Upload(path.read_bytes(), upload_filename(path.stem, path.suffix))
    raise CliFailure(f"{path} is not a folder, a .zip or a .py file", EXIT_USAGE)


_SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 48) -> str:
    if not values:
        return ""
    stride = max(1, -(-len(values) // width))
    points = values[::stride]
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    return "".join(_SPARKS[min(len(_SPARKS) - 1, int((v - low) / span * (len(_SPARKS) - 1)))] for v in points)


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Prints what a waiting person needs: the stage running now, time in it, the training curve.

    While training runs, each live point the recorder reported (`curve`, the curve route) is
    printed as it arrives, marked unverified: only the curve of the signed report, printed once
    training ends, counts. Where no live points come (the Platform broker returns a job's output
    only when it ends), a "still at it" line every `tick_seconds` says the run goes on.
    """

    def __init__(
        self,
        echo: Callable[[str], None],
        *,
        tick_seconds: float = 30.0,
        curve: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        self.echo = echo
        self.tick_seconds = tick_seconds
        self.curve = curve
        self.key: tuple[str, str | None, int | None] | None = None
        self.since = time.monotonic()
        self.last_tick = self.since
        self.curve_shown = False
        self.last_seq = -1
        self.live: list[float] = []

    def __call__(self, view: dict[str, Any]) -> None:
        now = time.monotonic()
        running = view.get("running_stage")
        key = (view["status"], running, view.get("queue_position"))
        changed = key != self.key
        if changed:
            self.key, self.since, self.last_tick = key, now, now
            if view["status"] == "pending":
                where = f"queue position {view['queue_position']}" if view.get("queue_position") else "queued"
                self.echo(f"  pending     {where}")
            elif view["status"] == "running":
                self.echo(f"  running     {running or ''}")
            else:
                self.echo(f"  {view['status']:<11} {view.get('reason_code') or ''}")
        if running == "train" and self._live_points():
            self.last_tick = now
        elif not changed and view["status"] in WAITING and now - self.last_tick >= self.tick_seconds:
            self.last_tick = now
            self.echo(f"  {view['status']:<11} {running or ''}  still at it after {_elapsed(now - self.since)}")
        self._curve(view)

    def _live_points(self) -> bool:
        """Print the live points that arrived since the last poll; True if there were any."""
        if self.curve is None:
            return False
        points = [p for p in self.curve(self.last_seq).get("live_points") or [] if p.get("seq", -1) > self.last_seq]
        for point in points:
            self.last_seq = int(point["seq"])
            self.live.append(float(point["bits_per_byte"]))
            self.echo(
                f"  train       step {point['step']:,}/{point['steps']:,}  {point['tokens']:,} tokens  "
                f"{point['bits_per_byte']:.3f} bits/byte (mean {point['mean_bits_per_byte']:.3f})  "
                f"{sparkline(self.live, 24)}  live, unverified"
            )
        return bool(points)

    def _curve(self, view: dict[str, Any]) -> None:
        if self.curve_shown:
            return
        for stage in view.get("stages") or []:
            curve = (stage.get("data") or {}).get("loss_curve") if stage.get("stage") == "train" else None
            if curve:
                self.curve_shown = True
                self.echo(
                    f"  training curve, bits/byte per step (signed report): {sparkline(curve)}  "
                    f"{curve[0]:.3f} → {curve[-1]:.3f}"
                )
                if stage.get("detail"):
                    self.echo(f"  train       {stage['detail']}")


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
        if not scores["score_eligible"]:
            typer.echo(
                "           (a non-scoring smoke run: no weight, no leaderboard; docs/miners.md says how to get"
                " a scored run)"
            )
