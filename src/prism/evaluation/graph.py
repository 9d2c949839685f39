"""The canonical architecture graph of a model, and its hash: what the model *executes*.

The graph says what the model is, independent of its trained values: every module's type and
position in the tree, every parameter's and buffer's name, shape and dtype, and the data flow of
the operations one real forward executes, recorded below autograd by a dispatch mode on real
tensors: each node is an ATen op and the nodes, parameters, buffers or fresh values that feed it.

Why executed ops and not `torch.fx` tracing: a trace runs the model on Proxy objects, which a model
can recognise (`isinstance(x, torch.Tensor)` is False) and answer with a reference model's graph
while real calls run another; and a model that does not trace fell back to the module tree, which
ignores data flow, so rewirings collided. Here the recorded forward *is* a real call, and the
replica (`replica`) records the same graph again on real batches at secret steps: a graph that
changes with the data is caught there, and one shown only under recording gives logits that do
not reproduce the training process's.

Module types are named by class name only and nodes are numbered in order, so two projects with
the same architecture in differently named files hash the same, and one changed layer changes it.
Runs inside the model's process (it has to touch the model); the host cross-checks the parameter
names and shapes against the trained weights file it reads itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

GRAPH_SCHEMA = "prism.architecture_graph.v2"
DATAFLOW_SOURCE = "executed_ops"
MAX_NODES = 200_000


def _type_name(obj: object) -> str:
    cls = type(obj)
    # torch's own classes keep their module so `nn.Linear` and a miner's `Linear` differ.
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__.startswith("torch") else cls.__qualname__


class OpRecorder:
    """Records executed ATen ops and their data flow while active (a `TorchDispatchMode`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.names: dict[int, str] = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            self.names.setdefault(id(p), f"param:{name}")
        for name, b in model.named_buffers(remove_duplicate=False):
            self.names.setdefault(id(b), f"buffer:{name}")
        self.nodes: list[dict[str, Any]] = []
        self._index: dict[int, int] = {}
        self._alive: list[Any] = []  # keeps outputs alive so an id() is never reused in one record
        self.truncated = False

    def record(self, func: Any, args: Any, kwargs: Any, out: Any) -> None:
        import torch
        from torch.utils._pytree import tree_leaves

        if len(self.nodes) >= MAX_NODES:
            self.truncated = True
            return
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        inputs = sorted({self._index[id(t)] for t in tensors if id(t) in self._index})
        state = [self.names[id(t)] for t in tensors if id(t) in self.names]
        index = len(self.nodes)
        # The fx-like shape ({op, target, inputs}) keeps the similarity adapter reading it.
        self.nodes.append({"op": "call_function", "target": f"torch.ops.{func}", "inputs": inputs, "state": state})
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and id(t) not in self.names:
                self._index[id(t)] = index
                self._alive.append(t)

    def dataflow(self) -> list[dict[str, Any]]:
        return self.nodes

    def __enter__(self) -> OpRecorder:
        from torch.utils._python_dispatch import TorchDispatchMode

        recorder = self

        class _Mode(TorchDispatchMode):  # type: ignore[no-untyped-call]
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                out = func(*args, **(kwargs or {}))
                recorder.record(func, args, kwargs, out)
                return out

        self._mode = _Mode()  # type: ignore[no-untyped-call]
        self._mode.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)  # type: ignore[no-untyped-call]
        self._alive.clear()


def dataflow_hash(nodes: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical_json({"dataflow": nodes})).hexdigest()


def architecture_graph(model: torch.nn.Module, run: Callable[[], Any] | None = None) -> dict[str, Any]:
    """The graph of `model`, with the data flow of the ops `run()` (one real forward) executes.

    Without `run`, a forward on a small batch of zero bytes (for callers outside the harness)."""
    if run is None:
        import torch

        def run() -> Any:
            with torch.no_grad():
                return model(torch.zeros(2, 8, dtype=torch.long))

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
    with OpRecorder(model) as recorder:
        run()
    dataflow = recorder.dataflow()
    return {
        "schema": GRAPH_SCHEMA,
        "modules": modules,
        "parameters": parameters,
        "buffers": buffers,
        "dataflow": dataflow,
        "dataflow_hash": dataflow_hash(dataflow),
        "dataflow_source": DATAFLOW_SOURCE,
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
