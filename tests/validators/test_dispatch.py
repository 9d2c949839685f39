"""The validator side's setup: which backend a `broker_url` names, the hotkey file, the PRISM URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prism.config import Settings
from prism.sandbox.broker import BrokerSandbox
from prism.sandbox.bubblewrap import BubblewrapSandbox
from prism.validators.dispatch import DispatchError, ValidatorSetup, validator_sandbox
from prism.validators.signing import ValidatorKey
from prism_challenge.validator_dispatch import dispatch_assignment
from tests.validators.conftest import SEEDS, key


def test_broker_url_names_the_backend(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert isinstance(validator_sandbox(settings, "bubblewrap:", None, None), BubblewrapSandbox)
    token_file = tmp_path / "broker-token"
    token_file.write_text("validator-broker-token\n")
    broker = validator_sandbox(settings, "https://broker.validator.example", None, str(token_file))
    assert isinstance(broker, BrokerSandbox) and broker.settings.broker_token == "validator-broker-token"
    assert broker.url == "https://broker.validator.example"
    with pytest.raises(DispatchError, match="neither"):
        validator_sandbox(settings, "ftp://x", None, None)


def test_hotkey_file_forms(tmp_path: Path) -> None:
    seed = SEEDS["honest1"]
    hex_file, wallet_file = tmp_path / "hex", tmp_path / "wallet.json"
    hex_file.write_text("0x" + seed.hex())
    wallet_file.write_text(json.dumps({"secretSeed": "0x" + seed.hex(), "ss58Address": key("honest1").hotkey}))
    assert (
        ValidatorKey.from_file(hex_file).hotkey == ValidatorKey.from_file(wallet_file).hotkey == key("honest1").hotkey
    )


def test_a_validator_without_a_hotkey_or_prism_url_refuses_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRISM_VALIDATOR_HOTKEY_FILE", raising=False)
    monkeypatch.delenv("PRISM_VALIDATOR_PRISM_URL", raising=False)
    with pytest.raises(DispatchError, match="HOTKEY_FILE"):
        ValidatorSetup.from_environment({})
    key_file = tmp_path / "key"
    key_file.write_text(SEEDS["honest1"].hex())
    monkeypatch.setenv("PRISM_VALIDATOR_HOTKEY_FILE", str(key_file))
    with pytest.raises(DispatchError, match="PRISM URL"):
        ValidatorSetup.from_environment({"prism_url": None})
    assert ValidatorSetup.from_environment({"prism_url": "https://p/challenges/prism/"}).prism_url == (
        "https://p/challenges/prism"
    )


async def _dispatch_without_setup() -> None:
    await dispatch_assignment(work_unit_id="u", payload={}, broker_url="bubblewrap:")


def test_platforms_import_path_is_the_dispatcher(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import inspect

    monkeypatch.delenv("PRISM_VALIDATOR_HOTKEY_FILE", raising=False)
    assert inspect.iscoroutinefunction(dispatch_assignment)
    parameters = set(inspect.signature(dispatch_assignment).parameters)
    assert {"work_unit_id", "payload", "broker_url", "broker_token", "broker_token_file"} <= parameters
    with pytest.raises(DispatchError):
        asyncio.run(_dispatch_without_setup())
