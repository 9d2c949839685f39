"""What the per-file walks share: project-wide state, and rules on import statements, format
templates and computed attribute names that need no walk state."""

from __future__ import annotations

import ast
import functools
import string
import time

from prism.review.static.findings import FileFindings
from prism.review.static.policy import StaticPolicy
from prism.review.static.resolve import Denied, ProjectModules, Ref, step

# Private names of torch internals that no project may read, even having defined them itself.
_TORCH_INTERNALS = frozenset(
    {"_C", "_dynamo", "_inductor", "_ops", "_classes", "_utils", "_jit_internal", "_import_dotted_name"}
)
FORMAT_METHODS = frozenset({"format", "format_map"})
_FORMATTER = string.Formatter()


# `step` results per policy, shared by every review in the process (the same few library members
# recur in every project). Bounded: attribute names are chosen by submissions.
_STEPS: dict[StaticPolicy, dict[tuple[str, str], Ref | Denied]] = {}
_MAX_STEPS = 20_000


def _steps_for(policy: StaticPolicy) -> dict[tuple[str, str], Ref | Denied]:
    steps = _STEPS.get(policy)
    if steps is None or len(steps) > _MAX_STEPS:
        if len(_STEPS) > 8:
            _STEPS.clear()
        steps = _STEPS[policy] = {}
    return steps


@functools.lru_cache(maxsize=8)
def _with_internals(torch_private: frozenset[str]) -> frozenset[str]:
    return torch_private | _TORCH_INTERNALS


@functools.lru_cache(maxsize=8)
def _judged_attributes(forbidden: frozenset[str]) -> frozenset[str]:
    """Built once per policy, not per project: the refused set has hundreds of names."""
    return forbidden | FORMAT_METHODS | {"type"}


class TooComplex(Exception):
    """The project's review deadline passed; it is rejected as `static.too_complex`."""


class ProjectState:
    """What one file's walk leaves for the project-wide checks that run after every file."""

    def __init__(self, policy: StaticPolicy, modules: ProjectModules, torch_private: frozenset[str]) -> None:
        self.policy = policy
        self.modules = modules
        self.torch_private = _with_internals(torch_private)
        self.defined_private: set[str] = set()
        self.private_reads: list[tuple[FileFindings, ast.AST, str]] = []
        # (file, node, project module, name): `name` must not be a module that file imported.
        self.reexports: list[tuple[FileFindings, ast.AST, str, str]] = []
        self.module_imports: dict[str, set[str]] = {}
        # Literal budgets are per project: many files carry as much as one big file.
        self.literal_bytes = 0
        self.literal_numbers = 0
        # CPU seconds of the reviewing thread, not wall clock: a busy host must not turn an
        # ordinary model into `static.too_complex`.
        self.deadline = time.thread_time() + policy.deadline_s
        # Attribute names bound to library values anywhere (`self.cls = nn.Linear`), and every
        # attribute store whose base goes through named attributes: judged once all files are read.
        self.attr_aliases: set[str] = set()
        self.pending_patches: list[tuple[FileFindings, ast.AST, frozenset[str]]] = []
        self._steps = _steps_for(policy)
        # Attribute names with a rule of their own (besides private ones, which all have).
        self.judged_attributes = _judged_attributes(policy.forbidden_attributes)

    def check_deadline(self) -> None:
        if time.thread_time() > self.deadline:
            raise TooComplex

    def step(self, path: str, attr: str) -> Ref | Denied:
        """`static_resolve.step`, memoized: the same few library members recur in every file."""
        key = (path, attr)
        result = self._steps.get(key)
        if result is None:
            result = self._steps[key] = step(self.policy, path, attr)
        return result


_IMPORTS = (ast.Import, ast.ImportFrom)
# Per statement type, its fields that hold statements (None: a simple statement).
_BLOCKS: dict[type, tuple[str, ...] | None] = {}


def _blocks(kind: type) -> tuple[str, ...] | None:
    fields = tuple(f for f in ("body", "orelse", "finalbody", "handlers", "cases") if f in getattr(kind, "_fields", ()))
    _BLOCKS[kind] = fields or None
    return fields or None


def import_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Every import statement, nested ones included, without visiting expressions.

    The order (handlers and else-blocks before the body they follow) decides which of two
    imports binding one name wins, and is kept as it has always been.
    """
    found: list[ast.stmt] = []
    pending = list(reversed(body))
    while pending:
        stmt = pending.pop()
        kind = type(stmt)
        fields = _BLOCKS[kind] if kind in _BLOCKS else _blocks(kind)
        if fields is None:
            if kind in _IMPORTS:
                found.append(stmt)
            continue
        for field in fields:
            inner = getattr(stmt, field)
            if not inner:
                continue
            if field == "handlers" or field == "cases":
                for block in inner:
                    pending.extend(reversed(block.body))
            else:
                pending.extend(reversed(inner))
    return found


def import_fallbacks(body: list[ast.stmt]) -> set[int]:
    """The name targets of `except ...: name = <constant>` in module-level `try` statements.

    Such a name holds either what was imported or an inert constant; it is never unbound, so a
    lookup of it can never fall through to a builtin of that name (what `rebinds_import` stops:
    `del`, or a binding that may be skipped). Judging its uses as the import's is the stricter
    reading of the two.
    """
    found: set[int] = set()
    for stmt in body:
        if type(stmt) is not ast.Try:
            continue
        for handler in stmt.handlers:
            for inner in handler.body:
                if type(inner) is ast.Assign and type(inner.value) is ast.Constant:
                    found.update(id(t) for t in inner.targets if type(t) is ast.Name)
    return found


def plain_fields(template: str, depth: int = 0) -> bool:
    """True when no replacement field in the template reads an attribute or an index."""
    if depth > 2:
        return False
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return False
    for _, field, spec, _ in parsed:
        if field is not None and ("." in field or "[" in field):
            return False
        if spec and "{" in spec and not plain_fields(spec, depth + 1):
            return False
    return True


def safe_prefix(attr: ast.expr, forbidden: frozenset[str]) -> bool:
    """`f"layer_{i}"`: a literal lead that no refused or private name starts with."""
    if not isinstance(attr, ast.JoinedStr) or not attr.values:
        return False
    lead = attr.values[0]
    if not isinstance(lead, ast.Constant) or not isinstance(lead.value, str):
        return False
    prefix = lead.value
    if len(prefix) < 2 or not prefix.isidentifier() or prefix.startswith("_"):
        return False
    return not any(name.startswith(prefix) for name in forbidden)
