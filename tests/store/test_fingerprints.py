"""The fingerprint tables and candidate index, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from prism.intake.project import Project
from prism.review.duplicates import decide_graph, decide_source
from prism.review.similarity import SourceFingerprint, fingerprint_project
from prism.review.similarity_graph import graph_fingerprint
from prism.runtime_config import SimilarityPolicy
from prism.store.base import Base
from prism.store.db import make_engine
from prism.store.fingerprints import (
    find_candidates,
    find_graph_priors,
    load_fingerprint,
    load_reports,
    save_fingerprint,
    save_fingerprints_bulk,
    save_graph_fingerprint,
    save_report,
)
from prism.store.models import Architecture, Miner, Submission
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
        assert {"orig", "quar"} <= found
        assert not found & {"failed", "rejected", "new", "later"}
        assert not {
            c.submission_id for c in find_candidates(session, target, submission_id="new", exclude_hotkey="hk-a")
        } & {"orig"}
        assert {c.submission_id for c in find_candidates(session, target)} >= {"orig", "quar", "new", "later"}
        assert len(find_candidates(session, target, limit=2)) == 2


def test_a_miner_resubmitting_after_its_own_failure_is_not_a_duplicate(engine: Engine) -> None:
    fp = corpus_fingerprints()["ssm_diag"]
    with Session(engine) as session, session.begin():
        _stored(session, "first", "hk-a", fp, status="failed", minute=0)
        _stored(session, "retry", "hk-a", fp, status="running", minute=5)
        candidates = find_candidates(session, fp, submission_id="retry")
        assert decide_source(fp, hotkey="hk-a", candidates=candidates, policy=POLICY).outcome == "allow"


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
        if "similarity_bands" in s or "source_fingerprints" in s
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
