"""Resolve imported names and attribute chains to what they are: a module, a library member, or the project's own.

`torch.nn.functional.pad` is walked step by step from the binding of `torch`. Each step into a
module must land on the module's canonical name and that module must be allowed, so that
`torch.nn.functional.torch.os` or `torch.utils.data` are refused even though they start at an
allowed root. Steps into private members of a library are refused, and a step to a member must
land on a name of that module's allowlist (`MEMBERS`, see `allowlist.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prism.review.static.modules import MEMBERS, MODULE_ATTRIBUTES
from prism.review.static.policy import FORBIDDEN_MEMBERS, NAMESPACE_MODULES, StaticPolicy

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


def entry_folder(entrypoint: str) -> str:
    """`src/net.py` -> `src`; `model.py` -> `` (the project root)."""
    return entrypoint.rpartition("/")[0]


def _names_under(paths: list[str], root: str) -> dict[str, str]:
    """Module name -> path for the files below `root` (a folder of the project, `` for its root)."""
    prefix = f"{root}/" if root else ""
    found: dict[str, str] = {}
    for path in paths:
        if not path.startswith(prefix):
            continue
        name = module_name_of(path[len(prefix) :])
        if name:
            found[name] = path
    return found


class ProjectModules:
    """The module names a project provides, packages (with or without `__init__.py`) included.

    The harness imports the entrypoint as Python runs a script: the entrypoint's folder comes
    first on `sys.path`, then the project root (they are the same folder for `model.py`). So
    with `prism.yaml` naming `src/net.py`, `from layers import Block` finds `src/layers.py`, and
    `import src.layers` still works from the root. Names are looked up in that order here too.
    """

    def __init__(self, paths: list[str], *, entry_folder: str = "") -> None:
        self.roots = [entry_folder, ""] if entry_folder else [""]
        self._by_root = [_names_under(paths, root) for root in self.roots]
        modules: dict[str, str] = {}
        for found in reversed(self._by_root):  # the first root wins, as on sys.path
            modules.update(found)
        packages: set[str] = set()
        for name in modules:
            parts = name.split(".")
            packages.update(".".join(parts[:i]) for i in range(1, len(parts)))
        self.modules = modules
        self.packages = packages - set(modules)
        self._paths = paths
        self._name_of = {path: name for found in reversed(self._by_root) for name, path in found.items()}

    def has(self, name: str) -> bool:
        return name in self.modules or name in self.packages

    def name_of(self, path: str) -> str:
        """The name a file is first importable as (under the entrypoint's folder, else the root)."""
        return self._name_of.get(path) or module_name_of(path) or ""

    def top_names(self) -> dict[str, str]:
        """Every top-level name a project file can be imported as, with one file providing it."""
        tops: dict[str, str] = {}
        for found in self._by_root:
            for name, path in found.items():
                tops.setdefault(name.split(".")[0], path)
        return tops

    def shadowed(self) -> list[tuple[str, str, str]]:
        """(path, rule, explanation) for every file that one import name would find in two places.

        A package `model/__init__.py` beside `model.py` wins the import over the module, so the
        reviewed `model.py` would not be what runs; a name found under both the entrypoint's
        folder and the root means different files in the review and at run time.
        """
        found: list[tuple[str, str, str]] = []
        for names in self._by_root:
            for path in names.values():
                if path.endswith("/__init__.py"):
                    module_file = path[: -len("/__init__.py")] + ".py"
                    if module_file in self._paths:
                        found.append(
                            (
                                module_file,
                                "static.shadowing",
                                f"package {path} shadows {module_file}: Python imports the package",
                            )
                        )
        if len(self._by_root) == 2:
            first, second = self._by_root
            for name, path in second.items():
                other = first.get(name)
                if other is not None and other != path:
                    found.append(
                        (
                            path,
                            "static.shadowing",
                            f"`{name}` is both {other} (the entrypoint's folder, first on sys.path) and {path}",
                        )
                    )
        return found

    def resolve_relative(self, importer: str, module: str | None, level: int) -> str | None:
        """The absolute name of `from <dots><module> import ...` written in file `importer`."""
        own = self.name_of(importer)
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
    members = MEMBERS.get(path)
    if members is None or attr not in members:
        return Denied(
            "static.module.not_allowlisted",
            f"{child} is not on the allowlist of {path} members (prism.review.static.allowlist); "
            "use a listed member, or propose an addition (docs/intake-and-review.md)",
        )
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
