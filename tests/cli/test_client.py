"""The CLI's HTTP client and upload packing, without a server where none is needed."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from prism.api.bodies import check_filename
from prism.cli.client import (
    EXIT_FAILED,
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    EXIT_WAITING_FOR_OPERATOR,
    CliFailure,
    PrismClient,
    Progress,
    exit_code_for,
    sparkline,
    upload_filename,
    zip_project,
)
from tests.live_server import free_port


def _names(data: bytes) -> list[str]:
    return sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())


def test_folder_upload_leaves_out_version_control_and_caches(tmp_path: Path) -> None:
    project = tmp_path / "my model"
    (project / ".git" / "objects").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / ".gitignore").write_text("*.pyc\n")
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "x.py").write_text("")
    (project / "layers").mkdir()
    (project / "layers" / "block.py").write_text("X = 1\n")
    (project / "model.py").write_text("def build_model(ctx):\n    return None\n")
    (project / "prism.yaml").write_text("name: my model\n")
    upload = zip_project(project)
    assert _names(upload.data) == ["layers/block.py", "model.py", "prism.yaml"]
    assert {".git", ".gitignore", "__pycache__", ".venv"} <= set(upload.skipped)
    # A folder named "my model" yields a name the bridge accepts.
    assert upload.filename == "my-model.zip"
    assert check_filename(upload.filename) == upload.filename


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("my model", ".zip"), ("..hidden", ".zip"), ("模型", ".py"), ("a" * 300, ".zip"), ("-x-", ".py")],
)
def test_upload_names_are_always_accepted(name: str, suffix: str) -> None:
    filename = upload_filename(name, suffix)
    assert check_filename(filename) == filename and filename.endswith(suffix)


def test_a_file_keeps_a_safe_name(tmp_path: Path) -> None:
    path = tmp_path / "my net.py"
    path.write_text("x = 1\n")
    assert zip_project(path).filename == "my-net.py"
    with pytest.raises(CliFailure) as caught:
        zip_project(tmp_path / "notes.txt")
    assert caught.value.exit_code == 2


def test_exit_codes_mean_the_outcome() -> None:
    assert exit_code_for("completed") == 0
    assert exit_code_for("rejected") == EXIT_REJECTED == 3
    assert exit_code_for("quarantined") == exit_code_for("held") == EXIT_WAITING_FOR_OPERATOR == 4
    assert exit_code_for("failed") == EXIT_FAILED == 5
    assert exit_code_for("running") == EXIT_TIMEOUT == 6


def test_unreachable_prism_is_one_line() -> None:
    client = PrismClient(f"http://127.0.0.1:{free_port()}", None, timeout=5)
    with pytest.raises(CliFailure) as caught:
        client.public("x")
    assert "cannot reach PRISM" in caught.value.message and caught.value.exit_code == 1


def _view(status: str, running: str | None, **extra: Any) -> dict[str, Any]:
    return {"status": status, "running_stage": running, "queue_position": None, **extra}


def test_progress_names_the_running_stage_and_shows_the_curve() -> None:
    lines: list[str] = []
    progress = Progress(lines.append, tick_seconds=0)
    progress(_view("pending", None, queue_position=2))
    progress(_view("running", "train"))
    progress(_view("running", "train"))  # a tick: still at it
    curve = [8.0, 6.0, 5.0, 4.5, 4.2]
    stages = [{"stage": "train", "data": {"loss_curve": curve}, "detail": "4,096 tokens in 16 steps"}]
    progress(_view("running", "heldout", stages=stages))
    progress(_view("running", "validation", stages=stages))
    progress(_view("completed", None, reason_code="completed", stages=stages))
    text = "\n".join(lines)
    assert "queue position 2" in lines[0]
    assert re.search(r"running\s+train$", lines[1])
    assert "still at it" in lines[2]
    assert text.count("training curve") == 1 and "8.000 → 4.200" in text
    assert re.search(r"running\s+heldout", text) and lines[-1].split()[0] == "completed"


def test_sparkline_falls_with_the_loss() -> None:
    line = sparkline([8.0, 4.0, 2.0, 1.0])
    assert line[0] == "█" and line[-1] == "▁" and len(line) == 4


def test_progress_prints_each_live_point_once_and_ticks_when_none_come() -> None:
    served = [
        {"seq": seq, "step": 8 * (seq + 1), "steps": 32, "tokens": 2048 * (seq + 1), "bits_per_byte": 7.0 - seq}
        | {"mean_bits_per_byte": 7.0 - seq / 2}
        for seq in range(4)
    ]
    asked: list[int] = []

    def curve(after: int) -> dict[str, Any]:
        asked.append(after)
        return {"live_points": [p for p in served[: 2 * len(asked)] if p["seq"] > after]}

    lines: list[str] = []
    progress = Progress(lines.append, tick_seconds=0, curve=curve)
    progress(_view("running", "train"))
    progress(_view("running", "train"))
    progress(_view("running", "train"))  # no new point: the tick says it still runs
    live = [line for line in lines if "live, unverified" in line]
    assert asked == [-1, 1, 3]
    assert [line.split()[2] for line in live] == ["8/32", "16/32", "24/32", "32/32"]
    assert "still at it" in lines[-1]
    # A backend that streams nothing (the Platform broker): the tick line, as before.
    quiet: list[str] = []
    silent = Progress(quiet.append, tick_seconds=0, curve=lambda after: {"live_points": []})
    silent(_view("running", "train"))
    silent(_view("running", "train"))
    assert "still at it" in quiet[-1] and not any("live" in line for line in quiet)
