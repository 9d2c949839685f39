"""Resolve imported names and attribute chains to what they are: a module, a library member, or the project's own.

`torch.nn.functional.pad` is walked step by step from the binding of `torch`. Each step into a
module must land on the module's canonical name and that module must be allowed, so that
`torch.nn.functional.torch.os` or `torch.utils.data` are refused even though they start at an
allowed root. Steps into private members of a library are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prism.review.static_modules import MODULE_ATTRIBUTES
from prism.review.static_policy import FORBIDDEN_MEMBERS, NAMESPACE_MODULES, StaticPolicy

RefKind = Literal["module", "member", "project_module", "project_member"]
_MODULE_DUNDERS = frozenset({"__version__", "__name__"})


@dataclass(frozen=True, slots=True)
class Ref:
    """What an expression denotes. `path` is dotted; for project members, `module.name`."""

    kind: RefKind
    path: str

    @property
    def is_library(self) -> bool:
        return self.kind in ("module", "member")

    @property
    def is_module(self) -> bool:
        return self.kind in ("module", "project_module")


@dataclass(frozen=True, slots=True)
class Denied:
    rule_id: str
    explanation: str


def module_name_of(path: str) -> str | None:
    """`a/b.py` -> `a.b`; `a/__init__.py` -> `a`; non-Python files have no module name."""
    if not path.endswith(".py"):
        return None
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) if parts else None


class ProjectModules:
    """The module names a project provides, packages (with or without `__init__.py`) included."""

    def __init__(self, paths: list[str]) -> None:
        modules: dict[str, str] = {}
        packages: set[str] = set()
        for path in paths:
            name = module_name_of(path)
            if name:
                modules[name] = path
                parts = name.split(".")
                packages.update(".".join(parts[:i]) for i in range(1, len(parts)))
        self.modules = modules
        self.packages = packages - set(modules)

    def has(self, name: str) -> bool:
        return name in self.modules or name in self.packages

    def resolve_relative(self, importer: str, module: str | None, level: int) -> str | None:
        """The absolute name of `from <dots><module> import ...` written in file `importer`."""
        own = module_name_of(importer) or ""
        package = own.split(".") if importer.endswith("/__init__.py") else own.split(".")[:-1]
        if level - 1 > len(package):
            return None
        base = package[: len(package) - (level - 1)]
        parts = [*base, *(module.split(".") if module else [])]
        return ".".join(p for p in parts if p)


def step(policy: StaticPolicy, path: str, attr: str) -> Ref | Denied:
    """One attribute step from the allowed module `path`."""
    allowed = policy.allowed_modules
    child = f"{path}.{attr}"
    if path in NAMESPACE_MODULES and path not in allowed:
        if child in allowed or child in NAMESPACE_MODULES:
            return Ref("module", child)
        return Denied("static.module.forbidden", f"{child} is not a module submissions may use")
    if attr.startswith("__") and attr.endswith("__"):
        if attr in _MODULE_DUNDERS:
            return Ref("member", child)
        return Denied("static.attribute.dunder", f"{child}: module dunder attributes are refused")
    if attr.startswith("_"):
        return Denied("static.module.private", f"{child} is private to the library")
    if attr in FORBIDDEN_MEMBERS.get(path, frozenset()) or attr in policy.forbidden_attributes:
        return Denied(
            "static.module.forbidden_member",
            f"{child} is refused: it reaches the OS, files, native code or global hooks",
        )
    canonical = MODULE_ATTRIBUTES.get(path, {}).get(attr)
    if canonical is not None:
        if canonical == child and (child in allowed or child in NAMESPACE_MODULES):
            return Ref("module", child)
        return Denied("static.module.forbidden", f"{child} is the module {canonical}, which submissions may not use")
    if child in allowed or child in NAMESPACE_MODULES:
        return Ref("module", child)
    return Ref("member", child)


def import_module(policy: StaticPolicy, project: ProjectModules, name: str) -> Ref | Denied:
    """`import name`: an allowed library module, a namespace step, or a project module."""
    if project.has(name):
        return Ref("project_module", name)
    if name in policy.allowed_modules or name in NAMESPACE_MODULES:
        return Ref("module", name)
    root = name.split(".")[0]
    if root == "prism":
        return Denied(
            "static.import.prism_internal", f"{name} is PRISM's own code; only prism.contract may be imported"
        )
    return Denied("static.import.forbidden", f"module {name} is not on the import allowlist")
