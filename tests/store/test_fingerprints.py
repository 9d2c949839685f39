"""The fingerprint tables and candidate index, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session

from prism.intake.project import Project
from prism.review.similarity import FINGERPRINT_VERSION, SourceFingerprint, fingerprint_project
from prism.review.similarity.duplicates import decide_graph, decide_source
from prism.review.similarity.graph import graph_fingerprint
from prism.runtime_config import SimilarityPolicy
from prism.store.base import Base
from prism.store.db import make_engine
from prism.store.fingerprint_cache import FingerprintCache
from prism.store.fingerprints import (
    SimilarityBand,
    SourceFingerprintRow,
    find_candidates,
    find_graph_priors,
    load_fingerprint,
    load_reports,
    microseconds,
    save_fingerprint,
    save_fingerprint_once,
    save_fingerprints_bulk,
    save_graph_fingerprint,
    save_report,
    unfingerprinted_priors,
)
from prism.store.models import Architecture, Evaluation, Miner, Submission
from prism.store.scores import claim_architecture, owners
from tests.review.similarity_support import T0, corpus, corpus_fingerprints, graph_doc, with_new_train_step
from tests.review.variants import obfuscate

POLICY = SimilarityPolicy()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'fp.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _submit(session: Session, sid: str, hotkey: str, *, status: str = "completed", minute: int = 0) -> None:
    if session.get(Miner, hotkey) is None:
        session.add(Miner(hotkey=hotkey))
    session.add(
        Submission(
            id=sid,
            hotkey=hotkey,
            status=status,
            archive_sha256=sid.ljust(64, "0"),
            filename="model.zip",
            byte_size=1,
            epoch=0,
            created_at=T0 + timedelta(minutes=minute),
        )
    )
    session.flush()


def _stored(session: Session, sid: str, hotkey: str, fp: SourceFingerprint, **kw: object) -> None:
    _submit(session, sid, hotkey, **kw)  # type: ignore[arg-type]
    save_fingerprint(session, sid, fp)


def test_round_trip_and_replace(engine: Engine) -> None:
    fp = corpus_fingerprints()["gpt_mini"]
    with Session(engine) as session, session.begin():
        _stored(session, "s1", "hk-a", fp)
        assert load_fingerprint(session, "s1") == fp
        save_fingerprint(session, "s1", corpus_fingerprints()["wavenet"])  # a re-run replaces
        assert load_fingerprint(session, "s1") == corpus_fingerprints()["wavenet"]
        assert load_fingerprint(session, "nope") is None


def test_candidates_are_prior_art_only(engine: Engine) -> None:
    fps = corpus_fingerprints()
    target = fps["alibi_encoder"]
    with Session(engine) as session, session.begin():
        _stored(session, "orig", "hk-a", target, minute=0)
        _stored(session, "failed", "hk-f", target, status="failed", minute=1)
        _stored(session, "rejected", "hk-r", target, status="rejected", minute=2)
        _stored(session, "quar", "hk-q", target, status="quarantined", minute=3)
        for i, name in enumerate(n for n in fps if n != "alibi_encoder"):
            _stored(session, f"other-{i}", f"hk-{i}", fps[name], minute=10 + i)
        _stored(session, "new", "hk-b", target, status="running", minute=50)
        _stored(session, "later", "hk-l", target, status="pending", minute=60)

        found = {c.submission_id for c in find_candidates(session, target, submission_id="new")}
        # Issue 15: every earlier submission is prior art, whatever became of it.
        assert {"orig", "quar", "failed", "rejected"} <= found
        assert not found & {"new", "later"}
        assert not {
            c.submission_id for c in find_candidates(session, target, submission_id="new", exclude_hotkey="hk-a")
        } & {"orig"}
        assert {c.submission_id for c in find_candidates(session, target)} >= {"orig", "quar", "new", "later"}
        assert len(find_candidates(session, target, limit=2)) == 2


def test_prior_art_bound_is_arrival_then_id_on_both_lookup_paths(engine: Engine) -> None:
    """Band postings and the exact digest use one rule: created earlier, or at the same microsecond
    with a smaller id; a submission the table does not know excludes only itself."""
    fps = corpus_fingerprints()
    target = fps["gpt_mini"]
    with Session(engine) as session, session.begin():
        for sid in ("tie-a", "tie-b", "tie-c"):
            _stored(session, sid, f"hk-{sid}", target, minute=5)
        _stored(session, "early", "hk-e", target, minute=1)
        for posting_cap in (64, 1):
            found = [
                c.submission_id
                for c in find_candidates(session, target, submission_id="tie-b", posting_cap=posting_cap)
            ]
            assert sorted(found) == ["early", "tie-a"], posting_cap
        created = session.get(Submission, "tie-b").created_at  # type: ignore[union-attr]
        given = find_candidates(session, target, submission_id="tie-b", created_at=created)
        assert sorted(c.submission_id for c in given) == ["early", "tie-a"]  # the caller's row, same bound
        # The arrival is what postings are ordered and bounded by: the same microsecond as tie-b.
        arrival = (
            session.execute(select(SimilarityBand.created_us).where(SimilarityBand.submission_id == "tie-b"))
            .scalars()
            .all()
        )
        assert set(arrival) == {microseconds(created)}
        unknown = {c.submission_id for c in find_candidates(session, target, submission_id="not-stored")}
        assert unknown == {"early", "tie-a", "tie-b", "tie-c"}


def test_a_miner_resubmitting_after_its_own_failure_is_not_a_duplicate(engine: Engine) -> None:
    fp = corpus_fingerprints()["ssm_diag"]
    with Session(engine) as session, session.begin():
        _stored(session, "first", "hk-a", fp, status="failed", minute=0)
        _stored(session, "copy", "hk-b", fp, status="running", minute=3)
        _stored(session, "retry", "hk-a", fp, status="running", minute=5)
        # B's copy of A's failed run is a copy: A's code is prior art although its run failed.
        b_report = decide_source(
            fp, hotkey="hk-b", candidates=find_candidates(session, fp, submission_id="copy"), policy=POLICY
        )
        assert (b_report.outcome, b_report.matched_submission_id) == ("reject", "first")
        session.get(Submission, "copy").status = "rejected"  # type: ignore[union-attr]
        session.flush()
        # ... and B's rejected copy does not make A's own retry a duplicate of B.
        candidates = find_candidates(session, fp, submission_id="retry")
        report = decide_source(fp, hotkey="hk-a", candidates=candidates, policy=POLICY)
        assert (report.outcome, report.reason_code) == ("allow", "similarity.own_resubmission")


def test_candidates_know_whether_their_run_was_scored(engine: Engine) -> None:
    fp = corpus_fingerprints()["ssm_diag"]
    with Session(engine) as session, session.begin():
        _stored(session, "smoke", "hk-a", fp, status="completed", minute=0)
        _stored(session, "official", "hk-a", fp, status="completed", minute=1)
        for sid, eligible in (("smoke", False), ("official", True)):
            session.add(
                Evaluation(
                    submission_id=sid, hotkey="hk-a", epoch=0, mode="m", score_eligible=eligible,
                    bits_per_byte=2.0, heldout_bits_per_byte=2.0, final_score=0.5, parameter_count=1,
                    architecture_hash="h", manifest={}, created_at=T0,
                )
            )  # fmt: skip
        _stored(session, "again", "hk-a", fp, status="running", minute=5)
        scored = {c.submission_id: c.scored for c in find_candidates(session, fp, submission_id="again")}
        assert scored == {"smoke": False, "official": True}


def test_unparsable_priors_are_tombstoned_once(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        _submit(session, "broken", "hk-a", status="rejected", minute=0)
        assert unfingerprinted_priors(session, before=T0 + timedelta(minutes=9)) == ["broken"]
        save_fingerprint_once(session, "broken", None)
        assert unfingerprinted_priors(session, before=T0 + timedelta(minutes=9)) == []
        assert load_fingerprint(session, "broken") is None
        _stored(session, "new", "hk-b", corpus_fingerprints()["gpt_mini"], minute=5)
        assert find_candidates(session, corpus_fingerprints()["gpt_mini"], submission_id="new") == []


def test_a_copy_is_found_among_many_by_the_band_index(engine: Engine) -> None:
    fps = corpus_fingerprints()
    with Session(engine) as session, session.begin():
        for i, (name, _fp) in enumerate(fps.items()):
            _submit(session, f"s-{name}", f"hk-{i}", minute=i)
        save_fingerprints_bulk(session, [(f"s-{name}", fp) for name, fp in fps.items()])
        for name, project in corpus().items():
            copy = fingerprint_project(obfuscate(project, 4))
            candidates = find_candidates(session, copy, limit=5)
            assert candidates and candidates[0].submission_id == f"s-{name}", name


def test_common_band_keys_are_capped_oldest_first(engine: Engine) -> None:
    fp = corpus_fingerprints()["lstm_tied"]
    with Session(engine) as session, session.begin():
        for i in range(30):
            _submit(session, f"s{i:02d}", f"hk-{i}", minute=i)
        save_fingerprints_bulk(session, [(f"s{i:02d}", fp) for i in range(30)])
        found = find_candidates(session, fp, posting_cap=3, limit=50)
        # The exact-hash lookup adds up to `limit` oldest; the band postings add at most 3 per key.
        assert found[0].submission_id == "s00"
        capped = find_candidates(session, fp, posting_cap=3, limit=3)
        assert [c.submission_id for c in capped] == ["s00", "s01", "s02"]


def test_lookup_reads_postings_not_the_table(engine: Engine) -> None:
    fp = corpus_fingerprints()["retention"]
    statements: list[str] = []
    with Session(engine) as session, session.begin():
        _stored(session, "s1", "hk-a", fp)
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        find_candidates(session, fp)
    assert all(
        "band_key =" in s or "normalized_sha256 =" in s or " IN " in s or "submissions.id =" in s
        for s in statements
        if "similarity_postings" in s or "source_fingerprints" in s
    )


def test_reports_are_stored_in_full(engine: Engine) -> None:
    original = corpus_fingerprints()["gpt_mini"]
    with Session(engine) as session, session.begin():
        _stored(session, "a", "hk-a", original)
        copy = fingerprint_project(obfuscate(corpus()["gpt_mini"], 2))
        _stored(session, "b", "hk-b", copy, status="running", minute=1)
        report = decide_source(
            copy, hotkey="hk-b", candidates=find_candidates(session, copy, submission_id="b"), policy=POLICY
        )
        save_report(session, "b", report)
        save_report(session, "b", report)  # idempotent per stage
        assert load_reports(session, "b") == [report]


def test_end_to_end_scenario(engine: Engine) -> None:
    """A submits; B renames A's code; C sends A's exact files; D brings a new train_step."""
    a_project = corpus()["gpt_mini"]
    projects = {
        "A": a_project,
        "B": obfuscate(a_project, 9, transforms=("rename", "reorder", "cosmetic", "commute")),
        "C": Project(dict(a_project.files)),
        "D": with_new_train_step(a_project),
    }
    gdoc = graph_doc("GPT", "wte")
    outcomes: dict[str, str] = {}
    with Session(engine) as session, session.begin():
        for minute, (who, project) in enumerate(projects.items()):
            sid, hotkey = f"sub-{who}", f"hk-{who}"
            fp = fingerprint_project(project)
            _stored(session, sid, hotkey, fp, status="running", minute=minute)
            report = decide_source(
                fp, hotkey=hotkey, candidates=find_candidates(session, fp, submission_id=sid), policy=POLICY
            )
            if report.outcome == "allow":
                gfp = graph_fingerprint("graph-1", gdoc)
                save_graph_fingerprint(session, sid, gfp)
                priors = find_graph_priors(session, gfp, submission_id=sid)
                report = decide_graph("graph-1", gdoc, hotkey=hotkey, source=fp, priors=priors, policy=POLICY)
                if report.outcome == "allow":
                    session.add(Architecture(graph_hash="graph-1", owner_hotkey=hotkey, owner_submission_id=sid))
            session.get(Submission, sid).status = {"allow": "completed", "attach": "completed"}.get(  # type: ignore[union-attr]
                report.outcome, "quarantined" if report.outcome == "quarantine" else "rejected"
            )
            session.flush()
            outcomes[who] = report.outcome
            if who == "D":
                assert report.attach_to == "graph-1" and report.family_owner_hotkey == "hk-A"
    assert outcomes == {"A": "allow", "B": "quarantine", "C": "reject", "D": "attach"}


def test_attach_names_only_the_owner_the_architectures_table_has(engine: Engine) -> None:
    """Issue 16: the graph report, the architectures table and the weights agree on the owner."""
    a_project = corpus()["gpt_mini"]
    d_project = with_new_train_step(a_project)
    gdoc = graph_doc("GPT", "wte")
    gfp = graph_fingerprint("graph-1", gdoc)
    with Session(engine) as session, session.begin():
        # A's run with this graph earned no score (a smoke run): nobody owns the family yet.
        _stored(session, "sub-A", "hk-A", fingerprint_project(a_project), status="completed", minute=0)
        save_graph_fingerprint(session, "sub-A", gfp)
        _stored(session, "sub-D", "hk-D", fingerprint_project(d_project), status="running", minute=1)
        priors = find_graph_priors(session, gfp, submission_id="sub-D")
        report = decide_graph(
            "graph-1", gdoc, hotkey="hk-D", source=fingerprint_project(d_project), priors=priors, policy=POLICY
        )
        assert (report.outcome, report.attach_to, report.family_owner_hotkey) == ("attach", "graph-1", None)
        assert "no owner yet" in report.explanation and "hk-A" not in report.explanation
        # D's score is the first: the score step's claim makes D the owner, as the report allowed.
        owner = claim_architecture(session, graph_hash="graph-1", hotkey="hk-D", submission_id="sub-D", graph={})
        assert owner.owner_hotkey == "hk-D" and owners(session) == {"graph-1": "hk-D"}
        # A later attach names D, and a later claim does not move it.
        _stored(session, "sub-E", "hk-E", fingerprint_project(d_project), status="running", minute=2)
        e_project = with_new_train_step(a_project)
        later = decide_graph(
            "graph-1", gdoc, hotkey="hk-E", source=fingerprint_project(e_project),
            priors=find_graph_priors(session, gfp, submission_id="sub-E"), policy=POLICY,
        )  # fmt: skip
        assert later.family_owner_hotkey == "hk-D"
        assert claim_architecture(session, graph_hash="graph-1", hotkey="hk-E", submission_id="sub-E", graph={})
        assert owners(session) == {"graph-1": "hk-D"}


def test_fingerprints_of_an_older_version_are_redone_not_lost(engine: Engine) -> None:
    fp = corpus_fingerprints()["gpt_mini"]
    with Session(engine) as session, session.begin():
        _stored(session, "old", "hk-a", fp, minute=0)
        session.execute(update(SourceFingerprintRow).values(version=FINGERPRINT_VERSION - 1))
        _stored(session, "new", "hk-b", fp, minute=5)
        assert find_candidates(session, fp, submission_id="new") == []  # an old row is not compared
        assert unfingerprinted_priors(session, before=T0 + timedelta(minutes=5)) == ["old"]
        save_fingerprint_once(session, "old", fp)
        assert unfingerprinted_priors(session, before=T0 + timedelta(minutes=5)) == []
        assert [c.submission_id for c in find_candidates(session, fp, submission_id="new")] == ["old"]


def test_the_decode_cache_changes_no_candidate_and_no_decision(engine: Engine) -> None:
    fps = corpus_fingerprints()
    shared = FingerprintCache()
    with Session(engine) as session, session.begin():
        for i, (name, _fp) in enumerate(fps.items()):
            _submit(session, f"s-{name}", f"hk-{i}", minute=i)
        save_fingerprints_bulk(session, [(f"s-{name}", fp) for name, fp in fps.items()])
        for name, project in list(corpus().items())[:6]:
            copy = fingerprint_project(obfuscate(project, 5))
            for _ in range(2):  # the second lookup is served from the cache
                cached = find_candidates(session, copy, limit=5, cache=shared)
                fresh = find_candidates(session, copy, limit=5, cache=FingerprintCache(max_entries=0))
                assert [(c.submission_id, c.fingerprint) for c in cached] == [
                    (c.submission_id, c.fingerprint) for c in fresh
                ]
                assert all(c.parts is not None for c in cached)
                with_sets = decide_source(copy, hotkey="hk-new", candidates=cached, policy=POLICY)
                without = decide_source(copy, hotkey="hk-new", candidates=fresh, policy=POLICY)
                assert with_sets == without
                assert with_sets.outcome == "quarantine", name
        assert shared.stats().hits > 0
        # A candidate re-fingerprinted in the database (it was cached above) is read as it now is.
        target = next(iter(fps))
        replacement = fps["wavenet" if target != "wavenet" else "gpt_mini"]
        save_fingerprint(session, f"s-{target}", replacement)
        found = {c.submission_id: c for c in find_candidates(session, replacement, limit=50, cache=shared)}
        assert found[f"s-{target}"].fingerprint == replacement
