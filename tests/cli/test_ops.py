"""The operator and miner commands, run as a person would, against a real database and server."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from prism.cli import app
from prism.config import Settings
from prism.evaluation.progress import ProgressPoint
from prism.evidence import Evidence
from prism.intake.project import Project
from prism.pipeline.live_curve import LiveCurveWriter
from prism.store.db import make_engine, make_session_factory
from prism.store.lifecycle import transition
from prism.store.live_curve import live_curve
from prism.store.migrate import upgrade
from prism.store.models import Submission
from prism.store.models import SubmissionStatus as S
from prism.store.submissions import NewSubmission, create_submission, record_stage
from tests.conftest import TOKEN
from tests.live_server import live_server

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
runner = CliRunner()


@pytest.fixture
def local(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PRISM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PRISM_DATABASE_URL", settings.resolved_database_url)
    return settings


def _create_database(settings: Settings) -> None:
    """What `prism db upgrade` does (operator commands never create a database themselves)."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    engine.dispose()


def _quarantined(settings: Settings) -> str:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    evidence = (
        Evidence.at(
            "duplicate.normalized_source", "model.py", 3, "renamed copy of an earlier submission", snippet="class Net"
        ),
    )
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session,
            NewSubmission(HOTKEY, "p.zip", b"bytes", epoch=1),
            project=Project({"model.py": "x = 1\n"}),
            rejection=None,
            actor="test",
        )
        transition(session, submission, S.RUNNING, actor="test")
        record_stage(session, submission.id, "source_duplicates", "quarantined", evidence=evidence)
        submission.stage = "source_duplicates"
        transition(
            session,
            submission,
            S.QUARANTINED,
            actor="test",
            reason_code="duplicate.normalized_source",
            evidence=evidence,
        )
        sid = submission.id
    engine.dispose()
    return sid


def test_runtime_config_set_and_show(local: Settings, tmp_path: Path) -> None:
    document = tmp_path / "config.yaml"
    document.write_text(
        "gpu:\n  official_profile:\n    gpu_count: 2\n    gpu_type: A100\nrewards:\n  owner_share: 0.5\n"
    )
    _create_database(local)
    result = runner.invoke(app, ["runtime-config", "set", str(document), "--comment", "two GPUs"])
    assert result.exit_code == 0, result.output
    shown = json.loads(runner.invoke(app, ["runtime-config", "show"]).stdout)
    assert shown["version"] == 1
    assert shown["config"]["gpu"]["official_profile"]["gpu_count"] == 2
    assert shown["config"]["rewards"]["owner_share"] == 0.5


@pytest.mark.parametrize("count", ["9", "0.5", "true", '"2"'])
def test_runtime_config_refuses_bad_gpu_counts(local: Settings, tmp_path: Path, count: str) -> None:
    document = tmp_path / "config.yaml"
    document.write_text(f"gpu:\n  official_profile:\n    gpu_count: {count}\n")
    _create_database(local)
    result = runner.invoke(app, ["runtime-config", "set", str(document)])
    assert result.exit_code == 1 and "gpu_count" in result.output
    shown = json.loads(runner.invoke(app, ["runtime-config", "show"]).stdout)
    assert shown["version"] is None  # nothing was stored


def test_review_queue_list_and_resolve(local: Settings) -> None:
    sid = _quarantined(local)
    listed = runner.invoke(app, ["review-queue", "list"])
    assert sid in listed.output and "duplicate.normalized_source" in listed.output
    as_json = json.loads(runner.invoke(app, ["review-queue", "list", "--json"]).stdout)
    assert [item["submission_id"] for item in as_json] == [sid]

    both = runner.invoke(app, ["review-queue", "resolve", sid, "--release", "--reject", "--reason", "x"])
    assert both.exit_code == 2
    done = runner.invoke(app, ["review-queue", "resolve", sid, "--reject", "--reason", "copy", "--json"])
    assert done.exit_code == 0 and json.loads(done.stdout) == {"id": sid, "status": "rejected"}
    again = runner.invoke(app, ["review-queue", "resolve", sid, "--release", "--reason", "oops"])
    assert again.exit_code == 1 and "not quarantined or held" in again.output


def test_status_shows_the_journey_and_evidence(local: Settings) -> None:
    sid = _quarantined(local)
    text = runner.invoke(app, ["status", sid])
    assert text.exit_code == 0
    assert "quarantined" in text.output and "[duplicate.normalized_source] model.py:3" in text.output
    view = json.loads(runner.invoke(app, ["status", sid, "--json"]).stdout)
    assert view["status"] == "quarantined"
    assert [stage["stage"] for stage in view["stages"]] == ["intake", "source_duplicates"]
    missing = runner.invoke(app, ["status", "00000000-0000-0000-0000-000000000000"])
    assert missing.exit_code == 1


def test_submit_and_wait_through_the_bridge(settings: Settings, tmp_path: Path) -> None:
    project = tmp_path / "hostile"
    project.mkdir()
    (project / "model.py").write_text("def build_model(ctx):\n    return None\n")
    (project / "evil.so").write_bytes(b"\x7fELF")
    with live_server(settings) as url:
        result = runner.invoke(
            app, ["submit", str(project), "--url", url, "--token", TOKEN, "--hotkey", HOTKEY, "--wait", "--json"]
        )
        assert result.exit_code == 3, result.output  # rejected
        view = json.loads(result.stdout)
        assert view["status"] == "rejected" and view["reason_code"].startswith("archive.")
        assert view["stages"][0]["evidence"][0]["path"] == "evil.so"
        wrong = runner.invoke(app, ["submit", str(project), "--url", url, "--token", "nope", "--hotkey", HOTKEY])
        assert wrong.exit_code == 1 and "401" in wrong.output
        assert "Invalid value" not in wrong.output and "Usage:" not in wrong.output


class SeenRequests:
    """An ASGI wrapper that notes each request's path and query: which curve points a client asked for."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[str] = []
        self.changed = threading.Condition()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            with self.changed:
                self.seen.append(f"{scope['path']}?{scope['query_string'].decode()}")
                self.changed.notify_all()
        await self.app(scope, receive, send)

    def wait_for(self, pattern: str) -> None:
        with self.changed:
            found = self.changed.wait_for(lambda: any(re.search(pattern, s) for s in self.seen), timeout=60)
        assert found, f"no request matched {pattern}: {self.seen[-5:]}"


def _point(seq: int) -> ProgressPoint:
    return ProgressPoint(
        phase="train",
        seq=seq,
        step=4 * (seq + 1),
        steps=16,
        tokens=1024 * (seq + 1),
        bits_per_byte=8.0 - seq,
        mean_bits_per_byte=8.0 - seq / 2,
    )


def _play_worker(settings: Settings, seen: Callable[[], SeenRequests]) -> None:
    """The worker's side, step by step, each step after the CLI has read the one before.

    It writes live points through the pipeline's own writer while the submission is in `train`,
    then finishes training with the signed curve and completes the submission.
    """
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    requests = seen()
    requests.wait_for(r"^/internal/v1/submissions/[0-9a-f-]+\?$")  # the CLI polls its submission
    with sessions() as session, session.begin():
        submission = session.query(Submission).one()
        sid = submission.id
        transition(session, submission, S.RUNNING, actor="test")
        submission.stage = "graph_duplicates"  # finished: the worker is in `train` now
    with LiveCurveWriter(sessions, sid, "train", attempt=1) as writer:
        for batch in ((0, 1), (2, 3)):
            for seq in batch:
                writer.put(_point(seq))
            while len(_stored(sessions, sid)) <= batch[-1]:
                time.sleep(0.02)
            requests.wait_for(rf"/v1/submissions/{sid}/curve\?after={batch[-1]}$")  # the CLI has printed them
    with sessions() as session, session.begin():
        submission = session.get(Submission, sid)
        assert submission is not None
        record_stage(
            session, sid, "train", "passed", detail="4,096 tokens in 16 steps", data={"loss_curve": [8.0, 6.0, 5.0]}
        )
        submission.stage = "score"
        transition(session, submission, S.COMPLETED, actor="test", reason_code="completed")
    engine.dispose()


def _stored(sessions: Any, sid: str) -> list[Any]:
    with sessions() as session:
        return list(live_curve(session, sid))


def test_submit_wait_prints_live_points_while_training_runs(settings: Settings, tmp_path: Path) -> None:
    project = tmp_path / "model"
    project.mkdir()
    (project / "model.py").write_text("import torch\n\n\ndef build_model(ctx):\n    return torch.nn.Linear(2, 2)\n")
    wrapped: list[SeenRequests] = []
    ready = threading.Event()

    def wrap(app: Any) -> SeenRequests:
        wrapped.append(SeenRequests(app))
        ready.set()
        return wrapped[0]

    with live_server(settings, wrap=wrap) as url:
        ready.wait()
        worker = threading.Thread(target=_play_worker, args=(settings, lambda: wrapped[0]), daemon=True)
        worker.start()
        args = ["submit", str(project), "--url", url, "--token", TOKEN, "--hotkey", HOTKEY, "--wait", "--poll", "0.1"]
        result = runner.invoke(app, args)
        worker.join(timeout=60)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    live = [line for line in lines if "live, unverified" in line]
    assert [re.search(r"step (\S+)", line).group(1) for line in live] == ["4/16", "8/16", "12/16", "16/16"]  # type: ignore[union-attr]
    assert "1,024 tokens  8.000 bits/byte (mean 8.000)" in live[0]
    assert "4,096 tokens  5.000 bits/byte (mean 6.500)" in live[-1]
    running = lines.index(next(line for line in lines if re.search(r"running\s+train$", line)))
    signed = lines.index(next(line for line in lines if "(signed report)" in line))
    assert running < lines.index(live[0]) < lines.index(live[-1]) < signed
    assert "8.000 → 5.000" in lines[signed] and "status     completed" in result.output


def test_usage_errors_exit_2(local: Settings) -> None:
    assert runner.invoke(app, ["review"]).exit_code == 2
    assert runner.invoke(app, ["status"]).exit_code == 2


def test_submit_wait_exit_codes_and_no_usage_banner(settings: Settings, tmp_path: Path) -> None:
    project = tmp_path / "my model"
    project.mkdir()
    (project / "model.py").write_text("import socket\n\ndef build_model(ctx):\n    return None\n")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / ".gitignore").write_text("*.pyc\n")
    with live_server(settings) as url:
        base = ["submit", str(project), "--url", url, "--token", TOKEN, "--hotkey", HOTKEY]
        queued = runner.invoke(app, base)
        assert queued.exit_code == 0 and "pending" in queued.output
        # No worker runs here: --wait gives up at --timeout with exit 6.
        waited = runner.invoke(app, [*base, "--wait", "--timeout", "1", "--poll", "0.2"])
        assert waited.exit_code == 6, waited.output
        assert "left out" in waited.output and ".git" in waited.output
        bad = runner.invoke(app, ["status", "nope" * 20, "--url", url])
        assert bad.exit_code == 1 and "404" in bad.output and "Usage:" not in bad.output


def test_prism_not_running_is_one_clear_line(tmp_path: Path) -> None:
    from tests.live_server import free_port

    (tmp_path / "model.py").write_text("x = 1\n")
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(
        app, ["submit", str(tmp_path / "model.py"), "--url", url, "--token", "t", "--hotkey", HOTKEY]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"prism: cannot reach PRISM at {url}: is it running? (`prism up` starts one)"
    ]


def test_operator_commands_refuse_a_missing_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRISM_DATABASE_URL", raising=False)
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path / "elsewhere"))
    for command in (["review-queue", "list"], ["runtime-config", "show"], ["status", "x"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1 and "no PRISM database at" in result.output, result.output
    assert not (tmp_path / "elsewhere").exists()  # nothing was created


def test_version_and_completion() -> None:
    import prism

    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and prism.__version__ in version.output
    shown = runner.invoke(app, ["--show-completion", "bash"], env={"SHELL": "/bin/bash"}, prog_name="prism")
    assert shown.exit_code == 0 and "complete -o default -F _prism_completion prism" in shown.output
    # What the installed script asks at <TAB>: the sub-commands that start with what was typed.
    env = {"_PRISM_COMPLETE": "complete_bash", "COMP_WORDS": "prism sub", "COMP_CWORD": "1"}
    completed = runner.invoke(app, [], env=env, prog_name="prism")
    assert completed.stdout.split() == ["submit"], completed.output


def test_remote_operator_commands_and_config_history(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _quarantined(settings)
    tokens = tmp_path / "operators"
    tokens.write_text("# name:token\nalice:alice-token-0123456789abcdef\n")
    monkeypatch.setenv("PRISM_OPERATOR_TOKENS_FILE", str(tokens))
    document = tmp_path / "config.yaml"
    document.write_text("rewards:\n  owner_share: 0.5\n")
    with live_server(settings) as url:
        alice = ["--url", url, "--token", "alice-token-0123456789abcdef"]
        listed = runner.invoke(app, ["review-queue", "list", *alice, "--json"])
        assert listed.exit_code == 0 and [i["submission_id"] for i in json.loads(listed.stdout)] == [sid]
        wrong = runner.invoke(app, ["review-queue", "list", "--url", url, "--token", "nope"])
        assert wrong.exit_code == 1 and "401" in wrong.output
        changed = runner.invoke(app, ["runtime-config", "set", str(document), "--comment", "more to builders", *alice])
        assert changed.exit_code == 0 and "version 1" in changed.output, changed.output
        shown = json.loads(runner.invoke(app, ["runtime-config", "show", *alice]).stdout)
        assert shown["config"]["rewards"]["owner_share"] == 0.5
        resolved = runner.invoke(app, ["review-queue", "resolve", sid, "--reject", "--reason", "copy", *alice])
        assert resolved.exit_code == 0 and "rejected" in resolved.output
        history = json.loads(runner.invoke(app, ["runtime-config", "history", "--json", *alice]).stdout)
    [entry] = history
    assert entry["created_by"] == "operator:alice" and entry["comment"] == "more to builders"
    assert entry["changes"] == [{"key": "rewards.owner_share", "before": 0.6, "after": 0.5}]
    monkeypatch.setenv("PRISM_DATABASE_URL", settings.resolved_database_url)
    text = runner.invoke(app, ["runtime-config", "history"])
    assert "by operator:alice" in text.output and "rewards.owner_share: 0.6 -> 0.5" in text.output
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        from sqlalchemy import select

        from prism.store.models import AuditEvent

        actors = set(session.scalars(select(AuditEvent.actor).where(AuditEvent.submission_id == sid)))
    engine.dispose()
    assert "operator:alice" in actors
