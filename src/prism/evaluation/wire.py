"""The only language the recorder and the model process share: length-prefixed raw frames.

Why not pickle: unpickling runs code chosen by the sender, and the sender here is the miner's
process. A frame is either a small UTF-8 JSON object (control messages) or one tensor as a
dtype code, a shape and its raw bytes. Every length is checked against a cap before anything is
allocated, and a tensor's byte count must equal what its dtype and shape imply.

    frame   := kind:u8 length:u64 payload
    JSON    := utf-8 text of one JSON object (length <= MAX_JSON_BYTES)
    TENSOR  := dtype:u8 ndim:u8 dims:u64*ndim raw-bytes (C order, little-endian)
    TENSORS := count:u32 (dtype:u8 ndim:u8 dims:u64*ndim)*count, then each tensor's raw bytes at
               the next multiple of 64 from the payload's start (a model's whole state in one
               frame: one read, and tensors that are views of it, aligned)

This module imports torch lazily inside functions so the host can import the codec tables.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

KIND_JSON = 1
KIND_TENSOR = 2
KIND_TENSORS = 3
MAX_BATCH_TENSORS = 1 << 16
_ALIGN = 64
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_TENSOR_BYTES = 8 * 1024**3
MAX_NDIM = 8
_HEADER = struct.Struct("<BQ")

# dtype code <-> (torch dtype name, item size, safetensors name)
DTYPES: dict[int, tuple[str, int, str]] = {
    1: ("uint8", 1, "U8"),
    2: ("int8", 1, "I8"),
    3: ("int16", 2, "I16"),
    4: ("int32", 4, "I32"),
    5: ("int64", 8, "I64"),
    6: ("float16", 2, "F16"),
    7: ("bfloat16", 2, "BF16"),
    8: ("float32", 4, "F32"),
    9: ("float64", 8, "F64"),
    10: ("bool", 1, "BOOL"),
}
_CODE_BY_NAME = {name: code for code, (name, _, _) in DTYPES.items()}


class WireError(Exception):
    """The peer sent something that is not a valid frame, or went away."""


class WireTimeout(WireError):
    """No complete frame arrived before the deadline."""


def tensor_to_bytes(tensor: torch.Tensor) -> bytearray:
    """Raw C-order bytes of a CPU tensor, without numpy and without a Python-level loop."""
    import torch

    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    buf = bytearray(flat.numel() * flat.element_size())
    if buf:
        torch.frombuffer(buf, dtype=torch.uint8).copy_(flat.view(torch.uint8))
    return buf


def tensor_from_bytes(data: bytes | bytearray | memoryview, dtype_name: str, shape: tuple[int, ...]) -> torch.Tensor:
    import torch

    dtype = getattr(torch, dtype_name)
    if len(data) == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape)


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    payload: bytes | bytearray

    def json(self) -> dict[str, Any]:
        if self.kind != KIND_JSON:
            raise WireError(f"expected a JSON frame, got kind {self.kind}")
        try:
            value = json.loads(bytes(self.payload).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WireError(f"malformed JSON frame: {exc}") from exc
        if not isinstance(value, dict):
            raise WireError("a JSON frame must hold an object")
        return value

    def tensors(self) -> list[torch.Tensor]:
        """The tensors of a TENSORS frame, each a view of the frame's own buffer."""
        import torch

        if self.kind != KIND_TENSORS:
            raise WireError(f"expected a tensors frame, got kind {self.kind}")
        payload = self.payload if isinstance(self.payload, bytearray) else bytearray(self.payload)
        if len(payload) < 4:
            raise WireError("tensors frame too short")
        (count,) = struct.unpack_from("<I", payload, 0)
        if count > MAX_BATCH_TENSORS:
            raise WireError(f"{count} tensors in one frame exceed {MAX_BATCH_TENSORS}")
        at, heads = 4, []
        for _ in range(count):
            if len(payload) < at + 2:
                raise WireError("tensors frame too short for its heads")
            code, ndim = payload[at], payload[at + 1]
            if code not in DTYPES:
                raise WireError(f"unknown dtype code {code}")
            if ndim > MAX_NDIM or len(payload) < at + 2 + 8 * ndim:
                raise WireError(f"bad tensor rank {ndim}")
            shape = struct.unpack_from(f"<{ndim}Q", payload, at + 2)
            numel = 1
            for dim in shape:
                numel *= dim
            if numel * DTYPES[code][1] > MAX_TENSOR_BYTES:
                raise WireError(f"a tensor of shape {shape} exceeds {MAX_TENSOR_BYTES} bytes")
            heads.append((code, tuple(shape), numel))
            at += 2 + 8 * ndim
        found = []
        for code, shape, numel in heads:
            name, size, _ = DTYPES[code]
            at = -(-at // _ALIGN) * _ALIGN
            if at + numel * size > len(payload):
                raise WireError("tensors frame shorter than its tensors")
            dtype = getattr(torch, name)
            found.append(
                torch.frombuffer(payload, dtype=dtype, count=numel, offset=at).reshape(shape)
                if numel
                else torch.empty(shape, dtype=dtype)
            )
            at += numel * size
        if at != len(payload):
            raise WireError("tensors frame longer than its tensors")
        return found

    def tensor(self) -> torch.Tensor:
        if self.kind != KIND_TENSOR:
            raise WireError(f"expected a tensor frame, got kind {self.kind}")
        payload = memoryview(self.payload)
        if len(payload) < 2:
            raise WireError("tensor frame too short")
        code, ndim = payload[0], payload[1]
        if code not in DTYPES:
            raise WireError(f"unknown dtype code {code}")
        if ndim > MAX_NDIM or len(payload) < 2 + 8 * ndim:
            raise WireError(f"bad tensor rank {ndim}")
        shape = struct.unpack_from(f"<{ndim}Q", payload, 2)
        name, size, _ = DTYPES[code]
        expected = size
        for dim in shape:
            expected *= dim
        body = payload[2 + 8 * ndim :]
        if len(body) != expected:
            raise WireError(f"tensor of shape {shape} and dtype {name} needs {expected} bytes, got {len(body)}")
        return tensor_from_bytes(body, name, tuple(shape))


PIPE_BYTES = 1 << 20


def pipe() -> tuple[int, int]:
    """A pipe that holds a whole logits or state frame of a small model (1 MiB, the kernel's default
    ceiling for unprivileged processes), so a frame crosses in one or a few writes rather than a
    context switch every 64 KiB. Best effort: a host with a lower ceiling keeps the default."""
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return read_fd, write_fd


class Channel:
    """One duplex link over two pipe file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    # -- sending --------------------------------------------------------------------------------
    def _write_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.write_fd, view)
            except BrokenPipeError as exc:
                raise WireError("peer closed the channel") from exc
            view = view[written:]

    def send_json(self, message: dict[str, Any]) -> None:
        body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        if len(body) > MAX_JSON_BYTES:
            raise WireError(f"JSON frame of {len(body)} bytes exceeds {MAX_JSON_BYTES}")
        self._write_all(_HEADER.pack(KIND_JSON, len(body)) + body)

    def send_tensor(self, tensor: torch.Tensor) -> None:
        name = str(tensor.dtype).removeprefix("torch.")
        if name not in _CODE_BY_NAME:
            raise WireError(f"dtype {tensor.dtype} cannot cross the wire")
        shape = tuple(int(d) for d in tensor.shape)
        if len(shape) > MAX_NDIM:
            raise WireError(f"tensor rank {len(shape)} exceeds {MAX_NDIM}")
        body = tensor_to_bytes(tensor)
        head = struct.pack(f"<BB{len(shape)}Q", _CODE_BY_NAME[name], len(shape), *shape)
        self._write_all(_HEADER.pack(KIND_TENSOR, len(head) + len(body)) + head)
        self._write_all(body)

    def send_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Several tensors in one TENSORS frame (see the module's grammar)."""
        import torch

        if len(tensors) > MAX_BATCH_TENSORS:
            raise WireError(f"{len(tensors)} tensors in one frame exceed {MAX_BATCH_TENSORS}")
        heads, flats = bytearray(struct.pack("<I", len(tensors))), []
        for tensor in tensors:
            name = str(tensor.dtype).removeprefix("torch.")
            if name not in _CODE_BY_NAME:
                raise WireError(f"dtype {tensor.dtype} cannot cross the wire")
            shape = tuple(int(d) for d in tensor.shape)
            if len(shape) > MAX_NDIM:
                raise WireError(f"tensor rank {len(shape)} exceeds {MAX_NDIM}")
            heads += struct.pack(f"<BB{len(shape)}Q", _CODE_BY_NAME[name], len(shape), *shape)
            flats.append(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8))
        at, offsets = len(heads), []
        for flat in flats:
            at = -(-at // _ALIGN) * _ALIGN
            offsets.append(at)
            at += flat.numel()
        if at > MAX_TENSOR_BYTES:
            raise WireError(f"tensors frame of {at} bytes exceeds {MAX_TENSOR_BYTES}")
        buf = bytearray(at)
        buf[: len(heads)] = heads
        for flat, offset in zip(flats, offsets, strict=True):
            if flat.numel():
                torch.frombuffer(buf, dtype=torch.uint8, count=flat.numel(), offset=offset).copy_(flat)
        self._write_all(_HEADER.pack(KIND_TENSORS, len(buf)))
        self._write_all(buf)

    # -- receiving ------------------------------------------------------------------------------
    def _read_exact(self, count: int, deadline: float | None) -> bytearray:
        buf = bytearray(count)
        view = memoryview(buf)
        got = 0
        while got < count:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WireTimeout("timed out waiting for the peer")
                ready, _, _ = select.select([self.read_fd], [], [], remaining)
                if not ready:
                    raise WireTimeout("timed out waiting for the peer")
            n = os.readv(self.read_fd, [view[got:]])
            if n == 0:
                raise WireError("peer closed the channel")
            got += n
        return buf

    def recv(self, timeout: float | None = None) -> Frame:
        deadline = None if timeout is None else time.monotonic() + timeout
        kind, length = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
        if kind == KIND_JSON and length > MAX_JSON_BYTES:
            raise WireError(f"JSON frame of {length} bytes exceeds {MAX_JSON_BYTES}")
        if kind in (KIND_TENSOR, KIND_TENSORS) and length > MAX_TENSOR_BYTES:
            raise WireError(f"tensor frame of {length} bytes exceeds {MAX_TENSOR_BYTES}")
        if kind not in (KIND_JSON, KIND_TENSOR, KIND_TENSORS):
            raise WireError(f"unknown frame kind {kind}")
        return Frame(kind, self._read_exact(length, deadline))

    def recv_json(self, timeout: float | None = None) -> dict[str, Any]:
        return self.recv(timeout).json()

    def recv_tensor(self, timeout: float | None = None) -> torch.Tensor:
        return self.recv(timeout).tensor()

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
