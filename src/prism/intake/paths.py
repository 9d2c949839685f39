"""Path rules shared by archives and directories: one function per question, each with its code.

A name is judged as raw text before anything else uses it. Nothing here touches the filesystem:
names are only ever keys of the in-memory `Project`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath

from prism.intake.errors import reject
from prism.intake.limits import IntakeLimits

_DRIVE = re.compile(r"^[A-Za-z]:")
# Control, format (bidi overrides, zero-width joiners), surrogate, private-use, unassigned and
# line/paragraph separators: none belongs in a file name a human is meant to read.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
ARCHIVE_SUFFIXES = frozenset(
    {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".whl", ".egg", ".jar", ".zst", ".lz4", ".lzma"}
)


def check_name(name: str, limits: IntakeLimits, *, is_dir: bool = False) -> str:
    """Return the normalized relative path for `name`, or raise `IntakeRejected`."""
    shown = name.encode("unicode_escape").decode("ascii")[:300]
    if any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in name):
        raise reject("archive.unsafe_name", f"name {shown!r} holds control or invisible characters", path=shown)
    if "\\" in name:
        raise reject("archive.backslash", f"name {shown!r} uses a backslash separator", path=shown)
    if name.startswith("/"):
        raise reject("archive.absolute_path", f"name {shown!r} is absolute", path=shown)
    if _DRIVE.match(name):
        raise reject("archive.drive_letter", f"name {shown!r} starts with a drive letter", path=shown)
    if ":" in name:
        raise reject("archive.unsafe_name", f"name {shown!r} holds ':' (drive or stream syntax)", path=shown)
    body = name[:-1] if is_dir and name.endswith("/") else name
    parts = body.split("/")
    if ".." in parts:
        raise reject("archive.path_traversal", f"name {shown!r} climbs out with '..'", path=shown)
    if any(part in ("", ".") for part in parts):
        raise reject("archive.unsafe_name", f"name {shown!r} has an empty or '.' component", path=shown)
    if any(part != part.strip() for part in parts):
        raise reject("archive.unsafe_name", f"name {shown!r} has a component with edge whitespace", path=shown)
    if len(body) > limits.max_path_length:
        raise reject(
            "archive.path_too_long",
            f"name is {len(body)} characters, over max_path_length={limits.max_path_length}",
            path=shown,
        )
    if len(parts) > limits.max_path_depth:
        raise reject(
            "archive.path_too_deep",
            f"name has {len(parts)} components, over max_path_depth={limits.max_path_depth}",
            path=shown,
        )
    return body


def check_suffix(path: str, limits: IntakeLimits) -> None:
    """Only the text suffixes in the limits, exactly (lower case: `X.PY` would dodge review)."""
    suffixes = [s.lower() for s in PurePosixPath(path).suffixes]
    if any(s in ARCHIVE_SUFFIXES for s in suffixes):
        raise reject("archive.nested_archive", f"{path!r} is an archive inside the archive", path=path)
    suffix = PurePosixPath(path).suffix
    if suffix not in limits.allowed_suffixes:
        allowed = " ".join(sorted(limits.allowed_suffixes))
        raise reject(
            "archive.unsupported_suffix", f"{path!r} has suffix {suffix or '(none)'!r}; allowed: {allowed}", path=path
        )


def collision_key(path: str) -> str:
    """Two names that one filesystem or one reader could confuse map to the same key."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", path).casefold())


def check_unique(files: Iterable[str], dirs: Iterable[str]) -> None:
    """No exact duplicates, no names equal after case folding / normalization, no file-vs-folder."""
    seen: dict[str, str] = {}
    exact: set[str] = set()
    for path in files:
        if path in exact:
            raise reject("archive.duplicate_name", f"{path!r} appears more than once", path=path)
        exact.add(path)
        key = collision_key(path)
        if key in seen:
            raise reject(
                "archive.name_collision",
                f"{path!r} and {seen[key]!r} are the same name after case folding or Unicode normalization",
                path=path,
            )
        seen[key] = path
    folders: dict[str, str] = {}
    for path in list(exact) + list(dirs):
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            earlier = folders.setdefault(collision_key(prefix), prefix)
            if earlier != prefix:
                raise reject(
                    "archive.name_collision",
                    f"folders {prefix!r} and {earlier!r} are the same after case folding or normalization",
                    path=prefix,
                )
    for key, folder in folders.items():
        if key in seen:
            raise reject("archive.name_collision", f"{seen[key]!r} is both a file and a folder", path=folder)
