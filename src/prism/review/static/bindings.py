"""What a binding holds, and whether a write reaches a library object: value tracking for the walk.

Unknown is untrusted. A name, attribute or container that may hold a library module or class
(`L = nn.Linear`, `a = b = ...`, `L, M = ...`, `x if c else nn.Linear`, `getattr(nn, "Linear")`,
`[nn.Linear]`) is an alias; writing an attribute through an alias, or through any expression in
which a library reference appears, is monkeypatching.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from prism.review.static.resolve import Ref
from prism.review.static.scope import Scope, children

if TYPE_CHECKING:
    from prism.review.static.walk import FileWalk

_NAME = ast.Name
_ATTRIBUTE = ast.Attribute
_CALL = ast.Call


def library_value(walk: FileWalk, value: ast.expr, scope: Scope | None, depth: int = 0) -> Ref | None:
    """A library module or member the expression may evaluate to (`nn.Linear`, `getattr(nn,
    "Linear")`, `a if c else nn.Linear`, `[nn.Linear, nn.Conv1d]`), else None."""
    if depth > 8:
        return None
    if isinstance(value, ast.Name | ast.Attribute):
        ref = walk.resolve(value, scope)
        return ref if ref is not None and ref.is_library else None
    if isinstance(value, ast.Call):
        func, args = value.func, value.args
        if not (isinstance(func, ast.Name) and func.id == "getattr" and len(args) >= 2):
            return None
        base = walk.resolve(args[0], scope) if isinstance(args[0], ast.Name | ast.Attribute) else None
        name = args[1]
        if base is None or not base.is_library or not isinstance(name, ast.Constant):
            return None
        if not isinstance(name.value, str):
            return None
        return Ref("member", f"{base.path}.{name.value}")
    parts: list[ast.expr]
    if isinstance(value, ast.IfExp):
        parts = [value.body, value.orelse]
    elif isinstance(value, ast.BoolOp):
        parts = list(value.values)
    elif isinstance(value, ast.Tuple | ast.List | ast.Set):
        parts = [e.value if isinstance(e, ast.Starred) else e for e in value.elts]
    elif isinstance(value, ast.Dict):
        parts = list(value.values)
    elif isinstance(value, ast.Subscript):
        parts = [value.value]
    else:
        return None
    for part in parts:
        ref = library_value(walk, part, scope, depth + 1)
        if ref is not None:
            return ref
    return None


def patches(walk: FileWalk, target: ast.expr, base: Ref | None, node: ast.AST | None = None) -> bool:
    """Whether the object written to may be a library module or class.

    Unknown is untrusted: the base counts as a library value when a library reference or an
    alias of one appears anywhere in it (`[nn.Linear][0]`, `getattr(nn, "Linear")`,
    `(L := nn.Linear)`, `type(x)`), except as the callee of a call (`torch.zeros(3)` is a
    new tensor). Attribute names bound to library values anywhere in the project
    (`self.cls = nn.Linear`) are checked once every file is read (`node` given).
    """
    if base is not None and base.kind != "project_member":
        return True
    attrs: set[str] = set()
    pending: list[ast.AST] = [target]
    while pending:
        sub = pending.pop()
        kind = type(sub)
        if kind is _NAME:
            name = sub.id  # type: ignore[attr-defined]
            ref = walk.aliases.get(name) or walk.imports.get(name)
            if ref is not None and ref.is_library:
                return True
        elif kind is _ATTRIBUTE:
            attrs.add(sub.attr)  # type: ignore[attr-defined]
            pending.append(sub.value)  # type: ignore[attr-defined]
        elif kind is _CALL:
            func = sub.func  # type: ignore[attr-defined]
            if isinstance(func, ast.Name) and func.id == "type":
                return True
            pending.extend(sub.args)  # type: ignore[attr-defined]
            pending.extend(k.value for k in sub.keywords)  # type: ignore[attr-defined]
            if not isinstance(func, ast.Name | ast.Attribute):
                pending.append(func)
        elif kind is ast.Lambda:
            pending.append(sub.body)  # type: ignore[attr-defined]
        else:
            pending.extend(children(sub))
    if attrs and node is not None:
        walk.state.pending_patches.append((walk.out, node, frozenset(attrs)))
    return False
