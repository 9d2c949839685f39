from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load

from prism.evaluation.metrics import LossCurve
from prism.evaluation.weights import WeightsFormatError, encode_safetensors, read_header


def test_safetensors_written_without_numpy_load_with_the_library() -> None:
    tensors = {"a.weight": torch.randn(3, 4), "b": torch.arange(5), "c": torch.randn(2).to(torch.bfloat16)}
    data = encode_safetensors(tensors)
    loaded = load(data)
    assert set(loaded) == set(tensors)
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert [(e.name, e.shape) for e in read_header(data)] == [("a.weight", (3, 4)), ("b", (5,)), ("c", (2,))]


def test_header_reader_refuses_lies() -> None:
    data = bytearray(encode_safetensors({"a": torch.zeros(4)}))
    with pytest.raises(WeightsFormatError):
        read_header(bytes(data[:-4]))
    with pytest.raises(WeightsFormatError):
        read_header(b"\xff" * 8)


def test_bits_per_byte_is_the_online_code_length() -> None:
    curve = LossCurve((math.log(256), math.log(2)), (100, 300))
    assert curve.bits_per_byte() == pytest.approx((8 * 100 + 1 * 300) / 400)
    assert LossCurve.decode(curve.encode()) == curve
    with pytest.raises(ValueError):
        LossCurve.decode(b'{"schema": "prism.loss_curve.v1", "losses_nats": [NaN], "tokens": [1]}')
