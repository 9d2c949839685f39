"""Random and mutated archives only ever give a `Project` or `IntakeRejected`.

Also: nothing is written to the filesystem (the test runs in a private, empty working and temp
directory and checks they stay empty) and memory stays bounded (tracemalloc peak).
"""

from __future__ import annotations

import io
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prism.intake.archive import read_project
from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.intake.project import Project

LIMITS = IntakeLimits(max_file_bytes=256 * 1024, max_total_bytes=1024 * 1024, max_files=50)


def _seed() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("model.py", "def build_model(ctx):\n    return None\n", compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("prism.yaml", "entrypoint: model.py\nname: x\n", compress_type=zipfile.ZIP_STORED)
        zf.writestr("pkg/util.py", "X = [1, 2, 3]\n" * 20, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("notes.txt", "a" * 3000, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


SEED = _seed()


def _intake(data: bytes, name: str) -> None:
    try:
        result = read_project(data, name, limits=LIMITS)
    except IntakeRejected as exc:
        assert exc.reason_code and exc.evidence
    else:
        assert isinstance(result, Project)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        else:
            end = min(len(data), at + draw(st.integers(1, 200)))
            data[at:at] = data[at:end]
        if not data:
            break
    return bytes(data)


@pytest.fixture()
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "cwd"
    temp = tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return tmp_path


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_archives_give_project_or_typed_rejection(private_dirs: Path, data: bytes) -> None:
    _intake(data, "upload.zip")
    assert not any((private_dirs / "cwd").iterdir()) and not any((private_dirs / "tmp").iterdir())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(st.binary(max_size=2048), st.binary(max_size=64).map(lambda b: b"PK\x03\x04" + b)),
    name=st.sampled_from(["a.zip", "a.py", "a.tar", "", "x.ZIP"]),
)
def test_random_bytes_give_project_or_typed_rejection(private_dirs: Path, data: bytes, name: str) -> None:
    _intake(data, name)
    assert not any((private_dirs / "cwd").iterdir()) and not any((private_dirs / "tmp").iterdir())


def test_memory_stays_bounded_on_bombs() -> None:
    """A 50 MiB bomb against 1 MiB limits: peak allocation stays near the limits, not the bomb."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.py", "def build_model(ctx):\n    return None\n")
        zf.writestr("a.txt", b"\n" * (50 * 1024 * 1024))
    bomb = buffer.getvalue()
    # The header is honest here, so lie in it to force the streaming check to do the work.
    patched = bytearray(bomb)
    at = patched.index(b"PK\x01\x02", 0)
    at = patched.index(b"PK\x01\x02", at + 4)
    patched[at + 24 : at + 28] = (100).to_bytes(4, "little")
    tracemalloc.start()
    try:
        for data in (bomb, bytes(patched)):
            with pytest.raises(IntakeRejected):
                read_project(data, "bomb.zip", limits=LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
