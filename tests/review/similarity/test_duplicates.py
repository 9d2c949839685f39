"""The duplicate decision on real projects: copies, variants, independents, padded copies."""

from __future__ import annotations

from itertools import pairwise, permutations
from typing import Any

import pytest

from prism.errors import ConfigError
from prism.intake.project import Project
from prism.review.similarity import containment, fingerprint_project
from prism.review.similarity.duplicates import (
    DuplicateReport,
    GraphPrior,
    compare_sources,
    decide_graph,
    decide_source,
    hash_sets,
)
from prism.review.similarity.graph import graph_fingerprint
from prism.runtime_config import SimilarityPolicy, parse_runtime_config
from tests.review.similarity_support import T0, candidate, corpus, corpus_fingerprints, graph_doc, with_new_train_step
from tests.review.variants import obfuscate

POLICY = SimilarityPolicy()


def test_renamed_copy_from_another_hotkey_is_quarantined_with_evidence() -> None:
    original = corpus_fingerprints()["alibi_encoder"]
    copy = fingerprint_project(
        obfuscate(corpus()["alibi_encoder"], 0, transforms=("rename", "shuffle_init", "commute"))
    )
    assert copy.normalized_sha256 != original.normalized_sha256  # not exact: swapped operands
    report = decide_source(copy, hotkey="hk-b", candidates=[candidate(original)], policy=POLICY)
    assert report.outcome == "quarantine"
    assert report.reason_code == "duplicate.near_source"
    assert report.matched_submission_id == "a"
    assert report.evidence and all(e.rule_id == "duplicate.near_source" for e in report.evidence)
    assert all(e.snippet_sha256 and e.line > 0 for e in report.evidence)
    score = report.candidates[0]
    assert score.relation == "copy" and min(score.new_in_prior, score.prior_in_new) >= 0.7
    assert score.matched_regions and score.matched_regions[0].prior_path == "model.py"


def test_renamed_copy_normalizes_to_the_original_and_is_quarantined() -> None:
    original = corpus_fingerprints()["gpt_mini"]
    renamed = fingerprint_project(obfuscate(corpus()["gpt_mini"], 1, transforms=("rename", "reorder", "cosmetic")))
    assert renamed.normalized_sha256 == original.normalized_sha256
    report = decide_source(renamed, hotkey="hk-b", candidates=[candidate(original)], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("quarantine", "duplicate.normalized_source")
    assert report.candidates[0].identical_normalized


def test_fully_obfuscated_copies_are_caught() -> None:
    for name, project in corpus().items():
        fp = fingerprint_project(obfuscate(project, 11))
        report = decide_source(fp, hotkey="hk-b", candidates=[candidate(corpus_fingerprints()[name])], policy=POLICY)
        assert report.outcome in ("quarantine", "reject"), (name, report.candidates)


def test_exact_copy_is_rejected_from_any_hotkey() -> None:
    original = corpus_fingerprints()["gpt_mini"]
    same_files = fingerprint_project(obfuscate(corpus()["gpt_mini"], 0, transforms=("cosmetic",)))
    for hotkey in ("hk-c", "hk-a"):
        report = decide_source(same_files, hotkey=hotkey, candidates=[candidate(original)], policy=POLICY)
        assert report.outcome == "reject"
        assert report.reason_code == "duplicate.exact_source"
        assert report.evidence[0].rule_id == "duplicate.exact_source"


@pytest.mark.parametrize("status", ["failed", "rejected", "completed"])
def test_a_hotkey_may_resubmit_its_own_code_after_a_run_that_earned_no_score(status: str) -> None:
    # Issue 16: a non-scoring smoke run (completed, not score-eligible), a failure or a
    # rejection of one's own code does not make the same code a duplicate of itself.
    original = corpus_fingerprints()["gpt_mini"]
    prior = candidate(original, status=status, scored=False)
    report = decide_source(original, hotkey="hk-a", candidates=[prior], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("allow", "similarity.own_resubmission")
    # ... while another hotkey's copy of that same unscored code is still a copy.
    other = decide_source(original, hotkey="hk-b", candidates=[prior], policy=POLICY)
    assert (other.outcome, other.reason_code) == ("reject", "duplicate.exact_source")


@pytest.mark.parametrize("status", ["pending", "running", "held"])
def test_resubmitting_code_still_in_flight_is_a_double(status: str) -> None:
    original = corpus_fingerprints()["gpt_mini"]
    prior = candidate(original, status=status, scored=False)
    report = decide_source(original, hotkey="hk-a", candidates=[prior], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("reject", "duplicate.exact_source")


def test_a_copiers_later_copy_does_not_block_the_authors_resubmission() -> None:
    # Issue 15: A's run failed, B copied it (rejected as a copy), A resubmits: the earliest of the
    # identical group is A's own, B's copy is no prior art against A.
    original = corpus_fingerprints()["gpt_mini"]
    failed = candidate(original, submission_id="a1", hotkey="hk-a", status="failed", minute=0)
    copy = candidate(original, submission_id="b1", hotkey="hk-b", status="rejected", minute=5)
    report = decide_source(original, hotkey="hk-a", candidates=[copy, failed], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("allow", "similarity.own_resubmission")
    # A third hotkey copying it is judged against A's original.
    third = decide_source(original, hotkey="hk-c", candidates=[copy, failed], policy=POLICY)
    assert third.outcome == "reject" and third.matched_submission_id == "a1"


def test_a_scored_own_run_makes_a_later_resubmission_a_double_even_after_an_unscored_one() -> None:
    original = corpus_fingerprints()["gpt_mini"]
    smoke = candidate(original, submission_id="a1", status="completed", scored=False, minute=0)
    scored = candidate(original, submission_id="a2", status="completed", scored=True, minute=5)
    report = decide_source(original, hotkey="hk-a", candidates=[smoke, scored], policy=POLICY)
    assert (report.outcome, report.matched_submission_id) == ("reject", "a2")


def test_exact_copy_of_a_quarantined_submission_is_only_quarantined() -> None:
    original = corpus_fingerprints()["gpt_mini"]
    report = decide_source(
        original, hotkey="hk-c", candidates=[candidate(original, status="quarantined")], policy=POLICY
    )
    assert report.outcome == "quarantine"
    assert report.reason_code == "duplicate.exact_source_unsettled"


def test_the_earliest_exact_match_is_named() -> None:
    original = corpus_fingerprints()["gpt_mini"]
    later = candidate(original, submission_id="z-later", hotkey="hk-x", minute=5)
    first = candidate(original, submission_id="b-first", hotkey="hk-y", minute=1)
    report = decide_source(original, hotkey="hk-c", candidates=[later, first], policy=POLICY)
    assert report.matched_submission_id == "b-first"


def test_same_architecture_with_new_train_step_is_a_variant_not_a_copy() -> None:
    original = corpus_fingerprints()["gpt_mini"]
    variant = fingerprint_project(with_new_train_step(corpus()["gpt_mini"]))
    report = decide_source(variant, hotkey="hk-d", candidates=[candidate(original)], policy=POLICY)
    assert report.outcome == "allow"
    assert report.reason_code == "similarity.variant"
    assert report.candidates[0].training_is_new


def test_same_architecture_with_the_stock_train_step_is_a_copy() -> None:
    # Adding the boilerplate training step brings nothing new and functional.
    project = corpus()["gpt_mini"]
    stock = project.files["model.py"] + (
        "\n\ndef train_step(model, batch, optimizer, ctx):\n    x, y = batch\n    logits = model(x)\n"
        "    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))\n"
        "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n    return loss\n"
    )
    fp = fingerprint_project(Project({"model.py": stock}))
    report = decide_source(fp, hotkey="hk-d", candidates=[candidate(corpus_fingerprints()["gpt_mini"])], policy=POLICY)
    assert report.outcome == "quarantine"


def test_independent_models_are_allowed() -> None:
    fps = corpus_fingerprints()
    for a, b in permutations(fps, 2):
        report = decide_source(fps[a], hotkey="hk-b", candidates=[candidate(fps[b])], policy=POLICY)
        assert report.outcome == "allow", (a, b, report.reason_code)
        assert not report.evidence


def test_padded_copy_is_detected_by_containment() -> None:
    original = corpus()["char_cnn"].files["model.py"]
    extra = corpus()["rwkv_lite"].files["model.py"].split("def build_model")[0].replace("import torch\n", "")
    # The copy keeps char_cnn and also builds (live, reachable) all of rwkv_lite's classes.
    padded = (
        original.replace(
            "return CharCNN(ctx.vocab_size)", "extra = RWKV(ctx.vocab_size)\n    return CharCNN(ctx.vocab_size), extra"
        )
        + "\n"
        + extra
    )
    fp = fingerprint_project(Project({"model.py": padded}))
    prior = corpus_fingerprints()["char_cnn"]
    report = decide_source(fp, hotkey="hk-p", candidates=[candidate(prior)], policy=POLICY)
    score = report.candidates[0]
    assert score.new_in_prior < 0.5 < 0.9 <= score.prior_in_new
    assert report.outcome == "quarantine"


def test_same_hotkey_near_copy_is_its_own_work() -> None:
    original = corpus_fingerprints()["wavenet"]
    copy = fingerprint_project(obfuscate(corpus()["wavenet"], 2, transforms=("rename", "shuffle_init", "commute")))
    assert copy.normalized_sha256 != original.normalized_sha256
    report = decide_source(copy, hotkey="hk-a", candidates=[candidate(original)], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("allow", "similarity.own_work")
    assert report.candidates[0].relation == "copy"


def test_no_candidates_allows() -> None:
    report = decide_source(corpus_fingerprints()["wavenet"], hotkey="x", candidates=[], policy=POLICY)
    assert (report.outcome, report.reason_code, report.candidates) == ("allow", "similarity.none", ())


def test_threshold_comes_from_the_policy() -> None:
    original = corpus_fingerprints()["gpt_mini"]
    text = corpus()["gpt_mini"].files["model.py"].replace("F.gelu(self.c_fc(x))", "F.relu(self.c_fc(x))")
    edited = fingerprint_project(Project({"model.py": text}))
    default = decide_source(edited, hotkey="hk-b", candidates=[candidate(original)], policy=POLICY)
    assert default.outcome == "quarantine"
    strict = SimilarityPolicy(quarantine_threshold=0.99, architecture_threshold=0.99)
    assert decide_source(edited, hotkey="hk-b", candidates=[candidate(original)], policy=strict).outcome == "allow"


def test_report_json_round_trip() -> None:
    original = corpus_fingerprints()["alibi_encoder"]
    copy = fingerprint_project(obfuscate(corpus()["alibi_encoder"], 3))
    report = decide_source(copy, hotkey="hk-b", candidates=[candidate(original)], policy=POLICY)
    assert DuplicateReport.from_json(report.to_json()) == report


def test_pair_sandbox_cannot_be_switched_on_yet() -> None:
    with pytest.raises(ConfigError, match="pair_sandbox"):
        parse_runtime_config({"similarity": {"pair_sandbox_enabled": True}})


# ------------------------------------------------------------------------------------- graphs


def _prior(graph: dict[str, Any], graph_hash: str, *, hotkey: str, source: Any, owner: str | None = None) -> GraphPrior:
    return GraphPrior(
        submission_id=f"s-{hotkey}",
        hotkey=hotkey,
        status="completed",
        created_at=T0,
        graph=graph_fingerprint(graph_hash, graph),
        source=source,
        family_owner_hotkey=owner,
        family_owner_submission_id=f"s-{owner}" if owner else None,
    )


def test_same_graph_with_new_training_code_attaches_to_the_family() -> None:
    a_src = corpus_fingerprints()["gpt_mini"]
    d_src = fingerprint_project(with_new_train_step(corpus()["gpt_mini"]))
    prior = _prior(graph_doc("GPT", "wte"), "h1", hotkey="hk-a", source=a_src, owner="hk-a")
    report = decide_graph("h1", graph_doc("GPT", "wte"), hotkey="hk-d", source=d_src, priors=[prior], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("attach", "duplicate.graph_variant")
    assert report.attach_to == "h1" and report.family_owner_hotkey == "hk-a"
    assert report.matched_submission_id == "s-hk-a"


def test_same_graph_with_cosmetic_source_changes_is_a_copy() -> None:
    a_src = corpus_fingerprints()["gpt_mini"]
    copy_src = fingerprint_project(obfuscate(corpus()["gpt_mini"], 5, transforms=("cosmetic", "dead_code", "commute")))
    prior = _prior(graph_doc("GPT", "wte"), "h1", hotkey="hk-a", source=a_src, owner="hk-a")
    report = decide_graph("h1", graph_doc("GPT", "wte"), hotkey="hk-e", source=copy_src, priors=[prior], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("quarantine", "duplicate.graph_cosmetic_copy")
    assert report.evidence


def test_renamed_graph_with_a_new_hash_is_ambiguous() -> None:
    other_src = corpus_fingerprints()["wavenet"]
    prior = _prior(graph_doc("GPT", "wte"), "h1", hotkey="hk-a", source=corpus_fingerprints()["gpt_mini"])
    renamed = graph_doc("Zq", "tokens")
    assert graph_fingerprint("x", renamed).features == prior.graph.features
    report = decide_graph("h2", renamed, hotkey="hk-b", source=other_src, priors=[prior], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("quarantine", "duplicate.graph_ambiguous")
    mine = decide_graph("h2", renamed, hotkey="hk-a", source=other_src, priors=[prior], policy=POLICY)
    assert mine.outcome == "allow"


def test_different_graph_is_allowed() -> None:
    prior = _prior(graph_doc("GPT", "wte"), "h1", hotkey="hk-a", source=corpus_fingerprints()["gpt_mini"])
    wider = graph_doc("Other", "emb", width=64)
    report = decide_graph(
        "h3", wider, hotkey="hk-b", source=corpus_fingerprints()["wavenet"], priors=[prior], policy=POLICY
    )
    assert report.outcome == "allow"
    # The same structure at another scale: the structure matches, the separate width check does not.
    [scored] = report.candidates
    assert scored.graph_similarity == 1.0
    assert scored.width_similarity is not None and scored.width_similarity < 0.75


def test_a_width_tweak_of_another_hotkeys_graph_is_ambiguous() -> None:
    prior = _prior(graph_doc("GPT", "wte"), "h1", hotkey="hk-a", source=corpus_fingerprints()["gpt_mini"])
    tweaked = graph_doc("Other", "emb", width=18)
    report = decide_graph(
        "h3", tweaked, hotkey="hk-b", source=corpus_fingerprints()["wavenet"], priors=[prior], policy=POLICY
    )
    assert (report.outcome, report.reason_code) == ("quarantine", "duplicate.graph_ambiguous")


def test_own_family_attaches_to_itself() -> None:
    src = corpus_fingerprints()["gpt_mini"]
    prior = _prior(graph_doc("GPT", "wte"), "h1", hotkey="hk-a", source=src, owner="hk-a")
    report = decide_graph("h1", graph_doc("GPT", "wte"), hotkey="hk-a", source=src, priors=[prior], policy=POLICY)
    assert (report.outcome, report.reason_code) == ("attach", "duplicate.graph_own_family")


def test_value_sets_built_once_are_the_fingerprints_own() -> None:
    """`hash_sets` (built once per fingerprint per decision) is `hash_set` by part, and the scores
    computed from it equal those of the plain containment of each pair."""
    fps = corpus_fingerprints()
    for fp in fps.values():
        sets = hash_sets(fp)
        assert sets.all == fp.hash_set()
        assert sets.architecture == fp.hash_set(["architecture"])
        assert sets.training == fp.hash_set(["training"])
    names = sorted(fps)
    pairs = [(fps[a], fps[b]) for a, b in pairwise(names)]
    pairs += [(fingerprint_project(obfuscate(corpus()[name], 3)), fps[name]) for name in names[:4]]
    for new, prior in pairs:
        compared = compare_sources(new, prior, POLICY)
        x, y = new.hash_set(), prior.hash_set()
        assert compared.shared == len(x & y)
        assert compared.new_in_prior == containment(x, y) and compared.prior_in_new == containment(y, x)
        arch_x, arch_y = new.hash_set(["architecture"]), prior.hash_set(["architecture"])
        if new.architecture_sha256 != prior.architecture_sha256:
            assert compared.architecture_similarity == max(containment(arch_x, arch_y), containment(arch_y, arch_x))
    assert any(compare_sources(new, prior, POLICY).shared for new, prior in pairs)
