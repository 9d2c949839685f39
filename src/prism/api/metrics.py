"""`GET /metrics`: Prometheus text, computed from the database at scrape time.

Reading the store (not in-process counters) makes the numbers true across every API and worker
process. Rejected, quarantined, held and failed are separate series, as operators must watch them
separately.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from prism.api.state import app_state
from prism.store.base import utcnow
from prism.store.models import StageResult
from prism.store.submissions import counts_by_status, oldest_pending_created_at

router = APIRouter()

SANDBOX_STAGES = ("inspect", "train", "heldout")


class StoreCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as session:
            counts = counts_by_status(session)
            oldest = oldest_pending_created_at(session)
            durations = session.execute(
                select(StageResult.stage, StageResult.started_at, StageResult.finished_at)
            ).all()
            outcomes = session.execute(
                select(StageResult.stage, StageResult.outcome, func.count())
                .where(StageResult.stage.in_(SANDBOX_STAGES))
                .group_by(StageResult.stage, StageResult.outcome)
            ).all()
        by_state = GaugeMetricFamily("prism_submissions", "Submissions by state", labels=["state"])
        for state, n in sorted(counts.items()):
            by_state.add_metric([state], n)
        yield by_state
        yield GaugeMetricFamily("prism_queue_depth", "Pending submissions", value=counts.get("pending", 0))
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("prism_oldest_pending_age_seconds", "Age of the oldest pending submission", value=age)
        total: dict[str, float] = {}
        count: dict[str, int] = {}
        for stage, started, finished in durations:
            total[stage] = total.get(stage, 0.0) + max((finished - started).total_seconds(), 0.0)
            count[stage] = count.get(stage, 0) + 1
        seconds = GaugeMetricFamily("prism_stage_duration_seconds_sum", "Total time spent per stage", labels=["stage"])
        runs = GaugeMetricFamily("prism_stage_duration_seconds_count", "Finished stage runs", labels=["stage"])
        for stage in sorted(total):
            seconds.add_metric([stage], total[stage])
            runs.add_metric([stage], count[stage])
        yield seconds
        yield runs
        sandbox = GaugeMetricFamily("prism_sandbox_outcomes", "Sandboxed stage outcomes", labels=["stage", "outcome"])
        for stage, outcome, n in outcomes:
            sandbox.add_metric([stage, outcome], n)
        yield sandbox


@router.get("/metrics", tags=["monitoring"], response_class=Response)
def metrics(request: Request) -> Response:
    registry = CollectorRegistry()
    registry.register(StoreCollector(app_state(request).sessions))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
