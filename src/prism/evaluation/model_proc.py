"""The model's process: the only place the submitted code runs.

Started by the harness (the recorder) through the jail (`jail.py`: Landlock, a seccomp allowlist,
no_new_privs) with two pipe descriptors and nothing else: the data, the job spec and the report
stream are out of its reach, whatever the submitted code does. Order matters: seed, thread count and
deterministic settings first; then torch's lazy imports are warmed and the runtime guard is
installed; only then is the submission imported and `build_model(ctx)` called under the forced
seed. After that the process answers the recorder's requests (see `serve`), speaking only `wire`
frames. What it sends back is treated as untrusted by the recorder.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import resource
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from prism.contract import VOCAB_SIZE, Batch, ModelContext
from prism.evaluation import graph as graph_mod
from prism.evaluation import guard, jail, replica
from prism.evaluation.replica import reseed
from prism.evaluation.wire import Channel, WireError

SUBMISSION_ROOT = "/submission"
DEFAULT_LR = 1e-3
DEFAULT_WEIGHT_DECAY = 0.01
DEFAULT_CLIP = 1.0


class ContractError(Exception):
    """The submission does not honour the contract (no build_model, not a Module, bad output)."""


def configure_determinism(*, seed: int, threads: int, device: str) -> None:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=device != "cpu")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    random.seed(seed)
    torch.manual_seed(seed)


def _warm_lazy_imports() -> None:
    """Run once what the harness will need later, so torch's lazy imports happen before the guard."""
    from torch.utils.flop_counter import FlopCounterMode

    probe = torch.nn.Sequential(torch.nn.Embedding(4, 4), torch.nn.Linear(4, 4))
    graph_mod.architecture_graph(probe, lambda: probe(torch.zeros(1, 2, dtype=torch.long)))
    optimizer = torch.optim.AdamW(probe.parameters(), lr=DEFAULT_LR)
    with FlopCounterMode(display=False):
        out = probe(torch.zeros(1, 2, dtype=torch.long))
        F.cross_entropy(out.reshape(-1, 4), torch.zeros(2, dtype=torch.long)).backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(probe.parameters(), DEFAULT_CLIP)
    optimizer.step()
    torch.nn.functional.scaled_dot_product_attention(
        torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 4), is_causal=True
    )


def _project_modules(root: str) -> frozenset[str]:
    names: set[str] = set()
    if os.path.isdir(root):
        for entry in os.listdir(root):
            if entry.endswith(".py"):
                names.add(entry[:-3])
            elif os.path.isdir(os.path.join(root, entry)) and entry.isidentifier():
                names.add(entry)
    return frozenset(names)


def _load_entrypoint(root: str, entrypoint: str) -> Any:
    if not entrypoint.endswith(".py") or entrypoint.startswith("/") or ".." in entrypoint.split("/"):
        raise ContractError(f"entrypoint {entrypoint!r} is not a relative .py path")
    # As Python runs a script: the entrypoint's folder first on sys.path, then the project root
    # (one folder for `model.py`). Static review resolves imports in the same order
    # (prism.review.static.resolve.ProjectModules); see docs/intake-and-review.md.
    folder, _, filename = entrypoint.rpartition("/")
    sys.path.insert(0, root)
    if folder:
        sys.path.insert(0, os.path.join(root, folder))
    return importlib.import_module(filename[:-3])


def _default_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=DEFAULT_LR, weight_decay=DEFAULT_WEIGHT_DECAY)


@dataclass
class ModelHost:
    """The submitted model and the state of the step in progress."""

    model: torch.nn.Module
    optimizer: Any
    ctx: ModelContext
    train_step: Callable[..., Any] | None
    device: torch.device
    pending: tuple[torch.Tensor, torch.Tensor] | None = None

    def _logits(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(inputs)
        if not isinstance(out, torch.Tensor):
            raise ContractError(f"the model returned {type(out).__name__}, not a tensor of logits")
        return out

    def forward(self, inputs_u8: torch.Tensor, seed: int) -> torch.Tensor:
        # The recorder seeds every call, so a replica given the same state and seed reproduces it.
        reseed(seed)
        inputs = inputs_u8.to(self.device).long()
        self.model.train()
        logits = self._logits(inputs)
        self.pending = (inputs, logits)
        return logits.detach().float()

    def step(self, targets_u8: torch.Tensor) -> None:
        if self.pending is None:
            raise ContractError("step without a forward")
        inputs, logits = self.pending
        self.pending = None
        targets = targets_u8.to(self.device).long()
        if self.train_step is not None:
            self.train_step(self.model, Batch(inputs=inputs, targets=targets, logits=logits), self.optimizer, self.ctx)
            return
        # The default step reuses the recorded forward's graph: one forward per batch, not two.
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), DEFAULT_CLIP)
        self.optimizer.step()

    def evaluate(self, inputs_u8: torch.Tensor, seed: int) -> torch.Tensor:
        # Inference mode: no autograd graph, so the held-out bytes cannot be learned through
        # backward (a model that leaves inference mode anyway is caught by the weight check and
        # the replica's replay, which reproduce the figure from the saved state alone).
        reseed(seed)
        self.model.eval()
        with torch.inference_mode():
            return self._logits(inputs_u8.to(self.device).long()).float()

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.model.load_state_dict(tensors, strict=True)

    def counts(self) -> dict[str, int]:
        return {
            "parameter_count": sum(p.numel() for p in self.model.parameters()),
            "buffer_count": sum(b.numel() for b in self.model.buffers()),
        }

    def sample_inputs(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.ctx.seed + 2)
        shape = (self.ctx.batch_size, self.ctx.seq_len)
        return torch.randint(0, VOCAB_SIZE, shape, generator=gen).to(self.device)

    def graph(self) -> dict[str, Any]:
        """The architecture graph from the ops one real forward executes (see `graph`)."""
        saved = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        inputs = self.sample_inputs()
        reseed(self.ctx.seed)
        self.model.train()
        try:
            document = graph_mod.architecture_graph(self.model, lambda: self._logits(inputs))
        finally:
            # Nothing of this forward is kept, so restoring in place cannot break a live graph.
            self.load_state(saved)
            self.model.zero_grad(set_to_none=True)
        return document

    def replay(self, message: dict[str, Any], channel: Channel) -> None:
        """A recorded call redone from the state the recorder sends (the replica's one job)."""
        names = [str(n) for n in message.get("names", [])]
        tensors = dict(zip(names, channel.recv().tensors(), strict=True))
        inputs = channel.recv_tensor().to(self.device).long()
        targets = channel.recv_tensor().to(self.device).long() if message.get("with_step") else None
        self.load_state(tensors)
        result = replica.replay_call(
            self, inputs, targets, seed=int(message["seed"]), mode=str(message.get("mode", "train"))
        )
        channel.send_json({"op": "replayed", **result.figures})
        channel.send_tensor(result.logits)

    def inspect(self) -> dict[str, Any]:
        from torch.utils.flop_counter import FlopCounterMode

        graph = self.graph()
        gen = torch.Generator().manual_seed(self.ctx.seed)
        shape = (self.ctx.batch_size, self.ctx.seq_len + 1)
        data = torch.randint(0, VOCAB_SIZE, shape, generator=gen).to(self.device)
        self.model.train()
        with FlopCounterMode(display=False) as counter:
            logits = self._logits(data[:, :-1])
            F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), data[:, 1:].reshape(-1)).backward()  # type: ignore[no-untyped-call]
        self.model.zero_grad(set_to_none=True)
        tokens = self.ctx.batch_size * self.ctx.seq_len
        return {
            **self.counts(),
            "graph": graph,
            "graph_hash": graph_mod.graph_hash(graph),
            "flops_per_token": counter.get_total_flops() / tokens,
            "parameter_dtypes": sorted({str(p.dtype).removeprefix("torch.") for p in self.model.parameters()}),
        }


def build(init: dict[str, Any]) -> ModelHost:
    device = torch.device(str(init["device"]))
    seed = int(init["seed"])
    module = _load_entrypoint(str(init["submission_root"]), str(init["entrypoint"]))
    build_model = getattr(module, "build_model", None)
    if not callable(build_model):
        raise ContractError("the entrypoint defines no build_model(ctx)")
    ctx = ModelContext(**init["ctx"])
    torch.manual_seed(seed)  # the model's initial weights are a function of the seed alone
    model = build_model(ctx)
    if not isinstance(model, torch.nn.Module):
        raise ContractError(f"build_model returned {type(model).__name__}, not a torch.nn.Module")
    model.to(device)
    # A first forward materialises lazy modules before parameters are counted or optimised.
    gen = torch.Generator().manual_seed(seed + 1)
    warm = torch.randint(0, VOCAB_SIZE, (ctx.batch_size, ctx.seq_len), generator=gen).to(device)
    model.train()
    with torch.no_grad():
        model(warm)
    configure = getattr(module, "configure_optimizer", None)
    optimizer = configure(model, ctx) if callable(configure) else _default_optimizer(model)
    step = getattr(module, "train_step", None)
    return ModelHost(model, optimizer, ctx, step if callable(step) else None, device)


def send_state(channel: Channel, model: torch.nn.Module) -> None:
    """Every state tensor, as raw bytes, and which names share storage (tied weights).

    `nn.Module.state_dict` is called unbound, and tensor subclasses' `__torch_function__` is off
    while the bytes are taken, so an override on the model or a lying subclass does not choose
    what is sent. (A submission that patches this process can still send anything: the recorder
    counts what it receives and checks it against the graph and, after training, the held-out run.)
    """
    with torch._C.DisableTorchFunctionSubclass():
        state = torch.nn.Module.state_dict(model)
        by_storage: dict[tuple[int, int, tuple[int, ...], str], list[str]] = {}
        for name, value in state.items():
            key = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape), str(value.dtype))
            by_storage.setdefault(key, []).append(name)
        tied = [names for names in by_storage.values() if len(names) > 1]
        channel.send_json({"op": "state", "names": list(state), "tied": tied})
        channel.send_tensors([torch.Tensor.detach(value).as_subclass(torch.Tensor) for value in state.values()])


def serve(channel: Channel, host: ModelHost) -> None:
    while True:
        message = channel.recv_json()
        op = message.get("op")
        if op == "forward":
            channel.send_tensor(host.forward(channel.recv_tensor(), int(message.get("seed", 0))))
        elif op == "step":
            host.step(channel.recv_tensor())
        elif op == "eval":
            channel.send_tensor(host.evaluate(channel.recv_tensor(), int(message.get("seed", 0))))
        elif op == "replay":
            host.replay(message, channel)
        elif op == "inspect":
            channel.send_json({"op": "inspect", **host.inspect()})
        elif op == "state":
            send_state(channel, host.model)
        elif op == "load_state":
            names = [str(n) for n in message.get("names", [])]
            tensors = {name: channel.recv_tensor() for name in names}
            host.load_state(tensors)
            channel.send_json({"op": "loaded"})
        elif op == "shutdown":
            return
        else:
            raise ContractError(f"unknown request {op!r}")


def limit_memory(limit: object, device: str) -> None:
    """Bound the data segment before the submission is imported; a hard limit cannot be raised back.

    CPU only: a CUDA context maps far more than it uses, and GPU memory is not bounded here.
    """
    if isinstance(limit, int) and limit > 0 and device == "cpu":
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _caused_by_guard(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, guard.GuardViolation):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _caused_by_wall(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, PermissionError) or "Permission denied" in str(exc) or "errno 13" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _report_error(channel: Channel, kind: str, exc: BaseException) -> None:
    tail = "".join(traceback.format_exception(exc))[-4000:]
    # The recorder may already be gone (a closed pipe); there is no one else to tell.
    with contextlib.suppress(WireError):
        channel.send_json({"op": "error", "kind": kind, "detail": f"{type(exc).__name__}: {exc}"[:2000], "trace": tail})


def main(argv: list[str]) -> int:
    return run(Channel(int(argv[1]), int(argv[2])))


def run(channel: Channel) -> int:
    """The model's process from its first request on, inside its jail (exec'd or forked, `prefork`)."""
    init = channel.recv_json()
    configure_determinism(seed=int(init["seed"]), threads=int(init["threads"]), device=str(init["device"]))
    sys.dont_write_bytecode = True
    _warm_lazy_imports()
    limit_memory(init.get("memory_limit_bytes"), str(init["device"]))
    # The jail's second stage: from here on this process cannot execute anything else.
    jail.seal()
    root = str(init.get("submission_root", SUBMISSION_ROOT))
    # The entrypoint's folder is on sys.path too (`_load_entrypoint`): its modules are the project's.
    entry_folder = os.path.join(root, str(init.get("entrypoint", "")).rpartition("/")[0])
    modules = _project_modules(root) | _project_modules(entry_folder)
    guard.install(read_roots=guard.default_read_roots([root]), project_modules=modules)
    try:
        host = build(init)
        graph = host.graph()
        channel.send_json(
            {
                "op": "ready",
                **host.counts(),
                "graph_hash": graph_mod.graph_hash(graph),
                "dataflow_hash": graph["dataflow_hash"],
            }
        )
        serve(channel, host)
    except Exception as exc:  # the miner's code failed; report it as such, never as our own fault
        kind = "guard_violation" if _caused_by_guard(exc) else "contract" if isinstance(exc, ContractError) else ""
        if not kind and _caused_by_wall(exc):
            kind = "jail_denied"  # Landlock refused a path, or the sealed filter refused execve
        _report_error(channel, kind or "miner_exception", exc)
        return 1
    return 0


if __name__ == "__main__":
    status = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip atexit handlers: torch's (and any the submission registered) would run under the guard.
    os._exit(status)
