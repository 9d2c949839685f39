from __future__ import annotations

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
