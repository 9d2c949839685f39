"""The console in real headless Chromium (Debian's `chromium`, driven by Playwright).

The real app runs under uvicorn on a free loopback port; the store is seeded through its own
functions with a quarantined submission whose evidence and Mermaid diagram are hostile. The
browser logs in, sees the evidence and a Mermaid-rendered <svg>, releases the submission and sees
the state change. Screenshots go to test-artifacts/console/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from prism.api.app import create_app
from prism.config import Settings
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import AuditEvent, Submission
from prism.store.models import SubmissionStatus as S
from tests.api.console_seed import CITED_LINE, seed_quarantined
from tests.conftest import TOKEN

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _need(what: str, available: bool) -> None:
    if not available:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is required in CI")
        pytest.skip(f"{what} is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """The real app under uvicorn in a thread, on a free 127.0.0.1 port."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", make_session_factory(engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    executable = shutil.which("chromium")
    _need("Debian's chromium", executable is not None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package", False)
        raise
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh --user-data-dir
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def test_operator_resolves_a_quarantined_submission_in_chromium(
    served: tuple[str, sessionmaker[Session]], chromium: Any
) -> None:
    base, sessions = served
    with sessions() as session:
        seeded = seed_quarantined(session)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = chromium.new_page()
    page.set_default_timeout(10_000)
    dialogs: list[str] = []
    problems: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # Without a session, the submission page sends the browser to the login page.
    detail = f"{base}/console/submissions/{seeded.quarantined}"
    page.goto(detail)
    assert "/console/login" in page.url
    assert page.locator("#findings").count() == 0
    page.fill('input[name="token"]', TOKEN + "-wrong")
    page.click('button[type="submit"]')
    assert page.locator(".error").inner_text() == "That token is not valid."
    page.screenshot(path=str(ARTIFACTS / "01-login-refused.png"))

    # Log in: back to the page that was asked for.
    page.fill('input[name="token"]', TOKEN)
    page.click('button[type="submit"]')
    page.wait_for_url(detail)
    assert page.locator("#submission-status").inner_text().startswith("quarantined")

    # The evidence with its highlighted excerpt.
    finding = page.locator("article.finding").filter(has_text="llm.secret_exfiltration")
    assert finding.count() == 1
    assert f"model.py:{CITED_LINE}:4" in finding.inner_text()
    cited = finding.locator("tr.cited")
    assert cited.count() == 1
    assert 'open("/run/secrets/token")' in cited.inner_text()
    # Hostile text is shown as text: the <script> in the source is visible, never executed.
    unverified = page.locator("article.finding.unverified")
    assert "<script>alert('xss-quote')</script>" in unverified.inner_text()
    assert "<script>alert('xss-source')</script>" in unverified.locator("table.code").inner_text()

    # The Mermaid diagram is rendered by Mermaid into an <svg>; its hostile label did nothing.
    svg = page.locator('#diagrams .diagram[data-rendered="true"] svg')
    svg.first.wait_for(state="visible")
    assert "build_model" in svg.first.inner_html()
    assert page.locator("#diagrams svg img").count() == 0
    # The hostile label is shown, as text, in the diagram.
    assert "<img src=x" in (svg.first.text_content() or "") and "onerror=alert('xss-mermaid')" in (
        svg.first.text_content() or ""
    )
    page.screenshot(path=str(ARTIFACTS / "02-quarantined-detail.png"), full_page=True)

    # Resolve it: release with a reason, and see the state change.
    page.fill('#resolve input[name="reason"]', "false positive: the secret path is a test fixture")
    page.click('#resolve button[value="release"]')
    page.wait_for_selector("#state-change")
    change = page.locator("#state-change").inner_text()
    assert "quarantined" in change and "pending" in change
    assert page.locator("#submission-status").inner_text().startswith("pending")
    assert page.locator("#resolve").count() == 0
    page.screenshot(path=str(ARTIFACTS / "03-released.png"), full_page=True)

    # The review queue is empty again, and the overview counts it as pending.
    page.goto(f"{base}/console/review-queue")
    assert "The review queue is empty." in page.locator("main").inner_text()
    page.screenshot(path=str(ARTIFACTS / "04-review-queue.png"))
    page.goto(f"{base}/console")
    assert page.locator('a.card[data-state="quarantined"] .n').inner_text() == "0"
    assert page.locator('a.card[data-state="pending"] .n').inner_text() == "2"
    page.screenshot(path=str(ARTIFACTS / "05-overview.png"), full_page=True)

    # Log out: the console is closed to this browser again.
    page.click("header form.logout button")
    page.wait_for_url(f"{base}/console/login")
    page.goto(f"{base}/console")
    assert "/console/login" in page.url

    with sessions() as session:
        submission = session.get(Submission, seeded.quarantined)
        assert submission is not None and submission.status == S.PENDING.value
        audited = session.query(AuditEvent).filter_by(
            submission_id=seeded.quarantined, action="review_queue.release", actor="operator:operator"
        )
        assert audited.count() == 1
    assert dialogs == []  # no alert() from the source, the Mermaid labels or the LLM's quotes
    # Every request stayed on PRISM and asked for no hostile URL (the label's <img src=x>).
    assert all(url.startswith(base) or url.startswith("data:") for url in requested), requested
    assert not [url for url in requested if url.rstrip("/").endswith("/x")]
    # The only error the page saw is the refused login; no CSP violation, no script error.
    assert problems == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"], problems


WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_console_walk_at_desktop_and_phone_width(
    served: tuple[str, sessionmaker[Session]], chromium: Any, settings: Settings, width: str
) -> None:
    """Every page, the public leaderboard and an error page: nothing overflows the viewport,
    the navigation stays reachable, and reject asks for confirmation before it acts."""
    from tests.api.console_scored import seed_scored

    base, sessions = served
    with sessions() as session:
        seeded = seed_quarantined(session)
        scored = seed_scored(session, settings)
    viewport_w, viewport_h = WIDTHS[width]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = chromium.new_page()
    page.set_viewport_size({"width": viewport_w, "height": viewport_h})
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    def overflow() -> int:
        return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))

    page.goto(f"{base}/console/login")
    page.fill('input[name="token"]', TOKEN)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/console")
    pages = [
        "/console",
        "/console/submissions",
        f"/console/submissions/{seeded.quarantined}",
        "/console/review-queue",
        "/console/leaderboard",
        "/console/leaderboard?sort=params&dir=desc",
        "/console/architectures",
        f"/console/architectures/{scored[0].family}",
        "/console/runtime-config",
        "/leaderboard",
    ]
    for index, path in enumerate(pages):
        page.goto(base + path)
        assert overflow() <= 1, f"{path} overflows by {overflow()} px at {width} width"
        shot = re.sub(r"[^a-z0-9]+", "-", path.strip("/")) or "root"
        page.screenshot(path=str(ARTIFACTS / f"walk-{width}-{index:02d}-{shot}.png"), full_page=True)
        if path.startswith("/console"):
            # Every navigation link is on screen or reachable by scrolling the nav row itself.
            nav = page.locator("header.top nav")
            assert nav.is_visible()
            box = nav.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport_w + 1
    # Sorted by parameters, largest first: charlie-net leads.
    page.goto(f"{base}/console/leaderboard?sort=params&dir=desc")
    assert page.locator("#leaderboard tbody tr").first.inner_text().count("charlie-net") == 1

    # An error is a page with the navigation, not raw JSON.
    page.goto(f"{base}/console/submissions/00000000-0000-0000-0000-000000000000")
    assert page.locator("#error-page").is_visible()
    assert "no submission" in page.locator("#error-message").inner_text()
    assert page.locator("header.top nav").is_visible()
    assert overflow() <= 1
    page.screenshot(path=str(ARTIFACTS / f"walk-{width}-error.png"), full_page=True)

    # Reject asks first; going back leaves the submission waiting.
    page.goto(f"{base}/console/submissions/{seeded.quarantined}")
    page.fill('#resolve input[name="reason"]', "copies an earlier submission")
    page.click('#resolve button[value="reject"]')
    page.wait_for_selector("#confirm-reject")
    assert overflow() <= 1
    page.screenshot(path=str(ARTIFACTS / f"walk-{width}-confirm-reject.png"), full_page=True)
    page.click("#confirm-reject button.reject")
    page.wait_for_selector("#state-change")
    assert page.locator("#submission-status").inner_text().startswith("rejected")
    assert problems == [], problems
