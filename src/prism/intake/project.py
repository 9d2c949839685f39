"""The in-memory project every later step reads: path -> text, never files on the host."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """The validated content of an optional `prism.yaml`."""

    entrypoint: str = "model.py"
    name: str | None = None
    helpers: tuple[str, ...] = ()
    # Whatever the miner claims about its model (parameter count, FLOPs, bpb...). Never scored;
    # the LLM review may compare it with what PRISM measured.
    claims: Mapping[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Project:
    files: Mapping[str, str]
    config: ProjectConfig = field(default_factory=ProjectConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", MappingProxyType(dict(sorted(self.files.items()))))

    @property
    def entrypoint(self) -> str:
        return self.config.entrypoint

    @property
    def python_files(self) -> dict[str, str]:
        return {path: text for path, text in self.files.items() if path.endswith(".py")}

    @property
    def code_hash(self) -> str:
        """A stable hash of the whole project: sorted paths and their texts."""
        digest = hashlib.sha256()
        for path, text in self.files.items():
            digest.update(path.encode("utf-8") + b"\0")
            digest.update(text.encode("utf-8") + b"\0")
        return digest.hexdigest()
