"""The duplicate decision: reject, attach, quarantine or allow, with the scores and evidence.

Pure functions over fingerprints the store has already found; no database, no I/O. The line
between a variant and a copy is drawn by what is new and functional, not by how much text moved:

- the same code as an earlier submission (comments, docstrings and formatting aside) is an exact
  duplicate: reject;
- the same normalized program (names, order, literals, dead code aside) is a copy: quarantine when
  another hotkey wrote it (the operator decides), allow when it is the hotkey's own;
- architecture code reused with training code (`configure_optimizer`, `train_step`) of one's own
  is a variant: allowed at the source check and attached to the family at the graph check;
- architecture reused with nothing new and functional is a copy: quarantine when another hotkey
  wrote the original, allow when it is the same hotkey's own earlier work.

Prior art is every earlier submission, whatever became of it (failed, rejected, quarantined, a
non-scoring smoke run): code does not stop being someone's first because its run failed. What a
prior's outcome changes is only the verdict against its *own* author: a hotkey resubmitting the
same code after a run that earned no score (failed, rejected, non-scoring) is not copying anyone.
Ownership of an architecture family is a separate thing and needs a score (`store/scores.py`):
the reports here name an owner only when the `architectures` table has one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from itertools import compress
from typing import Any, Literal

from prism.evidence import Evidence, evidence_from_json, evidence_to_json
from prism.review.similarity.fingerprint import SourceFingerprint
from prism.review.similarity.graph import (
    WIDTH_NEAR,
    GraphAdapter,
    GraphFingerprint,
    graph_fingerprint,
    graph_similarity,
    prism_graph_adapter,
    width_similarity,
)
from prism.runtime_config import SimilarityPolicy

Outcome = Literal["reject", "attach", "quarantine", "allow"]
Relation = Literal["exact", "copy", "variant", "partial", "unrelated"]
Stage = Literal["source", "graph"]

# A prior whose own standing is unresolved: matching it is suspicious, never a final rejection.
UNSETTLED_STATUSES = frozenset({"quarantined"})
# A prior still on its way to a result: the same hotkey sending the same code again is a double.
IN_FLIGHT_STATUSES = frozenset({"pending", "running", "held"})
MAX_MATCHED_REGIONS = 5
_SEVERITY: Mapping[Outcome, int] = {"reject": 3, "quarantine": 2, "attach": 1, "allow": 0}


@dataclass(frozen=True, slots=True)
class Candidate:
    """An earlier submission found by the store's band index, with its stored fingerprint."""

    submission_id: str
    hotkey: str
    status: str
    created_at: datetime
    band_hits: int
    fingerprint: SourceFingerprint
    scored: bool = False  # completed with a score-eligible result
    # The fingerprint's values split by part when the store has them already (its decode cache),
    # else None: exactly `value_parts(fingerprint)`, only not split again per lookup.
    parts: ValueParts | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class GraphPrior:
    """An earlier submission's architecture graph (same hash or structurally close)."""

    submission_id: str
    hotkey: str
    status: str
    created_at: datetime
    graph: GraphFingerprint
    source: SourceFingerprint | None
    family_owner_hotkey: str | None = None  # the `architectures` row for this hash, if any
    family_owner_submission_id: str | None = None


@dataclass(frozen=True, slots=True)
class RegionMatch:
    new_path: str
    new_name: str
    new_line: int
    new_end_line: int
    prior_path: str
    prior_name: str
    prior_line: int
    prior_end_line: int
    shared: int


@dataclass(frozen=True, slots=True)
class CandidateScore:
    submission_id: str
    hotkey: str
    status: str
    relation: Relation
    shared: int
    new_in_prior: float  # share of the new submission's fingerprints found in the prior one
    prior_in_new: float  # share of the prior's fingerprints found in the new one (padded copies)
    architecture_similarity: float
    training_is_new: bool
    identical_normalized: bool
    graph_similarity: float | None
    matched_regions: tuple[RegionMatch, ...]
    prior_scored: bool = False  # the prior completed with a score-eligible result
    width_similarity: float | None = None  # graph stage: sorted parameter sizes compared


@dataclass(frozen=True, slots=True)
class DuplicateReport:
    stage: Stage
    outcome: Outcome
    reason_code: str
    explanation: str
    candidates: tuple[CandidateScore, ...]
    evidence: tuple[Evidence, ...]
    matched_submission_id: str | None = None
    attach_to: str | None = None  # the family's graph hash when the outcome is attach
    family_owner_hotkey: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = evidence_to_json(self.evidence)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DuplicateReport:
        candidates = tuple(
            CandidateScore(
                **{
                    **c,
                    "matched_regions": tuple(RegionMatch(**m) for m in c["matched_regions"]),
                }
            )
            for c in data["candidates"]
        )
        return cls(
            stage=data["stage"],
            outcome=data["outcome"],
            reason_code=str(data["reason_code"]),
            explanation=str(data["explanation"]),
            candidates=candidates,
            evidence=evidence_from_json(data["evidence"]),
            matched_submission_id=data.get("matched_submission_id"),
            attach_to=data.get("attach_to"),
            family_owner_hotkey=data.get("family_owner_hotkey"),
        )


@dataclass(frozen=True, slots=True)
class _Comparison:
    relation: Relation
    shared: int
    new_in_prior: float
    prior_in_new: float
    architecture_similarity: float
    training_is_new: bool
    common: frozenset[int]  # the shared values themselves


@dataclass(frozen=True, slots=True)
class HashSets:
    """A fingerprint's values as sets, whole and by part: built once per fingerprint, not per pair."""

    all: frozenset[int]
    architecture: frozenset[int]
    training: frozenset[int]


def hash_sets(fp: SourceFingerprint) -> HashSets:
    values, architecture, training = _parts(fp)
    return HashSets(frozenset(values), frozenset(architecture), frozenset(training))


@dataclass(frozen=True, slots=True)
class ValueParts:
    """A prior's values, whole and by part, as plain sequences: the comparison only iterates them."""

    all: Sequence[int]
    architecture: Sequence[int]
    training: Sequence[int]


def value_parts(fp: SourceFingerprint) -> ValueParts:
    return ValueParts(*_parts(fp))


def _parts(fp: SourceFingerprint) -> tuple[Sequence[int], list[int], list[int]]:
    """All values (unique), the architecture's and the training code's, as plain sequences."""
    kinds = [r.kind for r in fp.regions]
    # map/compress run in C: this is on the lookup's hot path, once per candidate.
    architecture = list(compress(fp.hashes, map([k == "architecture" for k in kinds].__getitem__, fp.hash_regions)))
    training = list(compress(fp.hashes, map([k == "training" for k in kinds].__getitem__, fp.hash_regions)))
    return fp.hashes, architecture, training


def compare_sources(
    new: SourceFingerprint,
    prior: SourceFingerprint,
    policy: SimilarityPolicy,
    *,
    new_sets: HashSets | None = None,
    prior_parts: HashSets | ValueParts | None = None,
) -> _Comparison:
    """Containment both ways, and whether the new code brings functional training code.

    The new side is a set (built once per decision); the prior's side is only iterated, so no set
    is built per candidate. A fingerprint's values are unique, so their count is the set's size.
    """
    mine = new_sets or hash_sets(new)
    parts = prior_parts or value_parts(prior)
    b, arch_b, train_b = parts.all, parts.architecture, parts.training
    a = mine.all
    common = a.intersection(b)  # each intersection once: this runs for every candidate of every lookup
    shared = len(common)
    new_in_prior, prior_in_new = _share(shared, len(a)), _share(shared, len(b))
    arch_a = mine.architecture
    arch_shared = len(arch_a.intersection(arch_b))
    arch_similarity = max(_share(arch_shared, len(arch_a)), _share(arch_shared, len(arch_b)))
    if new.architecture_sha256 == prior.architecture_sha256:
        arch_similarity = 1.0
    arch_reused = arch_similarity >= policy.architecture_threshold and (
        arch_shared >= policy.min_shared_fingerprints // 2 or arch_similarity == 1.0
    )
    train_a = mine.training
    training_is_new = (
        new.training_sha256 != prior.training_sha256
        and _share(len(train_a.intersection(train_b)), len(train_a)) < policy.variant_training_max
        and len(train_a.difference(b)) >= policy.min_new_training_fingerprints
    )
    near = max(new_in_prior, prior_in_new) >= policy.quarantine_threshold and shared >= policy.min_shared_fingerprints
    relation: Relation
    if new.source_sha256 == prior.source_sha256:
        relation = "exact"
    elif new.normalized_sha256 == prior.normalized_sha256:
        relation = "copy"  # only names, order, comments, strings or dead code differ
    elif arch_reused and training_is_new:
        relation = "variant"
    elif arch_reused and (near or arch_similarity == 1.0):
        relation = "copy"
    elif near:
        relation = "partial"
    else:
        relation = "unrelated"
    return _Comparison(relation, shared, new_in_prior, prior_in_new, arch_similarity, training_is_new, common)


def _share(count: int, size: int) -> float:
    """`containment` given the sizes of the intersection and the part (0 for an empty part)."""
    return count / size if size else 0.0


def _region_of(fp: SourceFingerprint) -> dict[int, int]:
    """Each value's (first) region index."""
    return dict(zip(fp.hashes, fp.hash_regions, strict=True))


def _matched_regions(
    new: SourceFingerprint, prior: SourceFingerprint, shared: frozenset[int], new_region: Mapping[int, int]
) -> tuple[RegionMatch, ...]:
    prior_region = _region_of(prior)
    # Both maps iterate the same set object, so they stay in step (and run in C).
    pairs = Counter(zip(map(new_region.__getitem__, shared), map(prior_region.__getitem__, shared), strict=True))
    out = []
    for (i, j), count in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_MATCHED_REGIONS]:
        n, p = new.regions[i], prior.regions[j]
        out.append(RegionMatch(n.path, n.name, n.line, n.end_line, p.path, p.name, p.line, p.end_line, count))
    return tuple(out)


def _score(
    new: SourceFingerprint,
    prior: SourceFingerprint,
    *,
    submission_id: str,
    hotkey: str,
    status: str,
    policy: SimilarityPolicy,
    graph_sim: float | None = None,
    scored: bool = False,
    new_sets: HashSets | None = None,
    new_region: Mapping[int, int] | None = None,  # the new fingerprint's value -> region, built once
    prior_parts: ValueParts | None = None,
) -> CandidateScore:
    c = compare_sources(new, prior, policy, new_sets=new_sets, prior_parts=prior_parts)
    if c.relation == "unrelated":
        regions: tuple[RegionMatch, ...] = ()
    else:
        regions = _matched_regions(new, prior, c.common, new_region or _region_of(new))
    return CandidateScore(
        submission_id=submission_id,
        hotkey=hotkey,
        status=status,
        relation=c.relation,
        shared=c.shared,
        new_in_prior=round(c.new_in_prior, 4),
        prior_in_new=round(c.prior_in_new, 4),
        architecture_similarity=round(c.architecture_similarity, 4),
        training_is_new=c.training_is_new,
        identical_normalized=new.normalized_sha256 == prior.normalized_sha256,
        graph_similarity=None if graph_sim is None else round(graph_sim, 4),
        matched_regions=regions,
        prior_scored=scored,
    )


def _evidence(
    rule_id: str, new: SourceFingerprint, score: CandidateScore | None, explanation: str
) -> tuple[Evidence, ...]:
    if score is not None and score.matched_regions:
        by_name = {(r.path, r.name): r for r in new.regions}
        out = []
        for m in score.matched_regions:
            region = by_name.get((m.new_path, m.new_name))
            out.append(
                Evidence(
                    rule_id=rule_id,
                    path=m.new_path,
                    line=m.new_line,
                    explanation=(
                        f"{explanation}: {m.new_name} (lines {m.new_line}-{m.new_end_line}) matches "
                        f"{m.prior_name} in {m.prior_path}:{m.prior_line}-{m.prior_end_line} of submission "
                        f"{score.submission_id} ({m.shared} shared fingerprints)"
                    ),
                    snippet_sha256=region.snippet_sha256 if region else "",
                )
            )
        return tuple(out)
    first = new.regions[0] if new.regions else None
    return (
        Evidence(
            rule_id=rule_id,
            path=first.path if first else "",
            line=first.line if first else 0,
            explanation=explanation,
            snippet_sha256=first.snippet_sha256 if first else "",
        ),
    )


def _source_option(score: CandidateScore, *, own: bool) -> tuple[Outcome, str, str] | None:
    """What one candidate alone would make of the new submission (None: nothing to say)."""
    if score.relation == "exact" and score.status in UNSETTLED_STATUSES:
        return (
            "quarantine",
            "duplicate.exact_source_unsettled",
            "the source is identical to a submission whose own review is unresolved",
        )
    if score.relation == "exact" and own and not score.prior_scored and score.status not in IN_FLIGHT_STATUSES:
        # Issue 16: a smoke run, a failure or a rejection earned nothing; the author may try again.
        return (
            "allow",
            "similarity.own_resubmission",
            f"resubmits this hotkey's own code from a run that earned no score ({score.status}"
            + (", non-scoring" if score.status == "completed" else "")
            + ")",
        )
    if score.relation == "exact":
        return (
            "reject",
            "duplicate.exact_source",
            "the source is identical to an earlier submission"
            + (" of this hotkey (scored or still in flight)" if own else " of another hotkey"),
        )
    if score.relation == "copy" and not own and score.identical_normalized:
        return (
            "quarantine",
            "duplicate.normalized_source",
            "the code is identical to another hotkey's earlier submission once names, order, comments, "
            "literals, equivalent forms and dead code are normalized",
        )
    if score.relation == "copy" and not own:
        return (
            "quarantine",
            "duplicate.near_source",
            "the code is a near-copy of another hotkey's earlier submission with nothing new and functional",
        )
    if score.relation == "copy":
        return ("allow", "similarity.own_work", "a near-copy of this hotkey's own earlier submission")
    if score.relation == "variant":
        return ("allow", "similarity.variant", "reuses an earlier architecture with new training code")
    return None


def _originals(scores: Sequence[CandidateScore], hotkey: str) -> list[CandidateScore]:
    """Drop candidates that are themselves copies of an earlier candidate in the same group.

    Among the candidates with the same code as written (or the same normalized program), the
    earliest is the original; later ones of other hotkeys copied it, and judging against them would
    let a copier's rejected copy block the original author's own resubmission. The hotkey's own
    later runs of that code stay: a scored one still makes a further resubmission a double.
    """
    first_exact: str | None = None
    first_normalized: str | None = None
    out = []
    for score in scores:  # earliest first
        if score.relation == "exact":
            if first_exact is not None and (score.hotkey != hotkey or first_exact != hotkey):
                continue
            first_exact = first_exact or score.hotkey
        elif score.identical_normalized:
            if first_normalized is not None:
                continue
            first_normalized = score.hotkey
        out.append(score)
    return out


def decide_source(
    new: SourceFingerprint, *, hotkey: str, candidates: Sequence[Candidate], policy: SimilarityPolicy
) -> DuplicateReport:
    """The source check, run before the LLM review; `candidates` come from `find_candidates`."""
    ordered = sorted(candidates, key=lambda c: (c.created_at, c.submission_id))
    mine, region = hash_sets(new), _region_of(new)
    scores = [
        _score(
            new,
            c.fingerprint,
            submission_id=c.submission_id,
            hotkey=c.hotkey,
            status=c.status,
            policy=policy,
            scored=c.scored,
            new_sets=mine,
            new_region=region,
            prior_parts=c.parts,
        )
        for c in ordered
    ]
    verdict: tuple[Outcome, str, str, CandidateScore | None] = ("allow", "similarity.none", "no similar prior", None)
    for score in _originals(scores, hotkey):  # earliest first, so ties go to the first discoverer
        option = _source_option(score, own=score.hotkey == hotkey)
        if option is None:
            continue
        if verdict[3] is None or _SEVERITY[option[0]] > _SEVERITY[verdict[0]]:
            verdict = (*option, score)
    outcome, reason, explanation, matched = verdict
    scores.sort(key=lambda s: -max(s.new_in_prior, s.prior_in_new))
    evidence = _evidence(reason, new, matched, explanation) if outcome in ("reject", "quarantine") else ()
    return DuplicateReport(
        stage="source",
        outcome=outcome,
        reason_code=reason,
        explanation=explanation,
        candidates=tuple(scores),
        evidence=evidence,
        matched_submission_id=matched.submission_id if matched else None,
    )


def decide_graph(
    graph_hash: str,
    graph: Mapping[str, Any],
    *,
    hotkey: str,
    source: SourceFingerprint,
    priors: Sequence[GraphPrior],
    policy: SimilarityPolicy,
    adapter: GraphAdapter = prism_graph_adapter,
) -> DuplicateReport:
    """The graph check, run after `inspect`; `priors` come from `find_graph_priors`."""
    mine = graph_fingerprint(graph_hash, graph, adapter=adapter)
    ordered = sorted(priors, key=lambda p: (p.created_at, p.submission_id))
    scored: list[tuple[GraphPrior, CandidateScore]] = []
    sets = hash_sets(source)
    for p in ordered:
        sim = 1.0 if p.graph.graph_hash == graph_hash else graph_similarity(mine, p.graph)
        widths = width_similarity(mine, p.graph)
        if p.source is not None:
            score = _score(
                source, p.source, submission_id=p.submission_id, hotkey=p.hotkey, status=p.status,
                policy=policy, graph_sim=sim, new_sets=sets,
            )  # fmt: skip
        else:
            score = CandidateScore(
                p.submission_id, p.hotkey, p.status, "unrelated", 0, 0.0, 0.0, 0.0, False, False, sim, ()
            )
        scored.append((p, replace(score, width_similarity=None if widths is None else round(widths, 4))))
    report = _graph_verdict(graph_hash, hotkey, source, scored, policy)
    return report


def _graph_verdict(
    graph_hash: str,
    hotkey: str,
    source: SourceFingerprint,
    scored: Sequence[tuple[GraphPrior, CandidateScore]],
    policy: SimilarityPolicy,
) -> DuplicateReport:
    scores = tuple(s for _, s in scored)
    same = [(p, s) for p, s in scored if p.graph.graph_hash == graph_hash]
    if same:
        # Ownership needs a score: only the `architectures` row names an owner. Without one, the
        # first score-eligible result of this family (possibly this one) will claim it.
        owned = next((p for p, _ in same if p.family_owner_hotkey), None)
        owner_hotkey = owned.family_owner_hotkey if owned else None
        first = owned or same[0][0]
        # Another hotkey's same graph with nothing new to train is a copy, however the source was
        # dressed: an implementation variant is attached only for new training code.
        copies = [
            s for p, s in same if p.hotkey != hotkey and (s.relation in ("exact", "copy") or not s.training_is_new)
        ]
        if copies:
            explanation = "same architecture graph as another hotkey's earlier submission and no new training code"
            return DuplicateReport(
                "graph", "quarantine", "duplicate.graph_cosmetic_copy", explanation, scores,
                _evidence("duplicate.graph_cosmetic_copy", source, copies[0], explanation),
                matched_submission_id=copies[0].submission_id, family_owner_hotkey=owner_hotkey,
            )  # fmt: skip
        own = owner_hotkey == hotkey or (owner_hotkey is None and all(p.hotkey == hotkey for p, _ in same))
        reason = "duplicate.graph_own_family" if own else "duplicate.graph_variant"
        if owner_hotkey is not None:
            explanation = f"same architecture graph as the family owned by {owner_hotkey}; new code attached"
        else:
            explanation = (
                f"same architecture graph as earlier submission {first.submission_id}; the family has no owner "
                "yet (ownership goes to its first score-eligible result); new code attached"
            )
        return DuplicateReport(
            "graph", "attach", reason, explanation, scores,
            _evidence(reason, source, None, explanation),
            matched_submission_id=(owned.family_owner_submission_id if owned else None) or first.submission_id,
            attach_to=graph_hash, family_owner_hotkey=owner_hotkey,
        )  # fmt: skip
    # Structure alone (labels carry no widths) plus a separate width check: a copy with nudged
    # widths is close on both; the same textbook structure at another scale is not.
    close = [
        (p, s)
        for p, s in scored
        if (s.graph_similarity or 0.0) >= policy.graph_quarantine_threshold
        and (s.width_similarity is None or s.width_similarity >= WIDTH_NEAR)
    ]
    others = [(p, s) for p, s in close if p.hotkey != hotkey]
    if others:
        p, s = max(others, key=lambda ps: (ps[1].graph_similarity or 0.0, -ps[0].created_at.timestamp()))
        explanation = (
            f"architecture graph differs in hash but is structurally near-identical "
            f"(structure {s.graph_similarity}, widths {s.width_similarity}) to another hotkey's submission "
            f"{p.submission_id}"
        )
        return DuplicateReport(
            "graph", "quarantine", "duplicate.graph_ambiguous", explanation, scores,
            _evidence("duplicate.graph_ambiguous", source, s if s.matched_regions else None, explanation),
            matched_submission_id=p.submission_id, family_owner_hotkey=p.family_owner_hotkey,
        )  # fmt: skip
    if close:
        return DuplicateReport(
            "graph", "allow", "similarity.own_graph_variant",
            "structurally close to this hotkey's own earlier architecture", scores, (),
        )  # fmt: skip
    return DuplicateReport("graph", "allow", "similarity.none", "no matching architecture graph", scores, ())
