"""The Dockerfiles cannot be built here (no Docker engine on this machine); what can be checked is
checked: every COPY source exists, the commands they run are real, the runtime image runs the
command the Docker backend sends, and the pins agree with the project's."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prism.cli import app
from prism.config import Settings
from prism.evaluation.runner import HARNESS_COMMAND

ROOT = Path(__file__).resolve().parents[1]
FILES = {name: (ROOT / "docker" / f"{name}.Dockerfile").read_text() for name in ("service", "runtime")}


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _json_or_shell(value: str) -> list[str]:
    import json

    return json.loads(value) if value.startswith("[") else shlex.split(value)


@pytest.mark.parametrize("name", sorted(FILES))
def test_copy_sources_exist_and_are_not_ignored(name: str) -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    copies = [rest.split() for word, rest in _instructions(FILES[name]) if word == "COPY"]
    assert copies
    for parts in copies:
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"{name}: COPY {source} does not exist"
            assert source not in ignored


def test_service_entrypoint_is_a_real_prism_command() -> None:
    steps = dict(_instructions(FILES["service"]))
    assert _json_or_shell(steps["ENTRYPOINT"]) == ["prism"]
    command = _json_or_shell(steps["CMD"])
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--host" in result.output and "--port" in result.output


def test_runtime_image_runs_what_the_docker_backend_sends() -> None:
    steps = _instructions(FILES["runtime"])
    command = _json_or_shell(dict(steps)["CMD"])
    assert tuple(command) == HARNESS_COMMAND
    assert importlib.util.find_spec(command[2]) is not None
    users = [rest for word, rest in steps if word == "USER"]
    settings = Settings()
    assert users == [f"{settings.sandbox_uid}:{settings.sandbox_gid}"]
    assert "runtime.Dockerfile -t " + settings.docker_image in FILES["runtime"]


def test_torch_pin_agrees_with_the_project() -> None:
    pin = re.search(r'"torch==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin is not None
    assert f"startswith('{pin.group(1)}')" in FILES["runtime"]
