"""Which members of each allowed module a submission may reach: an allowlist of values.

A module on the import allowlist is not trusted whole: `functools` holds `update_wrapper`,
`enum` holds `global_enum`, `torch` holds `parse_ir`, `CompilationUnit` and `from_file`. Every
step from a module to one of its members must land on a name listed for that module; anything
else is refused with evidence, whatever spelling reaches it (`import`, `from ... import`,
attribute, `getattr` with a literal name).

Two sources make the table `MEMBERS` (in `modules.py`, generated):

- Standard-library modules: the names below, by hand (`STDLIB_MEMBERS`), except `math`,
  `itertools`, `numbers` and `collections.abc`, whose every public member is pure and which
  take all of them (`STDLIB_WHOLE`).
- torch: a rule applied to the installed torch by `tests/review/static/modules_gen.py`: tensor
  operators of `torch._C._VariableFunctions`, dtypes, layouts, memory formats; in
  function-collection modules (`torch.nn.functional`, `torch.linalg`, ...) their functions;
  in class modules (`torch.nn`, `torch.optim`, ...) subclasses of the base class models use;
  plus the names in `TORCH_CURATED`. Names in `DENIED` never pass, whatever the rule says.
  `tests/review/static/test_modules.py` fails when the stored table differs from what the rule
  gives on the installed torch, and checks the refused natives stay out.

To propose an addition: add the name to `STDLIB_MEMBERS` or `TORCH_CURATED` with a comment
saying why it is safe (it reaches no file, process, code object, module namespace or global
hook), regenerate `modules.py`, and add a benign case that uses it (docs/intake-and-review.md).
"""

from __future__ import annotations

# Every public member of these is a pure function, constant or abstract type.
STDLIB_WHOLE = frozenset({"math", "itertools", "numbers", "collections.abc"})

STDLIB_MEMBERS: dict[str, frozenset[str]] = {
    "__future__": frozenset({"annotations"}),
    "abc": frozenset({"ABC", "ABCMeta", "abstractmethod"}),
    "collections": frozenset({"OrderedDict", "defaultdict", "namedtuple", "deque", "Counter", "ChainMap"}),
    # `copy.deepcopy` of a layer is the ordinary "clones" idiom.
    "copy": frozenset({"copy", "deepcopy"}),
    # Not `make_dataclass` (builds classes from strings and dicts).
    "dataclasses": frozenset(
        {"dataclass", "field", "fields", "asdict", "astuple", "replace", "is_dataclass", "InitVar", "KW_ONLY"}
        | {"MISSING", "FrozenInstanceError", "Field"}
    ),
    # Not `global_enum` (writes members into a module's globals), `EnumMeta`/`EnumType`
    # (metaclasses), `_convert_` (pulls members out of any module; private anyway).
    "enum": frozenset({"Enum", "IntEnum", "Flag", "IntFlag", "StrEnum", "auto", "unique"}),
    # `wraps`/`update_wrapper` only as direct calls with their default fields (WRAPPER_CALLS):
    # `updated=("__globals__",)` copies foreign namespaces and `assigned=` is a generic getattr.
    # Not `singledispatch` (evaluates string annotations).
    "functools": frozenset(
        {"partial", "partialmethod", "reduce", "lru_cache", "cache", "cached_property", "total_ordering"}
        | {"cmp_to_key", "wraps", "update_wrapper"}
    ),
    # Names only; not `get_type_hints`, `ForwardRef` (evaluate strings as code).
    "typing": frozenset(
        {"Any", "Optional", "Union", "List", "Dict", "Tuple", "Set", "FrozenSet", "Callable", "Iterable"}
        | {"Iterator", "Sequence", "Mapping", "MutableMapping", "MutableSequence", "Type", "TypeVar", "Generic"}
        | {"Protocol", "NamedTuple", "TypedDict", "Literal", "Final", "ClassVar", "cast", "overload", "final"}
        | {"TYPE_CHECKING", "NewType", "ParamSpec", "Concatenate", "Annotated", "Self", "runtime_checkable"}
        | {"TypeAlias", "Deque", "DefaultDict", "OrderedDict", "Counter", "Generator", "NoReturn", "Never"}
        | {"Hashable", "Sized", "Collection", "Container", "AbstractSet", "Reversible", "SupportsInt"}
        | {"SupportsFloat", "SupportsIndex", "Text", "AnyStr", "Unpack", "TypeVarTuple", "Required"}
        | {"NotRequired", "TypeGuard", "assert_never", "get_args", "get_origin", "no_type_check"}
    ),
}

# Never on the list, whatever a rule says: they read or write files, compile or load code,
# reach module namespaces or install global hooks. Checked against the generated table in a test.
DENIED = frozenset(
    {
        *["load", "save", "from_file", "compile", "set_default_tensor_type", "set_default_device"],
        *["CompilationUnit", "parse_ir", "parse_schema", "import_ir_module", "import_ir_module_from_buffer"],
        *["PyTorchFileReader", "PyTorchFileWriter", "ScriptModule", "ScriptFunction", "ScriptMethod"],
        *["TypedStorage", "UntypedStorage", "StorageBase", "storage", "classes", "ops", "library"],
        *["ForwardRef", "get_type_hints", "make_dataclass", "singledispatch"],
        *["singledispatchmethod", "global_enum", "EnumMeta", "EnumType", "handle_torch_function"],
        *["has_torch_function", "has_torch_function_unary", "has_torch_function_variadic", "boolean_dispatch"],
        *["DisableTorchFunction", "DisableTorchFunctionSubclass", "set_printoptions", "get_file_path"],
        *["prepare_multiprocessing_environment", "from_dlpack"],
        *["register_kl", "classproperty", "thread_safe_generator", "set_rng_state", "fork_rng"],
        *["CUDAPluggableAllocator", "change_current_allocator", "memory", "graphs", "streams", "gds", "tunable"],
        *["jiterator", "nvtx", "profiler", "set_per_process_memory_fraction", "caching_allocator_alloc"],
        *["caching_allocator_delete", "set_sync_debug_mode", "use_mem_pool", "MemPool", "memory_snapshot"],
        *["mem_get_info", "list_gpu_processes", "CUDAGraph", "graph", "make_graphed_callables"],
        *["custom_function_call", "AUTOGRAD_FUNCTION_COUNTER", "SAC_IGNORED_OPS", "vmap_impl"],
        # builds tensors over a Python buffer: weights packed into bytes literals would load here
        "frombuffer",
    }
)

# torch modules whose members are their functions (builtin or Python), not their other values.
TORCH_FUNCTION_MODULES = frozenset(
    {
        *["torch.nn.functional", "torch.nn.init", "torch.nn.grad", "torch.fft", "torch.linalg"],
        *["torch.special", "torch.func", "torch.functional", "torch.nn.utils", "torch.nested", "torch.sparse"],
    }
)

# torch modules whose members are subclasses of a base class (by its dotted name).
TORCH_CLASS_MODULES: dict[str, str] = {
    "torch.nn": "torch.nn.Module",
    "torch.optim": "torch.optim.Optimizer",
    "torch.optim.lr_scheduler": "torch.optim.lr_scheduler.LRScheduler",
    "torch.distributions": "torch.distributions.Distribution",
    "torch.return_types": "builtins.tuple",
}

# Names added by hand to what the rule gives, per module. Each is a class, function or constant
# that computes on tensors or reads a flag, and reaches no file, process or namespace.
TORCH_CURATED: dict[str, frozenset[str]] = {
    "torch": frozenset(
        {"Tensor", "Size", "Generator", "device", "dtype", "layout", "memory_format", "finfo", "iinfo"}
        | {"no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "is_grad_enabled", "autocast"}
        | {"is_inference_mode_enabled", "manual_seed", "seed", "initial_seed", "get_rng_state", "is_tensor"}
        | {"get_default_dtype", "get_default_device", "is_storage", "typename", "OutOfMemoryError"}
        | {"are_deterministic_algorithms_enabled", "get_float32_matmul_precision", "set_float32_matmul_precision"}
        | {"pi", "e", "inf", "nan", "newaxis", "SymInt", "SymFloat", "SymBool", "sym_int", "sym_float"}
        | {"sym_max", "sym_min", "sym_not", "sym_sqrt", "sym_sum", "sym_ite", "lobpcg", "pca_lowrank"}
        | {"svd_lowrank", "vmap"}
        | {"FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor", "IntTensor"}
        | {"ShortTensor", "CharTensor", "ByteTensor", "BoolTensor"}
    ),
    "torch.nn": frozenset({"Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"}),
    "torch.nn.parameter": frozenset({"Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"}),
    "torch.nn.attention": frozenset({"SDPBackend", "sdpa_kernel"}),
    "torch.nn.utils.rnn": frozenset(
        {"PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence"}
        | {"unpad_sequence", "unpack_sequence", "invert_permutation"}
    ),
    "torch.nn.utils.parametrize": frozenset(
        {"register_parametrization", "remove_parametrizations", "is_parametrized", "cached"}
        | {"type_before_parametrizations", "transfer_parametrizations_and_params"}
    ),
    "torch.nn.utils.parametrizations": frozenset({"orthogonal", "spectral_norm", "weight_norm"}),
    "torch.optim.optimizer": frozenset({"Optimizer", "required", "ParamsT"}),
    "torch.optim.lr_scheduler": frozenset({"LRScheduler", "ReduceLROnPlateau"}),
    "torch.amp": frozenset({"autocast", "GradScaler", "custom_fwd", "custom_bwd", "is_autocast_available"}),
    "torch.cuda.amp": frozenset({"autocast", "GradScaler", "custom_fwd", "custom_bwd"}),
    "torch.autograd": frozenset(
        {"Function", "grad", "backward", "Variable", "no_grad", "enable_grad", "set_grad_enabled"}
        | {"inference_mode", "detect_anomaly", "set_detect_anomaly", "is_grad_enabled"}
    ),
    "torch.autograd.function": frozenset(
        {"Function", "FunctionCtx", "InplaceFunction", "once_differentiable", "NestedIOFunction"}
    ),
    "torch.autograd.grad_mode": frozenset({"no_grad", "enable_grad", "inference_mode", "set_grad_enabled"}),
    "torch.backends": frozenset(),
    "torch.backends.cuda": frozenset(
        {"matmul", "sdp_kernel", "enable_flash_sdp", "flash_sdp_enabled", "enable_math_sdp", "math_sdp_enabled"}
        | {"enable_mem_efficient_sdp", "mem_efficient_sdp_enabled", "is_built", "SDPBackend"}
        | {"enable_cudnn_sdp", "cudnn_sdp_enabled", "preferred_linalg_library"}
    ),
    "torch.backends.cudnn": frozenset({"enabled", "benchmark", "deterministic", "allow_tf32", "is_available"}),
    "torch.backends.mps": frozenset({"is_available", "is_built"}),
    "torch.cuda": frozenset(
        {"is_available", "device_count", "current_device", "synchronize", "get_device_name", "set_device"}
        | {"get_device_properties", "get_device_capability", "is_bf16_supported", "manual_seed"}
        | {"manual_seed_all", "empty_cache", "memory_allocated", "max_memory_allocated", "memory_reserved"}
        | {"max_memory_reserved", "reset_peak_memory_stats", "device", "Stream", "Event", "stream"}
        | {"current_stream", "default_stream", "OutOfMemoryError", "is_initialized"}
    ),
    "torch.random": frozenset({"manual_seed", "seed", "initial_seed", "get_rng_state"}),
    "torch.types": frozenset({"Number", "Device", "SymInt", "SymFloat", "SymBool", "Size"}),
    "torch.version": frozenset({"cuda", "hip", "debug", "git_version"}),
    "torch.utils.checkpoint": frozenset({"checkpoint", "checkpoint_sequential"}),
    "torch.distributions": frozenset({"kl_divergence", "constraints"}),
    "torch.sparse": frozenset(),
}

# The one PRISM module a submission may import: what it defines is data and types.
PRISM_MEMBERS: dict[str, frozenset[str]] = {
    "prism.contract": frozenset({"VOCAB_SIZE", "ModelContext", "Batch"}),
}

# Modules where `getattr(module, computed_name)(...)` may be written, the result called at once:
# every public member is a function or a module (which cannot be called), or one of the few
# harmless values `tests/review/static/test_modules.py` lists after checking the real module.
COMPUTED_LOOKUP_MODULES = frozenset(
    {"torch.nn.functional", "torch.nn.init", "torch.special", "torch.fft", "torch.linalg", "math"}
)

# Members of refused modules that only mark a function, used as decorators and nowhere else
# (`export` sets a flag on the function for the TorchScript compiler, as `ignore` does).
DECORATOR_ONLY = frozenset({"torch.jit.ignore", "torch.jit.unused", "torch.jit.export"})
# Members of refused modules that answer a question, called with no argument and nowhere else:
# `if self.grad_checkpointing and not torch.jit.is_scripting():` is in most timm models.
QUERY_ONLY = frozenset({"torch.jit.is_scripting", "torch.jit.is_tracing"})
# Members of refused modules allowed as the subscripted head of an annotation only:
# `torch.jit.Final` is `typing.Final` (`fused_attn: torch.jit.Final[bool]`).
ANNOTATION_ONLY = frozenset({"torch.jit.Final"})

# The enum classes whose call with a name and members is the functional API.
ENUM_CLASSES = frozenset({"enum.Enum", "enum.IntEnum", "enum.Flag", "enum.IntFlag", "enum.StrEnum"})

# Members allowed only as the callee of a direct call with at most this many positional
# arguments and no keywords (the default `assigned`/`updated` fields): `@wraps(fn)` is ordinary.
WRAPPER_CALLS: dict[str, int] = {"functools.wraps": 1, "functools.update_wrapper": 2}
