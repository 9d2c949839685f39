"""The operator console through the real app: refusal without a session, escaping, resolution."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from prism.api import console_auth
from prism.api.app import create_app
from prism.config import Settings
from prism.evaluation.progress import ProgressPoint
from prism.pipeline.live_curve import LiveCurveWriter
from prism.store.db import make_engine, make_session_factory
from prism.store.lifecycle import transition
from prism.store.migrate import upgrade
from prism.store.models import AuditEvent, Evaluation, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.scores import claim_architecture, record_evaluation
from prism.store.submissions import epoch_at, record_stage
from tests.api.console_seed import CITED_LINE, Seeded, seed_quarantined, submit_source
from tests.conftest import TOKEN

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> Seeded:
    with sessions() as session:
        return seed_quarantined(session)


@pytest.fixture
def anon(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine), follow_redirects=False) as client:
        yield client


def login(client: TestClient, token: str = TOKEN) -> str:
    """Log in; returns the CSRF token of the new session, read from a page like a browser would."""
    answer = client.post("/console/login", data={"token": token, "next": "/console"})
    assert answer.status_code == 303, answer.text
    page = client.get("/console")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert match is not None
    return match.group(1)


def page_paths(seeded: Seeded) -> list[str]:
    sid = seeded.quarantined
    return [
        "/console",
        "/console/submissions",
        "/console/submissions?state=quarantined",
        f"/console/submissions/{sid}",
        f"/console/submissions/{sid}/diff/{seeded.earlier}",
        "/console/review-queue",
        "/console/leaderboard",
        "/console/architectures",
    ]


# -- refusal ------------------------------------------------------------------------------------------


def test_every_page_redirects_to_login_without_a_session(anon: TestClient, seeded: Seeded) -> None:
    for path in page_paths(seeded):
        answer = anon.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/login?next=%2Fconsole"), path
        assert seeded.quarantined[:8] not in answer.text


def test_a_bearer_token_alone_does_not_open_the_console(anon: TestClient, seeded: Seeded) -> None:
    """The console is cookie-authenticated; a header cannot stand in for the login."""
    for path in page_paths(seeded):
        assert anon.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 303


def test_every_action_is_refused_without_a_session_or_csrf(
    anon: TestClient, seeded: Seeded, sessions: sessionmaker[Session]
) -> None:
    sid = seeded.quarantined
    resolve = f"/console/submissions/{sid}/resolve"
    form = {"action": "reject", "reason": "no session"}
    assert anon.post(resolve, data=form).status_code == 401
    assert anon.post("/console/logout", data={}).status_code == 401
    # With a session but without this session's CSRF token: 403.
    csrf = login(anon)
    assert anon.post(resolve, data=form).status_code == 403
    assert anon.post(resolve, data={**form, "csrf": "0" * 64}).status_code == 403
    assert anon.post("/console/logout", data={"csrf": "nope"}).status_code == 403
    # A CSRF token from another session does not work either.
    anon.cookies.clear()
    other = login(anon)
    assert other != csrf
    anon.cookies.clear()
    assert anon.post(resolve, data={**form, "csrf": csrf}).status_code == 401
    with sessions() as session:
        assert session.get(Submission, sid).status == S.QUARANTINED.value  # type: ignore[union-attr]


def test_forged_expired_and_foreign_cookies_are_refused(settings: Settings, anon: TestClient, seeded: Seeded) -> None:
    good = console_auth.issue_cookie(settings)
    issued, nonce, mac = good.split(".")
    assert console_auth.verify_cookie(settings, good) is not None
    assert console_auth.verify_cookie(settings, f"{issued}.{nonce}.{'0' * 64}") is None
    assert console_auth.verify_cookie(settings, f"{int(issued) + 1}.{nonce}.{mac}") is None
    old = console_auth.issue_cookie(settings, now=1_000_000)
    assert console_auth.verify_cookie(settings, old) is None
    assert console_auth.verify_cookie(settings, old, now=1_000_000 + 60) is not None
    for forged in (f"{issued}.{nonce}.{'0' * 64}", TOKEN, "", "a.b.c"):
        anon.cookies.set(console_auth.COOKIE, forged, path="/console")
        assert anon.get("/console").status_code == 303
        anon.cookies.clear()


def test_rotating_the_operator_token_ends_every_session(
    settings: Settings, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cookie = console_auth.issue_cookie(settings)
    operator_file = tmp_path / "operator-token"
    operator_file.write_text("a-different-operator-token-42\n")
    monkeypatch.setenv("PRISM_OPERATOR_TOKEN_FILE", str(operator_file))
    rotated = Settings(data_dir=settings.data_dir, database_url=settings.database_url)
    assert console_auth.verify_cookie(rotated, cookie) is None
    with TestClient(create_app(rotated, engine=engine), follow_redirects=False) as client:
        # The operator token, not the shared one, opens the console now.
        assert client.post("/console/login", data={"token": TOKEN}).status_code == 401
        assert client.post("/console/login", data={"token": "a-different-operator-token-42"}).status_code == 303


def test_without_an_operator_token_the_console_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine, seeded: Seeded
) -> None:
    for name in ("PRISM_SHARED_TOKEN_FILE", "PRISM_OPERATOR_TOKEN_FILE", "PRISM_SHARED_TOKEN", "PRISM_OPERATOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    closed = Settings(data_dir=tmp_path / "data", database_url=str(engine.url))
    with TestClient(create_app(closed, engine=engine), follow_redirects=False) as client:
        assert client.get("/console/login").status_code == 503
        assert client.post("/console/login", data={"token": ""}).status_code == 503
        for path in page_paths(seeded):
            assert client.get(path).status_code == 503, path
        resolve = f"/console/submissions/{seeded.quarantined}/resolve"
        assert client.post(resolve, data={"action": "release", "reason": "x"}).status_code == 503


def test_login_sets_a_signed_httponly_strict_cookie_never_the_token(anon: TestClient) -> None:
    wrong = anon.post("/console/login", data={"token": TOKEN + "x"})
    assert wrong.status_code == 401
    assert "set-cookie" not in wrong.headers
    answer = anon.post("/console/login", data={"token": TOKEN, "next": "https://evil.example/"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console"  # no open redirect
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/console" in cookie
    assert TOKEN not in cookie
    page = anon.get("/console")
    assert page.status_code == 200
    assert TOKEN not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_logout_ends_the_session(anon: TestClient) -> None:
    csrf = login(anon)
    answer = anon.post("/console/logout", data={"csrf": csrf})
    assert answer.status_code == 303
    assert anon.get("/console").status_code == 303


def test_actions_take_only_small_url_encoded_forms(anon: TestClient, seeded: Seeded) -> None:
    csrf = login(anon)
    resolve = f"/console/submissions/{seeded.quarantined}/resolve"
    assert anon.post(resolve, json={"csrf": csrf, "action": "release", "reason": "x"}).status_code == 415
    big = {"csrf": csrf, "action": "release", "reason": "x" * 20_000}
    assert anon.post(resolve, data=big).status_code == 413


# -- what the pages show ------------------------------------------------------------------------------


def test_detail_shows_evidence_with_its_excerpt_and_escapes_hostile_text(anon: TestClient, seeded: Seeded) -> None:
    login(anon)
    page = anon.get(f"/console/submissions/{seeded.quarantined}")
    assert page.status_code == 200
    html = page.text
    # Hostile source, Mermaid labels, LLM quotes and explanations arrive as text, never as markup.
    for raw in ("<script>alert(", "<img src=x onerror", "<b>bold</b>", "</pre><script>"):
        assert raw not in html
    assert "&lt;script&gt;alert(" in html
    assert "&lt;img src=x onerror=alert(" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    # The finding, its location, and the cited line highlighted in its excerpt.
    assert "llm.secret_exfiltration" in html
    assert f"model.py:{CITED_LINE}:4" in html
    cited = re.findall(r'<tr class="cited"><td class="no">(\d+)</td>', html)
    assert str(CITED_LINE) in cited
    assert f"matches the stored source at lines {CITED_LINE}–{CITED_LINE}" in html
    # The unverified claim is shown as such.
    assert "unverified claim" in html
    assert "the quote does not match lines 4-4" in html
    # The Mermaid diagram is a text node inside <pre class="mermaid">, and the renderer is loaded.
    assert re.search(r'<pre class="mermaid">flowchart TD\n', html)
    assert '<script src="/console/static/mermaid.min.js"></script>' in html
    # Journey: created → running → quarantined, and the stage records.
    journey = html[html.index('id="journey"') : html.index('id="findings"')]
    steps = re.findall(r"<strong>([a-z_.]+)</strong>", journey)
    assert steps[0] == "created"
    assert steps.index("static_review") < steps.index("llm_review") < len(steps) - 1
    assert steps[-1] == "transition"  # running → quarantined, after the stage that decided it
    assert 'id="resolve"' in html
    # The duplicate report links to the matched submission and inlines the diff.
    assert f"/console/submissions/{seeded.quarantined}/diff/{seeded.earlier}" in html
    assert '<table class="diff">' in html


def test_known_secrets_are_redacted_from_every_page(
    anon: TestClient, seeded: Seeded, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        record_stage(
            session,
            seeded.quarantined,
            "inspect",
            "passed",
            detail=f"saw {TOKEN} in stdout",
            data={"stdout": f"token={TOKEN}"},
        )
        session.commit()
    login(anon)
    html = anon.get(f"/console/submissions/{seeded.quarantined}").text
    assert TOKEN not in html
    assert "[redacted]" in html


def test_overview_counts_each_state_separately(anon: TestClient, seeded: Seeded) -> None:
    login(anon)
    html = anon.get("/console").text
    for state in ("rejected", "quarantined", "held", "failed", "pending", "running", "completed"):
        assert f'data-state="{state}"' in html
    quarantined = re.search(r'data-state="quarantined">\s*<span class="n">(\d+)</span>', html)
    pending = re.search(r'data-state="pending">\s*<span class="n">(\d+)</span>', html)
    assert quarantined is not None and quarantined.group(1) == "1"
    assert pending is not None and pending.group(1) == "1"  # the earlier submission
    assert 'id="queue-depth">1<' in html
    assert "bubblewrap" in html


def test_submissions_list_filters_by_state(anon: TestClient, seeded: Seeded) -> None:
    login(anon)
    html = anon.get("/console/submissions?state=quarantined").text
    assert seeded.quarantined in html
    assert seeded.earlier not in html
    assert anon.get("/console/submissions?state=bogus").status_code == 422


def test_resolve_release_from_the_review_queue(
    anon: TestClient,
    seeded: Seeded,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Alice has a token of her own: the audit log names her from it, whatever a form says.
    tokens = tmp_path / "operators"
    tokens.write_text("alice:alice-token-0123456789abcdef\n")
    monkeypatch.setenv("PRISM_OPERATOR_TOKENS_FILE", str(tokens))
    csrf = login(anon, "alice-token-0123456789abcdef")
    queue = anon.get("/console/review-queue").text
    assert seeded.quarantined in queue
    answer = anon.post(
        f"/console/submissions/{seeded.quarantined}/resolve",
        data={"csrf": csrf, "action": "release", "reason": "false positive: a test fixture", "operator": "mallory"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/submissions/{seeded.quarantined}?was=quarantined"
    page = anon.get(answer.headers["location"]).text
    assert 'id="state-change"' in page
    assert "false positive: a test fixture" in page
    with sessions() as session:
        submission = session.get(Submission, seeded.quarantined)
        assert submission is not None and submission.status == S.PENDING.value
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.submission_id == seeded.quarantined, AuditEvent.actor == "operator:alice"
            )
        ).all()
        assert "review_queue.release" in actions
    assert seeded.quarantined not in anon.get("/console/review-queue").text
    # A second resolution is refused: it is no longer waiting for an operator.
    again = anon.post(
        f"/console/submissions/{seeded.quarantined}/resolve",
        data={"csrf": csrf, "action": "reject", "reason": "too late"},
    )
    assert again.status_code == 409


def test_resolve_reject_needs_a_reason_and_carries_the_evidence(
    anon: TestClient, seeded: Seeded, sessions: sessionmaker[Session]
) -> None:
    csrf = login(anon)
    path = f"/console/submissions/{seeded.quarantined}/resolve"
    assert anon.post(path, data={"csrf": csrf, "action": "reject", "reason": "  "}).status_code == 422
    assert anon.post(path, data={"csrf": csrf, "action": "delete", "reason": "x"}).status_code == 422
    # Reject asks for confirmation first (a page, no JavaScript needed); nothing changes yet.
    asked = anon.post(path, data={"csrf": csrf, "action": "reject", "reason": "copies secrets"})
    assert asked.status_code == 200 and 'id="confirm-reject"' in asked.text
    assert 'name="confirm" value="yes"' in asked.text and "copies secrets" in asked.text
    assert seeded.quarantined in anon.get("/console/review-queue").text
    confirmed = {"csrf": csrf, "action": "reject", "reason": "copies secrets", "confirm": "yes"}
    assert anon.post(path, data=confirmed).status_code == 303
    with sessions() as session:
        submission = session.get(Submission, seeded.quarantined)
        assert submission is not None and submission.status == S.REJECTED.value
        assert submission.reason_code == "operator.reject"


def test_a_training_submission_shows_its_live_curve_marked_unverified(
    anon: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        sid = submit_source(session, "5TrainingHotkey", "def build_model(ctx):\n    return None\n")
        submission = session.get(Submission, sid)
        assert submission is not None
        transition(session, submission, S.RUNNING, actor="worker:test")
        submission.stage = "graph_duplicates"
        session.commit()
    with LiveCurveWriter(sessions, sid, "train", attempt=1) as writer:
        for seq, bpb in enumerate((7.5, 6.0, 5.2)):
            writer.put(
                ProgressPoint(
                    phase="train",
                    seq=seq,
                    step=seq + 1,
                    steps=9,
                    tokens=256 * (seq + 1),
                    bits_per_byte=bpb,
                    mean_bits_per_byte=bpb,
                )
            )
    login(anon)
    html = anon.get(f"/console/submissions/{sid}").text
    assert "Live training curve (3 points" in html and "unverified" in html
    assert re.search(r'<path d="M[\d.]+,[\d.]+( L[\d.]+,[\d.]+){2}" class="line"/>', html)
    with sessions() as session:
        record_stage(session, sid, "train", "passed", data={"loss_curve": [7.0, 6.0, 5.0, 4.0]})
        session.commit()
    html = anon.get(f"/console/submissions/{sid}").text
    assert "Live training curve" not in html and "Loss curve (4 steps)" in html


def test_loss_curve_plot_manifest_leaderboard_and_architectures(
    settings: Settings, anon: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        sid = submit_source(session, "5ScoredHotkey", "def build_model(ctx):\n    return None\n")
        submission = session.get(Submission, sid)
        assert submission is not None
        transition(session, submission, S.RUNNING, actor="worker:test")
        record_stage(session, sid, "train", "passed", data={"loss_curve": [5.5, 4.0, 3.1, 2.9, "bad"]})
        record_stage(session, sid, "train", "passed", data={"loss_curve": [5.5, 4.0, 3.1, 2.9]})
        manifest = {"metrics": {"bits_per_byte": 2.5}, "model": {"parameter_count": 1234}, "note": "<i>x</i>"}
        record_stage(session, sid, "validation", "passed", data={"manifest": manifest})
        epoch = epoch_at(submission.created_at, settings.epoch_seconds)
        claim_architecture(session, graph_hash="a" * 64, hotkey="5ScoredHotkey", submission_id=sid, graph={})
        record_evaluation(
            session,
            Evaluation(
                submission_id=sid,
                hotkey="5ScoredHotkey",
                epoch=epoch,
                mode="official",
                score_eligible=True,
                bits_per_byte=2.5,
                heldout_bits_per_byte=2.6,
                final_score=0.75,
                parameter_count=1234,
                architecture_hash="a" * 64,
                manifest=manifest,
            ),
        )
        submission.architecture_hash = "a" * 64
        transition(session, submission, S.COMPLETED, actor="worker:test")
        session.commit()
    login(anon)
    html = anon.get(f"/console/submissions/{sid}").text
    assert '<svg class="plot"' in html
    assert re.search(r'<path d="M[\d.]+,[\d.]+( L[\d.]+,[\d.]+){3}" class="line"/>', html)
    assert "&#34;parameter_count&#34;: 1234" in html or "&quot;parameter_count&quot;: 1234" in html
    assert "<i>x</i>" not in html
    board = anon.get("/console/leaderboard").text
    assert "5ScoredHotkey" in board and "0.750000" in board
    assert "<dt>Finished completed</dt><dd>1</dd>" in anon.get("/console").text  # throughput, last hour
    families = anon.get("/console/architectures").text
    assert "5ScoredHotkey" in families and "aaaaaaaaaaaa" in families


def test_diff_page_is_side_by_side_and_escaped(anon: TestClient, seeded: Seeded) -> None:
    login(anon)
    html = anon.get(f"/console/submissions/{seeded.quarantined}/diff/{seeded.earlier}").text
    assert '<tr class="replace">' in html
    assert "nn.Embedding(ctx.vocab_size, 32)" in html and "nn.Embedding(ctx.vocab_size, 16)" in html
    assert "<script>alert(" not in html
    assert anon.get(f"/console/submissions/{seeded.quarantined}/diff/nope").status_code == 404


def test_static_assets_come_from_a_fixed_list(anon: TestClient) -> None:
    answer = anon.get("/console/static/mermaid.min.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert len(answer.content) > 1_000_000
    assert anon.get("/console/static/console.css").status_code == 200
    for name in ("..%2Fconsole.py", "NOTICE.txt", "console.html"):
        assert anon.get(f"/console/static/{name}").status_code == 404
