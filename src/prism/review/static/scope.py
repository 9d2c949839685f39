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
from dataclasses import dataclass
from typing import Any

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
# (`index` queues names, attributes and calls itself, and only those a rule may judge.)
RULE_NODES = frozenset(
    {ast.Constant, ast.Module, ast.ClassDef, ast.MatchClass, ast.FunctionDef, ast.AsyncFunctionDef}
    | {ast.For, ast.AsyncFor, ast.NamedExpr, ast.ExceptHandler, ast.MatchAs, ast.MatchStar, ast.MatchMapping}
)
_AST = ast.AST
_LOAD = ast.Load
_NAME = ast.Name
_ATTRIBUTE = ast.Attribute
_CALL = ast.Call
# Assigned values that may hold a library value inside (`[nn.Linear]`, `a if c else nn.Linear`).
_CONTAINER_VALUES = frozenset({ast.Tuple, ast.List, ast.Set, ast.Dict, ast.IfExp, ast.BoolOp, ast.Subscript})
# What `index` does with a node beyond visiting its fields, as bit flags (one dict lookup).
_QUEUE, _SWITCH, _SCOPE, _BINDS_NAME, _BINDS_REST, _DECLARES, _CLASS, _LEAF = 1, 2, 4, 8, 16, 32, 64, 128
_QUEUE_BIG, _QUEUE_REF = 256, 512
_FLAGS: dict[type, int] = {kind: _QUEUE for kind in RULE_NODES}
_kind: type
for _kind in SCOPE_TYPES:
    _FLAGS[_kind] = _FLAGS.get(_kind, 0) | _SCOPE
for _kind in (ast.ExceptHandler, ast.MatchAs, ast.MatchStar):
    _FLAGS[_kind] = _FLAGS.get(_kind, 0) | _BINDS_NAME
_FLAGS[ast.ClassDef] |= _BINDS_NAME | _CLASS
_FLAGS[ast.MatchMapping] = _FLAGS.get(ast.MatchMapping, 0) | _BINDS_REST
_FLAGS[ast.Global] = _FLAGS[ast.Nonlocal] = _DECLARES
_FLAGS[ast.Constant] |= _LEAF
_FLAGS[ast.Assign] = _QUEUE_REF
for _kind in (ast.List, ast.Tuple, ast.Set, ast.Dict):
    _FLAGS[_kind] = _QUEUE_BIG


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
    node: ast.AST,
    scope: Scope | None,
    binder: Scope | None,
    stack: list[object],
    scopes: list[Scope],
    queue: list[tuple[ast.AST, Scope | None]],
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
        # Each `for` of a comprehension binds its target: the rules see it as a binding.
        queue.extend((gen, inner) for gen in node.generators)
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


def _plan(kind: type) -> tuple[int, tuple[str, ...]]:
    plan = _PLANS[kind] = (_FLAGS.get(kind, 0), _FIELDS[kind] if kind in _FIELDS else _fields(kind))
    return plan


_PLANS: dict[type, tuple[int, tuple[str, ...]]] = {}


@dataclass(frozen=True, slots=True)
class Interest:
    """Which nodes a rule may judge, so that `index` queues only those (most nodes are plain).

    A loaded name is queued when it is in `names` or `imports`, longer than `max_length` or a
    dunder; as the base of an attribute, an imported name is left to the attribute (which
    resolves it). An attribute chain is queued whole when its root is in `imports` (only those
    can denote a module), but for inner links whose name no rule concerns; elsewhere a link
    is queued when its name is private, in `attributes` or too long, or when it is assigned.
    A call when its callee is a name or an attribute named in `calls`. A literal list, tuple,
    set or dict when it has more than `max_elements` elements; an assignment when its value
    is a chain from an import. The other rule nodes always.
    """

    names: AbstractSet[str]
    imports: AbstractSet[str]
    attributes: AbstractSet[str]
    calls: AbstractSet[str]
    max_length: int
    max_elements: int


def _judged(attr: str, attributes: AbstractSet[str], max_length: int) -> bool:
    """Whether some rule judges an attribute of this name on any base (asked once per name)."""
    return attr in attributes or len(attr) > max_length or attr.startswith("_")


def index(tree: ast.AST, interest: Interest) -> list[tuple[ast.AST, Scope | None]]:
    """The nodes a rule may judge, pre-order, with their lookup scope; scopes closed on return.

    The walk keeps a lookup scope and a binding scope: the function scope a name bound here is
    local to, or None at module level, in class bodies and in the parts of a definition
    evaluated outside its body. Stack entries are nodes, and `_Switch` markers where that
    context changes.
    """
    queue: list[tuple[ast.AST, Scope | None]] = []
    scopes: list[Scope] = []
    # Nodes, values from lists of mixed fields, and `_Switch` markers: checked by type.
    stack: list[Any] = [tree]
    scope: Scope | None = None
    binder: Scope | None = None
    pop = stack.pop
    push = stack.append
    extend = stack.extend
    enqueue = queue.append
    plans = _PLANS
    names = interest.names
    imports = interest.imports
    attributes = interest.attributes
    calls = interest.calls
    max_length = interest.max_length
    max_elements = interest.max_elements
    # Whether a loaded name or attribute is queued, per name: the same names recur in a file.
    queued_names: dict[str, bool] = {}
    queued_attributes: dict[str, bool] = {}
    queued_bases: dict[str, bool] = {}
    while stack:
        node = pop()
        kind = type(node)
        if kind is _NAME:
            name = node.id
            if type(node.ctx) is not _LOAD:
                if binder is not None:
                    binder.bound.add(name)
                # A store is judged at module level, when private (the project defines it) or long.
                if scope is None or name.startswith("_") or len(name) > max_length:
                    enqueue((node, scope))
                continue
            verdict = queued_names.get(name)
            if verdict is None:
                verdict = queued_names[name] = (
                    name in names or name in imports or len(name) > max_length or name.startswith("__")
                )
            if verdict:
                enqueue((node, scope))
            continue
        if kind is _ATTRIBUTE:
            # The whole chain `root.a.b` at once, outermost link first (pre-order).
            links = [node]
            root = node.value
            while type(root) is _ATTRIBUTE:
                links.append(root)
                root = root.value
            base_name = type(root) is _NAME
            name_queued = False
            if base_name:
                name = root.id
                verdict = queued_bases.get(name)
                if verdict is None:
                    verdict = queued_bases[name] = name in names or len(name) > max_length or name.startswith("__")
                name_queued = verdict
            if base_name and root.id in imports:
                # Only a chain from an import can denote a module or library member: its
                # outermost link resolves it all. An inner link adds nothing unless its own name
                # is judged; but then every link above it is queued too, since each link marks
                # the one below as a legitimate attribute base.
                deepest = len(links) if name_queued else 0
                for position in range(len(links) - 1, deepest - 1, -1):
                    attr = links[position].attr
                    verdict = queued_attributes.get(attr)
                    if verdict is None:
                        verdict = queued_attributes[attr] = _judged(attr, attributes, max_length)
                    if verdict:
                        deepest = position
                        break
                for link in links[: deepest + 1]:
                    enqueue((link, scope))
            else:
                # Elsewhere an attribute is judged by its name alone, or when it is assigned.
                if type(node.ctx) is not _LOAD:
                    enqueue((node, scope))
                    links_to_judge = links[1:]
                else:
                    links_to_judge = links
                for link in links_to_judge:
                    attr = link.attr
                    verdict = queued_attributes.get(attr)
                    if verdict is None:
                        verdict = queued_attributes[attr] = _judged(attr, attributes, max_length)
                    if verdict:
                        enqueue((link, scope))
            if not base_name:
                push(root)
            elif name_queued:
                enqueue((root, scope))
            continue
        if kind is _CALL:
            func = node.func
            callee = type(func)
            if (
                (callee is _NAME and func.id in calls)
                or (callee is _ATTRIBUTE and func.attr in calls)
                or (callee is _CALL and type(func.func) is _NAME and func.func.id in calls)
            ):
                enqueue((node, scope))
        try:
            flags, fields = plans[kind]
        except KeyError:
            flags, fields = _plan(kind)
        if flags:
            if flags & _QUEUE:
                enqueue((node, scope))
                if flags & _LEAF:
                    continue
            elif flags & _QUEUE_BIG:
                if len(node.keys if kind is ast.Dict else node.elts) > max_elements:
                    enqueue((node, scope))
            elif flags & _QUEUE_REF:
                # An assignment matters only when it may alias a library member (`L = nn.Linear`).
                root = node.value
                shape = type(root)
                if shape in _CONTAINER_VALUES or (
                    shape is _CALL and type(root.func) is _NAME and root.func.id == "getattr"
                ):
                    enqueue((node, scope))  # `L, M = nn.Linear, nn.Conv1d`, `L = a or nn.Linear`
                while type(root) is _ATTRIBUTE:
                    root = root.value
                if type(root) is _NAME and root.id in imports:
                    enqueue((node, scope))
            if flags & _SWITCH:
                scope, binder = node.scope, node.binder
                continue
            if flags & _SCOPE:
                if binder is not None and (kind is ast.FunctionDef or kind is ast.AsyncFunctionDef):
                    binder.bound.add(node.name)
                _enter(node, scope, binder, stack, scopes, queue)
                continue
            if binder is not None:
                if flags & _BINDS_NAME and node.name:
                    binder.bound.add(node.name)
                elif flags & _BINDS_REST and node.rest:
                    binder.bound.add(node.rest)
                elif flags & _DECLARES:
                    binder.declared.update(node.names)
                if flags & _CLASS:
                    # A class body binds class attributes, not function locals.
                    push(_Switch(scope, binder))
                    binder = None
        # Children pushed in reverse, so that they are popped in field order. Lists may hold a
        # None (`{**d}` keys) or a string (`kwd_attrs`): popped, those have no fields to visit.
        for field in fields:
            value = getattr(node, field)
            if type(value) is list:
                extend(value[::-1])
            elif value is not None:
                push(value)
    for made in scopes:
        made.close()
    return queue
