"""An obfuscating copier: what a plagiarist would do to another miner's project to hide the copy.

Each transform keeps what the model computes and changes how the code looks:

- `rename`: every project-defined identifier (classes, functions, methods, parameters, locals,
  attributes) gets a fresh random name, consistently;
- `reorder`: top-level definitions and the methods of each class are shuffled;
- `dead_code`: unused helpers, classes and methods, `if False:` branches, unused locals and
  statements after `return`;
- `cosmetic`: new comments and docstrings, other string literals in docstrings and dead code,
  two-space indentation, blank lines;
- `split` / `merge`: definitions moved to helper modules, or helper modules folded into one file;
- `inline`: one-expression helper functions substituted at their call sites;
- `commute`, `shuffle_init`, `equivalents`: operands of `+`/`*` swapped, independent `self.x = ...`
  lines of `__init__` reordered, `.view` <-> `.reshape` and `F.relu` -> `torch.relu`: edits the
  normalizer does NOT fully undo (except `commute`), so recall is measured on containment too.

Used by the tests and by `benchmarks/similarity.py`; deterministic for a given seed.
"""

from __future__ import annotations

import ast
import builtins
import copy
import random
import string
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from prism.intake.project import Project, ProjectConfig

CORPUS = Path(__file__).parent / "corpus"
KEEP = frozenset({"build_model", "configure_optimizer", "train_step", "forward", "self", "ctx"}) | frozenset(
    dir(builtins)
)
LIBRARY_ATTRS = frozenset({"weight", "bias", "data", "grad", "shape", "device", "dtype"})

Files = dict[str, str]


def load_corpus(root: Path = CORPUS) -> dict[str, Project]:
    """Every folder under `root` with a model.py is one independent project."""
    out: dict[str, Project] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        manifest = folder / "prism.yaml"
        entrypoint = "model.py"
        if manifest.is_file():
            entrypoint = str((yaml.safe_load(manifest.read_text()) or {}).get("entrypoint", entrypoint))
        if not (folder / entrypoint).is_file():
            continue
        files = {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*.py"))}
        out[folder.name] = Project(files, ProjectConfig(entrypoint=entrypoint))
    return out


def _fresh(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = rng.choice(string.ascii_lowercase) + "".join(
            rng.choice(string.ascii_lowercase + string.digits + "_") for _ in range(rng.randint(3, 9))
        )
        if name not in taken and name not in KEEP:
            taken.add(name)
            return name


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
    return names


def rename(files: Files, rng: random.Random) -> Files:
    trees = {p: ast.parse(t) for p, t in files.items()}
    imported = set().union(*(_imported(t) for t in trees.values()))
    modules = {Path(p).stem for p in files}
    user: set[str] = set()
    attrs: set[str] = set()  # attribute names the project defines (fields and methods)
    for tree in trees.values():
        for n in ast.walk(tree):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                user.add(n.name)
            elif isinstance(n, ast.arg):
                user.add(n.arg)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                user.add(n.id)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and n.attr not in LIBRARY_ATTRS:
                user.add(n.attr)
                attrs.add(n.attr)
            if isinstance(n, ast.ClassDef):
                attrs.update(m.name for m in n.body if isinstance(m, ast.FunctionDef))
                # Class fields (dataclass configs) are attributes too: renamed with every `.field`.
                attrs.update(
                    t.id
                    for m in n.body
                    if isinstance(m, ast.AnnAssign | ast.Assign)
                    for t in (m.targets if isinstance(m, ast.Assign) else [m.target])
                    if isinstance(t, ast.Name)
                )
    user -= KEEP | imported | modules
    user = {u for u in user if not (u.startswith("__") and u.endswith("__"))}
    taken = set(user)
    mapping = {name: _fresh(rng, taken) for name in sorted(user)}

    class Renamer(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            node.id = mapping.get(node.id, node.id)
            return node

        def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
            self.generic_visit(node)
            # `ctx.vocab_size` belongs to the challenge even when a config field shares its name.
            if node.attr in attrs and not (isinstance(node.value, ast.Name) and node.value.id == "ctx"):
                node.attr = mapping.get(node.attr, node.attr)
            return node

        def visit_arg(self, node: ast.arg) -> ast.AST:
            node.arg = mapping.get(node.arg, node.arg)
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
            node.name = mapping.get(node.name, node.name)
            self.generic_visit(node)
            return node

        def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
            node.name = mapping.get(node.name, node.name)
            self.generic_visit(node)
            return node

        def visit_Call(self, node: ast.Call) -> ast.AST:
            func = node.func
            own = (isinstance(func, ast.Name) and func.id in mapping) or (
                isinstance(func, ast.Attribute) and func.attr in mapping and func.attr in attrs
            )
            if own:
                for kw in node.keywords:
                    if kw.arg in mapping:
                        kw.arg = mapping[kw.arg]
            self.generic_visit(node)
            return node

        def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
            if node.module in modules or node.level:
                for alias in node.names:
                    alias.name = mapping.get(alias.name, alias.name)
            return node

    return {p: ast.unparse(Renamer().visit(t)) for p, t in trees.items()}


def reorder(files: Files, rng: random.Random) -> Files:
    out: Files = {}
    for path, text in files.items():
        tree = ast.parse(text)
        imports = [s for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)]
        rest = [s for s in tree.body if not isinstance(s, ast.Import | ast.ImportFrom)]
        rng.shuffle(rest)
        for node in rest:
            if isinstance(node, ast.ClassDef):
                methods: list[ast.stmt] = [s for s in node.body if isinstance(s, ast.FunctionDef)]
                others = [s for s in node.body if not isinstance(s, ast.FunctionDef)]
                rng.shuffle(methods)
                node.body = others + methods
        tree.body = imports + rest
        out[path] = ast.unparse(tree)
    return out


_DEAD_FUNCTIONS = [
    "def {f}(values, scale=2.0):\n    total = 0\n    for v in values:\n        total += v * scale\n"
    "    return total / max(len(values), 1)\n",
    "def {f}(x):\n    if x is None:\n        return None\n    return x.detach().clone().float().mean()\n",
    "class {c}:\n    def __init__(self, n):\n        self.n = n\n        self.items = []\n\n"
    "    def push(self, item):\n        self.items.append(item)\n        if len(self.items) > self.n:\n"
    "            self.items.pop(0)\n",
]
_DEAD_STATEMENTS = [
    "if False:\n    {v} = {lit}\n    print({v})",
    "{v} = {lit}",
    "{v} = [{lit}, {lit}]",
    "while False:\n    pass",
]


def dead_code(files: Files, rng: random.Random) -> Files:
    out: Files = {}
    taken: set[str] = set()
    for path, text in files.items():
        tree = ast.parse(text)
        for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for _ in range(rng.randint(0, 2)):
                stmt = rng.choice(_DEAD_STATEMENTS).format(v=_fresh(rng, taken), lit=rng.randint(0, 999))
                func.body.insert(rng.randint(0, len(func.body) - 1), *ast.parse(stmt).body)
            if isinstance(func.body[-1], ast.Return) and rng.random() < 0.3:
                func.body.append(ast.parse(f"print('{_fresh(rng, taken)}')").body[0])
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            if rng.random() < 0.5:
                method = f"def {_fresh(rng, taken)}(self, x):\n    return x * {rng.randint(2, 9)} + self.training"
                cls.body.append(ast.parse(method).body[0])
        for _ in range(rng.randint(1, 3)):
            source = rng.choice(_DEAD_FUNCTIONS).format(f=_fresh(rng, taken), c=_fresh(rng, taken).title())
            tree.body.append(ast.parse(source).body[0])
        out[path] = ast.unparse(tree)
    return out


class _Docstrings(ast.NodeTransformer):
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _doc(self, node: ast.FunctionDef | ast.ClassDef | ast.Module) -> None:
        words = " ".join(self.rng.choice(["fast", "layer", "model", "neural", "tensor", "ok"]) for _ in range(5))
        doc = ast.Expr(ast.Constant(words.capitalize() + "."))
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body[0] = doc
        elif self.rng.random() < 0.5:
            body.insert(0, doc)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self._doc(node)
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._doc(node)
        self.generic_visit(node)
        return node


def cosmetic(files: Files, rng: random.Random) -> Files:
    out: Files = {}
    for path, text in files.items():
        tree = _Docstrings(rng).visit(ast.parse(text))
        lines: list[str] = []
        for line in ast.unparse(tree).splitlines():
            stripped = line.lstrip(" ")
            indent = (len(line) - len(stripped)) // 4
            if rng.random() < 0.08:
                lines.append("  " * indent + "# " + " ".join(rng.choice(["todo", "note", "hack", "see"]) * 2))
            lines.append("  " * indent + stripped + (" " * rng.randint(0, 2) if stripped else ""))
            if rng.random() < 0.1:
                lines.append("")
        out[path] = "# " + _fresh(rng, set()) + "\n" + "\n".join(lines) + "\n"
    return out


def _defs(tree: ast.Module) -> dict[str, ast.stmt]:
    out: dict[str, ast.stmt] = {}
    for s in tree.body:
        if isinstance(s, ast.FunctionDef | ast.ClassDef):
            out[s.name] = s
        elif isinstance(s, ast.Assign):
            out.update({t.id: s for t in s.targets if isinstance(t, ast.Name)})
    return out


def split(files: Files, rng: random.Random, entrypoint: str = "model.py") -> Files:
    """Move a random set of definitions (with what they use) into a new helper module."""
    tree = ast.parse(files[entrypoint])
    defs = _defs(tree)
    movable = [n for n in defs if n not in {"build_model", "configure_optimizer", "train_step"}]
    if not movable:
        return files
    chosen = set(rng.sample(movable, k=max(1, len(movable) // 2)))
    changed = True
    while changed:  # the dependency closure moves too, so the helper never imports the entrypoint
        changed = False
        for name in list(chosen):
            for n in ast.walk(defs[name]):
                if isinstance(n, ast.Name) and n.id in defs and n.id not in chosen and n.id in movable:
                    chosen.add(n.id)
                    changed = True
    imports = [s for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)]
    moved = [s for s in tree.body if any(defs.get(n) is s for n in chosen)]
    helper = f"part_{_fresh(rng, set())}"
    tree.body = [s for s in tree.body if s not in moved]
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    needed = sorted(n for n in chosen if n in used)
    if needed:
        tree.body.insert(len(imports), ast.parse(f"from {helper} import {', '.join(needed)}").body[0])
    out = dict(files)
    out[entrypoint] = ast.unparse(tree)
    out[f"{helper}.py"] = ast.unparse(ast.Module(body=[copy.deepcopy(i) for i in imports] + moved, type_ignores=[]))
    return out


def merge(files: Files, rng: random.Random, entrypoint: str = "model.py") -> Files:
    """Fold every helper module into the entrypoint (imports between them dropped)."""
    if len(files) == 1:
        return files
    local = {Path(p).stem for p in files}
    imports: list[str] = []
    bodies: list[str] = []
    for path in [entrypoint, *sorted(p for p in files if p != entrypoint)]:
        tree = ast.parse(files[path])
        for s in tree.body:
            if isinstance(s, ast.ImportFrom) and (s.module in local or s.level):
                continue
            if isinstance(s, ast.Import | ast.ImportFrom):
                text = ast.unparse(s)
                if text not in imports:
                    imports.append(text)
            else:
                bodies.append(ast.unparse(s))
    rng.shuffle(bodies)
    return {entrypoint: "\n".join(imports) + "\n\n" + "\n\n".join(bodies) + "\n"}


def inline(files: Files, rng: random.Random) -> Files:
    """Substitute one-expression helper functions at their call sites, then delete them."""
    trees = {p: ast.parse(t) for p, t in files.items()}
    helpers: dict[str, ast.FunctionDef] = {}
    for tree in trees.values():
        for s in tree.body:
            if (
                isinstance(s, ast.FunctionDef)
                and s.name not in {"build_model", "configure_optimizer", "train_step"}
                and len(s.body) == 1
                and isinstance(s.body[0], ast.Return)
                and s.body[0].value is not None
                and not s.args.defaults
                and not s.args.kwonlyargs
            ):
                helpers[s.name] = s
    if not helpers:
        return files

    class Inline(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            f = node.func
            if isinstance(f, ast.Name) and f.id in helpers and not node.keywords:
                fn = helpers[f.id]
                params = [a.arg for a in fn.args.args]
                if len(params) == len(node.args):
                    body = fn.body[0]
                    assert isinstance(body, ast.Return) and body.value is not None
                    expr = copy.deepcopy(body.value)
                    subst = dict(zip(params, node.args, strict=True))

                    class Sub(ast.NodeTransformer):
                        def visit_Name(self, n: ast.Name) -> ast.AST:
                            return copy.deepcopy(subst[n.id]) if n.id in subst else n

                    inlined: ast.AST = Sub().visit(expr)
                    return inlined
            return node

    out: Files = {}
    for path, tree in trees.items():
        tree = Inline().visit(tree)
        tree.body = [s for s in tree.body if not (isinstance(s, ast.FunctionDef) and s.name in helpers)]
        for s in tree.body:
            if isinstance(s, ast.ImportFrom):
                s.names = [a for a in s.names if a.name not in helpers] or s.names
        out[path] = ast.unparse(tree)
    return out


def commute(files: Files, rng: random.Random) -> Files:
    """Swap the operands of some additions and multiplications (`a + b` -> `b + a`)."""

    class Swap(ast.NodeTransformer):
        def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
            self.generic_visit(node)
            if isinstance(node.op, ast.Add | ast.Mult) and rng.random() < 0.5:
                node.left, node.right = node.right, node.left
            return node

    return {p: ast.unparse(Swap().visit(ast.parse(t))) for p, t in files.items()}


def shuffle_init(files: Files, rng: random.Random) -> Files:
    """Reorder the independent `self.x = ...` lines of each `__init__` (not normalized away)."""
    out: Files = {}
    for path, text in files.items():
        tree = ast.parse(text)
        for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "__init__"]:
            body = func.body
            i = 0
            while i < len(body):
                j = i
                while j < len(body) and _independent_field(body[j]):
                    j += 1
                if j - i > 1:
                    chunk = body[i:j]
                    rng.shuffle(chunk)
                    body[i:j] = chunk
                i = j + 1
        out[path] = ast.unparse(tree)
    return out


def _independent_field(stmt: ast.stmt) -> bool:
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
        return False
    target = stmt.targets[0]
    reads_self = any(
        isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
        for n in ast.walk(stmt.value)
    )
    return isinstance(target, ast.Attribute) and not reads_self


def equivalents(files: Files, rng: random.Random) -> Files:
    """Swap some calls for equivalent spellings (`.view` <-> `.reshape`, `F.relu` -> `torch.relu`)."""
    swaps = {"view": "reshape", "reshape": "view", "transpose": "transpose", "relu": "relu"}

    class Swap(ast.NodeTransformer):
        def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
            self.generic_visit(node)
            if node.attr in ("view", "reshape") and rng.random() < 0.5:
                node.attr = swaps[node.attr]
            elif node.attr == "relu" and isinstance(node.value, ast.Name) and node.value.id == "F":
                node.value = ast.Name(id="torch", ctx=ast.Load())
            return node

    return {p: ast.unparse(Swap().visit(ast.parse(t))) for p, t in files.items()}


Transform = Callable[[Files, random.Random], Files]
TRANSFORMS: Mapping[str, Transform] = {
    "inline": inline,
    "rename": rename,
    "dead_code": dead_code,
    "reorder": reorder,
    "commute": commute,
    "shuffle_init": shuffle_init,
    "equivalents": equivalents,
    "merge": merge,
    "split": split,
    "cosmetic": cosmetic,
}


def obfuscate(project: Project, seed: int, *, transforms: tuple[str, ...] | None = None) -> Project:
    """A copy of `project` put through every transform (or the named ones), in a fixed order."""
    rng = random.Random(seed)
    if transforms is None:
        # Everything, and either split or merge (doing both would undo one with the other).
        transforms = tuple(n for n in TRANSFORMS if n != rng.choice(["merge", "split"]))
    files: Files = dict(project.files)
    for name, transform in TRANSFORMS.items():
        if name in ("split", "merge") and name in transforms:
            files = (split if name == "split" else merge)(files, rng, project.entrypoint)
        elif name in transforms:
            files = transform(files, rng)
    return Project(files, project.config)
