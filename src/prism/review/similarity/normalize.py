"""Normalization: a project's Python files become one canonical program of top-level regions.

Everything an obfuscator can change without changing what the model computes is taken out here,
before any fingerprint is made, so that a copy lands on the same fingerprints however it was
shuffled:

- files are merged into one namespace (imports between project files resolve to the definitions,
  library aliases resolve to dotted names: `nn.Linear` and `torch.nn.Linear` are one thing);
- equivalent spellings of one computation become one (`equivalences.py`: `F.relu`/`torch.relu`/
  `x.relu()`/`nn.ReLU()`, `view`/`reshape`, `Sequential` vs named layers, wrappers, ...);
- comments, docstrings, type annotations and bare expression statements are dropped;
- dead code is dropped: statements after `return`/`raise`/`break`/`continue`, `if False:` style
  branches, local assignments never read, and every function, class, method or constant that the
  contract functions (`build_model`, `configure_optimizer`, `train_step`) cannot reach;
- definitions are put in a canonical order: breadth-first from the contract functions, following
  references in code order (which does not depend on how anything is named);
- user-defined names become positional placeholders (`g3` for a definition, `v2` for a local,
  `a5` for an attribute, numbered by first use in their scope) and literals become `0`/`'S'`.

The result is pure data derived from the text only; nothing submitted is imported or executed.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from prism import pyast
from prism.evidence import Evidence
from prism.review.similarity.equivalences import canonical_forms, unwrap
from prism.review.similarity.errors import FingerprintError
from prism.review.similarity.rename import Canonicalize, Renamer, is_special, methods, refs_in_order
from prism.review.similarity.rewrite import clean_block, drop_unused_locals, functions, inline_helpers

RegionKind = Literal["architecture", "training", "other"]

ARCHITECTURE_ROOTS = ("build_model",)
TRAINING_ROOTS = ("configure_optimizer", "train_step")
CONTRACT_ROOTS = ARCHITECTURE_ROOTS + TRAINING_ROOTS

_DefNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Assign


@dataclass(frozen=True, slots=True)
class Region:
    """One top-level definition as it appears in the submitted files (for evidence)."""

    kind: RegionKind
    name: str
    path: str
    line: int
    end_line: int
    snippet_sha256: str


@dataclass(frozen=True, slots=True)
class NormalizedRegion:
    region: Region
    node: ast.stmt  # the normalized definition; owned by this value, never mutated after build


@dataclass(frozen=True, slots=True)
class NormalizedProgram:
    regions: tuple[NormalizedRegion, ...]

    def text(self, kinds: Iterable[RegionKind] | None = None) -> str:
        wanted = set(kinds) if kinds is not None else None
        return "\n".join(ast.unparse(r.node) for r in self.regions if wanted is None or r.region.kind in wanted)


@dataclass(slots=True)
class _Def:
    name: str
    node: _DefNode
    path: str


def _parse(path: str, text: str) -> ast.Module:
    try:
        return pyast.parse(text, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None) or 0
        raise FingerprintError(
            Evidence.at(
                "similarity.unparsable",
                path,
                int(line),
                f"cannot fingerprint {path}: not parsable Python ({exc.__class__.__name__})",
                snippet=text,
            )
        ) from exc


def _module_names(paths: Iterable[str]) -> dict[str, str]:
    """Every dotted suffix of a project file's module name -> its path (`a/b.py`: `a.b`, `b`)."""
    names: dict[str, str] = {}
    for path in sorted(paths):
        parts = path[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        for start in range(len(parts)):
            names.setdefault(".".join(parts[start:]), path)
    return names


# An import binding: ("lib", dotted) for a library, ("def", name) for a project definition,
# ("mod", path) for a project module used as a namespace.
_Ref = tuple[Literal["lib", "def", "mod"], str]


def _aliases(tree: ast.Module, modules: Mapping[str, str]) -> dict[str, _Ref]:
    out: dict[str, _Ref] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    local = modules.get(alias.name)
                    out[alias.asname] = ("mod", local) if local else ("lib", alias.name)
                else:
                    head = alias.name.split(".")[0]
                    local = modules.get(head)
                    out[head] = ("mod", local) if local else ("lib", head)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            local_module = modules.get(module) if module else None
            is_local = bool(node.level) or local_module is not None
            for alias in node.names:
                if alias.name == "*":
                    continue
                bound = alias.asname or alias.name
                if is_local:
                    sub = modules.get(f"{module}.{alias.name}" if module else alias.name)
                    out[bound] = ("mod", sub) if sub and not module else ("def", alias.name)
                else:
                    out[bound] = ("lib", f"{module}.{alias.name}")
    return out


class _ResolveAliases(ast.NodeTransformer):
    """`F.relu` -> `torch.nn.functional.relu`; `layers.Block` -> `Block` (merged namespace)."""

    def __init__(self, aliases: Mapping[str, _Ref]) -> None:
        self.aliases = aliases
        self.library: set[str] = set()

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name):
            ref = self.aliases.get(node.value.id)
            if ref is not None and ref[0] == "mod":
                return ast.copy_location(ast.Name(id=node.attr, ctx=node.ctx), node)
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in self.library:
            # `torch.nn.functional.relu` becomes one library name, however it was imported.
            flat = f"{node.value.id}.{node.attr}"
            self.library.add(flat)
            return ast.copy_location(ast.Name(id=flat, ctx=node.ctx), node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        ref = self.aliases.get(node.id)
        if ref is not None and ref[0] in ("lib", "def"):
            node.id = ref[1]
            if ref[0] == "lib":
                self.library.add(node.id)
        return node


# ------------------------------------------------------------------------------- reachability


def _prune_class(cls: ast.ClassDef, attr_refs: set[str]) -> None:
    cls.body = [
        s
        for s in cls.body
        if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef) or is_special(s.name) or s.name in attr_refs
    ] or [ast.Pass()]


def _reachable(defs: Mapping[str, _Def], roots: Iterable[str]) -> list[str]:
    """Breadth-first from the roots, in code order: the canonical definition order."""
    order: list[str] = []
    queue = [r for r in roots if r in defs]
    seen = set(queue)
    while queue:
        name = queue.pop(0)
        order.append(name)
        for ref in refs_in_order(defs[name].node):
            if ref in defs and ref not in seen:
                seen.add(ref)
                queue.append(ref)
    return order


def _order_methods(cls: ast.ClassDef) -> None:
    """`__init__`, `forward`, then methods in order of first use; class attributes first."""
    by_name = {m.name: m for m in methods(cls)}
    others = [s for s in cls.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
    placed: list[str] = [n for n in ("__init__", "forward") if n in by_name]
    i = 0
    while i < len(placed):
        for ref in refs_in_order(by_name[placed[i]]):
            if ref in by_name and ref not in placed:
                placed.append(ref)
        i += 1
    rest = sorted((n for n in by_name if n not in placed), key=lambda n: ast.dump(_anonymous(by_name[n])))
    cls.body = others + [by_name[n] for n in placed + rest]


def _anonymous(node: ast.AST) -> ast.AST:
    """A copy with every identifier blanked: a name-independent sort key."""
    clone = pyast.reparse(node) if isinstance(node, ast.stmt) else node
    for n in ast.walk(clone):
        if isinstance(n, ast.Name):
            n.id = "_"
        elif isinstance(n, ast.Attribute):
            n.attr = "_"
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            n.name = "_"
        elif isinstance(n, ast.arg):
            n.arg = "_"
    return clone


# ---------------------------------------------------------------------------------- assembly


def _collect_defs(trees: Mapping[str, ast.Module], entrypoint: str) -> dict[str, _Def]:
    defs: dict[str, _Def] = {}
    # The entrypoint's definitions win a name clash; the other files follow in path order.
    for path in sorted(trees, key=lambda p: (p != entrypoint, p)):
        for stmt in trees[path].body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defs.setdefault(stmt.name, _Def(stmt.name, stmt, path))
            elif isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                targets: list[ast.expr] = list(stmt.targets) if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
                node = stmt if isinstance(stmt, ast.Assign) else ast.Assign(targets=targets, value=stmt.value)
                ast.copy_location(node, stmt)
                node.end_lineno = stmt.end_lineno
                for name in names:
                    defs.setdefault(name, _Def(name, node, path))
    return defs


def _prune(defs: dict[str, _Def], roots: tuple[str, ...]) -> list[str]:
    """Drop dead methods and unreachable definitions; return the canonical order."""
    for d in defs.values():
        for cls in [n for n in ast.walk(d.node) if isinstance(n, ast.ClassDef)]:
            cls.body = clean_block(cls.body) or [ast.Pass()]
        for func in functions(d.node):
            func.body = clean_block(func.body) or [ast.Pass()]
            drop_unused_locals(func)
    inline_helpers({name: d.node for name, d in defs.items()}, keep=frozenset(CONTRACT_ROOTS))
    if not any(r in defs for r in roots):
        roots = tuple(sorted(defs, key=lambda n: ast.dump(_anonymous(defs[n].node))))
    while True:
        order = _reachable(defs, roots)
        attr_refs = {r for name in order for r in refs_in_order(defs[name].node)}
        changed = False
        for name in order:
            node = defs[name].node
            if isinstance(node, ast.ClassDef):
                before = len(node.body)
                _prune_class(node, attr_refs)
                changed = changed or len(node.body) != before
        if not changed:
            return order


def normalize_files(files: Mapping[str, str], entrypoint: str) -> NormalizedProgram:
    """Normalize a set of Python sources (path -> text) with `entrypoint` naming the contract."""
    trees = {path: _parse(path, text) for path, text in sorted(files.items()) if path.endswith(".py")}
    modules = _module_names(trees)
    for tree in trees.values():
        _ResolveAliases(_aliases(tree, modules)).visit(tree)
    canonical_forms(trees.values())
    defs = _collect_defs(trees, entrypoint)
    pruned = _prune(defs, CONTRACT_ROOTS)
    if unwrap(d.node for d in defs.values()):
        pruned = _prune(defs, CONTRACT_ROOTS)  # the wrappers are unreachable now
    # Architecture first, then what only training reaches: new training code never renumbers
    # (and so never changes) the normalized architecture.
    arch_order = _reachable(defs, ARCHITECTURE_ROOTS)
    architecture = set(arch_order)
    train_order = [n for n in _reachable(defs, TRAINING_ROOTS) if n not in architecture]
    training = set(train_order)
    order = list(dict.fromkeys([*arch_order, *train_order, *pruned]))
    kept = list(dict.fromkeys(id(defs[n].node) for n in order))
    nodes = {id(defs[n].node): defs[n] for n in order}
    for d in nodes.values():
        if isinstance(d.node, ast.ClassDef):
            _order_methods(d.node)
    numbered = [n for n in order if n not in CONTRACT_ROOTS]
    globals_ = {n: f"g{i}" for i, n in enumerate(numbered)} | {n: n for n in CONTRACT_ROOTS}
    kept_nodes = [nodes[k].node for k in kept]
    user_attrs: set[str] = set()
    user_params: set[str] = set()
    for node in kept_nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                user_attrs.add(n.attr)
            elif isinstance(n, ast.ClassDef):
                user_attrs.update(m.name for m in methods(n))
                for s in n.body:
                    if isinstance(s, ast.Assign):
                        user_attrs.update(t.id for t in s.targets if isinstance(t, ast.Name))
                    elif isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name):
                        user_attrs.add(s.target.id)  # dataclass fields are attributes like any other
            elif isinstance(n, ast.arg):
                user_params.add(n.arg)
    for node in kept_nodes:
        Canonicalize(user_attrs).visit(node)
    regions: list[NormalizedRegion] = []
    lines = {path: text.splitlines() for path, text in files.items()}
    for key in kept:
        d = nodes[key]
        start = min([d.node.lineno] + [x.lineno for x in getattr(d.node, "decorator_list", [])])
        end = d.node.end_lineno or d.node.lineno
        snippet = "\n".join(lines[d.path][start - 1 : end])
        kind: RegionKind = "architecture" if d.name in architecture else "training" if d.name in training else "other"
        renamed = Renamer(globals_, user_attrs, user_params).visit(d.node)
        assert isinstance(renamed, ast.stmt)
        ast.fix_missing_locations(renamed)
        region = Region(kind, d.name, d.path, start, end, hashlib.sha256(snippet.encode()).hexdigest())
        regions.append(NormalizedRegion(region, renamed))
    return NormalizedProgram(tuple(regions))
