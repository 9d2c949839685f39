"""The canonical architecture graph of a model, and its hash.

The graph says what the model *is*, independent of its trained values: every module's type and
position in the tree, every parameter's and buffer's name, shape and dtype, and, where
`torch.fx` can trace the model, the data flow between operations (node op, target, and which
nodes feed it). Module types are named by class name only (no file paths, no source), and node
names are renumbered in order, so two projects with the same architecture in differently named
files hash the same, and a single changed layer changes the hash.

Runs inside the model's process (it has to touch the model); the host cross-checks the
parameter names and shapes against the trained weights file it reads itself.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

GRAPH_SCHEMA = "prism.architecture_graph.v1"
MAX_FX_NODES = 20_000


def _type_name(obj: object) -> str:
    cls = type(obj)
    # torch's own classes keep their module so `nn.Linear` and a miner's `Linear` differ.
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__.startswith("torch") else cls.__qualname__


def _target_name(target: object) -> str:
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or type(target).__name__
    return f"{module}.{name}" if module.startswith("torch") or module in ("operator", "builtins", "math") else name


def _fx_dataflow(model: torch.nn.Module) -> list[dict[str, Any]] | None:
    """Data flow from torch.fx symbolic tracing, or None when the model does not trace."""
    try:
        from torch.fx import Tracer

        # Tracing stores tensor constants as new attributes on the root; a shallow copy keeps them
        # off the model, so tracing twice gives the same graph and the model is left as it was.
        graph = Tracer().trace(copy.copy(model))
    except Exception:
        # Dynamic control flow and many valid models do not trace: fall back to the module tree.
        return None
    index: dict[str, int] = {}
    nodes: list[dict[str, Any]] = []
    for node in graph.nodes:
        if len(nodes) >= MAX_FX_NODES:
            return None
        index[node.name] = len(nodes)
        inputs = sorted(index[n.name] for n in node.all_input_nodes if n.name in index)
        target = node.target if node.op in ("call_module", "get_attr") else _target_name(node.target)
        if node.op == "placeholder":
            target = "input"
        nodes.append({"op": node.op, "target": str(target), "inputs": inputs})
    return nodes


def architecture_graph(model: torch.nn.Module) -> dict[str, Any]:
    # Tied weights appear under every name they are reachable by, as in a state dict.
    modules = [{"path": name, "type": _type_name(module)} for name, module in model.named_modules()]
    parameters = [
        {"name": name, "shape": list(p.shape), "dtype": str(p.dtype).removeprefix("torch.")}
        for name, p in model.named_parameters(remove_duplicate=False)
    ]
    buffers = [
        {"name": name, "shape": list(b.shape), "dtype": str(b.dtype).removeprefix("torch.")}
        for name, b in model.named_buffers(remove_duplicate=False)
    ]
    dataflow = _fx_dataflow(model)
    return {
        "schema": GRAPH_SCHEMA,
        "modules": modules,
        "parameters": parameters,
        "buffers": buffers,
        "dataflow": dataflow,
        "dataflow_source": "torch.fx" if dataflow is not None else "module_tree",
    }


def canonical_json(graph: dict[str, Any]) -> bytes:
    return json.dumps(graph, sort_keys=True, separators=(",", ":")).encode("utf-8")


def graph_hash(graph: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(graph)).hexdigest()


def state_shapes(graph: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer names with shapes, as listed in a graph document."""
    shapes: dict[str, tuple[int, ...]] = {}
    for key in ("parameters", "buffers"):
        for item in graph.get(key, ()):
            shapes[str(item["name"])] = tuple(int(d) for d in item["shape"])
    return shapes
