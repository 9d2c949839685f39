"""One traversal of a file: every node in review order, with the function scope it is looked up in.

Which names a function scope binds is enough of Python's scoping to tell a builtin from a local.
A name assigned anywhere in a function (without `global`/`nonlocal`) is local in the whole
function, so it can never fall back to the builtin of the same name; the same holds for names of
enclosing functions (closures). Names bound by `import` are not counted here: the file's import
table resolves them, wherever the import statement stands. Module-level and class-level bindings
do not protect: the module dict may lack the name when the code runs, and then Python looks in
the builtins.

Because a binding may follow its use, the walk is split in two: `index` visits every node once,
collecting each scope's bindings and queueing the nodes the rules look at (pre-order, parents
before children); only once every scope is closed do the rules run over that queue. Doing both
in one pass over the tree (rather than a walk per function for its locals) is what keeps the
review within a small multiple of the parse.
"""

from __future__ import annotations

import ast
from collections.abc import Set as AbstractSet

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
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
# Fields that never hold a node worth visiting: contexts, operators, plain names and flags.
_SKIP_FIELDS = frozenset(
    {"ctx", "op", "ops", "type_comment", "kind", "id", "attr", "arg", "name", "names", "module", "level"}
    | {"conversion", "is_async", "simple", "type_ignores"}
)
# Leaves whose remaining fields hold plain values (`Constant.value` may be any str or number).
_LEAVES = (ast.Constant, ast.MatchSingleton)
# Per node type, its fields worth visiting, in reverse order (the stack pops them in order).
_FIELDS: dict[type, tuple[str, ...]] = {}
# The nodes the rules of `static_walk` look at; every other node is only traversed.
RULE_NODES = frozenset(
    {ast.Name, ast.Attribute, ast.Constant, ast.Call, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Assign}
    | {ast.Module, ast.ClassDef, ast.MatchClass, ast.FunctionDef, ast.AsyncFunctionDef}
)
_AST = ast.AST
_LOAD = ast.Load
_NAME = ast.Name
# What `index` does with a node beyond visiting its fields, as bit flags (one dict lookup).
_QUEUE, _SWITCH, _SCOPE, _BINDS_NAME, _BINDS_REST, _DECLARES, _CLASS = 1, 2, 4, 8, 16, 32, 64
_FLAGS: dict[type, int] = {kind: _QUEUE for kind in RULE_NODES}
for _kind in SCOPE_TYPES:
    _FLAGS[_kind] = _FLAGS.get(_kind, 0) | _SCOPE
for _kind in (ast.ExceptHandler, ast.MatchAs, ast.MatchStar):
    _FLAGS[_kind] = _BINDS_NAME
_FLAGS[ast.ClassDef] |= _BINDS_NAME | _CLASS
_FLAGS[ast.MatchMapping] = _BINDS_REST
_FLAGS[ast.Global] = _FLAGS[ast.Nonlocal] = _DECLARES


def _fields(kind: type) -> tuple[str, ...]:
    """Visitable fields of `kind`, reversed; none for leaves and for values that are no node."""
    if not issubclass(kind, _AST) or issubclass(kind, _LEAVES):
        fields: tuple[str, ...] = ()
    else:
        fields = tuple(f for f in reversed(kind._fields) if f not in _SKIP_FIELDS)
    _FIELDS[kind] = fields
    return fields


def children(node: ast.AST) -> list[ast.AST]:
    """`ast.iter_child_nodes` without contexts and operators, as a list."""
    kind = type(node)
    fields = _FIELDS[kind] if kind in _FIELDS else _fields(kind)
    out: list[ast.AST] = []
    for field in reversed(fields):
        value = getattr(node, field, None)
        if value is None:
            continue
        if type(value) is list:
            out.extend(item for item in value if isinstance(item, _AST))
        elif isinstance(value, _AST):
            out.append(value)
    return out


class Scope:
    """A function-like scope; `parent` is the enclosing function scope (class scopes are skipped).

    `bound` and `declared` fill up during `index`; `close` then fixes `visible`, the names this
    scope or an enclosing function binds, so that `binds` is one set lookup.
    """

    __slots__ = ("bound", "declared", "node", "parent", "visible")

    def __init__(self, node: ScopeNode, parent: Scope | None) -> None:
        self.node = node
        self.parent = parent
        self.bound: set[str] = set()
        self.declared: set[str] = set()
        self.visible: frozenset[str] = frozenset()

    def close(self) -> None:
        """Parents must be closed first (`index` closes scopes in creation order)."""
        own = self.bound - self.declared
        self.visible = frozenset(own | self.parent.visible) if self.parent is not None else frozenset(own)

    @property
    def locals(self) -> frozenset[str]:
        return frozenset(self.bound - self.declared)

    def binds(self, name: str) -> bool:
        return name in self.visible


def _arg_names(args: ast.arguments) -> list[str]:
    names = [arg.arg for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    if args.vararg:
        names.append(args.vararg.arg)
    if args.kwarg:
        names.append(args.kwarg.arg)
    return names


class _Switch:
    """A stack entry that switches the walk's (lookup scope, binding scope) when popped."""

    __slots__ = ("binder", "scope")

    def __init__(self, scope: Scope | None, binder: Scope | None) -> None:
        self.scope = scope
        self.binder = binder


_FLAGS[_Switch] = _SWITCH


def _enter(
    node: ast.AST, scope: Scope | None, binder: Scope | None, stack: list[object], scopes: list[Scope]
) -> None:
    """Decorators, defaults and annotations run in the enclosing scope; the body in its own.

    Only the body (for comprehensions: targets, conditions and inner iterables) binds names in
    the new scope; what is evaluated outside it binds nowhere that counts (a walrus in a default
    does not make a builtin local).
    """
    inner = Scope(node, scope)  # type: ignore[arg-type]
    scopes.append(inner)
    outer_items: list[ast.AST] = []
    inner_items: list[ast.AST] = []
    unbound_items: list[ast.AST] = []
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        args = node.args
        inner.bound.update(_arg_names(args))
        outer_items += node.decorator_list + args.defaults + [d for d in args.kw_defaults if d is not None]
        all_args = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        outer_items += [a.annotation for a in all_args if a is not None and a.annotation is not None]
        if node.returns is not None:
            outer_items.append(node.returns)
        inner_items += node.body
    elif isinstance(node, ast.Lambda):
        inner.bound.update(_arg_names(node.args))
        outer_items += node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
        inner_items.append(node.body)
    elif isinstance(node, _COMPREHENSIONS):
        first, *rest = node.generators
        outer_items.append(first.iter)
        inner_items += [first.target, *first.ifs]
        for gen in rest:
            inner_items += [gen.target, gen.iter, *gen.ifs]
        # The element is evaluated in the comprehension's scope but binds nothing there.
        unbound_items += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    # Popped in order: outer items, inner items, the element, then back to the enclosing context.
    stack.append(_Switch(scope, binder))
    stack.extend(reversed(unbound_items))
    stack.append(_Switch(inner, None))
    stack.extend(reversed(inner_items))
    stack.append(_Switch(inner, inner))
    stack.extend(reversed(outer_items))
    stack.append(_Switch(scope, None))


def index(
    tree: ast.AST, judged: AbstractSet[str], max_length: int
) -> list[tuple[ast.AST, Scope | None]]:
    """Every node of `RULE_NODES`, pre-order, with its lookup scope; scopes closed on return.

    A loaded name is queued only when a rule may look at it: it is in `judged`, longer than
    `max_length`, or starts with `__` (most names are plain locals that no rule concerns). The walk keeps a lookup scope and a binding scope: the
    function scope a name bound here is local to, or None at module level, in class bodies and
    in the parts of a definition evaluated outside its body. Stack entries are nodes, and
    `_Switch` markers where that context changes.
    """
    queue: list[tuple[ast.AST, Scope | None]] = []
    scopes: list[Scope] = []
    stack: list[object] = [tree]
    scope: Scope | None = None
    binder: Scope | None = None
    pop = stack.pop
    push = stack.append
    extend = stack.extend
    enqueue = queue.append
    flags_of = _FLAGS
    fields_of = _FIELDS
    while stack:
        node = pop()
        kind = type(node)
        if kind is _NAME:
            if type(node.ctx) is not _LOAD:  # type: ignore[attr-defined]
                if binder is not None:
                    binder.bound.add(node.id)  # type: ignore[attr-defined]
                enqueue((node, scope))  # type: ignore[arg-type]
            else:
                name = node.id  # type: ignore[attr-defined]
                if name in judged or len(name) > max_length or name[:2] == "__":
                    enqueue((node, scope))  # type: ignore[arg-type]
            continue
        flags = flags_of.get(kind, 0)
        if flags:
            if flags & _QUEUE:
                enqueue((node, scope))  # type: ignore[arg-type]
            if flags & _SWITCH:
                scope, binder = node.scope, node.binder  # type: ignore[attr-defined]
                continue
            if flags & _SCOPE:
                if binder is not None and (kind is ast.FunctionDef or kind is ast.AsyncFunctionDef):
                    binder.bound.add(node.name)  # type: ignore[attr-defined]
                _enter(node, scope, binder, stack, scopes)  # type: ignore[arg-type]
                continue
            if binder is not None:
                if flags & _BINDS_NAME and node.name:  # type: ignore[attr-defined]
                    binder.bound.add(node.name)  # type: ignore[attr-defined]
                elif flags & _BINDS_REST and node.rest:  # type: ignore[attr-defined]
                    binder.bound.add(node.rest)  # type: ignore[attr-defined]
                elif flags & _DECLARES:
                    binder.declared.update(node.names)  # type: ignore[attr-defined]
                if flags & _CLASS:
                    # A class body binds class attributes, not function locals.
                    push(_Switch(scope, binder))
                    binder = None
        # Children pushed in reverse, so that they are popped in field order. Lists may hold a
        # None (`{**d}` keys) or a string (`kwd_attrs`): popped, those have no fields to visit.
        for field in fields_of[kind] if kind in fields_of else _fields(kind):
            value = getattr(node, field)
            if type(value) is list:
                extend(value[::-1])
            elif value is not None:
                push(value)
    for made in scopes:
        made.close()
    return queue
