from __future__ import annotations

from prism.pipeline.review_steps import reference_candidates
from prism.review.similarity import Candidate, decide_source, fingerprint_project
from prism.runtime_config import SimilarityPolicy
from prism.scoring.claims import claim_contradictions

YAML = """entrypoint: model.py
claims:
  parameter_count: 1000000
  bits_per_byte: 1.2
  flops: 5.0e9
  note: fast
"""


def test_claims_far_from_the_measurement_are_evidence() -> None:
    claims = {"parameter_count": 1_000_000, "bits_per_byte": 1.2, "flops": 5.0e9, "note": "fast"}
    measured = {"parameter_count": 445_952, "bits_per_byte": 1.21, "flops": None}
    [finding] = claim_contradictions(YAML, claims, measured)
    assert finding.rule_id == "claims.contradiction"
    assert (finding.path, finding.line) == ("prism.yaml", 3)
    assert "1000000" in finding.explanation and "445952" in finding.explanation
    assert finding.snippet_sha256


def test_claims_within_tolerance_or_unmeasured_are_not() -> None:
    claims = {"parameter_count": 446_000, "tokens": True}
    assert claim_contradictions(YAML, claims, {"parameter_count": 445_952, "tokens": 10}) == ()


def _report_for(new: str, prior_hotkey: str, *priors: str) -> dict[str, object]:
    from tests.review.similarity_support import candidate, corpus_fingerprints

    fps = corpus_fingerprints()
    candidates = [
        candidate(fps[name], submission_id=f"s-{name}", hotkey=prior_hotkey, minute=i) for i, name in enumerate(priors)
    ]
    return decide_source(fps[new], hotkey="hk-new", candidates=candidates, policy=SimilarityPolicy()).to_json()


def test_only_related_candidates_of_other_hotkeys_reach_the_reviewer_with_their_true_scores() -> None:
    from tests.review.similarity_support import corpus, with_new_train_step

    # An unrelated prior that merely shared an index band is no reference.
    report = _report_for("gpt_mini", "hk-rival", "wavenet", "char_cnn")
    assert reference_candidates(report, hotkey="hk-new") == []
    # A variant (same architecture, new training code) is, with the report's own containment.
    variant = fingerprint_project(with_new_train_step(corpus()["gpt_mini"]))
    prior = candidate_for("gpt_mini", "hk-rival")
    decided = decide_source(variant, hotkey="hk-new", candidates=[prior], policy=SimilarityPolicy()).to_json()
    [(sid, score)] = reference_candidates(decided, hotkey="hk-new")
    [scored] = decided["candidates"]
    assert sid == "s-gpt_mini" and score == max(scored["new_in_prior"], scored["prior_in_new"]) > 0.3
    # The miner's own earlier work is not a rival's reference.
    assert reference_candidates(decided, hotkey="hk-rival") == []


def candidate_for(name: str, hotkey: str) -> Candidate:
    from tests.review.similarity_support import candidate, corpus_fingerprints

    return candidate(corpus_fingerprints()[name], submission_id=f"s-{name}", hotkey=hotkey)
