"""Name-independent canonical forms: equivalent code rewritten alike, user names as placeholders.

Part of the normalization in `similarity_normalize`. `Canonicalize` orders commutative operands
and independent field assignments by a key that ignores user names and unifies synonyms;
`Renamer` then replaces user-defined names by positional placeholders (`g3` definition, `v2`
local, `a5` attribute, `k` keyword) and literals by `0` / `'S'`.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping

# Methods the framework calls by name: never dead even if the project never names them.
IMPLICIT_METHODS = frozenset({"forward", "reset_parameters", "extra_repr", "_init_weights"})


def is_special(name: str) -> bool:
    return (name.startswith("__") and name.endswith("__")) or name in IMPLICIT_METHODS


def methods(cls: ast.ClassDef) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [s for s in cls.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]


def refs_in_order(node: ast.AST) -> list[str]:
    """Names and attribute names in a deterministic, name-independent traversal order."""
    out: list[str] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.append(n.id)
        elif isinstance(n, ast.Attribute):
            out.append(n.attr)
    return out


# Spellings of one operation; the value is the canonical one. Not exhaustive: what is not listed
# is still caught by containment, only not by the normalized digest.
_NAME_SYNONYMS = {
    "torch.relu": "torch.nn.functional.relu",
    "torch.tanh": "torch.nn.functional.tanh",
    "torch.sigmoid": "torch.nn.functional.sigmoid",
    "torch.softmax": "torch.nn.functional.softmax",
}
_ATTR_SYNONYMS = {"reshape": "view"}


class Canonicalize(ast.NodeTransformer):
    """Name-independent rewrites of equivalent code: operand order, field order, synonyms."""

    def __init__(self, user_attrs: set[str]) -> None:
        self.user_attrs = user_attrs
        self.use_order: dict[str, int] = {}

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        saved = self.use_order
        # Fields with the same shape (`self.q`, `self.k`, `self.v`) are ordered by first use.
        self.use_order = {}
        for method in methods(node):
            if method.name != "__init__":
                for ref in refs_in_order(method):
                    self.use_order.setdefault(ref, len(self.use_order))
        self.generic_visit(node)
        self.use_order = saved
        return node

    def key(self, node: ast.AST) -> str:
        clone = copy.deepcopy(node)
        for n in ast.walk(clone):
            if isinstance(n, ast.Name) and "." not in n.id:
                n.id = "_"  # a project name or builtin: how it is spelled must not decide the order
            elif isinstance(n, ast.Attribute) and n.attr in self.user_attrs:
                n.attr = "_"
            elif isinstance(n, ast.arg):
                n.arg = "_"
        return ast.dump(clone)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = _NAME_SYNONYMS.get(node.id, node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if node.attr not in self.user_attrs:
            node.attr = _ATTR_SYNONYMS.get(node.attr, node.attr)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        # `a + b` and `b + a` compute the same tensor.
        if isinstance(node.op, ast.Add | ast.Mult) and self.key(node.right) < self.key(node.left):
            node.left, node.right = node.right, node.left
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(node, field, self._sort_fields(block))
        return node

    def _sort_fields(self, block: list[ast.stmt]) -> list[ast.stmt]:
        """Runs of `self.x = <expr not reading self>` are independent: sort them by shape."""
        out: list[ast.stmt] = []
        run: list[ast.stmt] = []
        for stmt in [*block, None]:
            if stmt is not None and _independent_field(stmt):
                run.append(stmt)
                continue
            out.extend(sorted(run, key=self._field_key))
            run = []
            if stmt is not None:
                out.append(stmt)
        return out

    def _field_key(self, stmt: ast.stmt) -> tuple[str, int]:
        assert isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Attribute)
        return self.key(stmt), self.use_order.get(stmt.targets[0].attr, len(self.use_order))


def _independent_field(stmt: ast.stmt) -> bool:
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
        return False
    target = stmt.targets[0]
    if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
        return False
    owner = target.value.id
    return not any(isinstance(n, ast.Name) and n.id == owner for n in ast.walk(stmt.value))


class Renamer(ast.NodeTransformer):
    """Replace user-defined names by positional placeholders, literals by type placeholders."""

    def __init__(self, globals_: Mapping[str, str], user_attrs: set[str], user_params: set[str]) -> None:
        self.globals = globals_
        self.user_attrs = user_attrs
        self.user_params = user_params
        self.locals: list[dict[str, str]] = []  # one map per function scope
        self.local_sets: list[set[str]] = []
        self.attrs: dict[str, str] = {}

    def _local(self, name: str) -> str | None:
        for names, mapping in zip(reversed(self.local_sets), reversed(self.locals), strict=True):
            if name in names:
                return mapping.setdefault(name, f"v{len(mapping)}")
        return None

    def _attr(self, name: str) -> str:
        if is_special(name) or name not in self.user_attrs:
            return name
        return self.attrs.setdefault(name, f"a{len(self.attrs)}")

    def _scoped_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> ast.AST:
        names = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    names.add(n.id)
                elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or (
                    isinstance(n, ast.ExceptHandler) and n.name
                ):
                    names.add(str(n.name))
                elif isinstance(n, ast.Global | ast.Nonlocal):
                    names.difference_update(n.names)
        self.local_sets.append(names)
        self.locals.append({})
        # Arguments first so parameters are numbered by position, then the body in order.
        for a in ast.walk(node.args):
            if isinstance(a, ast.arg):
                a.arg = self._local(a.arg) or a.arg
                a.annotation = None
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [self.visit(d) if d is not None else None for d in node.args.kw_defaults]
        if isinstance(node, ast.Lambda):
            node.body = self.visit(node.body)
        else:
            node.returns = None
            node.decorator_list = [self.visit(d) for d in node.decorator_list]
            node.body = [self.visit(s) for s in node.body]
        self.locals.pop()
        self.local_sets.pop()
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self._rename_def(node.name)
        node.type_comment = None
        return self._scoped_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        node.name = self._rename_def(node.name)
        return self._scoped_function(node)

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return self._scoped_function(node)

    def _rename_def(self, name: str) -> str:
        if self.local_sets:
            local = self._local(name)
            if local is not None:
                return local
        if name in self.globals:
            return self.globals[name]
        return self._attr(name)  # a method

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self._rename_def(node.name)
        saved = self.attrs
        self.attrs = {}  # attribute numbering is per class: renaming one class's fields is local
        node.bases = [self.visit(b) for b in node.bases]
        node.keywords = [self.visit(k) for k in node.keywords]
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        body: list[ast.stmt] = []
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                # An annotated field (`hidden: int = 64`, every dataclass field) is a class
                # attribute like `hidden = 64`: named by placeholder, its annotation dropped.
                value = stmt.value if stmt.value is not None else ast.Constant(value=None)
                stmt = ast.copy_location(ast.Assign(targets=[stmt.target], value=value), stmt)
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name):
                            n.id = self._attr(n.id)
                stmt.value = self.visit(stmt.value)
                body.append(stmt)
            else:
                body.append(self.visit(stmt))
        node.body = body
        self.attrs = saved
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        local = self._local(node.id) if self.local_sets else None
        if local is not None:
            node.id = local
        elif node.id in self.globals:
            node.id = self.globals[node.id]
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        node.value = self.visit(node.value)
        node.attr = self._attr(node.attr)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        # Keyword names of calls into the project are its own parameter names: normalized. A
        # library call's keywords (`dim=`, `bias=`) are the library's and stay.
        func = node.func
        own = (isinstance(func, ast.Name) and (func.id in self.globals or self._is_local(func.id))) or (
            isinstance(func, ast.Attribute) and func.attr in self.user_attrs and not is_special(func.attr)
        )
        if own:
            for kw in node.keywords:
                if kw.arg is not None and (kw.arg in self.user_params or kw.arg in self.user_attrs):
                    kw.arg = "k"
        self.generic_visit(node)
        return node

    def _is_local(self, name: str) -> bool:
        return any(name in names for names in self.local_sets)

    def visit_Global(self, node: ast.Global) -> ast.AST:
        node.names = [self.globals.get(n, n) for n in node.names]
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, bool) or node.value is None or node.value is Ellipsis:
            return node
        if isinstance(node.value, str | bytes):
            return ast.copy_location(ast.Constant(value="S"), node)
        return ast.copy_location(ast.Constant(value=0), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return ast.copy_location(ast.Constant(value="S"), node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.Pass()
        assign = ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)
        result: ast.AST = self.visit(assign)
        return result
