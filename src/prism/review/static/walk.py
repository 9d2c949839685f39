"""The per-file walk: imports, names, attributes, calls, format strings, literals, monkeypatching.

`static_scope.index` walks the tree once and queues, pre-order, the nodes a rule may judge with
the function scope of each, so that a name is judged as what Python will look it up as (a
builtin, an import, or a local). Parents are seen before children: a node that is legitimately
used (the `getattr` of a vetted call, the module under an attribute) is marked by its parent
before the rules reach it.
"""

from __future__ import annotations

import ast
import re

from prism.review.static.allowlist import (
    ANNOTATION_ONLY,
    COMPUTED_LOOKUP_MODULES,
    DECORATOR_ONLY,
    ENUM_CLASSES,
    QUERY_ONLY,
    WRAPPER_CALLS,
)
from prism.review.static.bindings import library_value, patches
from prism.review.static.findings import FileFindings
from prism.review.static.policy import (
    ALLOWED_DUNDER_ATTRIBUTES,
    ALLOWED_DUNDER_DEFINITIONS,
    ALLOWED_DUNDER_NAMES,
    ALLOWED_PRIVATE_ATTRIBUTES,
    FORBIDDEN_NAMES,
    REFLECTIVE_CALLS,
)
from prism.review.static.resolve import Denied, Ref, import_module
from prism.review.static.scope import Interest, Scope, index
from prism.review.static.state import (
    FORMAT_METHODS,
    ProjectState,
    import_fallbacks,
    import_statements,
    plain_fields,
    safe_prefix,
)

_BLOB = re.compile(r"[A-Za-z0-9+/=_\-]+")
_NAME = ast.Name
_LOAD = ast.Load
_ATTRIBUTE = ast.Attribute
_CONSTANT = ast.Constant
_CALL = ast.Call
_ASSIGN = ast.Assign
_COLLECTIONS = frozenset({ast.List, ast.Tuple, ast.Set, ast.Dict})
_EMPTY_MODULE = ast.Module(body=[], type_ignores=[])
_UNKNOWN = object()
_MODULE_KINDS = ("module", "project_module")
# Callees `_on_call` has a rule for: reflective builtins, `type(...)`, `.format`, `.type(...)`,
# and the enum classes (whose call with a name and members is the functional API).
_JUDGED_CALLS = (
    REFLECTIVE_CALLS
    | {"type"}
    | FORMAT_METHODS
    | {name.split(".")[1] for name in ENUM_CLASSES}
    | {name.split(".")[1] for name in WRAPPER_CALLS}
    | {name.rpartition(".")[2] for name in QUERY_ONLY}
)
# Names a rule judges wherever they are loaded.
_JUDGED_NAMES = FORBIDDEN_NAMES | REFLECTIVE_CALLS | {"type"}
_WRAPPER_HINT = "call `functools.wraps(fn)` directly, with its default fields (no `assigned=`/`updated=`)"
# Names a module (not a class body) may bind although they are dunders.
_MODULE_DUNDER_STORES = frozenset({"__all__", "__version__"})
_TYPE_HINT = "call `.type(dtype)` directly, or name your own field something other than `type` (e.g. `kind`)"


def _builds_class(node: ast.Call) -> bool:
    return len(node.args) >= 3 or bool(node.keywords) or any(isinstance(a, ast.Starred) for a in node.args)


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


class FileWalk:
    def __init__(self, out: FileFindings, tree: ast.Module, state: ProjectState) -> None:
        self.out = out
        self.tree = tree
        self.state = state
        self.policy = state.policy
        self.docstrings: set[int] = set()
        self.imports: dict[str, Ref] = {}
        self.aliases: dict[str, Ref] = {}
        self._refs: dict[int, Ref | None] = {}
        self._bases: set[int] = set()
        self._vetted: set[int] = set()
        self._numbers = 0
        self._text_bytes = 0
        self.module_name = ""
        # Names bound at module or class level (any form): a builtin of that name is not trusted.
        self.module_bound: set[str] = set()
        # Class-body assignment targets (`__slots__ = ...`), judged by `_on_class`, not as stores.
        self._class_targets: set[int] = set()
        # Attribute nodes already judged as a whole (`torch.jit.ignore` as a decorator).
        self._judged: set[int] = set()
        # `getattr(...)` calls whose result is called at once (`getattr(F, name)(x)`).
        self._called_lookups: set[int] = set()
        # Uses of the builtin `type` that are not direct calls (annotations are allowed).
        self._bare_types: list[ast.Name] = []
        # Enum classes of this file and enum names imported: their call with members is refused.
        self.enum_names: set[str] = set()
        # Names an `except` clause of a module-level `try` sets to a constant (`fn = None`).
        self._fallbacks: set[int] = set()
        # What the inline path of `_on_attribute` leaves to the general one: names with a rule.
        self._judged_attributes = state.judged_attributes
        self._max_length = self.policy.max_identifier_length

    def release(self) -> None:
        """Drop the tree once the file is reviewed; what the project-wide checks need is kept."""
        self.tree = _EMPTY_MODULE

    # ---- imports -------------------------------------------------------------------------
    def collect_imports(self) -> None:
        """Bind every imported name first: a use may precede its import in source order."""
        for node in import_statements(self.tree.body):
            if type(node) is ast.Import:
                self._import(node)
            else:
                self._import_from(node)  # type: ignore[arg-type]
        mods = {name for name, ref in self.imports.items() if ref.is_module}
        self.state.module_imports[self.module_name] = mods
        self._fallbacks = import_fallbacks(self.tree.body)

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname and _dunder(alias.asname):
                self._dunder_binding(alias.asname, alias)
                continue
            ref = import_module(self.policy, self.state.modules, alias.name)
            if isinstance(ref, Denied):
                self.out.add(ref.rule_id, node, ref.explanation)
                continue
            if alias.asname:
                self.imports[alias.asname] = ref
            else:
                root = alias.name.split(".")[0]
                root_ref = import_module(self.policy, self.state.modules, root)
                self.imports[root] = root_ref if isinstance(root_ref, Ref) else ref

    def _import_from(self, node: ast.ImportFrom) -> None:
        modules = self.state.modules
        if node.level:
            base = modules.resolve_relative(self.out.path, node.module, node.level)
            if base is None or not (modules.has(base) or base == ""):
                self.out.add("static.import.forbidden", node, "relative import outside the project")
                return
            source: Ref | Denied = Ref("project_module", base)
        else:
            source = import_module(self.policy, modules, node.module or "")
        if isinstance(source, Denied):
            self.out.add(source.rule_id, node, source.explanation)
            return
        for alias in node.names:
            if alias.name == "*":
                self.out.add("static.import.star", node, "star imports bind names the review cannot see")
                continue
            bound = alias.asname or alias.name
            if _dunder(bound):
                self._dunder_binding(bound, alias)
                continue
            if source.kind == "project_module":
                full = f"{source.path}.{alias.name}" if source.path else alias.name
                if modules.has(full):
                    self.imports[bound] = Ref("project_module", full)
                else:
                    self.imports[bound] = Ref("project_member", full)
                    self.state.reexports.append((self.out, node, source.path, alias.name))
                continue
            if source.path == "__future__":
                continue
            if self._attr_name(alias.name, alias):
                continue
            ref = self.state.step(source.path, alias.name)
            if isinstance(ref, Denied):
                self.out.add(ref.rule_id, alias, ref.explanation)
            else:
                self.imports[bound] = ref

    # ---- resolution ----------------------------------------------------------------------
    def resolve(self, node: ast.expr, scope: Scope | None) -> Ref | None:
        """What a Name/Attribute chain denotes when it starts at an import; None otherwise."""
        known = self._refs.get(id(node), _UNKNOWN)
        if known is not _UNKNOWN:
            return known  # type: ignore[return-value]
        root = node
        while type(root) is _ATTRIBUTE:
            root = root.value
        if type(root) is not _NAME or root.id not in self.imports:
            return None  # no chain that starts elsewhere denotes a module or library member
        refs = self._refs
        chain: list[ast.Attribute] = []
        cursor: ast.expr = node
        while isinstance(cursor, ast.Attribute) and id(cursor) not in refs:
            chain.append(cursor)
            cursor = cursor.value
        if isinstance(cursor, ast.Name):
            # The import, unless a function scope binds the name locally.
            ref = None if scope is not None and scope.binds(cursor.id) else self.imports.get(cursor.id)
            refs[id(cursor)] = ref
        elif isinstance(cursor, ast.Attribute):
            ref = refs[id(cursor)]
        else:
            ref = None
        for link in reversed(chain):
            ref = refs[id(link)] = self._step(link, ref)
        return ref

    def _step(self, node: ast.Attribute, base: Ref | None) -> Ref | None:
        if base is None:
            return None
        if base.kind == "module":
            attr = node.attr
            # `_attr_name` has nothing to say about a public name outside the refused set.
            if attr.startswith("_") or attr in self.policy.forbidden_attributes:
                private = attr.startswith("_") and not _dunder(attr)
                if not private and self._attr_name(attr, node):
                    return None
            result = self.state.step(base.path, attr)
            if isinstance(result, Denied):
                self.out.add(result.rule_id, node, result.explanation)
                return None
            return result
        if base.kind == "project_module":
            full = f"{base.path}.{node.attr}"
            if self.state.modules.has(full):
                return Ref("project_module", full)
            self.state.reexports.append((self.out, node, base.path, node.attr))
            return Ref("project_member", full)
        return Ref(base.kind, f"{base.path}.{node.attr}")

    def is_builtin(self, name: str, scope: Scope | None) -> bool:
        return not (scope is not None and scope.binds(name)) and name not in self.imports

    # ---- names and attributes --------------------------------------------------------------
    def _attr_name(self, attr: str, node: ast.AST) -> bool:
        """Rules on an attribute name whatever it is read from. True when a finding was added."""
        if _dunder(attr):
            if attr not in ALLOWED_DUNDER_ATTRIBUTES:
                self.out.add("static.attribute.dunder", node, f"attribute {attr} opens reflection on objects")
                return True
            return False
        if attr in self.policy.forbidden_attributes:
            self.out.add(
                "static.attribute.forbidden",
                node,
                f"attribute {attr!r} reaches frames, code, the OS, files, native code or global hooks",
            )
            return True
        if attr.startswith("_") and attr not in ALLOWED_PRIVATE_ATTRIBUTES:
            if attr in self.state.torch_private:
                self.out.add(
                    "static.attribute.private",
                    node,
                    f"attribute {attr} is private to an allowed library (torch, enum, typing, functools ...)",
                )
                return True
            self.state.private_reads.append((self.out, node, attr))
        return False

    def _long_identifier(self, name: str, node: ast.AST) -> None:
        if len(name) > self.policy.max_identifier_length:
            self.out.add(
                "static.identifier_length",
                node,
                f"identifier of {len(name)} characters, over max_identifier_length={self.policy.max_identifier_length}",
            )

    def _on_name(self, node: ast.Name, scope: Scope | None) -> None:
        name = node.id
        if len(name) > self.policy.max_identifier_length:
            self._long_identifier(name, node)
        if not isinstance(node.ctx, ast.Load):
            if scope is None and id(node) not in self._class_targets:
                self.module_bound.add(name)  # class-body names are the class's (TopLevel tracks them)
            exempt = id(node) in self._class_targets or (scope is None and name in _MODULE_DUNDER_STORES)
            if _dunder(name) and not exempt:
                self.out.add(
                    "static.name.dunder_store",
                    node,
                    f"binding {name} rewires the interpreter (`__name__ = '__main__'` turns the main guard "
                    "into import-time code)",
                )
                return
            if name.startswith("_"):
                self.state.defined_private.add(name)
            if scope is None and (name in FORBIDDEN_NAMES or name in REFLECTIVE_CALLS):
                self.out.add("static.name.shadowing", node, f"module-level name {name} shadows a forbidden builtin")
            if name in self.imports and scope is None and id(node) not in self._fallbacks:
                self.out.add("static.name.rebinds_import", node, f"{name} rebinds an imported name")
            return
        if _dunder(name) and name not in ALLOWED_DUNDER_NAMES:
            self.out.add("static.name.dunder", node, f"name {name} reaches interpreter internals")
            return
        if name in FORBIDDEN_NAMES and self.is_builtin(name, scope):
            self.out.add(
                "static.name.forbidden", node, f"builtin {name} evaluates code, opens files or reaches namespaces"
            )
            return
        if name in REFLECTIVE_CALLS and id(node) not in self._vetted and self.is_builtin(name, scope):
            self.out.add("static.reflection.value", node, f"{name} may only be called directly with a literal name")
            return
        if name == "type" and id(node) not in self._vetted and self.is_builtin(name, scope):
            # `partial(type, "X", (), ns)`, `t = type`: the three-argument form out of sight.
            # Judged after the walk, once annotations (`norm: type = ...`) are known.
            self._bare_types.append(node)
            return
        ref = self.resolve(node, scope)
        if ref is not None and ref.is_module and id(node) not in self._bases:
            self.out.add("static.module.value", node, f"module {ref.path} may only be used as `{name}.attribute`")
        elif ref is not None and ref.path in WRAPPER_CALLS and id(node) not in self._vetted:
            self.out.add("static.call.wrapper_fields", node, f"{ref.path} used as a value; {_WRAPPER_HINT}")

    def _on_attribute(self, node: ast.Attribute, scope: Scope | None) -> None:
        if id(node) in self._judged:
            return
        attr = node.attr
        value = node.value
        if (
            type(value) is _NAME
            and type(node.ctx) is _LOAD
            and attr[:1] != "_"
            and attr not in self._judged_attributes
            and len(attr) <= self._max_length
        ):
            # The common case, inline: `nn.Linear`, `torch.cat`, `F.relu`: a public name that
            # no rule concerns (not `type`, `format`, a refused or a long one), read from a name.
            name = value.id
            if name in self.imports:
                self._bases.add(id(value))
                base = self.resolve(value, scope)
                if base is not None:
                    self._plain_step(node, attr, base)
            return
        if (
            (attr == "__name__" or attr == "__qualname__")
            and type(node.ctx) is _LOAD
            and type(value) is _ATTRIBUTE
            and value.attr == "__class__"
        ):
            # `self.__class__.__name__` (in `__repr__`s and log lines) reads a string, as
            # `type(self).__name__` does; `__class__` alone stays refused (`x.__class__(...)`
            # would call a metaclass with the arguments `type(x)(...)` is checked for).
            self._judged.add(id(value))
        if attr == "type" and type(node.ctx) is _LOAD and id(node) not in self._vetted:
            self.out.add(
                "static.call.type_string",
                node,
                f"`.type` may only be called directly: a storage's `.type('a.b')` imports a module; {_TYPE_HINT}",
            )
            return
        if len(attr) > self.policy.max_identifier_length:
            self._long_identifier(attr, node)
        value = node.value
        root = value
        while type(root) is _ATTRIBUTE:
            root = root.value
        if type(root) is _NAME and root.id in self.imports:
            self._bases.add(id(value))
            base = self.resolve(value, scope)
        else:
            base = None  # `self.linear`, `x.shape`, `f().y`: no module or library member below
        if type(node.ctx) is _LOAD:
            if (attr == "format" or attr == "format_map") and id(node) not in self._vetted:
                self.out.add("static.format_string", node, "str.format is allowed only on a literal template")
            if base is None:
                # The common case (`self.linear`, `x.shape`): only the name rules apply, and a
                # plain public name outside the refused set passes them all.
                if attr[:1] == "_" or attr in self.policy.forbidden_attributes:
                    self._attr_name(attr, node)
                return
            if base.kind != "module":
                if attr[:1] == "_" and not _dunder(attr) and base.is_library:
                    self.out.add(
                        "static.attribute.private",
                        node,
                        f"{base.path}.{attr} is private to the library, whatever the project defines",
                    )
                    return
                self._attr_name(attr, node)
            known = self._refs.get(id(node), _UNKNOWN)
            if known is _UNKNOWN:  # `resolve(node)`, one step on from the base just resolved
                ref = self._refs[id(node)] = self._step(node, base)
            else:
                ref = known  # type: ignore[assignment]
            if ref is not None and ref.kind in _MODULE_KINDS and id(node) not in self._bases:
                self.out.add("static.module.value", node, f"module {ref.path} may only be used as an attribute base")
            elif ref is not None and ref.path in WRAPPER_CALLS and id(node) not in self._vetted:
                self.out.add("static.call.wrapper_fields", node, f"{ref.path} used as a value; {_WRAPPER_HINT}")
            return
        if node.attr.startswith("_"):
            self.state.defined_private.add(node.attr)
        if _dunder(node.attr) and node.attr not in ALLOWED_DUNDER_DEFINITIONS:
            self.out.add("static.attribute.dunder", node, f"assigning {node.attr} rewires an object")
        if patches(self, node.value, base, node):
            self.out.add(
                "static.monkeypatch",
                node,
                "assigning to or deleting an attribute of an imported module or library class changes code "
                "the harness relies on",
            )

    def _plain_step(self, node: ast.Attribute, attr: str, base: Ref) -> None:
        known = self._refs.get(id(node), _UNKNOWN)
        if known is not _UNKNOWN:
            ref: Ref | None = known  # type: ignore[assignment]
        elif base.kind == "module":
            result = self.state.step(base.path, attr)
            if isinstance(result, Denied):
                self.out.add(result.rule_id, node, result.explanation)
                ref = None
            else:
                ref = result
            self._refs[id(node)] = ref
        else:
            ref = self._refs[id(node)] = self._step(node, base)
        if ref is not None and ref.kind in _MODULE_KINDS and id(node) not in self._bases:
            self.out.add("static.module.value", node, f"module {ref.path} may only be used as an attribute base")
        elif ref is not None and ref.path in WRAPPER_CALLS and id(node) not in self._vetted:
            self.out.add("static.call.wrapper_fields", node, f"{ref.path} used as a value; {_WRAPPER_HINT}")

    # ---- calls ---------------------------------------------------------------------------
    def _on_call(self, node: ast.Call, scope: Scope | None) -> None:
        func = node.func
        if not node.args and not node.keywords and self._refused_module_member(func, QUERY_ONLY):
            return  # `torch.jit.is_scripting()`
        if isinstance(func, ast.Name) and func.id == "type":
            self._vetted.add(id(func))  # called directly; the arguments are judged below
        if isinstance(func, ast.Call) and isinstance(func.func, ast.Name):
            self._call_of_call(node, func, scope)
            return
        if self._enum_functional(node, scope):
            return
        if isinstance(func, ast.Name | ast.Attribute) and self._wrapper_call(node, func, scope):
            return
        if isinstance(func, ast.Name) and func.id in REFLECTIVE_CALLS and self.is_builtin(func.id, scope):
            self._vetted.add(id(func))
            self._reflective(node, func.id, scope)
        elif (
            isinstance(func, ast.Name)
            and func.id == "type"
            and (len(node.args) != 1 or _builds_class(node))
            and self.is_builtin("type", scope)
        ):
            self.out.add("static.call.type_create", node, "type() with three arguments builds classes from a dict")
        elif isinstance(func, ast.Attribute) and func.attr in ("format", "format_map"):
            self._vetted.add(id(func))
            self._format(node, func)
        elif isinstance(func, ast.Attribute) and func.attr == "type":
            self._vetted.add(id(func))
            if node.args or node.keywords:
                self._tensor_type(node, scope)

    def _call_of_call(self, node: ast.Call, inner: ast.Call, scope: Scope | None) -> None:
        """`getattr(F, name)(x)` is a lookup called at once; `type(cls)(name, bases, ns)` builds a class."""
        callee = inner.func.id  # type: ignore[attr-defined]
        if callee == "getattr" and self.is_builtin("getattr", scope):
            self._called_lookups.add(id(inner))
        elif callee == "type" and self.is_builtin("type", scope) and _builds_class(node):
            self.out.add(
                "static.call.type_create",
                node,
                "calling the type of a class with a name, bases and a namespace builds a class through its "
                "metaclass; write a `class` statement",
            )

    def _wrapper_call(self, node: ast.Call, func: ast.Name | ast.Attribute, scope: Scope | None) -> bool:
        """`functools.wraps(fn)` passes; extra fields (`updated=("__globals__",)`) do not."""
        ref = self.resolve(func, scope)
        if ref is None or ref.path not in WRAPPER_CALLS:
            return False
        limit = WRAPPER_CALLS[ref.path]
        self._vetted.add(id(func))
        if len(node.args) > limit or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            self.out.add(
                "static.call.wrapper_fields",
                node,
                f"{ref.path} with `assigned`/`updated` fields copies or reads any attribute "
                f"(`__globals__`); {_WRAPPER_HINT}",
            )
        return True

    def _enum_functional(self, node: ast.Call, scope: Scope | None) -> bool:
        """`Enum("X", "a b", module=...)`: the functional API writes into other modules; refused."""
        if not (len(node.args) > 1 or node.keywords):
            return False
        func = node.func
        enum_call = isinstance(func, ast.Name) and func.id in self.enum_names and self.is_builtin(func.id, scope)
        if not enum_call and isinstance(func, ast.Name | ast.Attribute):
            ref = self.resolve(func, scope)
            enum_call = ref is not None and ref.path in ENUM_CLASSES
        if enum_call:
            self.out.add(
                "static.call.enum_functional",
                node,
                "the functional Enum API (`Enum(name, members, module=...)`) can write into other modules; "
                "write `class Name(Enum): ...` instead",
            )
        return enum_call

    def _reflective(self, node: ast.Call, name: str, scope: Scope | None) -> None:
        expected = {"getattr": (2, 3), "hasattr": (2, 2), "setattr": (3, 3), "delattr": (2, 2)}[name]
        args = node.args
        if (
            node.keywords
            or any(isinstance(a, ast.Starred) for a in args)
            or not expected[0] <= len(args) <= expected[1]
        ):
            self.out.add("static.reflection.computed", node, f"{name} must be called with plain positional arguments")
            return
        attr = args[1]
        target = args[0]
        ref = self.resolve(target, scope) if isinstance(target, ast.Name | ast.Attribute) else None
        if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
            if not attr.value.isidentifier():
                self.out.add("static.reflection.computed", node, f"{name} with a non-identifier name")
                return
            if self._attr_name(attr.value, node):
                return
            if ref is not None and ref.kind == "module":
                # `hasattr(F, "gelu")` is `F.gelu` spelled differently: the same module step applies.
                self._bases.add(id(target))
                result = self.state.step(ref.path, attr.value)
                if isinstance(result, Denied):
                    self.out.add(result.rule_id, node, result.explanation)
                    return
                if result.path in WRAPPER_CALLS:
                    self.out.add("static.call.wrapper_fields", node, f"{result.path} through getattr; {_WRAPPER_HINT}")
                    return
                if result.is_module and name == "getattr":
                    self.out.add(
                        "static.module.value",
                        node,
                        f"getattr on a module that gives the module {result.path}: write `{result.path}.name`",
                    )
                    return
            elif attr.value == "type" and name == "getattr":
                self.out.add("static.call.type_string", node, f"`getattr(x, 'type')` reaches `.type`; {_TYPE_HINT}")
                return
        elif (
            name == "getattr"
            and ref is not None
            and ref.kind == "module"
            and ref.path in COMPUTED_LOOKUP_MODULES
            and id(node) in self._called_lookups
            and len(args) == 2
        ):
            # `getattr(F, self.value)(x)`: every member of these modules is a function (or a
            # module, which cannot be called); the result is called at once and never kept.
            self._bases.add(id(target))
        elif not safe_prefix(attr, self.policy.forbidden_attributes) or (ref is not None and ref.is_module):
            self.out.add(
                "static.reflection.computed",
                node,
                f"{name} with a computed attribute name: any attribute (dunders, frames, loaders) could be reached; "
                "use a dict from names to functions ({'gelu': F.gelu, ...}), or call `getattr(F, name)(x)` at once",
            )
            return
        if name in ("setattr", "delattr") and patches(self, target, ref):
            self.out.add("static.monkeypatch", node, f"{name} on an imported module or library class")

    def _format(self, node: ast.Call, func: ast.Attribute) -> None:
        template = func.value
        if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
            self.out.add("static.format_string", node, "str.format on a computed template can walk attributes")
            return
        if not plain_fields(template.value):
            self.out.add("static.format_string", node, "format field with attribute or index access ('{0.__class__}')")

    def _tensor_type(self, node: ast.Call, scope: Scope | None) -> None:
        """`tensor.type("a.b")` imports `a` and walks attributes by name; only dtype objects may be given."""
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            self.out.add("static.call.type_string", node, f"`.type(*args, **kwargs)` may pass a string; {_TYPE_HINT}")
            return
        values = [*node.args[:1], *(k.value for k in node.keywords if k.arg in ("dtype", "dst_type"))]
        for value in values:
            if isinstance(value, ast.Name | ast.Attribute):
                ref = self.resolve(value, scope)
                if ref is not None and ref.is_library:
                    continue
                if isinstance(value, ast.Attribute) and value.attr == "dtype":
                    continue
            self.out.add("static.call.type_string", node, ".type() takes a dtype object; a string is imported by name")

    # ---- literals ------------------------------------------------------------------------
    def _on_constant(self, node: ast.Constant) -> None:
        value = node.value
        policy = self.policy
        state = self.state
        if isinstance(value, str | bytes):
            if id(node) in self.docstrings:
                return
            ascii_text = isinstance(value, str) and value.isascii()
            size = len(value.encode("utf-8")) if isinstance(value, str) and not ascii_text else len(value)
            before = self._text_bytes
            self._text_bytes += size
            if before <= policy.max_file_literal_bytes < self._text_bytes:
                self.out.add(
                    "static.literal.budget",
                    node,
                    f"string literals of this file pass max_file_literal_bytes={policy.max_file_literal_bytes}",
                )
            project_before = state.literal_bytes
            state.literal_bytes += size
            if project_before <= policy.max_project_literal_bytes < state.literal_bytes:
                self.out.add(
                    "static.literal.project_budget",
                    node,
                    "string literals of the whole project pass "
                    f"max_project_literal_bytes={policy.max_project_literal_bytes}",
                )
            if size > policy.max_literal_string_bytes:
                self.out.add(
                    "static.literal.size",
                    node,
                    f"literal of {size} bytes, over max_literal_string_bytes={policy.max_literal_string_bytes}",
                )
            elif size >= policy.max_literal_blob_chars:
                text = value if isinstance(value, str) else value.decode("latin-1")
                if any(len(m) >= policy.max_literal_blob_chars for m in _BLOB.findall(text)):
                    self.out.add("static.literal.blob", node, "a long base64/hex run: encoded data, not code")
        elif isinstance(value, int | float | complex) and not isinstance(value, bool):
            self._numbers += 1
            self._count_number(node)
            if self._numbers == policy.max_file_literal_numbers + 1:
                self.out.add(
                    "static.literal.budget",
                    node,
                    f"more than max_file_literal_numbers={policy.max_file_literal_numbers} numeric literals",
                )

    def _count_number(self, node: ast.AST) -> None:
        state = self.state
        state.literal_numbers += 1
        if state.literal_numbers == self.policy.max_project_literal_numbers + 1:
            self.out.add(
                "static.literal.project_budget",
                node,
                "numeric literals of the whole project pass "
                f"max_project_literal_numbers={self.policy.max_project_literal_numbers}",
            )

    def _on_collection(self, node: ast.List | ast.Tuple | ast.Set | ast.Dict) -> None:
        count = len(node.keys) if isinstance(node, ast.Dict) else len(node.elts)
        if count > self.policy.max_literal_elements:
            self.out.add(
                "static.literal.elements",
                node,
                f"literal with {count} elements, over max_literal_elements={self.policy.max_literal_elements}",
            )

    # ---- definitions ---------------------------------------------------------------------
    def _on_class(self, node: ast.ClassDef) -> None:
        self._long_identifier(node.name, node)
        for item in node.body:
            if type(item) is ast.AnnAssign:
                self._annotation_only(item.annotation)
        if node.name.startswith("_"):
            self.state.defined_private.add(node.name)
        if _dunder(node.name):
            self._dunder_binding(node.name, node)
        for keyword in node.keywords:
            if keyword.arg is None:
                self.out.add(
                    "static.class.metaclass",
                    keyword,
                    "class keywords from `**mapping` may carry a metaclass; write the keywords out",
                )
            elif keyword.arg == "metaclass":
                meta = keyword.value
                ref = self.resolve(meta, None) if isinstance(meta, ast.Name | ast.Attribute) else None
                if ref is None or ref.path != "abc.ABCMeta":
                    self.out.add(
                        "static.class.metaclass",
                        keyword,
                        "a metaclass runs code when the class is created; only abc.ABCMeta is allowed",
                    )
        for base in node.bases:
            if isinstance(base, ast.Starred):
                self.out.add("static.class.metaclass", base, "base classes from `*sequence`; name the bases")
        for item in node.body:
            value: ast.expr | None = None
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                name = item.name
            elif isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                name = item.targets[0].id
                self._class_targets.add(id(item.targets[0]))
                value = item.value
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                name = item.target.id
                self._class_targets.add(id(item.target))
                value = item.value
            else:
                continue
            if _dunder(name) and name not in ALLOWED_DUNDER_DEFINITIONS:
                self.out.add("static.dunder_definition", item, f"defining {name} hooks into the interpreter")
            elif name == "__match_args__":
                self._match_args(item, value)

    def _match_args(self, item: ast.stmt, value: ast.expr | None) -> None:
        """A class pattern reads the attributes `__match_args__` names: they are judged as attributes."""
        names = value.elts if isinstance(value, ast.Tuple | ast.List) else None
        if names is None or not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in names):
            self.out.add("static.attribute.dunder", item, "__match_args__ must be a literal tuple of field names")
            return
        for element in names:
            text = element.value  # type: ignore[attr-defined]
            if not text.isidentifier() or _dunder(text):
                self.out.add("static.attribute.dunder", element, f"__match_args__ names {text!r}")
            else:
                self._attr_name(text, element)

    def _on_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        limit = self.policy.max_identifier_length
        if len(node.name) > limit:
            self._long_identifier(node.name, node)
        args = node.args
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            if len(arg.arg) > limit:
                self._long_identifier(arg.arg, arg)
        if node.name.startswith("_"):
            self.state.defined_private.add(node.name)
        for decorator in node.decorator_list:
            self._decorator_only(decorator)
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            if type(arg.annotation) is ast.Subscript:
                self._annotation_only(arg.annotation)
        if type(node.returns) is ast.Subscript:
            self._annotation_only(node.returns)
        # `def f(L=nn.Linear): L.forward = g`: a parameter whose default is a library value.
        if not args.defaults and not args.kw_defaults:
            return
        positional = [*args.posonlyargs, *args.args]
        pairs = [*zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)]
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
        for arg, default in pairs:
            root = default
            while type(root) is _ATTRIBUTE:
                root = root.value
            if type(root) is not _NAME or root.id not in self.imports:
                continue
            ref = self.resolve(default, None)
            if ref is not None and ref.is_library:
                self.aliases[arg.arg] = ref

    def _judge_bare_types(self) -> None:
        """`type` named outside a call: allowed in annotations only (`norm: type = nn.LayerNorm`)."""
        annotations: set[int] = set()
        for node in ast.walk(self.tree):
            found: list[ast.expr | None] = []
            if isinstance(node, ast.arg):
                found.append(node.annotation)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append(node.returns)
            elif isinstance(node, ast.AnnAssign):
                found.append(node.annotation)
            for annotation in found:
                if annotation is not None:
                    annotations.update(id(n) for n in ast.walk(annotation) if isinstance(n, ast.Name))
        for name in self._bare_types:
            if id(name) not in annotations:
                self.out.add(
                    "static.call.type_create",
                    name,
                    "builtin type may only be called directly (`type(x)`) or named in an annotation",
                )

    def _decorator_only(self, decorator: ast.expr) -> None:
        """`@torch.jit.ignore`: members of refused modules that are harmless as decorators only."""
        self._refused_module_member(decorator.func if isinstance(decorator, ast.Call) else decorator, DECORATOR_ONLY)

    def _annotation_only(self, annotation: ast.expr | None) -> None:
        """`fused_attn: torch.jit.Final[bool]`: `typing.Final` under a refused module's name."""
        if isinstance(annotation, ast.Subscript):
            self._refused_module_member(annotation.value, ANNOTATION_ONLY)

    def _refused_module_member(self, target: ast.expr, allowed: frozenset[str]) -> bool:
        """`torch.jit.<name>` with `<name>` in `allowed`: judged here as a whole, not link by link
        (the `jit` link alone is refused). True when it was."""
        if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)):
            return False
        root = target.value.value
        if not isinstance(root, ast.Name) or root.id not in self.imports:
            return False
        base = self.imports[root.id]
        dotted = f"{base.path}.{target.value.attr}.{target.attr}"
        if base.kind != "module" or dotted not in allowed:
            return False
        self._judged.update((id(target), id(target.value)))
        self._bases.add(id(root))
        self._refs[id(target)] = Ref("member", dotted)
        return True

    def _on_match_class(self, node: ast.MatchClass) -> None:
        for attr in node.kwd_attrs:
            self._attr_name(attr, node)

    def _on_assign(self, node: ast.Assign, scope: Scope | None) -> None:
        """Track `L = nn.Linear` so that `L.forward = f` is still seen as monkeypatching.

        The value is resolved here, before the walk reaches it, so that its reference is known.
        """
        ref = library_value(self, node.value, scope)
        if ref is not None:
            for target in node.targets:  # `a = b = nn.Linear` binds both
                self._alias_targets(target, ref, class_level=scope is None)

    def _alias_targets(self, target: ast.expr, ref: Ref, *, class_level: bool = False) -> None:
        """Names bound to a library value; attribute names too (`self.cls = nn.Linear`, a class
        attribute, a module global read as `helper.L`), judged project-wide at the end."""
        if isinstance(target, ast.Name):
            self.aliases[target.id] = ref
            if class_level:
                self.state.attr_aliases.add(target.id)
        elif isinstance(target, ast.Attribute):
            self.state.attr_aliases.add(target.attr)
        elif isinstance(target, ast.Tuple | ast.List | ast.Starred):
            for element in target.elts if not isinstance(target, ast.Starred) else [target.value]:
                self._alias_targets(element, ref, class_level=class_level)

    def _dunder_binding(self, name: str, node: ast.AST) -> None:
        self.out.add("static.name.dunder_store", node, f"binding {name} rewires the interpreter")

    def _on_named_binding(self, node: ast.ExceptHandler | ast.MatchAs | ast.MatchStar | ast.MatchMapping) -> None:
        """`except E as __name__`, `case __name__:`: names bound by handlers and patterns."""
        name = node.rest if isinstance(node, ast.MatchMapping) else node.name
        if name is not None and _dunder(name):
            self._dunder_binding(name, node)

    def _on_binding(
        self, node: ast.For | ast.AsyncFor | ast.NamedExpr | ast.comprehension, scope: Scope | None
    ) -> None:
        """`for L in (nn.Linear,)`, `(L := nn.Linear)`: the names bound may be library values too."""
        source = node.value if isinstance(node, ast.NamedExpr) else node.iter
        elements = source.elts if isinstance(source, ast.Tuple | ast.List | ast.Set) else [source]
        for element in elements:
            ref = self.resolve(element, scope) if isinstance(element, ast.Name | ast.Attribute) else None
            if ref is not None and ref.is_library:
                self._alias_targets(node.target, ref)
                return

    # ---- the walk ------------------------------------------------------------------------
    def run(self) -> None:
        """The rules over `index`'s queue; `collect_imports` must have run (for every file first)."""
        max_numbers = self.policy.max_file_literal_numbers
        max_project_numbers = self.policy.max_project_literal_numbers
        state = self.state
        self._collect_enums()
        interest = Interest(
            names=_JUDGED_NAMES,
            imports=self.imports.keys(),
            attributes=self.state.judged_attributes,
            calls=_JUDGED_CALLS | self.enum_names if self.enum_names else _JUDGED_CALLS,
            max_length=self.policy.max_identifier_length,
            max_elements=self.policy.max_literal_elements,
        )
        queue = index(self.tree, interest)
        state.check_deadline()  # index is linear in the file; the rules below are too
        for node, scope in queue:
            kind = type(node)
            if kind is _NAME:
                self._on_name(node, scope)  # type: ignore[arg-type]
            elif kind is _ATTRIBUTE:
                self._on_attribute(node, scope)  # type: ignore[arg-type]
            elif kind is _CONSTANT:
                number = type(node.value)  # type: ignore[attr-defined]
                if (number is int or number is float or number is complex) and self._numbers < max_numbers:
                    self._numbers += 1  # the common case, inline: a number under the file's budget
                    state.literal_numbers += 1
                    if state.literal_numbers > max_project_numbers:
                        state.literal_numbers -= 1
                        self._count_number(node)
                else:
                    self._on_constant(node)  # type: ignore[arg-type]
            elif kind is _CALL:
                self._on_call(node, scope)  # type: ignore[arg-type]
            elif kind is _ASSIGN:
                self._on_assign(node, scope)  # type: ignore[arg-type]
            elif kind in _COLLECTIONS:
                self._on_collection(node)  # type: ignore[arg-type]
            elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
                self._on_function(node)  # type: ignore[arg-type]
                self._mark_docstring(node.body)  # type: ignore[attr-defined]
            elif kind is ast.ClassDef:
                self._on_class(node)  # type: ignore[arg-type]
                self._mark_docstring(node.body)  # type: ignore[attr-defined]
            elif kind is ast.Module:
                self._mark_docstring(node.body)  # type: ignore[attr-defined]
                for item in node.body:  # type: ignore[attr-defined]
                    if type(item) is ast.AnnAssign:
                        self._annotation_only(item.annotation)
            elif kind is ast.MatchClass:
                self._on_match_class(node)  # type: ignore[arg-type]
            elif kind is ast.ExceptHandler or kind is ast.MatchAs or kind is ast.MatchStar or kind is ast.MatchMapping:
                self._on_named_binding(node)  # type: ignore[arg-type]
            elif kind is ast.For or kind is ast.AsyncFor or kind is ast.NamedExpr or kind is ast.comprehension:
                self._on_binding(node, scope)  # type: ignore[arg-type]
        if self._bare_types:
            self._judge_bare_types()

    def _collect_enums(self) -> None:
        """Names that denote enum classes here: imported ones and this file's subclasses (in order)."""
        enum_module = False
        for name, ref in self.imports.items():
            if ref.path in ENUM_CLASSES:
                self.enum_names.add(name)
            enum_module = enum_module or ref.path == "enum"
        if not (enum_module or self.enum_names):
            return  # no enum imported: no class of this file can be one
        for stmt in self.tree.body:
            if not isinstance(stmt, ast.ClassDef):
                continue
            for base in stmt.bases:
                if isinstance(base, ast.Name) and base.id in self.enum_names:
                    self.enum_names.add(stmt.name)
                    break
                found = self.resolve(base, None) if isinstance(base, ast.Attribute) else None
                if found is not None and found.path in ENUM_CLASSES:
                    self.enum_names.add(stmt.name)
                    break

    def _mark_docstring(self, body: list[ast.stmt]) -> None:
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            self.docstrings.add(id(first.value))
