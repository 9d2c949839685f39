"""The model contract, checked in the entrypoint only.

`build_model(ctx)` must be a plain top-level function callable with one positional argument;
the optional hooks `configure_optimizer(model, ctx)` and `train_step(model, batch, optimizer,
ctx)` are checked the same way when present. An entrypoint may also re-export a contract
function from one of the project's own modules (`from .impl import build_model`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

from prism.review.static.findings import FileFindings
from prism.review.static.resolve import ProjectModules, module_name_of

CONTRACT = {"build_model": 1, "configure_optimizer": 2, "train_step": 4}
REQUIRED = ("build_model",)
_MAX_HOPS = 4


def _definitions(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    found: dict[str, list[ast.stmt]] = {}
    for stmt in tree.body:
        names: list[str] = []
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [stmt.name]
        elif isinstance(stmt, ast.Assign):
            names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names = [stmt.target.id]
        elif isinstance(stmt, ast.ImportFrom):
            names = [a.asname or a.name for a in stmt.names]
        for name in names:
            if name in CONTRACT:
                found.setdefault(name, []).append(stmt)
    return found


def contract_view(tree: ast.Module) -> ast.Module:
    """The top-level statements that bind a contract name: all `check_contract` reads of a file.

    Keeping only these (not the whole tree) lets the review free each file's tree once read.
    """
    bound = {id(stmt) for stmts in _definitions(tree).values() for stmt in stmts}
    return ast.Module(body=[stmt for stmt in tree.body if id(stmt) in bound], type_ignores=[])


def _signature_problem(node: ast.FunctionDef, positional: int) -> str | None:
    args = node.args
    params = [*args.posonlyargs, *args.args]
    required_kw = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    if required_kw:
        return f"keyword-only parameters without defaults: {', '.join(required_kw)}"
    if len(params) < positional and args.vararg is None:
        return f"takes {len(params)} positional parameters; the harness passes {positional}"
    required = len(params) - len(args.defaults)
    if required > positional:
        return f"requires {required} positional arguments; the harness passes {positional}"
    return None


def check_contract(
    entrypoint: str,
    trees: Mapping[str, ast.Module],
    modules: ProjectModules,
    findings_for: Callable[[str], FileFindings],
) -> None:
    out = findings_for(entrypoint)
    tree = trees.get(entrypoint)
    if tree is None:
        out.add_at("contract.entrypoint_unreadable", 0, 0, f"entrypoint {entrypoint} is missing or does not parse")
        return
    defs = _definitions(tree)
    for name, positional in CONTRACT.items():
        statements = defs.get(name, [])
        if not statements:
            if name in REQUIRED:
                out.add_at("contract.missing_build_model", 0, 0, f"{entrypoint} defines no top-level {name}(ctx)")
            continue
        if len(statements) > 1:
            out.add("contract.redefined", statements[-1], f"{name} is bound more than once at top level")
            continue
        _check_one(name, positional, statements[0], entrypoint, trees, modules, findings_for)


def _check_one(
    name: str,
    positional: int,
    stmt: ast.stmt,
    path: str,
    trees: Mapping[str, ast.Module],
    modules: ProjectModules,
    findings_for: Callable[[str], FileFindings],
) -> None:
    for _ in range(_MAX_HOPS):
        out = findings_for(path)
        if isinstance(stmt, ast.FunctionDef):
            problem = _signature_problem(stmt, positional)
            if problem:
                out.add("contract.signature", stmt, f"{name} in {path}: {problem}")
            return
        if not isinstance(stmt, ast.ImportFrom):
            kind = "an async function" if isinstance(stmt, ast.AsyncFunctionDef) else "not a plain function"
            out.add("contract.not_a_function", stmt, f"{name} is {kind}")
            return
        source = stmt.module or ""
        if stmt.level:
            source = modules.resolve_relative(path, stmt.module, stmt.level) or ""
        target = modules.modules.get(source)
        original = next((a.name for a in stmt.names if (a.asname or a.name) == name), name)
        if target is None or target not in trees or original != name:
            out.add("contract.not_a_function", stmt, f"{name} must be defined in the project under that name")
            return
        stmts = _definitions(trees[target]).get(name, [])
        if len(stmts) != 1:
            out.add("contract.not_a_function", stmt, f"{name} is not defined exactly once in {target}")
            return
        stmt, path = stmts[0], target
    findings_for(path).add("contract.not_a_function", stmt, f"{name} is re-exported through too many modules")


__all__ = ["CONTRACT", "check_contract", "contract_view", "module_name_of"]
