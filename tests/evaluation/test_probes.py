"""The recorder's checks against the classic cheats, run in-process on models from `cheats/`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from prism.evaluation import probes
from prism.evaluation.probes import Rejected

CHEATS = Path(__file__).resolve().parent / "cheats"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny_transformer" / "model.py"


def _model(path: Path) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location(f"cheat_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Ctx:
        vocab_size, seq_len, batch_size = 256, 128, 4

    torch.manual_seed(0)
    model: torch.nn.Module = module.build_model(Ctx())
    return model


def _check(model: torch.nn.Module, seq_len: int = 128) -> None:
    gen = torch.Generator().manual_seed(3)
    inputs = torch.randint(0, 256, (4, seq_len), generator=gen, dtype=torch.uint8)
    with torch.no_grad():
        real = model(inputs.long()).float()
        probes.check_logits(real, 4, seq_len, "test")
        for _ in range(3):
            perturbed, position = probes.perturb(inputs, gen)
            probed = model(perturbed.long()).float()
            probes.check_causality(real, probed, position, atol=1e-4, rtol=1e-4, where="test")


def test_causal_example_passes() -> None:
    _check(_model(EXAMPLE))


@pytest.mark.parametrize("cheat", ["next_byte", "unmasked_attention", "two_sided_conv", "causal_when_short"])
def test_future_reading_models_are_caught(cheat: str) -> None:
    with pytest.raises(Rejected) as caught:
        _check(_model(CHEATS / f"{cheat}.py"))
    assert caught.value.reason_code == "causality_violation"
    assert caught.value.evidence()["rule_id"] == "harness.causality_violation"


def test_nan_logits_and_wrong_shapes_are_caught() -> None:
    with pytest.raises(Rejected, match="NaN"):
        _check(_model(CHEATS / "nan_logits.py"))
    with pytest.raises(Rejected) as caught:
        probes.check_logits(torch.zeros(4, 128, 255), 4, 128, "test")
    assert caught.value.reason_code == "logits_shape"


def test_perturbation_changes_every_byte_after_the_position() -> None:
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, 256, (8, 64), generator=gen, dtype=torch.uint8)
    out, position = probes.perturb(inputs, gen)
    assert 1 <= position < 64
    assert torch.equal(out[:, :position], inputs[:, :position])
    assert bool((out[:, position:] != inputs[:, position:]).all())


def test_probe_steps_include_the_first_and_depend_on_the_secret() -> None:
    a, b = probes.probe_steps(1, 100, 4), probes.probe_steps(2, 100, 4)
    assert 0 in a and len(a) == 5 and a != b
    assert probes.probe_steps(1, 100, 4) == a
