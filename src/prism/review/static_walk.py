"""The per-file walk: imports, names, attributes, calls, format strings, literals, monkeypatching.

One pre-order walk over the whole tree with the function scope of every node, so that a name is
judged as what Python will look it up as (a builtin, an import, or a local). Parents are seen
before children: a node that is legitimately used (the `getattr` of a vetted call, the module
under an attribute) is marked by its parent before the walk reaches it.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator

from prism.review.static_findings import FileFindings
from prism.review.static_policy import (
    ALLOWED_DUNDER_ATTRIBUTES,
    ALLOWED_DUNDER_DEFINITIONS,
    ALLOWED_DUNDER_NAMES,
    ALLOWED_PRIVATE_ATTRIBUTES,
    FORBIDDEN_NAMES,
    REFLECTIVE_CALLS,
    StaticPolicy,
)
from prism.review.static_resolve import Denied, ProjectModules, Ref, import_module, step
from prism.review.static_scope import SCOPE_TYPES, Scope, children

# Private names of torch internals that no project may read, even having defined them itself.
_TORCH_INTERNALS = frozenset(
    {"_C", "_dynamo", "_inductor", "_ops", "_classes", "_utils", "_jit_internal", "_import_dotted_name"}
)
_BLOB = re.compile(r"[A-Za-z0-9+/=_\-]+")
_FORMATTER = string.Formatter()


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


class ProjectState:
    """What one file's walk leaves for the project-wide checks that run after every file."""

    def __init__(self, policy: StaticPolicy, modules: ProjectModules, torch_private: frozenset[str]) -> None:
        self.policy = policy
        self.modules = modules
        self.torch_private = torch_private | _TORCH_INTERNALS
        self.defined_private: set[str] = set()
        self.private_reads: list[tuple[FileFindings, ast.AST, str]] = []
        # (file, node, project module, name): `name` must not be a module that file imported.
        self.reexports: list[tuple[FileFindings, ast.AST, str, str]] = []
        self.module_imports: dict[str, set[str]] = {}


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

    # ---- imports -------------------------------------------------------------------------
    def collect_imports(self) -> None:
        """Bind every imported name first: a use may precede its import in source order."""
        for node in _statements(self.tree.body):
            if isinstance(node, ast.Import):
                self._import(node)
            elif isinstance(node, ast.ImportFrom):
                self._import_from(node)
        mods = {name for name, ref in self.imports.items() if ref.is_module}
        self.state.module_imports[self.module_name] = mods

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
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
            ref = step(self.policy, source.path, alias.name)
            if isinstance(ref, Denied):
                self.out.add(ref.rule_id, alias, ref.explanation)
            else:
                self.imports[bound] = ref

    # ---- resolution ----------------------------------------------------------------------
    def resolve(self, node: ast.expr, scope: Scope | None) -> Ref | None:
        """What a Name/Attribute chain denotes when it starts at an import; None otherwise."""
        key = id(node)
        if key in self._refs:
            return self._refs[key]
        chain: list[ast.Attribute] = []
        cursor: ast.expr = node
        while isinstance(cursor, ast.Attribute) and id(cursor) not in self._refs:
            chain.append(cursor)
            cursor = cursor.value
        if isinstance(cursor, ast.Name):
            ref = self._name_ref(cursor, scope)
            self._refs[id(cursor)] = ref
        elif isinstance(cursor, ast.Attribute):
            ref = self._refs[id(cursor)]
        else:
            ref = None
        for link in reversed(chain):
            ref = self._step(link, ref)
            self._refs[id(link)] = ref
        return ref

    def _name_ref(self, node: ast.Name, scope: Scope | None) -> Ref | None:
        ref = self.imports.get(node.id)
        if ref is None or (scope is not None and scope.binds(node.id)):
            return None
        return ref

    def _step(self, node: ast.Attribute, base: Ref | None) -> Ref | None:
        if base is None:
            return None
        if base.kind == "module":
            private = node.attr.startswith("_") and not _dunder(node.attr)
            if not private and self._attr_name(node.attr, node):
                return None
            result = step(self.policy, base.path, node.attr)
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
                self.out.add("static.attribute.private", node, f"attribute {attr} is a torch internal")
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
            if name.startswith("_"):
                self.state.defined_private.add(name)
            if scope is None and (name in FORBIDDEN_NAMES or name in REFLECTIVE_CALLS):
                self.out.add("static.name.shadowing", node, f"module-level name {name} shadows a forbidden builtin")
            if name in self.imports and scope is None:
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
        ref = self.resolve(node, scope)
        if ref is not None and ref.is_module and id(node) not in self._bases:
            self.out.add("static.module.value", node, f"module {ref.path} may only be used as `{name}.attribute`")

    def _on_attribute(self, node: ast.Attribute, scope: Scope | None) -> None:
        if len(node.attr) > self.policy.max_identifier_length:
            self._long_identifier(node.attr, node)
        self._bases.add(id(node.value))
        base = self.resolve(node.value, scope)
        if isinstance(node.ctx, ast.Load):
            if node.attr in ("format", "format_map") and id(node) not in self._vetted:
                self.out.add("static.format_string", node, "str.format is allowed only on a literal template")
            if base is None or base.kind != "module":
                self._attr_name(node.attr, node)
            ref = self.resolve(node, scope)
            if ref is not None and ref.is_module and id(node) not in self._bases:
                self.out.add("static.module.value", node, f"module {ref.path} may only be used as an attribute base")
            return
        if node.attr.startswith("_"):
            self.state.defined_private.add(node.attr)
        if _dunder(node.attr) and node.attr not in ALLOWED_DUNDER_DEFINITIONS:
            self.out.add("static.attribute.dunder", node, f"assigning {node.attr} rewires an object")
        if self._patches(node.value, base):
            self.out.add(
                "static.monkeypatch",
                node,
                "assigning to or deleting an attribute of an imported module or library class changes code "
                "the harness relies on",
            )

    def _patches(self, target: ast.expr, base: Ref | None) -> bool:
        if base is not None and base.kind != "project_member":
            return True
        if isinstance(target, ast.Name) and target.id in self.aliases:
            return True
        if isinstance(target, ast.Call) and isinstance(target.func, ast.Name) and target.func.id == "type":
            return True
        return isinstance(target, ast.Subscript | ast.Attribute) and self._patches(target.value, None)

    # ---- calls ---------------------------------------------------------------------------
    def _on_call(self, node: ast.Call, scope: Scope | None) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in REFLECTIVE_CALLS and self.is_builtin(func.id, scope):
            self._vetted.add(id(func))
            self._reflective(node, func.id, scope)
        elif (
            isinstance(func, ast.Name) and func.id == "type" and len(node.args) != 1 and self.is_builtin("type", scope)
        ):
            self.out.add("static.call.type_create", node, "type() with three arguments builds classes from a dict")
        elif isinstance(func, ast.Attribute) and func.attr in ("format", "format_map"):
            self._vetted.add(id(func))
            self._format(node, func)
        elif isinstance(func, ast.Attribute) and func.attr == "type" and (node.args or node.keywords):
            self._tensor_type(node, scope)

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
                result = step(self.policy, ref.path, attr.value)
                if isinstance(result, Denied):
                    self.out.add(result.rule_id, node, result.explanation)
                    return
        elif not self._safe_prefix(attr) or (ref is not None and ref.is_module):
            self.out.add(
                "static.reflection.computed",
                node,
                f"{name} with a computed attribute name: any attribute (dunders, frames, loaders) could be reached",
            )
            return
        if name in ("setattr", "delattr") and self._patches(target, ref):
            self.out.add("static.monkeypatch", node, f"{name} on an imported module or library class")

    def _safe_prefix(self, attr: ast.expr) -> bool:
        """`f"layer_{i}"`: a literal lead that no refused or private name starts with."""
        if not isinstance(attr, ast.JoinedStr) or not attr.values:
            return False
        lead = attr.values[0]
        if not isinstance(lead, ast.Constant) or not isinstance(lead.value, str):
            return False
        prefix = lead.value
        if len(prefix) < 2 or not prefix.isidentifier() or prefix.startswith("_"):
            return False
        return not any(name.startswith(prefix) for name in self.policy.forbidden_attributes)

    def _format(self, node: ast.Call, func: ast.Attribute) -> None:
        template = func.value
        if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
            self.out.add("static.format_string", node, "str.format on a computed template can walk attributes")
            return
        if not _plain_fields(template.value):
            self.out.add("static.format_string", node, "format field with attribute or index access ('{0.__class__}')")

    def _tensor_type(self, node: ast.Call, scope: Scope | None) -> None:
        """`tensor.type("a.b")` imports `a` and walks attributes by name; only dtype objects may be given."""
        values = [*node.args, *(k.value for k in node.keywords if k.arg in ("dtype", "dst_type"))]
        for value in values[:1]:
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
        if isinstance(value, str | bytes):
            if id(node) in self.docstrings:
                return
            size = len(value.encode("utf-8")) if isinstance(value, str) else len(value)
            before = self._text_bytes
            self._text_bytes += size
            if before <= policy.max_file_literal_bytes < self._text_bytes:
                self.out.add(
                    "static.literal.budget",
                    node,
                    f"string literals of this file pass max_file_literal_bytes={policy.max_file_literal_bytes}",
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
            if self._numbers == policy.max_file_literal_numbers + 1:
                self.out.add(
                    "static.literal.budget",
                    node,
                    f"more than max_file_literal_numbers={policy.max_file_literal_numbers} numeric literals",
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
        if node.name.startswith("_"):
            self.state.defined_private.add(node.name)
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                name = item.name
            elif isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                name = item.targets[0].id
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                name = item.target.id
            else:
                continue
            if _dunder(name) and name not in ALLOWED_DUNDER_DEFINITIONS:
                self.out.add("static.dunder_definition", item, f"defining {name} hooks into the interpreter")

    def _on_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._long_identifier(node.name, node)
        for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
            self._long_identifier(arg.arg, arg)
        if node.name.startswith("_"):
            self.state.defined_private.add(node.name)

    def _on_match_class(self, node: ast.MatchClass) -> None:
        for attr in node.kwd_attrs:
            self._attr_name(attr, node)

    def _on_assign(self, node: ast.Assign) -> None:
        """Track `L = nn.Linear` so that `L.forward = f` is still seen as monkeypatching."""
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Name | ast.Attribute):
                ref = self._refs.get(id(value))
                if ref is not None and ref.is_library:
                    self.aliases[node.targets[0].id] = ref

    # ---- the walk ------------------------------------------------------------------------
    def run(self) -> None:
        """The walk; `collect_imports` must have run (the project does it for every file first)."""
        stack: list[tuple[ast.AST, Scope | None]] = [(self.tree, None)]
        while stack:
            node, scope = stack.pop()
            kind = type(node)
            if kind is ast.Name:
                self._on_name(node, scope)  # type: ignore[arg-type]
                continue
            if kind is ast.Attribute:
                self._on_attribute(node, scope)  # type: ignore[arg-type]
            elif kind is ast.Constant:
                self._on_constant(node)  # type: ignore[arg-type]
                continue
            elif kind is ast.Call:
                self._on_call(node, scope)  # type: ignore[arg-type]
            elif kind in (ast.List, ast.Tuple, ast.Set, ast.Dict):
                self._on_collection(node)  # type: ignore[arg-type]
            elif kind is ast.ClassDef:
                self._on_class(node)  # type: ignore[arg-type]
                self._mark_docstring(node.body)  # type: ignore[attr-defined]
            elif kind is ast.Module:
                self._mark_docstring(node.body)  # type: ignore[attr-defined]
            elif kind is ast.MatchClass:
                self._on_match_class(node)  # type: ignore[arg-type]
            if isinstance(node, SCOPE_TYPES):
                self._push_scope(node, scope, stack)
                continue
            if kind is ast.Assign:
                # Resolve the value first so that `_on_assign` sees its reference.
                self._resolve_value(node, scope)  # type: ignore[arg-type]
            stack.extend([(child, scope) for child in reversed(children(node))])

    def _mark_docstring(self, body: list[ast.stmt]) -> None:
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            self.docstrings.add(id(first.value))

    def _resolve_value(self, node: ast.Assign, scope: Scope | None) -> None:
        if isinstance(node.value, ast.Name | ast.Attribute):
            self.resolve(node.value, scope)
        self._on_assign(node)

    def _push_scope(self, node: ast.AST, scope: Scope | None, stack: list[tuple[ast.AST, Scope | None]]) -> None:
        """Decorators, defaults and annotations run in the enclosing scope; the body in its own."""
        inner = Scope(node, scope)  # type: ignore[arg-type]
        outer_items: list[ast.AST] = []
        inner_items: list[ast.AST] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self._on_function(node)
            self._mark_docstring(node.body)
            args = node.args
            outer_items += node.decorator_list + args.defaults + [d for d in args.kw_defaults if d is not None]
            all_args = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            outer_items += [a.annotation for a in all_args if a is not None and a.annotation is not None]
            if node.returns is not None:
                outer_items.append(node.returns)
            inner_items += node.body
        elif isinstance(node, ast.Lambda):
            outer_items += node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
            inner_items.append(node.body)
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            first, *rest = node.generators
            outer_items.append(first.iter)
            inner_items += [first.target, *first.ifs]
            for gen in rest:
                inner_items += [gen.target, gen.iter, *gen.ifs]
            inner_items += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        stack.extend((item, inner) for item in reversed(inner_items))
        stack.extend((item, scope) for item in reversed(outer_items))


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones included, without visiting expressions."""
    pending = list(reversed(body))
    while pending:
        stmt = pending.pop()
        yield stmt
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(stmt, field, None)
            if inner:
                pending.extend(reversed(inner))
        for handler in getattr(stmt, "handlers", ()):
            pending.extend(reversed(handler.body))
        for case in getattr(stmt, "cases", ()):
            pending.extend(reversed(case.body))


def _plain_fields(template: str, depth: int = 0) -> bool:
    """True when no replacement field in the template reads an attribute or an index."""
    if depth > 2:
        return False
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return False
    for _, field, spec, _ in parsed:
        if field is not None and ("." in field or "[" in field):
            return False
        if spec and "{" in spec and not _plain_fields(spec, depth + 1):
            return False
    return True
