"""Import-time code: what runs when the harness merely imports a file.

A module may hold imports, docstrings, constant assignments, functions and classes. But the
decorators, default values, annotations and base classes of those definitions, the bodies of
classes, and the values of "constants" are all evaluated at import. They may only hold constant
expressions, references, and calls to a short list of pure library constructors; decorators
must be known pure library decorators. `if __name__ == "__main__":` blocks never run on import and
are left to the other rules, and a `try` around imports whose `except` clauses name builtin
exceptions is judged block by block (the optional import: `except ImportError: fn = None`).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Set as AbstractSet

from prism.review.static.scope import children
from prism.review.static.walk import FileWalk

SAFE_DECORATORS = frozenset(
    {
        *["dataclasses.dataclass", "functools.lru_cache", "functools.cache", "functools.cached_property"],
        *["functools.total_ordering", "torch.jit.ignore", "torch.jit.unused", "torch.jit.export"],
        # `@autocast("cuda", enabled=False)` keeps a function in full precision: the context
        # manager's object wraps the function; its arguments are judged as import-time values.
        *["torch.amp.autocast", "torch.autocast", "torch.cuda.amp.autocast", "torch.cpu.amp.autocast"],
        *["typing.overload", "typing.final", "typing.runtime_checkable", "abc.abstractmethod", "enum.unique"],
        *["torch.no_grad", "torch.inference_mode", "torch.enable_grad", "torch.autograd.no_grad"],
        *["torch.autograd.grad_mode.no_grad", "torch.autograd.grad_mode.inference_mode", "torch.autograd.enable_grad"],
        *["torch.autograd.function.once_differentiable", "torch.amp.custom_fwd", "torch.amp.custom_bwd"],
        *["torch.cuda.amp.custom_fwd", "torch.cuda.amp.custom_bwd"],
    }
)
SAFE_BUILTIN_DECORATORS = frozenset({"staticmethod", "classmethod", "property"})
# Calls that may run at import: pure constructors and arithmetic, nothing that reaches project code.
PURE_BUILTINS = frozenset(
    {
        *[
            "int",
            "float",
            "complex",
            "str",
            "bytes",
            "bool",
            "tuple",
            "list",
            "dict",
            "set",
            "frozenset",
            "range",
            "len",
            "min",
            "max",
            "sum",
            "abs",
            "round",
        ],
        *["sorted", "reversed", "enumerate", "zip", "chr", "ord", "pow", "divmod", "any", "all", "slice"],
    }
)
PURE_LIBRARY_CALLS = frozenset(
    {
        *["typing.TypeVar", "typing.NewType", "typing.NamedTuple", "typing.ParamSpec", "collections.namedtuple"],
        *["dataclasses.field", "enum.auto", "torch.device", "torch.cuda.is_available", "torch.Size"],
        # `partial(nn.LayerNorm, eps=1e-6)` only stores its arguments; calling it later is judged there.
        "functools.partial",
        # Layers without parameters or buffers, as default arguments (`kernel_fn=nn.ReLU()`):
        # constructing one allocates nothing and runs only torch's own `__init__`.
        *[f"torch.nn.{name}" for name in ("Identity", "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "Mish", "ELU")],
        *[f"torch.nn.{name}" for name in ("SELU", "CELU", "Tanh", "Sigmoid", "Hardswish", "Hardsigmoid", "Hardtanh")],
        *[f"torch.nn.{name}" for name in ("Softplus", "Softsign", "Softmax", "LogSoftmax", "Dropout", "Flatten")],
    }
)
# Exception classes among the builtins: naming one in an `except` clause runs no code.
_BUILTIN_EXCEPTIONS = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)
# Dunder methods Python never calls on a value at import: construction (not pure anyway) and calls.
_INERT_DUNDERS = frozenset({"__init__", "__post_init__", "__new__", "__call__"})
_INERT_FACTORIES = frozenset({"list", "dict", "set", "tuple", "frozenset"})
_SETTER_ATTRS = frozenset({"setter", "getter", "deleter"})
_ENUM_HOOKS = frozenset({"__init__", "__new__", "_missing_", "_generate_next_value_"})
# Annotation nodes that only name types (`X | Y` is checked apart: a BinOp with another operator runs code).
_PLAIN_ANNOTATIONS = frozenset({ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.Tuple, ast.List})
_RUNS_CODE = frozenset({ast.Call, ast.Lambda, ast.NamedExpr})


def _contains(node: ast.AST, kinds: frozenset[type]) -> bool:
    pending = [node]
    while pending:
        sub = pending.pop()
        if type(sub) in kinds:
            return True
        pending.extend(children(sub))
    return False


class _Deferred(Exception):
    """A call's purity depends on a project class whose file is not read yet."""


def _is_docstring_like(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and (isinstance(stmt.value.value, str) or stmt.value.value is Ellipsis)
    )


class TopLevel:
    def __init__(
        self, walk: FileWalk, pure_classes: AbstractSet[str] = frozenset(), *, deferring: bool = False
    ) -> None:
        """`pure_classes` may still be filling up (files are reviewed one at a time): with
        `deferring`, an expression whose verdict hangs on a project class not yet known pure
        is kept, and `finish` judges it once every file has been read."""
        self.walk = walk
        self.out = walk.out
        self.pure_classes = pure_classes
        self.deferred: list[tuple[ast.expr, str, bool]] | None = [] if deferring else None
        self.defined: set[str] = set()
        self.hooked: set[str] = set()
        # Names bound in the class bodies being judged: inside a class body they shadow builtins.
        self._class_scope: frozenset[str] = frozenset()

    def run(self, tree: ast.Module) -> None:
        # Functions and classes of this module: never a builtin, and never called at import.
        self.defined = {
            stmt.name for stmt in tree.body if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        # Classes whose values run methods of this file when formatted, hashed, compared or added
        # (an Enum with `__str__`, a class with `__eq__`): their members exist without a call.
        self.hooked = {
            stmt.name
            for stmt in tree.body
            if isinstance(stmt, ast.ClassDef)
            and any(
                isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name.startswith("__")
                and item.name not in _INERT_DUNDERS
                for item in stmt.body
            )
        }
        for stmt in tree.body:
            self._statement(stmt)

    # ---- statements ----------------------------------------------------------------------
    def _statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Import | ast.ImportFrom | ast.Pass):
            return
        if _is_docstring_like(stmt):
            return
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self._target(target)
            self._expr(stmt.value, "the value of a module constant")
            return
        if isinstance(stmt, ast.AnnAssign):
            self._target(stmt.target)
            self._annotation(stmt.annotation)
            if stmt.value is not None:
                self._expr(stmt.value, "the value of a module constant")
            return
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            if stmt.name.startswith("__") and stmt.name.endswith("__"):
                self.out.add("static.dunder_definition", stmt, f"module-level {stmt.name} hooks into the import system")
            self._function(stmt, class_names=frozenset())
            return
        if isinstance(stmt, ast.ClassDef):
            self._class(stmt)
            return
        if isinstance(stmt, ast.If) and self._never_runs_on_import(stmt):
            return
        if isinstance(stmt, ast.Try) and self._optional_import(stmt):
            # Nothing of its own runs: each statement of its blocks is judged as a module's.
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                for inner in block:
                    self._statement(inner)
            return
        self.out.add(
            "static.toplevel.statement",
            stmt,
            f"a module-level {type(stmt).__name__} runs at import; only imports, constants, functions "
            "and classes are allowed",
        )

    def _never_runs_on_import(self, stmt: ast.If) -> bool:
        test = stmt.test
        if (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__"
            and not stmt.orelse
        ):
            return True
        checking = isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
        ref = self.walk.resolve(test, None) if isinstance(test, ast.Attribute) else None
        checking = checking or (ref is not None and ref.path == "typing.TYPE_CHECKING")
        if checking and all(isinstance(s, ast.Import | ast.ImportFrom | ast.Pass) for s in stmt.body):
            return not stmt.orelse
        return False

    def _optional_import(self, stmt: ast.Try) -> bool:
        """`try: from x import y` / `except ImportError: y = None`: an import that may fail.

        The `except` clauses may name builtin exceptions only (or none): evaluating such a
        clause runs no code. The blocks are judged statement by statement by the caller.
        """
        if not any(isinstance(inner, ast.Import | ast.ImportFrom) for inner in stmt.body):
            return False
        for handler in stmt.handlers:
            kind = handler.type
            names = kind.elts if isinstance(kind, ast.Tuple) else [] if kind is None else [kind]
            for name in names:
                if not (
                    isinstance(name, ast.Name) and name.id in _BUILTIN_EXCEPTIONS and self._surely_builtin(name.id)
                ):
                    return False
        return True

    def _target(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            return
        if isinstance(target, ast.Tuple | ast.List) and all(isinstance(e, ast.Name) for e in target.elts):
            return
        self.out.add("static.toplevel.statement", target, "module-level assignment to an attribute or item runs code")

    # ---- definitions ---------------------------------------------------------------------
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, *, class_names: frozenset[str]) -> None:
        for decorator in node.decorator_list:
            self._decorator(decorator, class_names)
        args = node.args
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self._expr(default, "a default argument")
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self._annotation(arg.annotation)
        if node.returns is not None:
            self._annotation(node.returns)

    def _class(self, node: ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            self._decorator(decorator, frozenset())
        enum_base = False
        for base in node.bases:
            self._expr(base, "a base class", calls=False)
            ref = self.walk.resolve(base, None) if isinstance(base, ast.Name | ast.Attribute) else None
            enum_base = enum_base or (ref is not None and ref.path.startswith("enum."))
        for keyword in node.keywords:
            if keyword.arg not in ("metaclass", None):  # metaclasses are judged for every class (walk)
                self._expr(keyword.value, "a class keyword", calls=False)
        defined: set[str] = set()
        outer = self._class_scope
        self._class_scope = outer | _class_bindings(node)
        for item in node.body:
            self._class_item(item, frozenset(defined), enum_base=enum_base)
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                defined.add(item.name)
        self._class_scope = outer

    def _class_item(self, item: ast.stmt, defined: frozenset[str], *, enum_base: bool) -> None:
        if isinstance(item, ast.Pass):
            return
        if _is_docstring_like(item):
            return
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            if enum_base and item.name in _ENUM_HOOKS:
                self.out.add("static.class.enum_hook", item, f"Enum {item.name} runs when the class is created")
            self._function(item, class_names=defined)
            return
        if isinstance(item, ast.ClassDef):
            self._class(item)
            return
        if isinstance(item, ast.Assign | ast.AnnAssign):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            for target in targets:
                if not isinstance(target, ast.Name):
                    self.out.add("static.class_body", target, "a class body may only bind plain names")
            if isinstance(item, ast.AnnAssign):
                self._annotation(item.annotation)
            if item.value is not None:
                self._expr(item.value, "a class attribute")
            return
        self.out.add(
            "static.class_body",
            item,
            f"a {type(item).__name__} in a class body runs at import; only methods and constants are allowed",
        )

    def _decorator(self, node: ast.expr, class_names: frozenset[str]) -> None:
        target = node.func if isinstance(node, ast.Call) else node
        if (
            isinstance(target, ast.Name)
            and target.id in SAFE_BUILTIN_DECORATORS
            and self._surely_builtin(target.id)
            and target.id not in class_names
        ) or (
            isinstance(target, ast.Attribute)
            and target.attr in _SETTER_ATTRS
            and isinstance(target.value, ast.Name)
            and target.value.id in class_names
        ):
            ok = True
        else:
            ref = self.walk.resolve(target, None) if isinstance(target, ast.Name | ast.Attribute) else None
            ok = ref is not None and ref.is_library and ref.path in SAFE_DECORATORS
        if not ok:
            self.out.add(
                "static.decorator",
                node,
                "a decorator runs at import; only known pure decorators (dataclass, property, "
                "torch.no_grad, ...) are allowed",
            )
            return
        if isinstance(node, ast.Call):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                self._expr(arg, "a decorator argument")

    # ---- expressions evaluated at import -----------------------------------------------------
    def _annotation(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name | ast.Constant) or (
            isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        ):
            return  # `int`, `"Tensor"`, `nn.Module`: nothing below to check
        pending: list[ast.AST] = [node]
        while pending:
            sub = pending.pop()
            if type(sub) not in _PLAIN_ANNOTATIONS and not (
                isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitOr)
            ):
                self.out.add("static.annotation", node, "an annotation may only name types; it is evaluated at import")
                return
            pending.extend(children(sub))

    def finish(self) -> None:
        """Judge the deferred expressions, now that `pure_classes` is complete."""
        deferred, self.deferred = self.deferred or [], None
        for node, where, calls in deferred:
            self._expr(node, where, calls=calls)

    def _expr(self, node: ast.expr, where: str, *, calls: bool = True) -> None:
        try:
            self._expr_now(node, where, calls=calls)
        except _Deferred:
            assert self.deferred is not None
            self.deferred.append((node, where, calls))

    def _expr_now(self, node: ast.expr, where: str, *, calls: bool) -> None:
        # A finding ends the walk of the expression, so a deferred one has none yet: judged
        # again from the start, it gives exactly what judging it once at the end would.
        pending: list[ast.AST] = [node]
        while pending:
            sub = pending.pop()
            if isinstance(sub, ast.Call):
                if not calls or not self._pure_call(sub):
                    self.out.add("static.toplevel.call", sub, f"a call in {where} runs at import")
                    return
            elif isinstance(sub, ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom):
                self.out.add("static.toplevel.call", sub, f"{type(sub).__name__} in {where} runs at import")
                return
            elif isinstance(sub, ast.Lambda):
                # The body runs when called, not at import; its defaults run now.
                pending.extend(sub.args.defaults)
                pending.extend(d for d in sub.args.kw_defaults if d is not None)
                continue
            elif self.hooked:
                operand = self._hooked_operand(sub)
                if operand is not None:
                    self.out.add(
                        "static.toplevel.call",
                        operand,
                        f"{where} formats, hashes, compares or operates on a value of a class of this file "
                        "that defines its own dunder methods: they would run at import",
                    )
                    return
            pending.extend(children(sub))

    def _hooked_operand(self, sub: ast.AST) -> ast.expr | None:
        """An operand whose own dunder (`__str__`, `__hash__`, `__eq__`, `__add__`...) Python calls here."""
        operands: list[ast.expr]
        if isinstance(sub, ast.JoinedStr):
            operands = [v.value for v in sub.values if isinstance(v, ast.FormattedValue)]
        elif isinstance(sub, ast.Dict):
            operands = [k for k in sub.keys if k is not None]
        elif isinstance(sub, ast.Set):
            operands = list(sub.elts)
        elif isinstance(sub, ast.BinOp):
            operands = [sub.left, sub.right]
        elif isinstance(sub, ast.UnaryOp):
            operands = [sub.operand]
        elif isinstance(sub, ast.Compare):
            operands = [sub.left, *sub.comparators]
        elif isinstance(sub, ast.BoolOp):
            operands = list(sub.values)
        elif isinstance(sub, ast.Subscript):
            operands = [sub.value, sub.slice]
        elif isinstance(sub, ast.Call):
            operands = [*sub.args, *(k.value for k in sub.keywords)]
        else:
            return None
        for operand in operands:
            root = operand
            while isinstance(root, ast.Attribute | ast.Subscript | ast.Starred):
                root = root.value
            if isinstance(root, ast.Name) and root.id in self.hooked:
                return operand
        return None

    def _surely_builtin(self, name: str) -> bool:
        """Not bound anywhere at module or class level (`list = f` makes `list(...)` run `f`)."""
        return (
            self.walk.is_builtin(name, None)
            and name not in self.walk.module_bound
            and name not in self.defined
            and name not in self._class_scope
        )

    def _callback_free(self, node: ast.Call) -> bool:
        """No argument that the builtin would call: `key=`, `default=` callbacks, lambdas, functions."""
        for keyword in node.keywords:
            value = keyword.value
            builtin = isinstance(value, ast.Name) and value.id in PURE_BUILTINS and self._surely_builtin(value.id)
            constant_default = keyword.arg == "default" and isinstance(value, ast.Constant)
            if (keyword.arg in ("key", "default") or keyword.arg is None) and not (builtin or constant_default):
                return False
        for arg in node.args:
            if isinstance(arg, ast.Lambda) or (isinstance(arg, ast.Name) and arg.id in self.defined):
                return False
        return True

    def _pure_call(self, node: ast.Call) -> bool:
        func = node.func
        if isinstance(func, ast.Name) and func.id in PURE_BUILTINS and self._surely_builtin(func.id):
            return self._callback_free(node)
        if isinstance(func, ast.Name) and f"{self.walk.module_name}.{func.id}" in self.pure_classes:
            return True
        ref = self.walk.resolve(func, None) if isinstance(func, ast.Name | ast.Attribute) else None
        if ref is None:
            return False
        if ref.kind == "project_member":
            if ref.path in self.pure_classes:
                return True
            if self.deferred is not None:
                raise _Deferred  # that class's file may not have been read yet
            return False
        return ref.is_library and (ref.path in PURE_LIBRARY_CALLS or ref.path.startswith("math."))


def _class_bindings(node: ast.ClassDef) -> frozenset[str]:
    """Every name a class body binds (all of it: a conservative stand-in for "bound so far")."""
    names: set[str] = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(item.name)
        elif isinstance(item, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            for target in targets:
                if type(target) is ast.Name:  # the common case, without a walk
                    names.add(target.id)
                else:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return frozenset(names)


def pure_dataclasses(walk: FileWalk) -> set[str]:
    """Module-level dataclasses whose construction runs only code `dataclasses` generated.

    No base class, no `__init__`/`__post_init__`/`__new__`, every default static and every
    `default_factory` a plain builtin container: `Settings()` as a default argument is then as
    inert as a literal, which is how ordinary code writes it.
    """
    found: set[str] = set()
    for stmt in walk.tree.body:
        if not isinstance(stmt, ast.ClassDef) or stmt.bases or stmt.keywords or len(stmt.decorator_list) != 1:
            continue
        decorator = stmt.decorator_list[0]
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        ref = walk.resolve(target, None) if isinstance(target, ast.Name | ast.Attribute) else None
        if ref is None or ref.path != "dataclasses.dataclass" or not _inert_body(stmt, walk):
            continue
        found.add(f"{walk.module_name}.{stmt.name}")
    return found


_NAMEDTUPLE_FACTORIES = frozenset({"collections.namedtuple", "typing.NamedTuple"})


def pure_namedtuples(walk: FileWalk) -> set[str]:
    """Module-level `Point = namedtuple("Point", ["x", "y"])` where nothing else at module level
    binds `Point`: calling it runs only the `__new__` the factory generated (a tuple), so
    `DEFAULT = Point(1, 2)` is as inert as a literal. (The factory's own arguments are judged
    where they stand, as import-time values.)"""
    candidates: list[str] = []
    for stmt in walk.tree.body:
        if type(stmt) is ast.Assign and len(stmt.targets) == 1 and type(stmt.targets[0]) is ast.Name:
            value = stmt.value
            if type(value) is ast.Call and isinstance(value.func, ast.Name | ast.Attribute):
                ref = walk.resolve(value.func, None)
                if ref is not None and ref.path in _NAMEDTUPLE_FACTORIES:
                    candidates.append(stmt.targets[0].id)
    if not candidates:
        return set()  # the common case: no statement to count bindings in
    counts: dict[str, int] = {}
    pending = list(walk.tree.body)
    while pending:
        for name in _module_bindings(pending.pop(), pending):
            counts[name] = counts.get(name, 0) + 1
    return {f"{walk.module_name}.{name}" for name in candidates if counts.get(name) == 1}


def _module_bindings(stmt: ast.stmt, pending: list[ast.stmt]) -> list[str]:
    """Names a module-level statement binds; the blocks of a compound one go to `pending`."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names]
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
        targets = [stmt.target]
    elif isinstance(stmt, ast.With | ast.AsyncWith):
        targets = [item.optional_vars for item in stmt.items if item.optional_vars is not None]
    elif isinstance(stmt, ast.Delete):
        targets = stmt.targets
    for field in ("body", "orelse", "finalbody"):
        pending.extend(getattr(stmt, field, None) or [])
    for handler in getattr(stmt, "handlers", None) or []:
        pending.extend(handler.body)
    for case in getattr(stmt, "cases", None) or []:
        pending.extend(case.body)
    names: list[str] = []
    for target in targets:
        names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _inert_body(cls: ast.ClassDef, walk: FileWalk) -> bool:
    """No method Python would call on its own: no dunder at all (`__eq__`, `__hash__`, `__repr__`
    run inside `==`, dict keys, f-strings at import). Decorators (`@property`) are judged where
    they stand and run at class creation, not at construction."""
    for item in cls.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            if item.name.startswith("__"):
                return False
            continue
        if isinstance(item, ast.AnnAssign) and item.value is not None:
            value = item.value
            if isinstance(value, ast.Call):
                ref = walk.resolve(value.func, None) if isinstance(value.func, ast.Name | ast.Attribute) else None
                if ref is None or ref.path != "dataclasses.field":
                    return False
                for keyword in value.keywords:
                    if keyword.arg == "default_factory" and not (
                        isinstance(keyword.value, ast.Name) and keyword.value.id in _INERT_FACTORIES
                    ):
                        return False
            elif _contains(value, _RUNS_CODE):
                return False
    return True
