"""A second copier, written against the normalizer: equivalent forms and structure, not names.

`variants.py` renames, reorders and pads. This one rewrites what the code *says* into another
spelling that computes the same thing, the edits a plagiarist who read docs/similarity.md would
make (issue 15):

- `act_forms`: `F.relu(x)` / `torch.relu(x)` / `x.relu()`, likewise gelu, silu, tanh, sigmoid;
- `module_functional`: an activation module field (`self.act = nn.GELU()`, used as `self.act(x)`)
  becomes the functional call, and a functional call becomes an inline module `nn.GELU()(x)`;
- `view_reshape`: `.view` <-> `.reshape`;
- `transpose_forms`: `x.transpose(a, b)` -> `torch.transpose(x, a, b)` / `x.swapaxes(a, b)`,
  `x.transpose(-2, -1)` -> `x.mT`, `x.permute(...)` -> `torch.permute(x, (...))`;
- `chunk_split`: `x.chunk(n, dim=d)` -> `torch.chunk(x, n, d)`, `x.split(s, dim=d)` ->
  `torch.split(x, s, d)`;
- `unroll_sequential`: `self.f = nn.Sequential(a, b, c)` used as `self.f(x)` becomes three named
  layers applied in turn;
- `config_fields`: every annotated class field (`@dataclass` configs) renamed, with every use;
- `widths`: integer literals in module constructors and default arguments nudged (128 -> 136);
- `wrap`: `build_model` returns the model wrapped in a new module that forwards to it.

Deterministic for a seed; every transform keeps the code valid Python that computes the same model
(up to widths, which is the point of `widths`).
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable, Mapping

from prism.intake.project import Project
from tests.review.variants import obfuscate

Files = dict[str, str]
ACTIVATIONS = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}
_MODULE_TO_FN = {v: k for k, v in ACTIVATIONS.items()}
_TORCH_FORMS = {"relu", "tanh", "sigmoid"}  # torch.<fn> exists for these


def _map(files: Files, make: Callable[[], ast.NodeTransformer]) -> Files:
    out = {}
    for path, text in files.items():
        if not path.endswith(".py"):
            out[path] = text
            continue
        tree = make().visit(ast.parse(text))
        out[path] = ast.unparse(ast.fix_missing_locations(tree))
    return out


def _fn_name(node: ast.expr) -> str | None:
    """`relu` for F.relu / torch.relu / torch.nn.functional.relu / nn.functional.relu."""
    if isinstance(node, ast.Attribute) and node.attr in ACTIVATIONS:
        base = ast.unparse(node.value)
        if base in ("F", "torch", "torch.nn.functional", "nn.functional"):
            return node.attr
    return None


def _functional(fn: str, arg: ast.expr, rng: random.Random) -> ast.expr:
    forms = ["F", "method"] + (["torch"] if fn in _TORCH_FORMS else [])
    form = rng.choice(forms)
    if form == "method":
        return ast.Call(func=ast.Attribute(value=arg, attr=fn, ctx=ast.Load()), args=[], keywords=[])
    base: ast.expr = ast.Name(id="torch", ctx=ast.Load())
    if form == "F":
        base = ast.Attribute(
            value=ast.Attribute(value=ast.Name(id="torch", ctx=ast.Load()), attr="nn", ctx=ast.Load()),
            attr="functional",
            ctx=ast.Load(),
        )
    return ast.Call(func=ast.Attribute(value=base, attr=fn, ctx=ast.Load()), args=[arg], keywords=[])


def act_forms(files: Files, rng: random.Random) -> Files:
    class T(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            fn = _fn_name(node.func)
            if fn and len(node.args) == 1 and not node.keywords:
                return _functional(fn, node.args[0], rng)
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and f.attr in ACTIVATIONS
                and not node.args
                and not node.keywords
                and ast.unparse(f.value) not in ("F", "torch", "nn", "torch.nn.functional", "nn.functional", "self")
            ):
                return _functional(node.func.attr, node.func.value, rng)
            return node

    return _map(files, T)


def module_functional(files: Files, rng: random.Random) -> Files:
    class T(ast.NodeTransformer):
        def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
            fields: dict[str, str] = {}
            for stmt in ast.walk(node):
                if (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Attribute)
                    and isinstance(stmt.targets[0].value, ast.Name)
                    and stmt.targets[0].value.id == "self"
                    and isinstance(stmt.value, ast.Call)
                    and isinstance(stmt.value.func, ast.Attribute)
                    and stmt.value.func.attr in _MODULE_TO_FN
                    and not stmt.value.args
                    and not stmt.value.keywords
                ):
                    fields[stmt.targets[0].attr] = _MODULE_TO_FN[stmt.value.func.attr]
            uses = [
                n
                for n in ast.walk(node)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.attr in fields
            ]
            calls = [
                n
                for n in ast.walk(node)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in fields
            ]
            # Only fields used purely as calls (and assigned once) are folded.
            usable = {f for f in fields if sum(1 for u in uses if u.attr == f) == 1 + sum(
                1 for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == f)}  # fmt: skip
            outer = self

            class Fold(ast.NodeTransformer):
                def visit_Assign(self, stmt: ast.Assign) -> ast.AST | None:
                    t = stmt.targets[0] if len(stmt.targets) == 1 else None
                    if isinstance(t, ast.Attribute) and t.attr in usable:
                        return None
                    return stmt

                def visit_Call(self, call: ast.Call) -> ast.AST:
                    self.generic_visit(call)
                    if isinstance(call.func, ast.Attribute) and call.func.attr in usable and len(call.args) == 1:
                        return _functional(fields[call.func.attr], call.args[0], rng)
                    return call

            node = Fold().visit(node)
            for fn in ast.walk(node):
                if isinstance(fn, ast.FunctionDef) and not fn.body:
                    fn.body = [ast.Pass()]
            return outer.generic_visit(node)

        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            fn = _fn_name(node.func)
            if fn and len(node.args) == 1 and not node.keywords and rng.random() < 0.7:
                module = ast.Call(
                    func=ast.Attribute(value=ast.Name(id="nn", ctx=ast.Load()), attr=ACTIVATIONS[fn], ctx=ast.Load()),
                    args=[],
                    keywords=[],
                )
                return ast.Call(func=module, args=node.args, keywords=[])
            return node

    out = _map(files, T)
    return {p: _ensure_nn(t) if p.endswith(".py") and "nn." in t else t for p, t in out.items()}


def _ensure_nn(text: str) -> str:
    tree = ast.parse(text)
    bound = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    return text if "nn" in bound else "import torch.nn as nn\n" + text


def view_reshape(files: Files, rng: random.Random) -> Files:
    class T(ast.NodeTransformer):
        def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
            self.generic_visit(node)
            if node.attr in ("view", "reshape") and rng.random() < 0.8:
                node.attr = "reshape" if node.attr == "view" else "view"
            return node

    return _map(files, T)


def _torch(attr: str) -> ast.expr:
    return ast.Attribute(value=ast.Name(id="torch", ctx=ast.Load()), attr=attr, ctx=ast.Load())


def transpose_forms(files: Files, rng: random.Random) -> Files:
    class T(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            f = node.func
            if not isinstance(f, ast.Attribute) or node.keywords or _fn_name(f) or ast.unparse(f.value) == "torch":
                return node
            if f.attr == "transpose" and len(node.args) == 2:
                last_two = ast.unparse(node.args[0]) in ("-2", "-1") and ast.unparse(node.args[1]) in ("-1", "-2")
                if last_two and rng.random() < 0.5:
                    return ast.Attribute(value=f.value, attr="mT", ctx=ast.Load())
                if rng.random() < 0.5:
                    return ast.Call(func=_torch("transpose"), args=[f.value, *node.args], keywords=[])
                return ast.Call(func=ast.Attribute(value=f.value, attr="swapaxes", ctx=ast.Load()), args=node.args,
                                keywords=[])  # fmt: skip
            if f.attr == "permute" and node.args:
                return ast.Call(func=_torch("permute"), args=[f.value, ast.Tuple(elts=node.args, ctx=ast.Load())],
                                keywords=[])  # fmt: skip
            return node

    return _map(files, T)


def chunk_split(files: Files, rng: random.Random) -> Files:
    class T(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and f.attr in ("chunk", "split")
                and len(node.args) == 1
                and ast.unparse(f.value) != "torch"
            ):
                dims = [k.value for k in node.keywords if k.arg == "dim"]
                if len(dims) == len(node.keywords):
                    return ast.Call(func=_torch(f.attr), args=[f.value, node.args[0], *dims], keywords=[])
            return node

    return _map(files, T)


def unroll_sequential(files: Files, rng: random.Random) -> Files:
    class T(ast.NodeTransformer):
        def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
            seqs: dict[str, list[ast.expr]] = {}
            for stmt in ast.walk(node):
                if (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Attribute)
                    and ast.unparse(stmt.targets[0].value) == "self"
                    and isinstance(stmt.value, ast.Call)
                    and ast.unparse(stmt.value.func) in ("nn.Sequential", "torch.nn.Sequential")
                    and stmt.value.args
                    and not stmt.value.keywords
                    and not any(isinstance(a, ast.Starred) for a in stmt.value.args)
                ):
                    seqs[stmt.targets[0].attr] = stmt.value.args
            attrs = [n for n in ast.walk(node) if isinstance(n, ast.Attribute) and n.attr in seqs]
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                     and n.func.attr in seqs and len(n.args) == 1]  # fmt: skip
            ok = {s for s in seqs if sum(a.attr == s for a in attrs) == 1 + sum(
                isinstance(c.func, ast.Attribute) and c.func.attr == s for c in calls)}  # fmt: skip
            if not ok:
                return node
            names = {s: [f"{s}_{rng.choice(['l', 'layer', 'op', 'part'])}{i}" for i in range(len(seqs[s]))] for s in ok}

            class Unroll(ast.NodeTransformer):
                def visit_Assign(self, stmt: ast.Assign) -> ast.AST | list[ast.stmt]:
                    t = stmt.targets[0] if len(stmt.targets) == 1 else None
                    if isinstance(t, ast.Attribute) and t.attr in ok:
                        return [
                            ast.Assign(targets=[ast.Attribute(value=ast.Name(id="self", ctx=ast.Load()), attr=n,
                                                              ctx=ast.Store())], value=v, lineno=0)
                            for n, v in zip(names[t.attr], seqs[t.attr], strict=True)
                        ]  # fmt: skip
                    return stmt

                def visit_Call(self, call: ast.Call) -> ast.AST:
                    self.generic_visit(call)
                    if isinstance(call.func, ast.Attribute) and call.func.attr in ok and len(call.args) == 1:
                        out = call.args[0]
                        for n in names[call.func.attr]:
                            func = ast.Attribute(value=ast.Name(id="self", ctx=ast.Load()), attr=n, ctx=ast.Load())
                            out = ast.Call(func=func, args=[out], keywords=[])
                        return out
                    return call

            return Unroll().visit(node)

    return _map(files, T)


def config_fields(files: Files, rng: random.Random) -> Files:
    fields: dict[str, str] = {}
    for text in (t for p, t in files.items() if p.endswith(".py")):
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                        fields.setdefault(stmt.target.id, f"{stmt.target.id[:2]}_{rng.randrange(10**6)}")

    class T(ast.NodeTransformer):
        def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
            self.generic_visit(node)
            if isinstance(node.target, ast.Name) and node.target.id in fields:
                node.target.id = fields[node.target.id]
            return node

        def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
            self.generic_visit(node)
            # `ctx.vocab_size` is the challenge's, not the config's: a copier cannot rename it.
            if node.attr in fields and not (isinstance(node.value, ast.Name) and node.value.id == "ctx"):
                node.attr = fields[node.attr]
            return node

        def visit_keyword(self, node: ast.keyword) -> ast.AST:
            self.generic_visit(node)
            if node.arg in fields:
                node.arg = fields[node.arg]
            return node

    return _map(files, T) if fields else files


def widths(files: Files, rng: random.Random) -> Files:
    class T(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            if type(node.value) is int and node.value >= 16 and node.value % 8 == 0 and rng.random() < 0.6:
                return ast.copy_location(ast.Constant(value=node.value + 8 * rng.randint(1, 2)), node)
            return node

    return _map(files, T)


def wrap(files: Files, rng: random.Random, entrypoint: str = "model.py") -> Files:
    tree = ast.parse(files[entrypoint])
    name = rng.choice(["Wrapper", "Shell", "Outer", "Net"]) + str(rng.randrange(100))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "build_model" and node.body:
            last = node.body[-1]
            if isinstance(last, ast.Return) and last.value is not None:
                last.value = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[last.value], keywords=[])
    shell = ast.parse(
        f"class {name}(nn.Module):\n"
        f"    def __init__(self, inner):\n        super().__init__()\n        self.inner = inner\n\n"
        f"    def forward(self, x):\n        return self.inner(x)\n"
    ).body
    index = next(i for i, n in enumerate(tree.body) if isinstance(n, ast.FunctionDef | ast.ClassDef))
    tree.body[index:index] = shell
    return {**files, entrypoint: _ensure_nn(ast.unparse(tree))}


Transform = Callable[[Files, random.Random], Files]
EDITS: Mapping[str, Transform] = {
    "act_forms": act_forms,
    "module_functional": module_functional,
    "view_reshape": view_reshape,
    "transpose_forms": transpose_forms,
    "chunk_split": chunk_split,
    "unroll_sequential": unroll_sequential,
    "config_fields": config_fields,
    "widths": widths,
}


def plagiarize(project: Project, seed: int, *, edits: tuple[str, ...] | None = None, cosmetic: bool = True) -> Project:
    """A copy with the named edits (default: a random half or more of them, plus wrapping at random),
    then, when `cosmetic`, everything `variants.obfuscate` does (rename, reorder, dead code, ...)."""
    rng = random.Random(seed)
    if edits is None:
        names = list(EDITS)
        edits = tuple(rng.sample(names, rng.randint(len(names) // 2, len(names)))) + (
            ("wrap",) if rng.random() < 0.5 else ()
        )
    files: Files = dict(project.files)
    for name in EDITS:
        if name in edits:
            files = EDITS[name](files, rng)
    if "wrap" in edits:
        files = wrap(files, rng, project.entrypoint)
    copy = Project(files, project.config)
    return obfuscate(copy, seed) if cosmetic else copy
