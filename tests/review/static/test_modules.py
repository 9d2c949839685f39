"""The stored module table matches the installed torch, rendered in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_module_table_is_current() -> None:
    rendered = subprocess.run(
        [sys.executable, "-W", "ignore", str(ROOT / "tests/review/static/modules_gen.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    ).stdout
    stored = (ROOT / "src/prism/review/static/modules.py").read_text(encoding="utf-8")
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "-"], input=rendered, capture_output=True, text=True, check=True
    ).stdout
    assert formatted == stored, "run tests/review/static/modules_gen.py to regenerate the table"


def test_refused_natives_are_off_every_list() -> None:
    from prism.review.static.allowlist import DENIED
    from prism.review.static.modules import MEMBERS

    natives = {"CompilationUnit", "parse_ir", "import_ir_module_from_buffer", "PyTorchFileReader"}
    natives |= {"PyTorchFileWriter", "from_file", "load", "save", "compile", "frombuffer", "UntypedStorage"}
    natives |= {"singledispatch", "global_enum", "ForwardRef", "get_type_hints"}
    assert natives <= DENIED
    for module, names in MEMBERS.items():
        assert not names & DENIED, module
        assert all(not n.startswith("_") for n in names), module


def test_computed_lookup_modules_hand_out_nothing_but_callables_and_modules() -> None:
    """`getattr(F, name)(x)` may reach any public attribute of F: check what that can be, on the real torch."""
    import importlib
    import types

    from prism.review.static.allowlist import COMPUTED_LOOKUP_MODULES
    from prism.review.static.modules import MEMBERS

    # Off the member list but harmless when called with tensors: types, typing forms, plain data,
    # and torch's own dispatch helpers (they only call the function they are given).
    harmless = {"Tensor", "Callable", "Optional", "Literal", "ParamSpec", "TypeVar", "DType", "TYPE_CHECKING"}
    harmless |= {"BroadcastingList1", "BroadcastingList2", "BroadcastingList3", "ScalingType", "SwizzleType"}
    harmless |= {"GRID_SAMPLE_INTERPOLATION_MODES", "GRID_SAMPLE_PADDING_MODES", "reproducibility_notes"}
    harmless |= {"sparse_support_notes", "tf32_notes", "common_args", "multi_dim_common", "factory_common_args"}
    harmless |= {"common_notes", "LinAlgError", "cond", "np", "boolean_dispatch", "handle_torch_function"}
    harmless |= {"has_torch_function", "has_torch_function_unary", "has_torch_function_variadic"}
    for name in COMPUTED_LOOKUP_MODULES:
        module = importlib.import_module(name)
        for attr in dir(module):
            if attr.startswith("_") or attr in MEMBERS[name]:
                continue
            value = getattr(module, attr)
            assert isinstance(value, types.ModuleType) or attr in harmless, f"{name}.{attr}"
