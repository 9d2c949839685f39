"""Figures that no honest run produces: quarantined with the figures, never scored.

Rejections are for rules broken beyond doubt (a replay that does not reproduce, a prediction
that moves with later bytes). These are suspicions from the measured figures alone: each is
rare for honest code, so an operator looks (`quarantined`), and the figures travel with the
evidence. Thresholds come from measurements on honest models (docs/evaluation.md, "Measured"):

- `contamination.first_batch`: the first batch is scored before any update on it, by a model built
  under the forced seed. Honest models start at 7.9-9.0 bits per byte (see the doc); one far
  below knew the data before it saw it: the public fixture rebuilt, text packed as literals,
  pretrained weights packed as constants.
- `heldout_gap`: held-out bits per byte far above train. State that did not survive into held-out
  (kept outside the state dict), or a train figure gamed in a way the replays did not show.
- `budget.optimizer_steps`: more than one optimizer step per batch, counted by the replica on a
  real batch (a `train_step` looping over the batch). Charged, and looked at.
- `budget.work_mismatch`: the whole step, measured on real batches, costs far more FLOPs per token
  than the inspect run measured (a model that widens itself on text-like input).
- `graph.unbound`: the ops executed on a real batch differ from the graph the model was
  registered under, so the graph does not bind what runs.
- `budget.flops_below_parameters`: fewer FLOPs per token than twice the parameters: parameters
  that are counted but not used (or a measurement the model steered).
- `budget.graph_flops_mismatch`: an earlier run of the same architecture graph, at the same
  sequence length, measured other FLOPs per token. The same executed ops on the same shapes cost
  the same work, so one of the two measurements was steered (`graph_flops_disagreement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prism.evaluation.results import HeldoutResult, InspectResult, TrainResult
from prism.evidence import Evidence

# Measured on honest models under the forced seed (benchmarks/first_batch.py, docs/evaluation.md):
# 7.94-8.98 bits per byte over 15 models x 3 seeds (one with a wild init starts at 150+).
FIRST_BATCH_MIN_BPB = 6.0
HELDOUT_GAP_BPB = 1.5
FLOPS_RATIO = 1.5
MAX_OPTIMIZER_STEPS = 1
MIN_FLOPS_PER_PARAMETER = 2.0
# Same graph, same sequence length: FLOPs per token are counted from the same ops on the same
# shapes, so they agree exactly; the slack only absorbs float rounding of the count.
GRAPH_FLOPS_TOLERANCE = 0.01


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    first_batch_min_bpb: float = FIRST_BATCH_MIN_BPB
    heldout_gap_bpb: float = HELDOUT_GAP_BPB
    flops_ratio: float = FLOPS_RATIO
    max_optimizer_steps: int = MAX_OPTIMIZER_STEPS
    min_flops_per_parameter: float = MIN_FLOPS_PER_PARAMETER


def _evidence(rule: str, explanation: str) -> Evidence:
    return Evidence.at(rule, "<evaluation>", 0, explanation)


def suspicions(
    inspect: InspectResult,
    train: TrainResult,
    heldout: HeldoutResult | None,
    thresholds: Thresholds = Thresholds(),
) -> tuple[Evidence, ...]:
    """Every suspicion the figures raise, most telling first; empty for an ordinary run."""
    found: list[Evidence] = []
    first = train.first_batch_bits_per_byte
    if first < thresholds.first_batch_min_bpb:
        found.append(
            _evidence(
                "contamination.first_batch",
                f"first-batch bits per byte {first:.3f}, before any update, from a model built under the forced "
                f"seed; honest models start at 7.9-9.0 (quarantine below {thresholds.first_batch_min_bpb}): "
                "knowledge came with the code",
            )
        )
    if train.replayed_optimizer_steps > thresholds.max_optimizer_steps:
        found.append(
            _evidence(
                "budget.optimizer_steps",
                f"{train.replayed_optimizer_steps} optimizer steps on one batch (replayed on a real batch); "
                f"the budget is {thresholds.max_optimizer_steps} per batch",
            )
        )
    declared = inspect.flops_per_token
    measured = train.replayed_flops_per_token
    if declared > 0 and measured > thresholds.flops_ratio * declared:
        found.append(
            _evidence(
                "budget.work_mismatch",
                f"{measured:,.0f} FLOPs per token on real batches (whole step, replayed), "
                f"{measured / declared:.2f}x the {declared:,.0f} measured at inspect",
            )
        )
    if train.graph_mismatch_steps:
        found.append(
            _evidence(
                "graph.unbound",
                f"the ops executed on real batches at steps {list(train.graph_mismatch_steps)[:10]} differ from the "
                "graph the model was registered under",
            )
        )
    charged = max(declared, measured)
    if inspect.parameter_count > 0 and charged < thresholds.min_flops_per_parameter * inspect.parameter_count:
        found.append(
            _evidence(
                "budget.flops_below_parameters",
                f"{charged:,.0f} FLOPs per token for {inspect.parameter_count:,} parameters: fewer than "
                f"{thresholds.min_flops_per_parameter}x, so counted parameters are not used",
            )
        )
    if heldout is not None:
        gap = heldout.heldout_bits_per_byte - train.bits_per_byte
        if gap > thresholds.heldout_gap_bpb:
            found.append(
                _evidence(
                    "heldout_gap",
                    f"held-out {heldout.heldout_bits_per_byte:.3f} bits per byte against {train.bits_per_byte:.3f} "
                    f"in train: a gap of {gap:.3f} (quarantine above {thresholds.heldout_gap_bpb})",
                )
            )
    return tuple(found)


def graph_flops_disagreement(
    flops_per_token: float, priors: Sequence[tuple[str, float]], *, tolerance: float = GRAPH_FLOPS_TOLERANCE
) -> Evidence | None:
    """Evidence when earlier runs of the same graph (submission id, FLOPs per token) measured other
    work than this one; None when they agree or there are none."""
    for submission_id, prior in priors:
        if prior <= 0 or flops_per_token <= 0:
            continue
        if abs(flops_per_token - prior) > tolerance * max(prior, flops_per_token):
            return _evidence(
                "budget.graph_flops_mismatch",
                f"{flops_per_token:,.0f} FLOPs per token, while submission {submission_id} with the same "
                f"architecture graph and sequence length measured {prior:,.0f}: the same ops on the same "
                "shapes cost the same work",
            )
    return None
