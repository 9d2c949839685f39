"""Hostile archives, built in memory. Each names the intake reason code that must stop it."""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MODEL = b"def build_model(ctx):\n    return None\n"


@dataclass(frozen=True)
class ArchiveCase:
    id: str
    expect: str
    build: Callable[[], bytes]
    filename: str = "submission.zip"
    limits: dict[str, Any] = field(default_factory=dict)


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of one case
        with zipfile.ZipFile(buffer, "w", method) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return buffer.getvalue()


def nul_in_name() -> bytes:
    """zipfile cuts names at NUL when writing, so the byte is put in afterwards (both headers)."""
    return make_zip([("model.py", MODEL), ("ok.pyZ.txt", b"x = 1\n")]).replace(b"ok.pyZ.txt", b"ok.py\x00.txt")


def with_model(*entries: tuple[str | zipfile.ZipInfo, bytes]) -> Callable[[], bytes]:
    return lambda: make_zip([("model.py", MODEL), *entries])


def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def _patch_central(data: bytes, name: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite one field of the central-directory record of `name` (offsets per APPNOTE 4.3.12)."""
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        n = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + n] == name:
            break
        at += 4
    out = bytearray(data)
    struct.pack_into(fmt, out, at + offset, value)
    return bytes(out)


def encrypted() -> bytes:
    data = make_zip([("model.py", MODEL)])
    out = bytearray(data)
    struct.pack_into("<H", out, 6, 0x1)  # local header flags
    return _patch_central(bytes(out), b"model.py", 8, "<H", 0x1)


def lying_size() -> bytes:
    """Declares 10 bytes for a 200 KiB entry: the bytes inflated decide, not the header."""
    big = b"#" * 200_000 + b"\n" + MODEL
    data = make_zip([("model.py", big)])
    return _patch_central(data, b"model.py", 24, "<I", 10)


def overlapping() -> bytes:
    """Two central records point at the same local entry (the 'better zip bomb' shape)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.py", MODEL)
        zf.writestr("b.py", MODEL)
    data = buffer.getvalue()
    return _patch_central(data, b"b.py", 42, "<I", 0)


def ratio_bomb() -> bytes:
    return make_zip([("model.py", MODEL), ("notes.txt", b"\n" * 900_000)])


def truncated() -> bytes:
    data = make_zip([("model.py", MODEL), ("x.py", b"x = 1\n" * 100)])
    return data[: len(data) // 2] + data[-22:]


def bad_crc() -> bytes:
    data = make_zip([("model.py", MODEL)], method=zipfile.ZIP_STORED)
    out = bytearray(data)
    out[out.index(b"def build_model")] = ord("D")
    return bytes(out)


def bzip2() -> bytes:
    return make_zip([("model.py", MODEL)], method=zipfile.ZIP_BZIP2)


def nested_magic() -> bytes:
    inner = make_zip([("evil.py", b"import os\n")])
    return make_zip([("model.py", MODEL), ("data.txt", inner)])


def many_entries_header() -> bytes:
    data = make_zip([("model.py", MODEL)])
    out = bytearray(data)
    eocd = out.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", out, eocd + 8, 60000, 60000)
    return bytes(out)


def deflate_stream_raw() -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return comp.compress(b"x" * 100) + comp.flush()


ARCHIVE_CASES = [
    ArchiveCase("symlink", "archive.symlink", with_model((_info("link.py", stat.S_IFLNK | 0o777), b"/etc/passwd"))),
    ArchiveCase("fifo", "archive.special_file", with_model((_info("pipe.py", stat.S_IFIFO | 0o644), b""))),
    ArchiveCase("traversal", "archive.path_traversal", with_model(("../../etc/cron.d/x.py", b"x = 1\n"))),
    ArchiveCase("traversal_inner", "archive.path_traversal", with_model(("a/../../b.py", b"x = 1\n"))),
    ArchiveCase("absolute", "archive.absolute_path", with_model(("/etc/evil.py", b"x = 1\n"))),
    ArchiveCase("drive_letter", "archive.drive_letter", with_model(("C:/evil.py", b"x = 1\n"))),
    ArchiveCase("backslash", "archive.backslash", with_model(("..\\evil.py", b"x = 1\n"))),
    ArchiveCase("nul_in_name", "archive.unsafe_name", nul_in_name),
    ArchiveCase("control_char", "archive.unsafe_name", with_model(("a\x1b[31m.py", b"x = 1\n"))),
    ArchiveCase("bidi_name", "archive.unsafe_name", with_model(("evil\u202eyp.txt", b"x = 1\n"))),
    ArchiveCase("empty_component", "archive.unsafe_name", with_model(("a//b.py", b"x = 1\n"))),
    ArchiveCase("dot_component", "archive.unsafe_name", with_model(("./a.py", b"x = 1\n"))),
    ArchiveCase("ads_colon", "archive.unsafe_name", with_model(("a.py:stream", b"x = 1\n"))),
    ArchiveCase("duplicate", "archive.duplicate_name", with_model(("model.py", b"import os\n"))),
    ArchiveCase("case_collision", "archive.name_collision", with_model(("MODEL.py", b"x = 1\n"))),
    ArchiveCase(
        "nfc_collision",
        "archive.name_collision",
        with_model(("caf\u00e9.py", b"x = 1\n"), ("cafe\u0301.py", b"x = 1\n")),
    ),
    ArchiveCase(
        "file_vs_folder", "archive.name_collision", with_model(("a.py", b"x = 1\n"), ("a.py/b.py", b"x = 1\n"))
    ),
    ArchiveCase("encrypted", "archive.encrypted", encrypted),
    ArchiveCase("shared_object", "archive.unsupported_suffix", with_model(("_ext.so", b"\x7fELF"))),
    ArchiveCase("pyc", "archive.unsupported_suffix", with_model(("__pycache__/model.cpython-311.pyc", b"\x00"))),
    ArchiveCase("weights", "archive.unsupported_suffix", with_model(("weights.pt", b"PK"))),
    ArchiveCase("pth_hook", "archive.unsupported_suffix", with_model(("evil.pth", b"import os\n"))),
    ArchiveCase("upper_py", "archive.unsupported_suffix", with_model(("helper.PY", b"import os\n"))),
    ArchiveCase("nested_zip", "archive.nested_archive", with_model(("inner.zip", b"PK\x05\x06" + b"\x00" * 18))),
    ArchiveCase("nested_magic", "archive.nested_archive", nested_magic),
    ArchiveCase(
        "too_many_files",
        "archive.too_many_files",
        lambda: make_zip([("model.py", MODEL)] + [(f"m{i}.py", b"x = 1\n") for i in range(12)]),
        limits={"max_files": 10},
    ),
    ArchiveCase("too_many_entries_header", "archive.too_many_files", many_entries_header),
    ArchiveCase("too_deep", "archive.path_too_deep", with_model(("/".join("abcdefghij") + "/x.py", b"x = 1\n"))),
    ArchiveCase("too_long", "archive.path_too_long", with_model(("a" * 250 + ".py", b"x = 1\n"))),
    ArchiveCase(
        "file_too_large",
        "archive.file_too_large",
        with_model(("big.txt", b"y" * 5000)),
        limits={"max_file_bytes": 4096},
    ),
    ArchiveCase(
        "total_too_large",
        "archive.total_too_large",
        lambda: make_zip([("model.py", MODEL)] + [(f"f{i}.txt", b"abc\n" * 900) for i in range(5)]),
        limits={"max_total_bytes": 10_000},
    ),
    ArchiveCase("ratio_bomb", "archive.compression_ratio", ratio_bomb, limits={"max_file_bytes": 2_000_000}),
    ArchiveCase("lying_header_size", "archive.corrupt", lying_size),
    ArchiveCase("overlapping_entries", "archive.overlapping_entries", overlapping),
    ArchiveCase("truncated", "archive.corrupt", truncated),
    ArchiveCase("bad_crc", "archive.corrupt", bad_crc),
    ArchiveCase("garbage", "archive.corrupt", lambda: b"PK\x03\x04" + b"\xff" * 300),
    ArchiveCase("not_a_zip", "archive.corrupt", deflate_stream_raw),
    ArchiveCase("bzip2", "archive.unsupported_compression", bzip2),
    ArchiveCase("not_utf8", "archive.not_utf8", with_model(("latin.py", "x = 'caf\u00e9'\n".encode("latin-1")))),
    ArchiveCase("nul_bytes", "archive.binary_content", with_model(("data.txt", b"abc\x00def"))),
    ArchiveCase("empty_archive", "archive.empty", lambda: make_zip([])),
    ArchiveCase("no_entrypoint", "project.entrypoint_missing", lambda: make_zip([("other.py", MODEL)])),
    ArchiveCase(
        "yaml_unknown_key", "project.config_unknown_key", with_model(("prism.yaml", b"entrypoint: model.py\nrun: rm\n"))
    ),
    ArchiveCase(
        "yaml_alias_bomb",
        "project.config_alias",
        with_model(("prism.yaml", b"a: &a [1, 1]\nb: &b [*a, *a]\nc: [*b, *b]\n")),
    ),
    ArchiveCase(
        "yaml_python_tag", "project.config_tag", with_model(("prism.yaml", b"name: !!python/object:os.system x\n"))
    ),
    ArchiveCase("yaml_entry_escape", "archive.path_traversal", with_model(("prism.yaml", b"entrypoint: ../x.py\n"))),
    ArchiveCase("yaml_missing_helper", "project.helper_missing", with_model(("prism.yaml", b"helpers: [util.py]\n"))),
    ArchiveCase("yaml_broken", "project.config_yaml", with_model(("prism.yaml", b"a: [1, 2\n"))),
    ArchiveCase("py_upload_is_zip", "archive.type_mismatch", lambda: make_zip([("model.py", MODEL)]), "model.py"),
    ArchiveCase("tarball_upload", "archive.unsupported_type", lambda: b"\x1f\x8b" + b"\x00" * 40, "model.tar.gz"),
    ArchiveCase(
        "oversized_upload",
        "archive.too_large",
        lambda: b"PK\x03\x04" + b"\x00" * 5000,
        limits={"max_archive_bytes": 4096},
    ),
]
