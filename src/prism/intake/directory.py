"""A directory on the host -> `Project`, for `prism review DIR`: the archive rules, no links.

The walk never follows a symbolic link (any link, to a file or a folder, is refused as in an
archive), reads only regular files, and checks each size before reading. `__pycache__` folders
are interpreter caches a local run leaves behind; they are skipped here, while an archive that
carries one is refused (`.pyc` is not an accepted suffix).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from prism.intake.assemble import assemble
from prism.intake.errors import reject
from prism.intake.limits import IntakeLimits
from prism.intake.paths import check_name, check_suffix
from prism.intake.project import Project

_SKIPPED_DIRS = frozenset({"__pycache__"})


def read_directory(path: Path, *, limits: IntakeLimits) -> Project:
    root = Path(path)
    try:
        root_stat = os.lstat(root)
    except OSError as exc:
        raise reject("directory.unreadable", f"cannot read {str(root)[:200]!r}: {exc.strerror}") from exc
    if stat.S_ISLNK(root_stat.st_mode):
        raise reject("archive.symlink", "the project directory itself is a symbolic link")
    if not stat.S_ISDIR(root_stat.st_mode):
        raise reject("directory.not_a_directory", f"{str(root)[:200]!r} is not a directory")
    entries: list[tuple[str, bytes]] = []
    dirs: list[str] = []
    used = 0
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            children = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise reject("directory.unreadable", f"cannot list {prefix or '.'!r}: {exc.strerror}") from exc
        for child in children:
            rel = f"{prefix}{child.name}"
            if child.is_symlink():
                raise reject("archive.symlink", f"{rel!r} is a symbolic link", path=rel)
            if child.is_dir(follow_symlinks=False):
                if child.name in _SKIPPED_DIRS:
                    continue
                dirs.append(check_name(rel + "/", limits, is_dir=True))
                pending.append((Path(child.path), rel + "/"))
                continue
            if not child.is_file(follow_symlinks=False):
                raise reject("archive.special_file", f"{rel!r} is not a regular file", path=rel)
            name = check_name(rel, limits)
            check_suffix(name, limits)
            size = child.stat(follow_symlinks=False).st_size
            if size > limits.max_file_bytes:
                raise reject("archive.file_too_large", f"{name!r} is {size} bytes, over max_file_bytes", path=name)
            if len(entries) >= limits.max_files:
                raise reject("archive.too_many_files", f"more than max_files={limits.max_files} files")
            data = _read_regular(Path(child.path), limits.max_file_bytes, name)
            used += len(data)
            if used > limits.max_total_bytes:
                raise reject("archive.total_too_large", f"files pass max_total_bytes at {name!r}", path=name)
            entries.append((name, data))
    return assemble(entries, dirs, limits)


def _read_regular(path: Path, limit: int, name: str) -> bytes:
    """Open without following a link swapped in after the scan, and read at most `limit` + 1 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise reject("directory.unreadable", f"cannot open {name!r}: {exc.strerror}", path=name) from exc
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise reject("archive.file_too_large", f"{name!r} grew past max_file_bytes while read", path=name)
    return data
