"""Checked entries -> `Project`: text decoding, content sniffing, `prism.yaml`, the entrypoint.

Archives and directories both end here, so the two doors apply the same rules after reading.
"""

from __future__ import annotations

from collections.abc import Sequence

from prism.intake.errors import reject
from prism.intake.limits import IntakeLimits
from prism.intake.paths import check_unique
from prism.intake.project import Project, ProjectConfig
from prism.intake.project_yaml import CONFIG_NAME, parse_project_config

# Magic numbers of archive and compressed formats: a `.txt` that is really a ZIP is still a ZIP.
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"7z\xbc\xaf",
    b"Rar!",
    b"\x28\xb5\x2f\xfd",
)
_BOM = b"\xef\xbb\xbf"


def decode_text(path: str, data: bytes) -> str:
    """Strict UTF-8 (an optional BOM is dropped, as Python does), no NUL, no archive inside."""
    if data.startswith(_ARCHIVE_MAGIC) or data[257:262] == b"ustar":
        raise reject("archive.nested_archive", f"{path!r} holds an archive", path=path)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if b"\x00" in data:
        raise reject("archive.binary_content", f"{path!r} holds NUL bytes; only text is accepted", path=path)
    try:
        return data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise reject(
            "archive.not_utf8", f"{path!r} is not valid UTF-8 (byte {exc.start}: {exc.reason})", path=path
        ) from exc


def strip_common_folder(files: dict[str, str]) -> dict[str, str]:
    """A ZIP of the project's folder (`proj/model.py`, `proj/prism.yaml`) is that project.

    Zipping a folder, or downloading a repository as a ZIP, puts every file under one top-level
    folder. When every file is below the same single folder, that folder is dropped; anything
    else keeps its paths as they are (an entrypoint not at the root is then refused as missing).
    """
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) != 1 or any("/" not in path for path in files):
        return files
    return {path.split("/", 1)[1]: text for path, text in files.items()}


def assemble(entries: Sequence[tuple[str, bytes]], dirs: Sequence[str], limits: IntakeLimits) -> Project:
    """Entries are (normalized path, bytes) already within size limits; names are checked again here."""
    if not entries:
        raise reject("archive.empty", "the upload holds no files")
    check_unique((p for p, _ in entries), dirs)
    files = strip_common_folder({path: decode_text(path, data) for path, data in entries})
    config = ProjectConfig()
    if CONFIG_NAME in files:
        config = parse_project_config(files[CONFIG_NAME], limits=limits)
    if config.entrypoint not in files:
        raise reject(
            "project.entrypoint_missing",
            f"entrypoint {config.entrypoint!r} is not in the project",
            path=config.entrypoint,
        )
    for helper in config.helpers:
        if helper not in files:
            raise reject("project.helper_missing", f"helper {helper!r} named in prism.yaml is missing", path=helper)
    return Project(files=files, config=config)
