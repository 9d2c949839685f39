"""Which names a function scope binds: enough of Python's scoping to tell a builtin from a local.

A name assigned anywhere in a function (without `global`/`nonlocal`) is local in the whole
function, so it can never fall back to the builtin of the same name; the same holds for names
of enclosing functions (closures). Names bound by `import` are not counted here: the file's
import table resolves them, wherever the import statement stands. Module-level and class-level
bindings do not protect: the module dict may lack the name when the code runs, and then Python
looks in the builtins.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

ScopeNode = (
    ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
)
SCOPE_TYPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
_NESTED = (*SCOPE_TYPES, ast.ClassDef)
# Fields that never hold a node worth visiting: contexts, operators, plain names and flags.
_SKIP_FIELDS = frozenset(
    {"ctx", "op", "ops", "type_comment", "kind", "id", "attr", "arg", "name", "names", "module", "level"}
    | {"conversion", "is_async", "simple", "type_ignores"}
)
_FIELDS: dict[type, tuple[str, ...]] = {}


def children(node: ast.AST) -> list[ast.AST]:
    """`ast.iter_child_nodes` without contexts and operators, as a list (it is the hot loop)."""
    kind = type(node)
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = _FIELDS[kind] = tuple(f for f in kind._fields if f not in _SKIP_FIELDS)
    out: list[ast.AST] = []
    for field in fields:
        value = getattr(node, field, None)
        if value is None:
            continue
        if type(value) is list:
            out.extend(item for item in value if isinstance(item, ast.AST))
        elif isinstance(value, ast.AST):
            out.append(value)
    return out


class Scope:
    """A function-like scope; `parent` is the enclosing function scope (class scopes are skipped)."""

    __slots__ = ("_locals", "node", "parent")

    def __init__(self, node: ScopeNode, parent: Scope | None) -> None:
        self.node = node
        self.parent = parent
        self._locals: frozenset[str] | None = None

    @property
    def locals(self) -> frozenset[str]:
        if self._locals is None:
            self._locals = local_names(self.node)
        return self._locals

    def binds(self, name: str) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.locals:
                return True
            scope = scope.parent
        return False


def _arg_names(args: ast.arguments) -> Iterator[str]:
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
        yield arg.arg
    if args.vararg:
        yield args.vararg.arg
    if args.kwarg:
        yield args.kwarg.arg


def _own_nodes(node: ScopeNode) -> Iterator[ast.AST]:
    """Nodes evaluated in this scope: nested scopes contribute their name, not their body."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        pending: list[ast.AST] = list(node.body)
    elif isinstance(node, ast.Lambda):
        pending = [node.body]
    else:
        pending = [gen.target for gen in node.generators]
        pending += [cond for gen in node.generators for cond in gen.ifs]
        pending += [gen.iter for gen in node.generators[1:]]
    while pending:
        item = pending.pop()
        yield item
        if isinstance(item, _NESTED):
            continue
        pending.extend(children(item))


def local_names(node: ScopeNode) -> frozenset[str]:
    names: set[str] = set()
    declared: set[str] = set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        names.update(_arg_names(node.args))
    for item in _own_nodes(node):
        if isinstance(item, ast.Name) and not isinstance(item.ctx, ast.Load):
            names.add(item.id)
        elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or (
            isinstance(item, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and item.name
        ):
            names.add(item.name or "")
        elif isinstance(item, ast.MatchMapping) and item.rest:
            names.add(item.rest)
        elif isinstance(item, ast.Global | ast.Nonlocal):
            declared.update(item.names)
    return frozenset(names - declared)
