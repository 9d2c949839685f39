"""docs/settings.md names every setting the code reads."""

from __future__ import annotations

from pathlib import Path

from prism.config import Settings
from prism.config_check import SECRET_FILE_VARIABLES

DOC = (Path(__file__).parents[1] / "docs" / "settings.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [f"PRISM_{name.upper()}" for name in Settings.model_fields if f"`PRISM_{name.upper()}" not in DOC]
    assert not missing, f"add to docs/settings.md: {missing}"


def test_every_secret_variable_is_documented() -> None:
    assert all(f"`{name}`" in DOC for name in SECRET_FILE_VARIABLES)
