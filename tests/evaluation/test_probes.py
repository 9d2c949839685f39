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
            perturbed, keep = probes.perturb_stream(inputs, gen)
            probed = model(perturbed.long()).float()
            probes.check_replay(real, probed, keep, atol_nats=1e-4, where="test", kind="causal")


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


def test_perturbation_changes_every_byte_after_the_point_in_stream_order() -> None:
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, 256, (8, 64), generator=gen, dtype=torch.uint8)
    starts = set()
    for _ in range(30):
        out, keep = probes.perturb_stream(inputs, gen)
        assert torch.equal(out[keep], inputs[keep])
        assert bool((out[~keep] != inputs[~keep]).all())
        flat = keep.reshape(-1)
        first = int((~flat).nonzero()[0])
        assert bool(flat[:first].all()) and not bool(flat[first:].any())  # one cut in stream order
        starts.add(first % 64 == 0)
    assert starts == {True, False}  # some cuts at a row's start, some inside a row


def test_a_constant_offset_on_every_logit_widens_nothing() -> None:
    # The old check compared raw logits with atol + rtol*|logit|: +1e6 on every logit bought a
    # tolerance of 100 nats. On log-probabilities the offset cancels and a peek still shows.
    gen = torch.Generator().manual_seed(2)
    inputs = torch.randint(0, 256, (2, 16), generator=gen, dtype=torch.uint8)
    honest = torch.randn(2, 16, 256, generator=gen)
    peek = torch.nn.functional.one_hot(torch.roll(inputs.long(), -1, dims=1), 256).float()
    keep = torch.ones(2, 16, dtype=torch.bool)
    keep[0, 9:] = keep[1:] = False
    perturbed = torch.where(keep, inputs, (inputs.long() + 1) % 256)
    peek_probe = torch.nn.functional.one_hot(torch.roll(perturbed.long(), -1, dims=1), 256).float()
    probes.check_replay(honest + 1e6, honest + 1e6, keep, atol_nats=1e-4, where="t", kind="causal")
    with pytest.raises(Rejected) as caught:
        probes.check_replay(
            honest + 1e6 + 4 * peek, honest + 1e6 + 4 * peek_probe, keep, atol_nats=1e-4, where="t", kind="causal"
        )
    assert caught.value.reason_code in {"causality_violation", "row_leak"}


def test_a_row_that_reads_the_next_row_is_named_a_row_leak() -> None:
    real = torch.zeros(3, 8, 256)
    other = real.clone()
    other[0, -1, 5] = 3.0  # row 0's last prediction moved when only rows 1.. changed
    keep = torch.ones(3, 8, dtype=torch.bool)
    keep[1:] = False
    with pytest.raises(Rejected) as caught:
        probes.check_replay(real, other, keep, atol_nats=1e-4, where="t", kind="causal")
    assert caught.value.reason_code == "row_leak"


def test_call_seeds_and_replay_plans_come_from_the_secret() -> None:
    from prism.evaluation import replay

    a, b = replay.plan(1, "train", 400, 0.2), replay.plan(2, "train", 400, 0.2)
    assert 0 in a and a != b and replay.plan(1, "train", 400, 0.2) == a
    assert 40 < len(a) < 130  # about a fifth of the steps, a binomial count the model cannot know
    assert set(a.values()) == {"reproduce", "charge", "causal"} and a[0] == "charge"
    assert probes.call_seed(1, "train", 3) != probes.call_seed(2, "train", 3)
