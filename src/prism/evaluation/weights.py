"""Trained weights as safetensors, never pickle.

The writer is ours (the format is an 8-byte little-endian header length, a JSON header of
name -> dtype, shape, byte offsets, then raw bytes) because `safetensors.torch.save` needs numpy,
which the runtime does not ship; files are read back with the `safetensors` library. The host
reads only the header (`read_header`), to cross-check names and shapes without loading tensors.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prism.evaluation.wire import DTYPES, tensor_to_bytes

if TYPE_CHECKING:
    import torch

MAX_HEADER_BYTES = 100 * 1024 * 1024
_SAFETENSORS_DTYPE = {name: st for name, _, st in DTYPES.values()}
_ITEMSIZE = {st: size for _, size, st in DTYPES.values()}


class WeightsFormatError(ValueError):
    """The bytes are not a well-formed safetensors file."""


def encode_safetensors(tensors: Mapping[str, torch.Tensor]) -> bytes:
    header: dict[str, object] = {}
    bodies: list[bytearray] = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name]
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype not in _SAFETENSORS_DTYPE:
            raise WeightsFormatError(f"tensor {name!r} has dtype {dtype}, which safetensors cannot hold here")
        body = tensor_to_bytes(tensor)
        header[name] = {
            "dtype": _SAFETENSORS_DTYPE[dtype],
            "shape": [int(d) for d in tensor.shape],
            "data_offsets": [offset, offset + len(body)],
        }
        bodies.append(body)
        offset += len(body)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8-byte alignment
    return b"".join([struct.pack("<Q", len(raw)), raw, *bodies])


@dataclass(frozen=True, slots=True)
class WeightsEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


def read_header(data: bytes) -> tuple[WeightsEntry, ...]:
    """Names, dtypes and shapes from a safetensors file, checking that offsets cover the body."""
    if len(data) < 8:
        raise WeightsFormatError("file shorter than its header length")
    (length,) = struct.unpack_from("<Q", data, 0)
    if length > MAX_HEADER_BYTES or 8 + length > len(data):
        raise WeightsFormatError("header length out of bounds")
    try:
        header = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsFormatError(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise WeightsFormatError("header is not an object")
    entries: list[WeightsEntry] = []
    body = len(data) - 8 - length
    end = 0
    for name, info in sorted(header.items()):
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = str(info["dtype"]), tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsFormatError(f"entry {name!r} is malformed") from exc
        entry = WeightsEntry(name=name, dtype=dtype, shape=shape)
        if dtype not in _ITEMSIZE or stop - start != entry.numel * _ITEMSIZE[dtype] or stop > body or start < 0:
            raise WeightsFormatError(f"entry {name!r} has offsets that do not match its dtype and shape")
        end = max(end, int(stop))
        entries.append(entry)
    if end != body:
        raise WeightsFormatError("the body holds bytes no entry accounts for")
    return tuple(entries)


def decode_safetensors(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    read_header(data)
    return load(data)
