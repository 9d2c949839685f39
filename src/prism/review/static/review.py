"""Static review of every Python file of a project, by AST, collecting all findings.

    review_project(project, policy=None) -> StaticReport

The review never imports or executes submitted code. Per file: source-level rules (encoding
cookie, invisible characters, ASCII identifiers), the parse, one scoped walk (imports, names,
attributes, calls, format strings, literals, monkeypatching) and the import-time rules. Then the
project-wide rules: private names must be defined by the project, modules may not be reached
through another project module, attributes that hold library classes may not be patched, no file
may shadow a standard-library or allowlisted module (from any folder on the harness's
`sys.path`) or another project file, and the entrypoint must satisfy the model contract. Cost is
linear: findings per file are capped and a project past `deadline_s` is `static.too_complex`.
See docs/intake-and-review.md.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass

from prism.evidence import Evidence
from prism.intake.project import Project
from prism.review.static.contract import check_contract, contract_view
from prism.review.static.findings import FileFindings
from prism.review.static.modules import TORCH_PRIVATE
from prism.review.static.policy import EXTRA_SHADOWED_NAMES, StaticPolicy
from prism.review.static.resolve import ProjectModules, entry_folder
from prism.review.static.source import check_source
from prism.review.static.state import ProjectState, TooComplex
from prism.review.static.toplevel import TopLevel, pure_dataclasses, pure_namedtuples
from prism.review.static.walk import FileWalk

__all__ = ["StaticPolicy", "StaticReport", "review_project"]


@dataclass(frozen=True, slots=True)
class StaticReport:
    findings: tuple[Evidence, ...]

    @property
    def accepted(self) -> bool:
        return not self.findings


@functools.lru_cache(maxsize=8)
def _shadowed_names(policy: StaticPolicy) -> frozenset[str]:
    roots = {name.split(".")[0] for name in policy.allowed_modules}
    return frozenset(sys.stdlib_module_names) | EXTRA_SHADOWED_NAMES | roots


def _check_shadowing(
    modules: ProjectModules, policy: StaticPolicy, findings_for: Callable[[str], FileFindings]
) -> None:
    """No project file may be importable under the name of a standard-library or allowed module.

    Names count from every folder on the harness's `sys.path`: the root, and the entrypoint's
    folder when it is not the root (`src/os.py` with entrypoint `src/net.py` is `os`).
    """
    shadowed = _shadowed_names(policy)
    for root, path in modules.top_names().items():
        if root in shadowed:
            findings_for(path).add_at(
                "static.shadowing",
                1,
                0,
                f"{path} would be imported as `{root}`, shadowing the standard-library or allowlisted module",
            )


# The default policy, one object: the caches keyed by policy then find it by identity, without
# comparing every field (a fresh `StaticPolicy()` per review cost a few percent of a small file).
_DEFAULT_POLICY = StaticPolicy()


def review_project(project: Project, *, policy: StaticPolicy | None = None) -> StaticReport:
    policy = policy or _DEFAULT_POLICY
    sources = project.python_files
    modules = ProjectModules(list(sources), entry_folder=entry_folder(project.entrypoint))
    state = ProjectState(policy, modules, TORCH_PRIVATE)
    outs: dict[str, FileFindings] = {}
    cap = policy.max_findings_per_file

    def findings_for(path: str) -> FileFindings:
        out = outs.get(path)
        if out is None:
            out = outs[path] = FileFindings(path, project.files.get(path, ""), cap=cap)
        return out

    # What the contract check needs of each parsed file; the trees themselves are dropped as
    # soon as a file is reviewed (holding thirty trees at once costs more than reading them).
    trees: dict[str, ast.Module] = {}
    _check_shadowing(modules, policy, findings_for)
    for path, rule, explanation in modules.shadowed():
        findings_for(path).add_at(rule, 1, 0, explanation)
    try:
        _review_files(sources, state, findings_for, trees)
    except TooComplex:
        findings_for(project.entrypoint).add_at(
            "static.too_complex",
            0,
            0,
            f"the review did not finish within deadline_s={policy.deadline_s:g}; ordinary models take "
            "well under a second",
        )
        return _report(outs)
    for out, node, attr in state.private_reads:
        if attr not in state.defined_private:
            out.add("static.attribute.private", node, f"attribute {attr} is private and not defined by the project")
    for out, node, attrs in state.pending_patches:
        if attrs & state.attr_aliases:
            out.add(
                "static.monkeypatch",
                node,
                f"assigning an attribute of {', '.join(sorted(attrs & state.attr_aliases))}, which holds a "
                "library module or class, changes code the harness relies on",
            )
    for out, node, module, name in state.reexports:
        if name in state.module_imports.get(module, set()):
            out.add(
                "static.module.reexport",
                node,
                f"{module}.{name} is a module imported there; import modules directly, not through project files",
            )
    check_contract(project.entrypoint, trees, modules, findings_for)
    return _report(outs)


def _review_files(
    sources: dict[str, str],
    state: ProjectState,
    findings_for: Callable[[str], FileFindings],
    trees: dict[str, ast.Module],
) -> None:
    pure: set[str] = set()
    waiting: list[TopLevel] = []
    for path, text in sources.items():
        state.check_deadline()
        out = findings_for(path)
        tree = check_source(text, out)
        if tree is None:
            continue
        trees[path] = contract_view(tree)
        walk = FileWalk(out, tree, state)
        walk.module_name = state.modules.name_of(path)
        try:
            walk.collect_imports()
            pure.update(pure_dataclasses(walk))
            pure.update(pure_namedtuples(walk))
            walk.run()
            # A default such as `Settings()` is pure when `Settings` is an inert dataclass,
            # possibly of a file not read yet: those verdicts wait for `finish`.
            top = TopLevel(walk, pure, deferring=True)
            top.run(tree)
            if top.deferred:
                waiting.append(top)
        except RecursionError:
            out.add_at("static.too_complex", 0, 0, "the file nests too deeply to review")
        walk.release()
        del tree
    for top in waiting:
        state.check_deadline()
        top.finish()


def _report(outs: dict[str, FileFindings]) -> StaticReport:
    for out in outs.values():
        out.close()
    items = [item for out in outs.values() for item in out.items]
    items.sort(key=lambda e: (e.path, e.line, e.column, e.rule_id))
    return StaticReport(findings=tuple(items))
