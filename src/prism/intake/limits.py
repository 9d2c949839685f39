"""The named limits intake enforces while it reads; each rejection names the limit it hit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prism.config import Settings

# Only text a reviewer can read. No weights, no compiled code, no nested archives.
DEFAULT_SUFFIXES = frozenset({".py", ".yaml", ".yml", ".json", ".toml", ".txt", ".md"})


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeLimits:
    max_archive_bytes: int = 16 * 1024 * 1024
    max_files: int = 200
    max_file_bytes: int = 1024 * 1024
    max_total_bytes: int = 8 * 1024 * 1024
    max_path_depth: int = 8
    max_path_length: int = 200
    max_compression_ratio: float = 100.0
    # Below this many inflated bytes the ratio of a single entry is not judged: a short file of
    # blank lines compresses 100x and is harmless; bombs need volume.
    ratio_floor_bytes: int = 64 * 1024
    max_config_bytes: int = 64 * 1024
    allowed_suffixes: frozenset[str] = DEFAULT_SUFFIXES

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeLimits:
        return cls(
            max_archive_bytes=settings.max_body_bytes,
            max_files=settings.max_files,
            max_file_bytes=settings.max_file_bytes,
            max_total_bytes=settings.max_total_bytes,
            max_path_depth=settings.max_path_depth,
            max_path_length=settings.max_path_length,
            max_compression_ratio=settings.max_compression_ratio,
            max_config_bytes=settings.max_config_bytes,
        )
