"""`GET /v1/submissions/{id}/curve`: live points while training runs, marked apart from the signed curve."""

from __future__ import annotations

from fastapi.testclient import TestClient

from prism.config import Settings
from prism.evaluation.progress import ProgressPoint
from prism.intake.project import Project
from prism.pipeline.live_curve import LiveCurveWriter
from prism.store.db import make_engine, make_session_factory
from prism.store.lifecycle import transition
from prism.store.models import Submission
from prism.store.models import SubmissionStatus as S
from prism.store.submissions import NewSubmission, create_submission, record_stage

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _point(seq: int) -> ProgressPoint:
    return ProgressPoint(
        phase="train", seq=seq, step=2 * (seq + 1), steps=6, tokens=512 * (seq + 1), bits_per_byte=6.0 - seq,
        mean_bits_per_byte=6.0 - seq / 2,
    )  # fmt: skip


def test_live_points_while_training_then_the_signed_curve(client: TestClient, settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session,
            NewSubmission(HOTKEY, "p.zip", b"bytes", epoch=1),
            project=Project({"model.py": "x = 1\n"}),
            rejection=None,
            actor="test",
        )
        sid = submission.id
    assert client.get(f"/v1/submissions/{sid}/curve").json() == {
        "submission_id": sid,
        "status": "pending",
        "unit": "bits_per_byte",
        "points": [],
        "final": False,
        "live": False,
        "live_points": [],
    }
    with sessions() as session, session.begin():
        row = session.get(Submission, sid)
        assert row is not None
        transition(session, row, S.RUNNING, actor="test")
        row.stage = "graph_duplicates"
    with LiveCurveWriter(sessions, sid, "train", attempt=1) as writer:
        for seq in range(3):
            writer.put(_point(seq))

    live = client.get(f"/v1/submissions/{sid}/curve").json()
    assert (live["status"], live["live"], live["final"], live["points"]) == ("running", True, False, [])
    assert [(p["seq"], p["step"], p["tokens"], p["bits_per_byte"]) for p in live["live_points"]] == [
        (0, 2, 512, 6.0),
        (1, 4, 1024, 5.0),
        (2, 6, 1536, 4.0),
    ]
    newer = client.get(f"/v1/submissions/{sid}/curve", params={"after": 0}).json()["live_points"]
    assert [p["seq"] for p in newer] == [1, 2]
    for bad in ("-2", "201", "x"):
        answer = client.get(f"/v1/submissions/{sid}/curve", params={"after": bad})
        assert answer.status_code == 422 and answer.json()["error"]["code"]

    with sessions() as session, session.begin():
        record_stage(session, sid, "train", "passed", data={"loss_curve": [6.0, 5.0, 4.0]})
        row = session.get(Submission, sid)
        assert row is not None
        row.stage = "train"
    final = client.get(f"/v1/submissions/{sid}/curve").json()
    assert (final["live"], final["final"], final["points"]) == (False, True, [6.0, 5.0, 4.0])
    assert len(final["live_points"]) == 3  # kept beside it, still advisory
    assert client.get("/v1/submissions/nope/curve").status_code == 404
    engine.dispose()


def test_a_failed_train_stage_is_no_final_curve(client: TestClient, settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session,
            NewSubmission(HOTKEY, "q.zip", b"other", epoch=1),
            project=Project({"model.py": "x = 2\n"}),
            rejection=None,
            actor="test",
        )
        sid = submission.id
        record_stage(session, sid, "train", "failed", data={"loss_curve": [1.0]})
    curve = client.get(f"/v1/submissions/{sid}/curve").json()
    assert curve["final"] is False and curve["points"] == []
    engine.dispose()
