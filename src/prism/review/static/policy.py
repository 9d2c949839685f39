"""What the static review allows: module allowlists, forbidden names, literal budgets.

The policy is an allowlist of modules (a submission may import only what is listed here) and,
inside each, an allowlist of the members it may reach (`allowlist.py`, table in `modules.py`).
Attributes of *values* (tensors, layers, parameters) are judged by name, because a static pass
cannot know a value's type. Names are denied when any object an allowed
module can hand out carries something dangerous under that name (a module that reaches the OS,
a loader of pickles or native code, a frame or code object, a global hook), so that aliasing a
value through a variable, a parameter or a container does not change the verdict.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prism.config import Settings

# Pure-Python helpers of the standard library with no route to the OS, files or code objects.
STDLIB_MODULES = frozenset(
    {
        "__future__",
        "abc",
        "collections",
        "collections.abc",
        # `copy.deepcopy` of a layer is the ordinary "clones" idiom; its `dispatch_table` (a
        # global copy hook) is a forbidden attribute and its `types`/`weakref` steps are refused.
        "copy",
        "dataclasses",
        "enum",
        "functools",
        "itertools",
        "math",
        "numbers",
        "typing",
    }
)

# Parts of torch that are model code: tensors, layers, losses, optimizers, autograd. Not listed,
# hence refused: torch.jit, torch.hub, torch.package, torch.utils.* (but checkpoint),
# torch.distributed, torch.multiprocessing, torch.onnx, torch.export, torch.fx, torch.library,
# torch.profiler, torch.testing, torch.serialization, torch.storage, torch._* ...
TORCH_MODULES = frozenset(
    {
        "torch",
        "torch.amp",
        "torch.autograd",
        "torch.autograd.function",
        "torch.autograd.grad_mode",
        "torch.backends",
        "torch.backends.cuda",
        "torch.backends.cudnn",
        "torch.backends.mps",
        "torch.cuda",
        "torch.cuda.amp",
        "torch.distributions",
        "torch.fft",
        "torch.func",
        "torch.functional",
        "torch.linalg",
        "torch.nn",
        "torch.nn.attention",
        "torch.nn.common_types",
        "torch.nn.functional",
        "torch.nn.grad",
        "torch.nn.init",
        "torch.nn.parameter",
        "torch.nn.utils",
        "torch.nn.utils.parametrizations",
        "torch.nn.utils.parametrize",
        "torch.nn.utils.rnn",
        "torch.nested",
        "torch.optim",
        "torch.optim.lr_scheduler",
        "torch.optim.optimizer",
        "torch.random",
        "torch.return_types",
        "torch.sparse",
        "torch.special",
        "torch.types",
        "torch.utils.checkpoint",
        "torch.version",
    }
)

# The one PRISM module a submission may import (it imports nothing of PRISM's).
PRISM_MODULES = frozenset({"prism.contract"})

# Packages that may appear only as a step towards an allowed child (`torch.utils.checkpoint`).
NAMESPACE_MODULES = frozenset({"torch.utils", "prism"})

# Members of allowed modules that are refused by their full path. Names dangerous on any object
# live in FORBIDDEN_ATTRIBUTES instead; these are ambiguous names (`ops`, `classes`) that a model
# may well use for its own attributes.
FORBIDDEN_MEMBERS: dict[str, frozenset[str]] = {
    "torch": frozenset(
        {
            "ao",
            "classes",
            "export",
            "futures",
            "mtia",
            "ops",
            "overrides",
            "quantization",
            "set_default_tensor_type",
            "storage",
            "TypedStorage",
            "UntypedStorage",
            "xpu",
        }
    ),
    "torch.cuda": frozenset({"memory", "graphs", "streams"}),
}

# Attribute names refused on every base, whatever its type.
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        # frames, tracebacks, generators, coroutines, code objects, closures
        *[
            "tb_frame",
            "tb_next",
            "tb_lasti",
            "tb_lineno",
            "f_back",
            "f_globals",
            "f_locals",
            "f_builtins",
            "f_code",
            "f_lasti",
        ],
        *[
            "f_lineno",
            "f_trace",
            "f_trace_lines",
            "f_trace_opcodes",
            "gi_frame",
            "gi_code",
            "gi_yieldfrom",
            "gi_running",
        ],
        *[
            "gi_suspended",
            "cr_frame",
            "cr_code",
            "cr_await",
            "cr_origin",
            "cr_running",
            "cr_suspended",
            "ag_frame",
            "ag_code",
        ],
        *[
            "ag_await",
            "ag_running",
            "co_code",
            "co_consts",
            "co_names",
            "co_varnames",
            "co_filename",
            "co_name",
            "co_qualname",
        ],
        *["co_firstlineno", "co_lnotab", "co_linetable", "co_exceptiontable", "co_flags", "co_argcount", "co_nlocals"],
        *["co_posonlyargcount", "co_kwonlyargcount", "co_stacksize", "co_freevars", "co_cellvars", "co_positions"],
        *["co_lines", "cell_contents", "func_globals", "func_code", "im_func", "im_self", "format_map"],
        # loading pickles, files, native code; compiling
        *[
            "load",
            "save",
            "from_file",
            "load_library",
            "load_inline",
            "cpp_extension",
            "hub",
            "jit",
            "compile",
            "numpy",
            "tofile",
        ],
        *["dump", "dumps", "ctypes", "share_memory_", "share_memory", "datapipes", "FileOpener", "FileLister"],
        *["CUDAPluggableAllocator", "change_current_allocator", "set_default_tensor_type", "tunable", "gds"],
        # evaluating strings as code
        *["get_type_hints", "ForwardRef", "make_dataclass"],
        # global hooks that would reach the harness's own modules, optimizers or tensors
        *["register_module_forward_hook", "register_module_forward_pre_hook", "register_module_full_backward_hook"],
        *["register_module_full_backward_pre_hook", "register_module_backward_hook"],
        *["register_module_buffer_registration_hook", "register_module_module_registration_hook"],
        *["register_module_parameter_registration_hook", "register_optimizer_step_pre_hook"],
        *["register_optimizer_step_post_hook", "TorchFunctionMode", "TorchDispatchMode"],
        # modules that allowed modules import and would hand out under these names
        *[
            "os",
            "sys",
            "builtins",
            "bltns",
            "types",
            "inspect",
            "importlib",
            "subprocess",
            "socket",
            "pickle",
            "marshal",
            "shutil",
        ],
        *[
            "pathlib",
            "io",
            "tempfile",
            "glob",
            "gc",
            "signal",
            "threading",
            "multiprocessing",
            "distributed",
            "mmap",
            "runpy",
        ],
        *[
            "codeop",
            "pty",
            "fcntl",
            "posix",
            "resource",
            "urllib",
            "http",
            "ssl",
            "select",
            "asyncio",
            "linecache",
            "traceback",
        ],
        *[
            "tokenize",
            "zipimport",
            "pkgutil",
            "site",
            "sysconfig",
            "platform",
            "weakref",
            "copyreg",
            "shelve",
            "dbm",
            "sqlite3",
        ],
        *["zipfile", "tarfile", "webbrowser", "operator", "contextlib", "serialization", "testing", "profiler"],
        *[
            "profiler_legacy",
            "profiler_util",
            "fx",
            "fx_traceback",
            "jiterator",
            "library",
            "package",
            "compiler",
            "onnx",
        ],
        *["monitor", "cpp", "uuid", "warnings", "dispatch_table"],
    }
)

# Dunder attributes that ordinary model code reads or calls. Everything else (`__class__`,
# `__dict__`, `__globals__`, `__subclasses__`, `__builtins__`, `__doc__`...) is refused.
ALLOWED_DUNDER_ATTRIBUTES = frozenset(
    {
        "__init__",
        "__name__",
        "__qualname__",
        "__call__",
        "__len__",
        "__iter__",
        "__next__",
        "__getitem__",
        "__setitem__",
        "__contains__",
        "__enter__",
        "__exit__",
        "__repr__",
        "__str__",
        "__post_init__",
        "__version__",
    }
)

# Dunder methods a class may define. Not listed, hence refused: hooks that run at import time
# (`__init_subclass__`, `__set_name__`, `__class_getitem__`, `__prepare__`), descriptors,
# finalizers (`__del__`), pickling hooks and dispatch hooks that intercept the harness's torch
# calls (`__torch_function__`, `__torch_dispatch__`).
ALLOWED_DUNDER_DEFINITIONS = frozenset(
    {
        *[
            "__init__",
            "__post_init__",
            "__call__",
            "__repr__",
            "__str__",
            "__len__",
            "__iter__",
            "__next__",
            "__getitem__",
        ],
        *[
            "__setitem__",
            "__delitem__",
            "__contains__",
            "__enter__",
            "__exit__",
            "__eq__",
            "__ne__",
            "__lt__",
            "__le__",
            "__gt__",
        ],
        *[
            "__ge__",
            "__hash__",
            "__bool__",
            "__add__",
            "__radd__",
            "__iadd__",
            "__sub__",
            "__rsub__",
            "__isub__",
            "__mul__",
        ],
        *[
            "__rmul__",
            "__imul__",
            "__matmul__",
            "__rmatmul__",
            "__truediv__",
            "__rtruediv__",
            "__floordiv__",
            "__mod__",
        ],
        *[
            "__pow__",
            "__neg__",
            "__pos__",
            "__abs__",
            "__getattr__",
            "__setattr__",
            "__delattr__",
            "__new__",
            "__format__",
        ],
        *["__slots__", "__all__", "__match_args__", "__constants__", "__annotations__", "__version__"],
    }
)

# Builtins that must never be named: they evaluate strings, open files, or reach namespaces.
FORBIDDEN_NAMES = frozenset(
    {
        *[
            "eval",
            "exec",
            "compile",
            "open",
            "input",
            "breakpoint",
            "globals",
            "locals",
            "vars",
            "dir",
            "help",
            "exit",
            "quit",
        ],
        *["copyright", "credits", "license", "memoryview"],
    }
)

# Reflection builtins allowed only as a direct call with a literal, vetted attribute name.
REFLECTIVE_CALLS = frozenset({"getattr", "hasattr", "setattr", "delattr"})

# Dunder names that may be read as plain names (`if __name__ == "__main__":`).
ALLOWED_DUNDER_NAMES = frozenset({"__name__"})

# Private torch attributes ordinary models read, and the public API of named tuples, which
# carries an underscore so as not to clash with field names (`cfg._asdict()`, `out._replace(x=y)`).
ALLOWED_PRIVATE_ATTRIBUTES = frozenset(
    {"_parameters", "_buffers", "_modules", "_version"} | {"_asdict", "_replace", "_fields", "_make", "_field_defaults"}
)

# A project file may not take these top-level names: they would shadow what the harness imports.
EXTRA_SHADOWED_NAMES = frozenset(
    {
        *["torch", "prism", "numpy", "safetensors", "yaml", "typing_extensions", "setuptools", "pkg_resources"],
        *["sitecustomize", "usercustomize", "_distutils_hack", "functorch", "triton", "sympy", "networkx", "jinja2"],
        *["filelock", "fsspec", "mpmath", "pydantic"],
    }
)


@functools.lru_cache(maxsize=16)
def _union(*parts: frozenset[str]) -> frozenset[str]:
    """`allowed_modules` is asked on every import and module step: build the union once."""
    return frozenset().union(*parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticPolicy:
    stdlib_modules: frozenset[str] = STDLIB_MODULES
    torch_modules: frozenset[str] = TORCH_MODULES
    prism_modules: frozenset[str] = PRISM_MODULES
    forbidden_attributes: frozenset[str] = FORBIDDEN_ATTRIBUTES
    max_literal_elements: int = 256
    max_literal_string_bytes: int = 4096
    max_file_literal_numbers: int = 4096
    # A run of base64 or hex characters this long is a blob, whatever the string limit says.
    max_literal_blob_chars: int = 512
    # All string/bytes literals of one file together (docstrings excepted): many small strings
    # carry as much as one big one.
    max_file_literal_bytes: int = 32 * 1024
    # Identifiers are readable at run time (`__name__`, enum member names): they can carry data too.
    max_identifier_length: int = 80
    # The same budgets over the whole project: per-file budgets alone let 200 files carry
    # 200 times as much (~6.4 MB of text or packed weights).
    max_project_literal_bytes: int = 128 * 1024
    max_project_literal_numbers: int = 16384
    # At most this many findings are listed per file (one more says how many were left out).
    max_findings_per_file: int = 200
    # Wall-clock seconds for reviewing one project; past it the project is rejected as
    # `static.too_complex` rather than keeping a worker busy. Review is linear in the project's
    # size, so only hostile input gets near it.
    deadline_s: float = 30.0

    @property
    def allowed_modules(self) -> frozenset[str]:
        return _union(self.stdlib_modules, self.torch_modules, self.prism_modules)

    @classmethod
    def from_settings(cls, settings: Settings) -> StaticPolicy:
        return cls(
            max_literal_elements=settings.max_literal_elements,
            max_literal_string_bytes=settings.max_literal_string_bytes,
            max_file_literal_numbers=settings.max_file_literal_numbers,
            max_literal_blob_chars=settings.max_literal_blob_chars,
        )
