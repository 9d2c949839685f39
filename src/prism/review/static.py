"""Static review of every Python file of a project, by AST, collecting all findings.

    review_project(project, policy=None) -> StaticReport

The review never imports or executes submitted code. Per file: source-level rules (encoding
cookie, invisible characters, ASCII identifiers), the parse, one scoped walk (imports, names,
attributes, calls, format strings, literals, monkeypatching) and the import-time rules. Then the
project-wide rules: private names must be defined by the project, modules may not be reached
through another project module, no file may shadow a standard-library or allowlisted module, and
the entrypoint must satisfy the model contract. See docs/intake-and-review.md.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass

from prism.evidence import Evidence
from prism.intake.project import Project
from prism.review.static_contract import check_contract, contract_view
from prism.review.static_findings import FileFindings
from prism.review.static_modules import TORCH_PRIVATE
from prism.review.static_policy import EXTRA_SHADOWED_NAMES, StaticPolicy
from prism.review.static_resolve import ProjectModules, module_name_of
from prism.review.static_source import check_source
from prism.review.static_state import ProjectState
from prism.review.static_toplevel import TopLevel, pure_dataclasses
from prism.review.static_walk import FileWalk

__all__ = ["StaticPolicy", "StaticReport", "review_project"]


@dataclass(frozen=True, slots=True)
class StaticReport:
    findings: tuple[Evidence, ...]

    @property
    def accepted(self) -> bool:
        return not self.findings


def _shadowed_names(policy: StaticPolicy) -> frozenset[str]:
    roots = {name.split(".")[0] for name in policy.allowed_modules}
    return frozenset(sys.stdlib_module_names) | EXTRA_SHADOWED_NAMES | roots


def _check_shadowing(
    paths: list[str], policy: StaticPolicy, out_for: dict[str, FileFindings], texts: dict[str, str]
) -> None:
    shadowed = _shadowed_names(policy)
    for path in paths:
        first = path.split("/")[0]
        root = first[: -len(".py")] if first.endswith(".py") else first
        if root in shadowed:
            out = out_for.setdefault(path, FileFindings(path, texts.get(path, "")))
            out.add_at(
                "static.shadowing",
                0,
                0,
                f"{path} would be imported as `{root}`, shadowing the standard-library or allowlisted module",
            )


def review_project(project: Project, *, policy: StaticPolicy | None = None) -> StaticReport:
    policy = policy or StaticPolicy()
    sources = project.python_files
    modules = ProjectModules(list(sources))
    state = ProjectState(policy, modules, TORCH_PRIVATE)
    outs: dict[str, FileFindings] = {}
    # What the contract check needs of each parsed file; the trees themselves are dropped as
    # soon as a file is reviewed (holding thirty trees at once costs more than reading them).
    trees: dict[str, ast.Module] = {}
    _check_shadowing(list(sources), policy, outs, sources)
    pure: set[str] = set()
    waiting: list[TopLevel] = []
    for path, text in sources.items():
        out = outs.setdefault(path, FileFindings(path, text))
        tree = check_source(text, out)
        if tree is None:
            continue
        trees[path] = contract_view(tree)
        walk = FileWalk(out, tree, state)
        walk.module_name = module_name_of(path) or ""
        try:
            walk.collect_imports()
            pure.update(pure_dataclasses(walk))
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
        top.finish()
    for out, node, attr in state.private_reads:
        if attr not in state.defined_private:
            out.add("static.attribute.private", node, f"attribute {attr} is private and not defined by the project")
    for out, node, module, name in state.reexports:
        if name in state.module_imports.get(module, set()):
            out.add(
                "static.module.reexport",
                node,
                f"{module}.{name} is a module imported there; import modules directly, not through project files",
            )

    def findings_for(path: str) -> FileFindings:
        return outs.setdefault(path, FileFindings(path, project.files.get(path, "")))

    check_contract(project.entrypoint, trees, modules, findings_for)
    items = [item for out in outs.values() for item in out.items]
    items.sort(key=lambda e: (e.path, e.line, e.column, e.rule_id))
    return StaticReport(findings=tuple(items))
