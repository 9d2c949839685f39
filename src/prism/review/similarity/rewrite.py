"""Rewrites that remove code which cannot matter: dead statements, unused locals, helpers.

Part of the normalization in `similarity_normalize`: each function here takes syntax trees that
were parsed from submitted text and edits them in place. Nothing is executed.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping


def _const_truth(test: ast.expr) -> bool | None:
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _const_truth(test.operand)
        return None if inner is None else not inner
    return None


def clean_block(stmts: list[ast.stmt]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for stmt in stmts:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant | ast.Name | ast.JoinedStr):
            continue  # docstrings, bare literals and names: no effect
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.If):
            truth = _const_truth(stmt.test)
            if truth is not None:
                out.extend(clean_block(stmt.body if truth else stmt.orelse))
                continue
        if isinstance(stmt, ast.While) and _const_truth(stmt.test) is False:
            out.extend(clean_block(stmt.orelse))
            continue
        for field in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(stmt, field, clean_block(block) or ([ast.Pass()] if field == "body" else []))
        if isinstance(stmt, ast.Try):
            for handler in stmt.handlers:
                handler.body = clean_block(handler.body) or [ast.Pass()]
        if isinstance(stmt, ast.If) and not stmt.orelse and all(isinstance(s, ast.Pass) for s in stmt.body):
            continue
        out.append(stmt)
        if isinstance(stmt, ast.Return | ast.Raise | ast.Continue | ast.Break):
            break  # the rest of this block is unreachable
    return out


def _loaded_names(node: ast.AST) -> set[str]:
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store)}
    for n in ast.walk(node):
        if isinstance(n, ast.Global | ast.Nonlocal):
            names.update(n.names)
    return names


def drop_unused_locals(func: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """Remove assignments to plain local names that nothing reads (repeat until stable)."""
    while True:
        used = _loaded_names(func)
        removed = False

        def prune(block: list[ast.stmt], used: set[str] = used) -> list[ast.stmt]:
            nonlocal removed
            kept: list[ast.stmt] = []
            for stmt in block:
                target: ast.expr | None = None
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                    target = stmt.targets[0]
                elif isinstance(stmt, ast.AugAssign | ast.AnnAssign):
                    target = stmt.target
                if isinstance(target, ast.Name) and target.id not in used:
                    removed = True
                    continue
                for field in ("body", "orelse", "finalbody"):
                    inner = getattr(stmt, field, None)
                    if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                        setattr(stmt, field, prune(inner) or ([ast.Pass()] if field == "body" else []))
                kept.append(stmt)
            return kept

        func.body = prune(func.body) or [ast.Pass()]
        if not removed:
            return


def functions(node: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(node) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _inlinable(name: str, node: ast.stmt, keep: frozenset[str]) -> ast.expr | None:
    """The expression of a one-line helper `def f(a, b): return expr`, else None."""
    if not isinstance(node, ast.FunctionDef) or name in keep or node.decorator_list:
        return None
    args = node.args
    if args.defaults or args.kwonlyargs or args.vararg or args.kwarg or args.posonlyargs:
        return None
    if len(node.body) != 1 or not isinstance(node.body[0], ast.Return) or node.body[0].value is None:
        return None
    if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.body[0])):
        return None  # recursive
    return node.body[0].value


class _Inline(ast.NodeTransformer):
    """Substitute one-line helpers at their call sites: inlining a helper is not a change."""

    def __init__(self, helpers: Mapping[str, tuple[list[str], ast.expr]]) -> None:
        self.helpers = helpers

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id in self.helpers and not node.keywords:
            params, expr = self.helpers[func.id]
            if len(params) == len(node.args) and not any(isinstance(a, ast.Starred) for a in node.args):
                subst = dict(zip(params, node.args, strict=True))
                inlined: ast.AST = _Substitute(subst).visit(copy.deepcopy(expr))
                return ast.copy_location(inlined, node)
        return node


class _Substitute(ast.NodeTransformer):
    def __init__(self, subst: Mapping[str, ast.expr]) -> None:
        self.subst = subst

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return copy.deepcopy(self.subst[node.id]) if node.id in self.subst else node


def inline_helpers(nodes: Mapping[str, ast.stmt], *, keep: frozenset[str]) -> None:
    """Inline one-line helpers (not those in `keep`) into every other definition, in place."""
    for _ in range(3):  # helpers calling helpers
        helpers: dict[str, tuple[list[str], ast.expr]] = {}
        for name, node in nodes.items():
            expr = _inlinable(name, node, keep)
            if expr is not None and isinstance(node, ast.FunctionDef):
                helpers[name] = ([a.arg for a in node.args.args], expr)
        if not helpers:
            return
        for name, node in nodes.items():
            if name not in helpers:
                _Inline(helpers).visit(node)
