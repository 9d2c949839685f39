"""Directories as base64 gzip tar archives for the Platform broker, both ways, defensively.

Packing takes regular files only and never follows a link (the same walk as artifact read-back).
Unpacking treats the archive as hostile: regular files and directories only, relative normalised
names, bounded count and size, written with O_EXCL | O_NOFOLLOW under a directory we created.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import io
import os
import posixpath
import tarfile
from pathlib import Path

from prism.sandbox.errors import SandboxInfraError, SandboxSpecRejected
from prism.sandbox.launcher import iter_regular_files


def pack_directory(root: Path, *, max_bytes: int) -> str:
    buffer = io.BytesIO()
    total = 0
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            for rel, fd in iter_regular_files(root_fd):
                if fd is None:
                    continue
                with os.fdopen(fd, "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    total += size
                    if total > max_bytes:
                        raise SandboxSpecRejected(f"{root} holds more than {max_bytes} bytes; too big to send")
                    info = tarfile.TarInfo(rel)
                    info.size, info.mode, info.mtime = size, 0o644, 0
                    tar.addfile(info, handle)
    finally:
        os.close(root_fd)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def unpack_archive(encoded: str, *, max_bytes: int, max_files: int) -> dict[str, bytes]:
    """Regular files of an untrusted archive, in memory. Anything else in it is an error.

    `encoded` may be wrapped (coreutils `base64`, which Platform's drain pipes through, breaks
    lines at 76 columns): whitespace is dropped, every other character must be base64.
    """
    try:
        raw = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SandboxInfraError("archive is not valid base64") from exc
    files: dict[str, bytes] = {}
    total = 0
    try:
        # Bound the decompressed stream itself, not only the sizes the headers claim.
        stream = gzip.GzipFile(fileobj=io.BytesIO(raw))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.isdir():
                    continue
                name = posixpath.normpath(member.name)
                if not member.isreg() or name.startswith(("/", "..")) or name in (".", "") or "\0" in name:
                    raise SandboxInfraError(f"archive member {member.name!r} is not a plain relative file")
                total += member.size
                if total > max_bytes or len(files) >= max_files:
                    raise SandboxInfraError(f"archive exceeds {max_bytes} bytes or {max_files} files")
                extracted = tar.extractfile(member)
                data = extracted.read(member.size + 1) if extracted else b""
                if len(data) != member.size:
                    raise SandboxInfraError(f"archive member {name!r} does not match its header")
                files[name] = data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SandboxInfraError(f"archive cannot be read: {exc}") from exc
    return files


def write_files(dest: Path, files: dict[str, bytes]) -> None:
    """Write unpacked files under `dest` without following anything already there."""
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for name, data in sorted(files.items()):
            parts = name.split("/")
            parent = os.dup(root)
            try:
                for part in parts[:-1]:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=parent)
                    child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                    os.close(parent)
                    parent = child
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(parts[-1], flags, 0o644, dir_fd=parent)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            finally:
                os.close(parent)
    finally:
        os.close(root)
