"""Fingerprint tables and the candidate index for duplicate review.

`similarity_bands` and `graph_bands` are inverted indexes from an LSH band key to the submissions
having it: finding candidates reads the postings of the new submission's ~40 keys (an index range
each), never the whole table. Each key's postings are read oldest first and capped, so a key that
thousands of submissions share (a common idiom that escaped the boilerplate list) costs a bounded
amount and still yields its first discoverers. Exact scoring then runs on at most `limit`
candidates, with their fingerprints loaded in one query.

Prior art is decided here: every earlier submission whatever its status (failed, rejected and
quarantined ones included: code is prior art by when it arrived, not by how its run ended), never
the submission itself, and, when the new submission is named, only those created before it. Each
candidate carries whether it was scored, which is all the decision needs of its outcome. A prior
whose code cannot be fingerprinted gets a tombstone row (`version` 0), so it is tried only once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from prism.review.similarity.duplicates import Candidate, DuplicateReport, GraphPrior
from prism.review.similarity.fingerprint import FINGERPRINT_VERSION, SourceFingerprint
from prism.review.similarity.graph import GraphFingerprint
from prism.store.base import Base, JsonDoc, UtcDateTime, utcnow
from prism.store.models import Architecture, Evaluation, Submission

DEFAULT_POSTING_CAP = 64
TOMBSTONE_VERSION = 0  # a row saying: this submission's code cannot be fingerprinted
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER keys


class SourceFingerprintRow(Base):
    __tablename__ = "source_fingerprints"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    normalized_sha256: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SimilarityBand(Base):
    __tablename__ = "similarity_bands"
    __table_args__ = (Index("ix_similarity_bands_lookup", "band_key", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    band_key: Mapped[int] = mapped_column(BigInteger)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))


class GraphFingerprintRow(Base):
    __tablename__ = "graph_fingerprints"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    graph_hash: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class GraphBand(Base):
    __tablename__ = "graph_bands"
    __table_args__ = (Index("ix_graph_bands_lookup", "band_key", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    band_key: Mapped[int] = mapped_column(BigInteger)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))


class DuplicateReportRow(Base):
    """The full report of each duplicate check (source and graph), as the operator sees it."""

    __tablename__ = "duplicate_reports"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    reason_code: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


_SOURCE: Table = SourceFingerprintRow.__table__  # type: ignore[assignment]
_BANDS: Table = SimilarityBand.__table__  # type: ignore[assignment]
_GRAPHS: Table = GraphFingerprintRow.__table__  # type: ignore[assignment]
_GRAPH_BANDS: Table = GraphBand.__table__  # type: ignore[assignment]
_CHUNK = 5_000


def save_fingerprint(session: Session, submission_id: str, fp: SourceFingerprint) -> None:
    """Store (or replace) a submission's fingerprint and its band postings."""
    session.execute(delete(SimilarityBand).where(SimilarityBand.submission_id == submission_id))
    session.execute(delete(SourceFingerprintRow).where(SourceFingerprintRow.submission_id == submission_id))
    save_fingerprints_bulk(session, [(submission_id, fp)])


def save_fingerprints_bulk(session: Session, items: Iterable[tuple[str, SourceFingerprint]]) -> int:
    """Insert many new fingerprints at once (backfills, benchmarks); returns how many."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    bands: list[dict[str, Any]] = []
    count = 0

    def flush() -> None:
        if rows:
            session.execute(insert(_SOURCE), rows)
        if bands:
            session.execute(insert(_BANDS), bands)
        rows.clear()
        bands.clear()

    for submission_id, fp in items:
        rows.append(
            {
                "submission_id": submission_id,
                "version": fp.version,
                "normalized_sha256": fp.normalized_sha256,
                "data": fp.to_blob(),
                "created_at": now,
            }
        )
        bands.extend({"band_key": key, "submission_id": submission_id} for key in fp.band_keys)
        count += 1
        if len(rows) >= _CHUNK:
            flush()
    flush()
    return count


def load_fingerprint(session: Session, submission_id: str) -> SourceFingerprint | None:
    row = session.get(SourceFingerprintRow, submission_id)
    if row is None or row.version != FINGERPRINT_VERSION:
        return None
    return SourceFingerprint.from_blob(row.data)


def _prior_filters(
    session: Session, submission_id: str | None, exclude_hotkey: str | None
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if exclude_hotkey is not None:
        filters.append(Submission.hotkey != exclude_hotkey)
    if submission_id is not None:
        filters.append(Submission.id != submission_id)
        created = session.execute(select(Submission.created_at).where(Submission.id == submission_id)).scalar()
        if created is not None:
            filters.append(
                or_(
                    Submission.created_at < created,
                    and_(Submission.created_at == created, Submission.id < submission_id),
                )
            )
    return filters


def _band_hits(
    session: Session, table: Table, keys: Sequence[int], filters: Sequence[ColumnElement[bool]], cap: int
) -> Counter[str]:
    """Per key, its oldest `cap` postings that pass the filters; counted per submission."""
    if not keys:
        return Counter()
    parts = []
    for key in sorted(set(keys)):
        inner = (
            select(table.c.submission_id)
            .join(Submission, Submission.id == table.c.submission_id)
            .where(table.c.band_key == key, *filters)
            .order_by(table.c.id)
            .limit(cap)
            .subquery()
        )
        parts.append(select(inner.c.submission_id))
    return Counter(str(row[0]) for row in session.execute(union_all(*parts)))


def find_candidates(
    session: Session,
    fp: SourceFingerprint,
    *,
    submission_id: str | None = None,
    exclude_hotkey: str | None = None,
    limit: int = 20,
    posting_cap: int = DEFAULT_POSTING_CAP,
) -> list[Candidate]:
    """Earlier submissions that share LSH bands (or the exact normalized hash) with `fp`."""
    filters = _prior_filters(session, submission_id, exclude_hotkey)
    hits = _band_hits(session, _BANDS, fp.band_keys, filters, posting_cap)
    exact = session.execute(
        select(SourceFingerprintRow.submission_id)
        .join(Submission, Submission.id == SourceFingerprintRow.submission_id)
        .where(SourceFingerprintRow.normalized_sha256 == fp.normalized_sha256, *filters)
        .order_by(Submission.created_at)
        .limit(limit)
    ).scalars()
    for sid in exact:
        hits[sid] = len(fp.band_keys) + 1  # an exact duplicate always makes the cut
    top = sorted(hits, key=lambda s: (-hits[s], s))[:limit]
    if not top:
        return []
    rows = session.execute(
        select(
            SourceFingerprintRow.submission_id,
            SourceFingerprintRow.version,
            SourceFingerprintRow.data,
            Submission.hotkey,
            Submission.status,
            Submission.created_at,
            Evaluation.score_eligible,
        )
        .join(Submission, Submission.id == SourceFingerprintRow.submission_id)
        .outerjoin(Evaluation, Evaluation.submission_id == SourceFingerprintRow.submission_id)
        .where(SourceFingerprintRow.submission_id.in_(top))
    ).all()
    out = [
        Candidate(
            submission_id=row.submission_id,
            hotkey=row.hotkey,
            status=row.status,
            created_at=row.created_at,
            band_hits=hits[row.submission_id],
            fingerprint=SourceFingerprint.from_blob(row.data),
            scored=row.status == "completed" and bool(row.score_eligible),
        )
        for row in rows
        if row.version == FINGERPRINT_VERSION
    ]
    out.sort(key=lambda c: (-c.band_hits, c.created_at, c.submission_id))
    return out


def save_graph_fingerprint(session: Session, submission_id: str, gfp: GraphFingerprint) -> None:
    session.execute(delete(GraphBand).where(GraphBand.submission_id == submission_id))
    session.execute(delete(GraphFingerprintRow).where(GraphFingerprintRow.submission_id == submission_id))
    session.execute(
        insert(_GRAPHS),
        [{"submission_id": submission_id, "graph_hash": gfp.graph_hash, "data": gfp.to_blob(), "created_at": utcnow()}],
    )
    if gfp.band_keys:
        session.execute(insert(_GRAPH_BANDS), [{"band_key": k, "submission_id": submission_id} for k in gfp.band_keys])


def find_graph_priors(
    session: Session,
    gfp: GraphFingerprint,
    *,
    submission_id: str | None = None,
    limit: int = 20,
    posting_cap: int = DEFAULT_POSTING_CAP,
    also: Sequence[str] = (),
) -> list[GraphPrior]:
    """Earlier submissions with the same graph hash (oldest first) or sharing graph bands.

    `also` names the source check's candidates: they are compared by graph too, so a copy whose
    graph drifted out of every shared band is still judged against the prior its source matched.
    """
    filters = _prior_filters(session, submission_id, None)
    same = list(
        session.execute(
            select(GraphFingerprintRow.submission_id)
            .join(Submission, Submission.id == GraphFingerprintRow.submission_id)
            .where(GraphFingerprintRow.graph_hash == gfp.graph_hash, *filters)
            .order_by(Submission.created_at, Submission.id)
            .limit(limit)
        ).scalars()
    )
    hits = _band_hits(session, _GRAPH_BANDS, gfp.band_keys, filters, posting_cap)
    close = [s for s in sorted(hits, key=lambda s: (-hits[s], s)) if s not in same][:limit]
    named = (
        list(
            session.execute(
                select(GraphFingerprintRow.submission_id)
                .join(Submission, Submission.id == GraphFingerprintRow.submission_id)
                .where(
                    GraphFingerprintRow.submission_id.in_([a for a in also if a not in same and a not in close]),
                    *filters,
                )
            ).scalars()
        )
        if also
        else []
    )
    wanted = same + close + named
    if not wanted:
        return []
    rows = session.execute(
        select(
            GraphFingerprintRow.submission_id,
            GraphFingerprintRow.data,
            Submission.hotkey,
            Submission.status,
            Submission.created_at,
            SourceFingerprintRow.version,
            SourceFingerprintRow.data.label("source_data"),
        )
        .join(Submission, Submission.id == GraphFingerprintRow.submission_id)
        .outerjoin(SourceFingerprintRow, SourceFingerprintRow.submission_id == GraphFingerprintRow.submission_id)
        .where(GraphFingerprintRow.submission_id.in_(wanted))
    ).all()
    graphs = {row.submission_id: GraphFingerprint.from_blob(row.data) for row in rows}
    owners = {
        a.graph_hash: a
        for a in session.execute(
            select(Architecture).where(Architecture.graph_hash.in_({g.graph_hash for g in graphs.values()}))
        ).scalars()
    }
    out = []
    for row in rows:
        graph = graphs[row.submission_id]
        owner = owners.get(graph.graph_hash)
        source = (
            SourceFingerprint.from_blob(row.source_data)
            if row.source_data is not None and row.version == FINGERPRINT_VERSION
            else None
        )
        out.append(
            GraphPrior(
                submission_id=row.submission_id,
                hotkey=row.hotkey,
                status=row.status,
                created_at=row.created_at,
                graph=graph,
                source=source,
                family_owner_hotkey=owner.owner_hotkey if owner else None,
                family_owner_submission_id=owner.owner_submission_id if owner else None,
            )
        )
    out.sort(key=lambda p: (p.created_at, p.submission_id))
    return out


def save_report(session: Session, submission_id: str, report: DuplicateReport) -> None:
    """Store (or replace) the report of one duplicate check."""
    session.execute(
        delete(DuplicateReportRow).where(
            DuplicateReportRow.submission_id == submission_id, DuplicateReportRow.stage == report.stage
        )
    )
    session.add(
        DuplicateReportRow(
            submission_id=submission_id,
            stage=report.stage,
            outcome=report.outcome,
            reason_code=report.reason_code,
            report=report.to_json(),
        )
    )
    session.flush()


def load_reports(session: Session, submission_id: str) -> list[DuplicateReport]:
    rows = session.execute(
        select(DuplicateReportRow)
        .where(DuplicateReportRow.submission_id == submission_id)
        .order_by(DuplicateReportRow.created_at)
    ).scalars()
    return [DuplicateReport.from_json(row.report) for row in rows]


def unfingerprinted_priors(session: Session, *, before: datetime) -> list[str]:
    """Earlier submissions with no current fingerprint yet, oldest first.

    No row at all (no worker reached them), or a row of an older `FINGERPRINT_VERSION` (the
    normalization changed since): both are fingerprinted again from the stored source, so an
    upgrade never loses prior art. A tombstone is current: unparsable code is not retried.
    """
    current = (
        select(SourceFingerprintRow.submission_id)
        .where(
            SourceFingerprintRow.submission_id == Submission.id,
            SourceFingerprintRow.version.in_((FINGERPRINT_VERSION, TOMBSTONE_VERSION)),
        )
        .exists()
    )
    rows = session.scalars(
        select(Submission.id).where(Submission.created_at < before, ~current).order_by(Submission.created_at)
    )
    return list(rows)


def save_fingerprint_once(session: Session, submission_id: str, fp: SourceFingerprint | None) -> None:
    """Like `save_fingerprint`, but a concurrent worker that saved it first wins quietly.

    `None` stores a tombstone: the prior's code cannot be fingerprinted (it does not parse), it is
    no one's prior art, and no later check should try again.
    """
    try:
        with session.begin_nested():
            stored = session.execute(
                select(SourceFingerprintRow.version).where(SourceFingerprintRow.submission_id == submission_id)
            ).scalar()
            if stored in (FINGERPRINT_VERSION, TOMBSTONE_VERSION):
                return  # another worker was first
            if stored is not None:  # an older version: replaced
                session.execute(delete(SimilarityBand).where(SimilarityBand.submission_id == submission_id))
                session.execute(delete(SourceFingerprintRow).where(SourceFingerprintRow.submission_id == submission_id))
            if fp is None:
                session.execute(
                    insert(_SOURCE),
                    [
                        {
                            "submission_id": submission_id,
                            "version": TOMBSTONE_VERSION,
                            "normalized_sha256": "",
                            "data": b"",
                            "created_at": utcnow(),
                        }
                    ],
                )
            else:
                save_fingerprints_bulk(session, [(submission_id, fp)])
    except IntegrityError:
        pass
