from __future__ import annotations

import os
import struct

import pytest
import torch

from prism.evaluation.wire import KIND_JSON, KIND_TENSOR, KIND_TENSORS, Channel, Frame, WireError, WireTimeout


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


def test_a_whole_state_crosses_in_one_frame_as_aligned_views(channel_pair: tuple[Channel, Channel]) -> None:
    left, right = channel_pair
    state = [
        torch.randn(3, 5),
        torch.arange(7, dtype=torch.int64),
        torch.empty(0, 4),
        torch.ones(2, 2, dtype=torch.bfloat16),
        torch.tensor(True),
        torch.randn(4, 6).t(),  # not contiguous: sent in C order
    ]
    left.send_tensors(state)
    frame = right.recv(timeout=5)
    received = frame.tensors()
    assert [t.dtype for t in received] == [t.dtype for t in state]
    assert all(torch.equal(a, b) for a, b in zip(received, state, strict=True))
    # Views of the frame's one buffer (no copy per tensor), each 64-aligned from the buffer's start.
    base = received[0].data_ptr()
    assert all((t.data_ptr() - base) % 64 == 0 for t in received if t.numel())
    assert received[1].data_ptr() - base == 64  # 3x5 float32: 60 bytes, then the next boundary


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\x01\x00", "too short"),
        (struct.pack("<I", 1 << 20), "exceed"),
        (struct.pack("<I", 1) + struct.pack("<BB", 99, 0), "unknown dtype"),
        (struct.pack("<I", 1) + struct.pack("<BB", 8, 9), "rank"),
        (struct.pack("<I", 1) + struct.pack("<BB1Q", 8, 1, 4), "shorter"),  # 16 bytes promised, none sent
        (struct.pack("<I", 1) + struct.pack("<BB1Q", 8, 1, 1) + b"\0" * 58 + b"\0" * 4 + b"x", "longer"),
        (struct.pack("<I", 1) + struct.pack("<BB1Q", 8, 1, 1 << 62), "exceeds"),
        (struct.pack("<I", 2) + struct.pack("<BB", 8, 0), "heads"),
    ],
    ids=["short", "count", "dtype", "rank", "short body", "trailing bytes", "huge", "missing head"],
)
def test_a_malformed_state_frame_is_refused(payload: bytes, error: str) -> None:
    with pytest.raises(WireError, match=error):
        Frame(KIND_TENSORS, bytearray(payload)).tensors()
