"""Read back what a job left in `/artifacts`: regular files only, never through a link, capped.

The sandbox controls every byte and every name in that directory, so the host opens each entry
relative to its already-open parent with O_NOFOLLOW and checks the type on the open descriptor
(no lstat-then-open race). Files that do not fit the in-memory budget stay on disk and are named
in the result; links, devices and fifos are skipped and named too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from prism.sandbox.launcher import iter_regular_files


@dataclass(frozen=True, slots=True)
class ArtifactReadback:
    files: Mapping[str, bytes] = field(default_factory=dict)
    left_on_disk: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))


def read_artifacts(root: Path, *, max_total_bytes: int, max_file_bytes: int | None = None) -> ArtifactReadback:
    per_file = max_file_bytes if max_file_bytes is not None else max_total_bytes
    files: dict[str, bytes] = {}
    left: list[str] = []
    skipped: list[str] = []
    budget = max_total_bytes
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for rel, fd in iter_regular_files(root_fd):
            if fd is None:
                skipped.append(rel)
                continue
            try:
                size = os.fstat(fd).st_size
                if size > per_file or size > budget:
                    left.append(rel)
                    continue
                data = _read_at_most(fd, size)
                if data is None:  # it grew while we read: do not trust it
                    left.append(rel)
                    continue
                files[rel] = data
                budget -= len(data)
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
    return ArtifactReadback(files=files, left_on_disk=tuple(left), skipped=tuple(skipped))


def _read_at_most(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size + 1
    while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
        chunks.append(chunk)
        remaining -= len(chunk)
    data = b"".join(chunks)
    return None if len(data) > size else data
