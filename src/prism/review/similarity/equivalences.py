"""The table of equivalent forms: spellings of one computation, rewritten to one canonical form.

Runs on each file after library aliases are resolved (`F.relu` is already the one name
`torch.nn.functional.relu`) and before dead code, order and names are normalized. Every entry is
an identity of PyTorch semantics, so a copier who switches spellings lands on the same program;
none changes what an independent author's code is compared as beyond the same rewrite.

| forms | canonical |
| --- | --- |
| `torch.relu(x)`, `F.relu(x)`, `x.relu()`, `nn.ReLU()(x)` (likewise gelu, silu, tanh, sigmoid, \
softmax, log_softmax, elu, leaky_relu, softplus, mish, hardswish) | `torch.nn.functional.relu(x)` |
| `self.act = nn.ReLU()` used only as `self.act(x)` (module field, no arguments) | the functional call |
| `self.f = nn.Identity()` used only as `self.f(x)` | `x` |
| `self.f = nn.Sequential(a, b, c)` used only as `self.f(x)` | fields `f_0, f_1, f_2` and `f_2(f_1(f_0(x)))` |
| a wrapper module (`__init__` stores one argument, `forward` returns it applied) around `e` | `e` |
| `x.reshape(...)`, `torch.reshape(x, ...)` | `x.view(...)` |
| `torch.transpose(x, a, b)`, `x.swapaxes(a, b)`, `x.swapdims(a, b)`, `torch.swapaxes(x, a, b)` | `x.transpose(a, b)` |
| `x.mT` | `x.transpose(-2, -1)` |
| `x.permute(...)`, `torch.permute(x, (...))` | `x.transpose(...)` (one name for axis moves) |
| `x.chunk(n, d)`, `torch.chunk(x, n, d)`, `torch.split(x, s, d)` | `x.split(n, d)` (literals are normalized later) |
| `torch.matmul(a, b)`, `a.matmul(b)`, `torch.mm(a, b)`, `torch.bmm(a, b)` | `a @ b` |
| `x.contiguous()` | `x` (a memory layout, not a value) |
| `dim=d` on a tensor reduction/shape call | the positional `d` |

Annotated class fields (`@dataclass` configs) are normalized like plain class attributes in
`rename.py`; graph labels are made width-free in `graph.py`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

NN = "torch.nn"
FUNCTIONAL = "torch.nn.functional"
ACTIVATIONS = {
    "relu": "ReLU",
    "gelu": "GELU",
    "silu": "SiLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "elu": "ELU",
    "softplus": "Softplus",
    "mish": "Mish",
    "hardswish": "Hardswish",
    "leaky_relu": "LeakyReLU",
    "softmax": "Softmax",
    "log_softmax": "LogSoftmax",
}
# Tensor methods with the same name as the functional form.
_METHOD_ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid", "softmax", "log_softmax"})
# Modules whose instance, called, is exactly the functional form (no arguments needed).
_STATELESS = {f"{NN}.{module}": f"{FUNCTIONAL}.{fn}" for fn, module in ACTIVATIONS.items()}
_FUNCTION_NAMES = {f"torch.{fn}": f"{FUNCTIONAL}.{fn}" for fn in ACTIVATIONS} | {
    f"torch.special.{fn}": f"{FUNCTIONAL}.{fn}" for fn in ("expit", "softmax", "log_softmax")
}
_FUNCTION_NAMES["torch.special.expit"] = f"{FUNCTIONAL}.sigmoid"
_ATTRS = {
    "reshape": "view",
    "swapaxes": "transpose",
    "swapdims": "transpose",
    "permute": "transpose",
    "chunk": "split",
    "matmul": "__matmul__",
}
# torch.<fn>(x, *rest) is x.<fn>(*rest)
_TORCH_METHODS = {
    "torch.transpose": "transpose",
    "torch.swapaxes": "transpose",
    "torch.swapdims": "transpose",
    "torch.permute": "transpose",
    "torch.reshape": "view",
    "torch.chunk": "split",
    "torch.split": "split",
    "torch.flatten": "flatten",
    "torch.unsqueeze": "unsqueeze",
    "torch.squeeze": "squeeze",
}
_MATMUL = frozenset({"torch.matmul", "torch.mm", "torch.bmm"})
_DIM_CALLS = frozenset(
    {"split", "transpose", "softmax", "log_softmax", "sum", "mean", "cat", "stack", "unsqueeze", "squeeze",
     "flatten", "argmax", "cumsum", "norm", "var", "std", "amax", "logsumexp"}
)  # fmt: skip


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _call(func: ast.expr, args: list[ast.expr], keywords: list[ast.keyword] | None = None) -> ast.Call:
    return ast.Call(func=func, args=args, keywords=keywords or [])


def _functional(fn_name: str, args: list[ast.expr], keywords: list[ast.keyword]) -> ast.Call:
    return _call(ast.Name(id=fn_name, ctx=ast.Load()), args, keywords)


class Equivalences(ast.NodeTransformer):
    """Expression-level entries of the table."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = _FUNCTION_NAMES.get(node.id, node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if node.attr == "mT" and isinstance(node.ctx, ast.Load):
            neg: list[ast.expr] = [ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=v)) for v in (2, 1)]
            return ast.copy_location(
                _call(ast.Attribute(value=node.value, attr="transpose", ctx=ast.Load()), neg), node
            )
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        name = _name(func)
        # nn.ReLU()(x) -> F.relu(x)
        if isinstance(func, ast.Call) and _name(func.func) in _STATELESS and not func.args and not func.keywords:
            return ast.copy_location(_functional(_STATELESS[str(_name(func.func))], node.args, node.keywords), node)
        if name in _MATMUL and len(node.args) == 2 and not node.keywords:
            return ast.copy_location(ast.BinOp(left=node.args[0], op=ast.MatMult(), right=node.args[1]), node)
        if name in _TORCH_METHODS and node.args:
            rest = node.args[1:]
            if (
                _TORCH_METHODS[name] in ("transpose", "view")
                and len(rest) == 1
                and isinstance(rest[0], ast.Tuple | ast.List)
            ):
                rest = list(rest[0].elts)  # `torch.permute(x, (0, 2, 1))`, `torch.reshape(x, (a, b))`
            method = ast.Attribute(value=node.args[0], attr=_TORCH_METHODS[name], ctx=ast.Load())
            return self._dims(ast.copy_location(_call(method, rest, node.keywords), node))
        if isinstance(func, ast.Attribute) and not (isinstance(func.value, ast.Name) and func.value.id == "self"):
            if func.attr == "contiguous" and not node.args and not node.keywords:
                return func.value
            if func.attr == "matmul" and len(node.args) == 1 and not node.keywords:
                return ast.copy_location(ast.BinOp(left=func.value, op=ast.MatMult(), right=node.args[0]), node)
            if func.attr in _METHOD_ACTIVATIONS and _name(func.value) not in (FUNCTIONAL, "torch"):
                fn = f"{FUNCTIONAL}.{func.attr}"
                return ast.copy_location(_functional(fn, [func.value, *node.args], node.keywords), node)
            if func.attr in _ATTRS and _ATTRS[func.attr] != "__matmul__":
                func.attr = _ATTRS[func.attr]
            if (
                func.attr in ("transpose", "view")
                and len(node.args) == 1
                and isinstance(node.args[0], ast.Tuple | ast.List)
            ):
                node.args = list(node.args[0].elts)  # `x.view((a, b))` is `x.view(a, b)`
        return self._dims(node)

    def visit_Assign(self, node: ast.Assign) -> ast.AST | None:
        self.generic_visit(node)
        # `x = x`: what is left of `x = self.identity(x)` or `x = x.contiguous()`.
        if (
            len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Name)
            and node.targets[0].id == node.value.id
        ):
            return None
        return node

    @staticmethod
    def _dims(node: ast.Call) -> ast.Call:
        """`x.split(n, dim=1)` -> `x.split(n, 1)`: where `dim` goes is spelling, not meaning."""
        func = node.func
        attr = func.attr if isinstance(func, ast.Attribute) else (_name(func) or "").rsplit(".", 1)[-1]
        if attr in _DIM_CALLS:
            dims = [k for k in node.keywords if k.arg == "dim"]
            if dims:
                node.keywords = [k for k in node.keywords if k.arg != "dim"]
                node.args = [*node.args, dims[0].value]
        return node


def _self_attr(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _field_assignments(cls: ast.ClassDef) -> dict[str, list[ast.Assign]]:
    out: dict[str, list[ast.Assign]] = {}
    for n in ast.walk(cls):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                attr = _self_attr(t)
                if attr is not None:
                    out.setdefault(attr, []).append(n)
    return out


def _only_called(cls: ast.ClassDef, attr: str) -> bool:
    """`self.<attr>` appears once as a store and otherwise only as `self.<attr>(one_arg)`."""
    calls = {
        id(n.func)
        for n in ast.walk(cls)
        if isinstance(n, ast.Call) and _self_attr(n.func) == attr and len(n.args) == 1 and not n.keywords
    }
    loads = [n for n in ast.walk(cls) if _self_attr(n) == attr and isinstance(getattr(n, "ctx", None), ast.Load)]
    return bool(calls) and all(id(n) in calls for n in loads)


class _Fields(ast.NodeTransformer):
    """Sequential fields unrolled, stateless module fields folded into their functional calls."""

    def __init__(self, sequences: dict[str, list[ast.expr]], stateless: dict[str, str | None]) -> None:
        self.sequences = sequences
        self.stateless = stateless

    def visit_Assign(self, node: ast.Assign) -> ast.AST | list[ast.stmt] | None:
        attr = _self_attr(node.targets[0]) if len(node.targets) == 1 else None
        if attr in self.stateless:
            return None
        if attr in self.sequences:
            out: list[ast.stmt] = []
            for i, value in enumerate(self.sequences[attr]):
                if f"{attr}_{i}" in self.stateless:
                    continue  # folded into its call below
                target = ast.Attribute(value=ast.Name(id="self", ctx=ast.Load()), attr=f"{attr}_{i}", ctx=ast.Store())
                out.append(ast.copy_location(ast.Assign(targets=[target], value=self.visit(value)), node))
            return out
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        attr = _self_attr(node.func)
        if attr in self.sequences and len(node.args) == 1:
            out: ast.expr = node.args[0]
            for i in range(len(self.sequences[attr])):
                layer = ast.Attribute(value=ast.Name(id="self", ctx=ast.Load()), attr=f"{attr}_{i}", ctx=ast.Load())
                out = self._apply(f"{attr}_{i}", layer, out)
            return out
        if attr in self.stateless and len(node.args) == 1:
            fn = self.stateless[attr]
            return node.args[0] if fn is None else _functional(fn, node.args, [])
        return node

    def _apply(self, attr: str, layer: ast.expr, arg: ast.expr) -> ast.expr:
        if attr in self.stateless:
            fn = self.stateless[attr]
            return arg if fn is None else _functional(fn, [arg], [])
        return _call(layer, [arg])


def _stateless_fn(value: ast.expr) -> tuple[bool, str | None]:
    if isinstance(value, ast.Call) and not value.args and all(k.arg == "inplace" for k in value.keywords):
        name = _name(value.func)
        if name in _STATELESS:
            return True, _STATELESS[name]
        if name == f"{NN}.Identity":
            return True, None
    return False, None


def fold_fields(cls: ast.ClassDef) -> None:
    """Unroll `nn.Sequential` fields and fold stateless module fields, where only ever called."""
    fields = _field_assignments(cls)
    sequences: dict[str, list[ast.expr]] = {}
    stateless: dict[str, str | None] = {}
    for attr, stores in fields.items():
        if len(stores) != 1 or not _only_called(cls, attr):
            continue
        value = stores[0].value
        ok, fn = _stateless_fn(value)
        if ok:
            stateless[attr] = fn
        elif (
            isinstance(value, ast.Call)
            and _name(value.func) == f"{NN}.Sequential"
            and value.args
            and not value.keywords
            and not any(isinstance(a, ast.Starred) for a in value.args)
        ):
            sequences[attr] = list(value.args)
            for i, layer in enumerate(value.args):
                ok, fn = _stateless_fn(layer)
                if ok:
                    stateless[f"{attr}_{i}"] = fn
    if sequences or stateless:
        _Fields(sequences, stateless).visit(cls)
        for n in ast.walk(cls):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not n.body:
                n.body = [ast.Pass()]


def _is_wrapper(cls: ast.ClassDef) -> bool:
    """A class that only holds one module and forwards to it: `W(e)` computes what `e` does."""
    members = {s.name: s for s in cls.body if isinstance(s, ast.FunctionDef)}
    if set(members) != {"__init__", "forward"} or len(cls.body) != 2:
        return False
    init, forward = members["__init__"], members["forward"]
    params = [a.arg for a in init.args.args]
    if len(params) != 2 or init.args.vararg or init.args.kwarg or init.args.kwonlyargs:
        return False
    stores = [
        s
        for s in init.body
        if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and "super" in ast.unparse(s.value))
    ]
    if len(stores) != 1 or not isinstance(stores[0], ast.Assign) or len(stores[0].targets) != 1:
        return False
    field = _self_attr(stores[0].targets[0])
    if field is None or _name(stores[0].value) != params[1]:
        return False
    fparams = [a.arg for a in forward.args.args]
    body = forward.body
    if len(fparams) != 2 or len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return False
    ret = body[0].value
    return (
        isinstance(ret, ast.Call)
        and _self_attr(ret.func) == field
        and len(ret.args) == 1
        and _name(ret.args[0]) == fparams[1]
        and not ret.keywords
    )


class Unwrap(ast.NodeTransformer):
    def __init__(self, wrappers: frozenset[str]) -> None:
        self.wrappers = wrappers

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if _name(node.func) in self.wrappers and len(node.args) == 1 and not node.keywords:
            return node.args[0]
        return node


def canonical_forms(trees: Iterable[ast.Module]) -> None:
    """Apply the expression and field entries of the table, in place, to alias-resolved trees.

    Wrappers are unwrapped later (`unwrap`), once dead code is gone: a wrapper padded with a
    docstring or an unused method is still a wrapper.
    """
    for tree in trees:
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            fold_fields(cls)
        Equivalences().visit(tree)
        for n in ast.walk(tree):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not n.body:
                n.body = [ast.Pass()]
        ast.fix_missing_locations(tree)


def unwrap(nodes: Iterable[ast.stmt]) -> bool:
    """Replace `W(e)` by `e` for every wrapper class `W` among `nodes`; True if any was found."""
    nodes = list(nodes)
    wrappers = frozenset(n.name for n in nodes if isinstance(n, ast.ClassDef) and _is_wrapper(n))
    if not wrappers:
        return False
    for node in nodes:
        Unwrap(wrappers).visit(node)
        ast.fix_missing_locations(node)
    return True
