from __future__ import annotations

import os
import struct

import pytest
import torch

from prism.evaluation.wire import KIND_JSON, KIND_TENSOR, Channel, Frame, WireError, WireTimeout


@pytest.fixture
def channel_pair() -> tuple[Channel, Channel]:
    a_r, b_w = os.pipe()
    b_r, a_w = os.pipe()
    return Channel(a_r, a_w), Channel(b_r, b_w)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.float32, torch.bfloat16, torch.float16, torch.bool])
def test_tensor_round_trip(channel_pair: tuple[Channel, Channel], dtype: torch.dtype) -> None:
    left, right = channel_pair
    tensor = (torch.arange(24).reshape(2, 3, 4) % 7).to(dtype)
    left.send_tensor(tensor)
    received = right.recv_tensor(timeout=5)
    assert received.dtype == dtype and torch.equal(received, tensor)


def test_json_round_trip_and_timeout(channel_pair: tuple[Channel, Channel]) -> None:
    left, right = channel_pair
    left.send_json({"op": "forward", "n": 3})
    assert right.recv_json(timeout=5) == {"op": "forward", "n": 3}
    with pytest.raises(WireTimeout):
        right.recv(timeout=0.05)


def test_closed_peer_is_an_error(channel_pair: tuple[Channel, Channel]) -> None:
    left, right = channel_pair
    left.close()
    with pytest.raises(WireError):
        right.recv(timeout=5)


def test_tensor_byte_count_must_match_shape() -> None:
    head = struct.pack("<BB2Q", 8, 2, 4, 4)  # float32 4x4 needs 64 bytes
    with pytest.raises(WireError, match="needs 64 bytes"):
        Frame(KIND_TENSOR, head + b"\0" * 12).tensor()
    with pytest.raises(WireError, match="unknown dtype"):
        Frame(KIND_TENSOR, struct.pack("<BB", 99, 0)).tensor()
    with pytest.raises(WireError):
        Frame(KIND_JSON, b"[1, 2]").json()


def test_oversized_frame_is_refused_before_allocation(channel_pair: tuple[Channel, Channel]) -> None:
    left, right = channel_pair
    os.write(left.write_fd, struct.pack("<BQ", KIND_JSON, 1 << 40))
    with pytest.raises(WireError, match="exceeds"):
        right.recv(timeout=5)
