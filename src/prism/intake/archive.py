"""Upload bytes -> `Project`, in memory, trusting nothing the archive says about itself.

Order of distrust: the archive's size, then the end-of-central-directory entry count (before
`zipfile` builds one object per entry), then every central-directory record (name, type,
encryption, method, declared sizes and ratio), then the local headers (entries may not overlap:
overlapping entries are how a "better zip bomb" reuses one compressed stream many times), and
last the inflated bytes themselves, counted chunk by chunk against the limits while inflating.
Declared sizes are only used to refuse early; the counts that decide are the ones we inflate.

Nothing is ever written to the filesystem. Everything `zipfile` and `zlib` can raise on hostile
bytes is translated into `IntakeRejected("archive.corrupt")` at this boundary.
"""

from __future__ import annotations

import io
import itertools
import stat
import struct
import zipfile
import zlib
from pathlib import PurePosixPath

from prism.intake.assemble import assemble, decode_text
from prism.intake.errors import IntakeRejected, reject
from prism.intake.limits import IntakeLimits
from prism.intake.paths import check_name, check_suffix
from prism.intake.project import Project

SINGLE_FILE_NAME = "model.py"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_EOCD = b"PK\x05\x06"
_EOCD_STRUCT = struct.Struct("<4s4H2LH")
_LOCAL_HEADER = b"PK\x03\x04"
_CHUNK = 64 * 1024
_FLAG_ENCRYPTED = 0x1
_FLAG_STRONG_ENCRYPTION = 0x40
_FLAG_PATCHED = 0x20
# Every exception the standard library raises on malformed ZIP/deflate input that we have seen or
# can reason about; a new one found by the fuzz test belongs here, never in a catch-all.
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,
    OverflowError,
    UnicodeDecodeError,
    KeyError,
    IndexError,
    RuntimeError,
)


def read_project(data: bytes, filename: str, *, limits: IntakeLimits) -> Project:
    """A `.zip` archive or a single `.py` file, chosen by suffix and confirmed by magic bytes."""
    if len(data) > limits.max_archive_bytes:
        raise reject(
            "archive.too_large", f"upload is {len(data)} bytes, over max_archive_bytes={limits.max_archive_bytes}"
        )
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    looks_zip = data[:4] in _ZIP_MAGIC
    if suffix == ".zip":
        if not looks_zip:
            raise reject("archive.corrupt", "the upload is named .zip but is not a ZIP archive")
        return _read_zip(data, limits)
    if suffix == ".py":
        if looks_zip:
            raise reject("archive.type_mismatch", "the upload is named .py but holds a ZIP archive")
        if len(data) > limits.max_file_bytes:
            raise reject(
                "archive.file_too_large",
                f"{SINGLE_FILE_NAME} is {len(data)} bytes, over max_file_bytes={limits.max_file_bytes}",
                path=SINGLE_FILE_NAME,
            )
        return Project(files={SINGLE_FILE_NAME: decode_text(SINGLE_FILE_NAME, data)})
    raise reject("archive.unsupported_type", f"upload {filename[:100]!r} is neither a .zip nor a .py file")


def _eocd_precheck(data: bytes, limits: IntakeLimits) -> None:
    """Refuse huge entry counts before `zipfile` allocates an object for each of them."""
    at = data.rfind(_EOCD, max(0, len(data) - (_EOCD_STRUCT.size + 0xFFFF)))
    if at < 0 or at + _EOCD_STRUCT.size > len(data):
        raise reject("archive.corrupt", "no end-of-central-directory record: truncated or not a ZIP")
    _, _, _, _, total, cd_size, _, _ = _EOCD_STRUCT.unpack_from(data, at)
    if total != 0xFFFF and total > 2 * limits.max_files:
        raise reject("archive.too_many_files", f"archive declares {total} entries, over max_files={limits.max_files}")
    if cd_size != 0xFFFFFFFF and cd_size > len(data):
        raise reject("archive.corrupt", "central directory is larger than the archive")


def _check_info(info: zipfile.ZipInfo, limits: IntakeLimits) -> tuple[str, bool]:
    """Judge one central-directory record; returns (normalized path, is_directory)."""
    raw = info.orig_filename
    is_dir = raw.endswith("/")
    path = check_name(raw, limits, is_dir=is_dir)
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise reject("archive.symlink", f"{path!r} is a symbolic link", path=path)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise reject("archive.special_file", f"{path!r} is a device, FIFO or socket entry", path=path)
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise reject("archive.encrypted", f"{path!r} is encrypted", path=path)
    if info.flag_bits & _FLAG_PATCHED or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise reject(
            "archive.unsupported_compression",
            f"{path!r} uses compression method {info.compress_type}; only stored and deflate are accepted",
            path=path,
        )
    if is_dir:
        if info.file_size or info.compress_size > 2:
            raise reject("archive.corrupt", f"directory entry {path!r} carries data", path=path)
        return path, True
    check_suffix(path, limits)
    if info.file_size > limits.max_file_bytes:
        raise reject(
            "archive.file_too_large",
            f"{path!r} declares {info.file_size} bytes, over max_file_bytes={limits.max_file_bytes}",
            path=path,
        )
    _check_ratio(path, info.file_size, info.compress_size, limits)
    return path, False


def _check_ratio(path: str, inflated: int, compressed: int, limits: IntakeLimits) -> None:
    if inflated >= limits.ratio_floor_bytes and inflated > limits.max_compression_ratio * max(compressed, 1):
        raise reject(
            "archive.compression_ratio",
            f"{path!r} inflates {inflated} bytes from {compressed}, over max_compression_ratio="
            f"{limits.max_compression_ratio}",
            path=path,
        )


def _check_layout(infos: list[zipfile.ZipInfo], data: bytes, start_dir: int) -> None:
    """Each entry's local header + data must lie apart from every other and before the directory."""
    spans: list[tuple[int, int, str]] = []
    for info in infos:
        offset = info.header_offset
        header = data[offset : offset + 30]
        if offset < 0 or len(header) < 30 or header[:4] != _LOCAL_HEADER:
            raise reject("archive.corrupt", f"{info.orig_filename[:200]!r} has no local header where declared")
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        end = offset + 30 + name_len + extra_len + info.compress_size
        if end > len(data):
            raise reject("archive.corrupt", f"{info.orig_filename[:200]!r} runs past the end of the archive")
        spans.append((offset, end, info.orig_filename[:200]))
    spans.sort()
    for (_, end, name), (start, _, other) in itertools.pairwise(spans):
        if start < end:
            raise reject("archive.overlapping_entries", f"entries {name!r} and {other!r} overlap", path=other)
    if spans and spans[-1][1] > start_dir:
        raise reject("archive.overlapping_entries", f"entry {spans[-1][2]!r} overlaps the central directory")


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, used: int, limits: IntakeLimits) -> bytes:
    """Read one entry in chunks, counting real bytes against the per-file and total limits."""
    out = bytearray()
    with zf.open(info) as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            if len(out) > limits.max_file_bytes:
                raise reject(
                    "archive.file_too_large",
                    f"{path!r} inflates past max_file_bytes={limits.max_file_bytes}",
                    path=path,
                )
            if used + len(out) > limits.max_total_bytes:
                raise reject(
                    "archive.total_too_large",
                    f"inflated content passes max_total_bytes={limits.max_total_bytes} at {path!r}",
                    path=path,
                )
            _check_ratio(path, len(out), info.compress_size, limits)
    if len(out) != info.file_size:
        raise reject(
            "archive.size_mismatch",
            f"{path!r} declares {info.file_size} bytes but inflates to {len(out)}",
            path=path,
        )
    return bytes(out)


def _read_zip(data: bytes, limits: IntakeLimits) -> Project:
    _eocd_precheck(data, limits)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > 2 * limits.max_files:
                raise reject("archive.too_many_files", f"archive holds {len(infos)} entries, over max_files")
            checked = [(info, *_check_info(info, limits)) for info in infos]
            files = [(info, path) for info, path, is_dir in checked if not is_dir]
            dirs = [path for _, path, is_dir in checked if is_dir]
            if len(files) > limits.max_files:
                raise reject(
                    "archive.too_many_files", f"archive holds {len(files)} files, over max_files={limits.max_files}"
                )
            declared = sum(info.file_size for info, _ in files)
            if declared > limits.max_total_bytes:
                raise reject(
                    "archive.total_too_large",
                    f"archive declares {declared} bytes, over max_total_bytes={limits.max_total_bytes}",
                )
            _check_layout(infos, data, int(getattr(zf, "start_dir", len(data))))
            entries: list[tuple[str, bytes]] = []
            used = 0
            for info, path in files:
                content = _inflate(zf, info, path, used, limits)
                used += len(content)
                entries.append((path, content))
    except IntakeRejected:
        raise
    except _ZIP_ERRORS as exc:
        raise reject(
            "archive.corrupt", f"the archive is corrupt or truncated: {type(exc).__name__}: {exc}"[:400]
        ) from exc
    return assemble(entries, dirs, limits)
