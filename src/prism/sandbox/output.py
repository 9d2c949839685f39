"""Capture a job's stdout and stderr without letting it fill the host's memory.

Only the tail of each stream is kept (a job's last words are the useful ones: the traceback,
the final metrics line); memory stays bounded however much the job writes. Known secrets are
redacted from what is kept. The stream is read while the job runs, so a job can never block on a
full pipe and a timeout is never hidden behind one.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Iterable

from prism.sandbox.artifacts import ArtifactReadback
from prism.sandbox.spec import RunResult

REDACTED = "[REDACTED]"
_CHUNK = 1 << 20


class TailBuffer:
    """The last `cap` bytes of a stream, plus how many bytes went by."""

    def __init__(self, cap: int, *, slack: int = 0, tap: Callable[[bytes], None] | None = None) -> None:
        # `slack` keeps a few extra bytes so a secret straddling the cut is still seen whole.
        # `tap` sees every chunk whole, as it arrives (`RunSpec.stdout_tap`).
        self.cap = cap
        self.tap = tap
        self.keep = cap + slack
        self.total = 0
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self.tap is not None:
            self.tap(chunk)
        self.total += len(chunk)
        if len(chunk) >= self.keep:
            self._data[:] = chunk[-self.keep :]
            return
        self._data += chunk
        if len(self._data) > 2 * self.keep:
            del self._data[: len(self._data) - self.keep]

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def text(self, secrets: Iterable[str] = ()) -> str:
        data = bytes(self._data[-self.keep :])
        text = redact(data.decode("utf-8", errors="replace"), secrets)
        if self.total > self.cap:
            text = text[-self.cap :]
            text = f"[... {self.total - len(text.encode('utf-8', errors='replace'))} bytes cut ...]\n" + text
        return text


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def pump(
    streams: dict[int, TailBuffer],
    *,
    deadline: float,
    done: Callable[[], bool],
    grace: float = 2.0,
) -> bool:
    """Read every fd into its buffer until all reach EOF. Returns True if `deadline` passed first.

    After `done()` turns true (the job's leader exited) the remaining writers get `grace` seconds;
    they are killed by the caller's cgroup sweep either way.
    """
    selector = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    finished_at: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                return True
            if finished_at is None and done():
                finished_at = now
            if finished_at is not None and now - finished_at > grace:
                return False
            for key, _ in selector.select(timeout=min(0.1, max(0.0, deadline - now))):
                fd = int(key.fd)
                try:
                    chunk = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if chunk:
                    streams[fd].feed(chunk)
                else:
                    selector.unregister(fd)
        return False
    finally:
        selector.close()


def build_result(
    *,
    backend: str,
    exit_code: int | None,
    timed_out: bool,
    oom_killed: bool,
    out: TailBuffer,
    err: TailBuffer,
    secrets: Iterable[str],
    duration: float,
    readback: ArtifactReadback | None,
    peak_memory_bytes: int | None = None,
    skipped: tuple[str, ...] = (),
) -> RunResult:
    """The one way every backend turns what it observed into a `RunResult` (tails redacted)."""
    secrets = tuple(secrets)
    return RunResult(
        exit_code=None if timed_out else exit_code,
        timed_out=timed_out,
        oom_killed=oom_killed,
        stdout=out.text(secrets),
        stderr=err.text(secrets),
        duration_seconds=duration,
        peak_memory_bytes=peak_memory_bytes,
        artifacts=readback.files if readback else {},
        artifacts_left_on_disk=readback.left_on_disk if readback else (),
        artifacts_skipped=skipped + (readback.skipped if readback else ()),
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        backend=backend,
    )


def feed_stdin(proc: subprocess.Popen[bytes], data: bytes, reply: Callable[[], bytes] | None = None) -> None:
    """Write the job's stdin, then close it; with `reply` (`RunSpec.stdin_reply`), first what it
    returns, from a thread of its own: it may wait for a decision the host makes while the job runs.

    `data` is small (a pipe buffer holds it), so the first write never blocks. A job that is gone
    turns the writes into nothing (a broken pipe is its own business).
    """
    if proc.stdin is None:
        return
    stream = proc.stdin

    def write(chunk: bytes, *, close: bool) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            if chunk:
                stream.write(chunk)
                stream.flush()
        if close:
            with contextlib.suppress(BrokenPipeError, ValueError, OSError):
                stream.close()

    if reply is None:
        write(data, close=True)
        return
    write(data, close=False)
    threading.Thread(target=lambda: write(reply(), close=True), name="sandbox-stdin-reply", daemon=True).start()
