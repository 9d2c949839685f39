"""Fingerprint tables and the candidate index for duplicate review.

`similarity_postings` and `graph_postings` are inverted indexes from an LSH band key to the
submissions having it, keyed (band_key, created_us, submission_id): finding candidates reads the
new submission's ~20-40 keys, each one primary-key range of prior art, oldest first, never the
whole table and with no join per posting. Each key's range is capped, so a key that thousands of
submissions share (a common idiom that escaped the boilerplate list, a popular model's forks)
costs a bounded amount and still yields its first discoverers. Ranking and loading the best
`limit` candidates happen in the same statement; exact scoring then runs on those alone.

Prior art is decided here: every earlier submission whatever its status (failed, rejected and
quarantined ones included: code is prior art by when it arrived, not by how its run ended), never
the submission itself, and, when the new submission is named, only those created before it. Each
candidate carries whether it was scored, which is all the decision needs of its outcome. A prior
whose code cannot be fingerprinted gets a tombstone row (`version` 0), so it is tried only once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    TextClause,
    TextualSelect,
    and_,
    bindparam,
    column,
    delete,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from prism.review.similarity.duplicates import Candidate, DuplicateReport, GraphPrior
from prism.review.similarity.fingerprint import FINGERPRINT_VERSION, SourceFingerprint
from prism.review.similarity.graph import GraphFingerprint
from prism.store.base import Base, JsonDoc, UtcDateTime, utcnow
from prism.store.fingerprint_cache import CANDIDATE_CACHE, FingerprintCache
from prism.store.models import Architecture, Submission

DEFAULT_POSTING_CAP = 64
TOMBSTONE_VERSION = 0  # a row saying: this submission's code cannot be fingerprinted


class SourceFingerprintRow(Base):
    __tablename__ = "source_fingerprints"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    normalized_sha256: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SimilarityBand(Base):
    """One posting: a submission has this LSH band key. Keyed for the lookup's one access path.

    `created_us` is the submission's `created_at` in microseconds since the epoch, copied here so
    that a key's postings are read oldest first and only before the new submission straight from
    the key (a covering range, no join per posting); `submission_id` has its own index for deletes.
    """

    __tablename__ = "similarity_postings"
    __table_args__ = (Index("ix_similarity_postings_submission_id", "submission_id"), {"sqlite_with_rowid": False})

    band_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_us: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )


class GraphFingerprintRow(Base):
    __tablename__ = "graph_fingerprints"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    graph_hash: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class GraphBand(Base):
    """A graph-band posting, laid out like `SimilarityBand`."""

    __tablename__ = "graph_postings"
    __table_args__ = (Index("ix_graph_postings_submission_id", "submission_id"), {"sqlite_with_rowid": False})

    band_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_us: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )


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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NO_BOUND = -1  # `_Before.created_us` of a submission id not (yet) in the table


def save_fingerprint(session: Session, submission_id: str, fp: SourceFingerprint) -> None:
    """Store (or replace) a submission's fingerprint and its band postings."""
    session.execute(delete(SimilarityBand).where(SimilarityBand.submission_id == submission_id))
    session.execute(delete(SourceFingerprintRow).where(SourceFingerprintRow.submission_id == submission_id))
    save_fingerprints_bulk(session, [(submission_id, fp)])


def save_fingerprints_bulk(session: Session, items: Iterable[tuple[str, SourceFingerprint]]) -> int:
    """Insert many new fingerprints at once (backfills, benchmarks); returns how many.

    The submissions must exist (flushed): each posting copies its submission's `created_at`.
    """
    now = utcnow()
    pending: list[tuple[str, SourceFingerprint]] = []
    count = 0

    def flush() -> None:
        if not pending:
            return
        arrival = _arrivals(session, [sid for sid, _ in pending])
        rows = [
            {
                "submission_id": sid,
                "version": fp.version,
                "normalized_sha256": fp.normalized_sha256,
                "data": fp.to_blob(),
                "created_at": now,
            }
            for sid, fp in pending
        ]
        session.execute(insert(_SOURCE), rows)
        bands = [
            {"band_key": key, "created_us": arrival[sid], "submission_id": sid}
            for sid, fp in pending
            for key in fp.band_keys
        ]
        if bands:
            session.execute(insert(_BANDS), bands)
        pending.clear()

    for item in items:
        pending.append(item)
        count += 1
        if len(pending) >= _CHUNK:
            flush()
    flush()
    return count


def microseconds(moment: datetime) -> int:
    """A UTC datetime as whole microseconds since the epoch (integer arithmetic: no float error)."""
    return (moment - _EPOCH) // _MICROSECOND


def _arrivals(session: Session, submission_ids: Sequence[str]) -> dict[str, int]:
    rows = session.execute(select(Submission.id, Submission.created_at).where(Submission.id.in_(submission_ids)))
    found = {str(sid): microseconds(created) for sid, created in rows}
    missing = [sid for sid in submission_ids if sid not in found]
    if missing:
        raise ValueError(f"fingerprints for unknown submissions: {missing[:3]}")
    return found


def load_fingerprint(session: Session, submission_id: str) -> SourceFingerprint | None:
    row = session.get(SourceFingerprintRow, submission_id)
    if row is None or row.version != FINGERPRINT_VERSION:
        return None
    return SourceFingerprint.from_blob(row.data)


@dataclass(frozen=True, slots=True)
class _Before:
    """Prior art of one submission: created before it (its id breaks a tie), never itself.

    `created_us` is None for an id not (yet) in `submissions`: nothing bounds it but itself.
    """

    submission_id: str
    created_us: int | None


_ARRIVAL = text("SELECT created_at FROM submissions WHERE id = :id").columns(column("created_at", UtcDateTime()))


def _before(session: Session, submission_id: str | None, created_at: datetime | None = None) -> _Before | None:
    if submission_id is None:
        return None
    if created_at is None:  # one prebuilt statement: nothing to construct or compile per lookup
        created_at = session.connection().execute(_ARRIVAL, {"id": submission_id}).scalar()
    return _Before(submission_id, None if created_at is None else microseconds(created_at))


def _prior_filters(before: _Before | None) -> list[ColumnElement[bool]]:
    """The postings' prior-art bound, for the lookups that join `submissions`."""
    if before is None:
        return []
    filters: list[ColumnElement[bool]] = [Submission.id != before.submission_id]
    if before.created_us is not None:
        created = _EPOCH + timedelta(microseconds=before.created_us)
        filters.append(
            or_(
                Submission.created_at < created,
                and_(Submission.created_at == created, Submission.id < before.submission_id),
            )
        )
    return filters


def _postings(table: str, keys: int | None, bounded: bool) -> list[str]:
    """Per key, its oldest `:cap` postings of prior art, as `(submission_id, w)` parts of a UNION ALL.

    Each key is one range of the table's primary key (band_key, created_us, submission_id), read in
    order and stopped at the cap: the cost is bounded by keys x cap whatever the table holds. With
    `keys` None (PostgreSQL) one LATERAL part over an array of keys: one statement shape for every
    key count, which the server plans once per connection instead of once per lookup.
    """
    bound = " AND (created_us, submission_id) < (:before_us, :before_id)" if bounded else ""
    if keys is None:
        return [
            "SELECT p.submission_id, 1 AS w FROM unnest(CAST(:keys AS BIGINT[])) AS k(key) "  # noqa: S608
            f"CROSS JOIN LATERAL (SELECT submission_id FROM {table} WHERE band_key = k.key{bound} "
            "ORDER BY created_us, submission_id LIMIT :cap) AS p"
        ]
    return [
        # Only constants and counters are formatted in (S608): every value is a bound parameter.
        f"SELECT submission_id, 1 AS w FROM (SELECT submission_id FROM {table} WHERE band_key = :k{i}{bound} "  # noqa: S608
        f"ORDER BY created_us, submission_id LIMIT :cap) AS p{i}"
        for i in range(keys)
    ]


_PRIOR_SQL = (
    " AND s.id != :before_id AND (s.created_at < :before_at OR (s.created_at = :before_at AND s.id < :before_id))"
)


@lru_cache(maxsize=512)
def _candidates_text(keys: int | None, bounded: bool, exclude_hotkey: bool) -> str:
    """The whole source lookup in one statement: postings, the exact digest, ranking, the rows.

    Cached per shape (key count or None for an array of keys, bound, hotkey filter). An exact
    normalized match weighs more than every band together, as before.
    """
    prior = _PRIOR_SQL if bounded else ""
    exact = (
        "SELECT submission_id, CAST(:exact AS INTEGER) AS w FROM "  # noqa: S608 (constants only, as above)
        "(SELECT f.submission_id FROM source_fingerprints f "
        f"JOIN submissions s ON s.id = f.submission_id WHERE f.normalized_sha256 = :normalized{prior} "
        "ORDER BY s.created_at, s.id LIMIT :limit) AS x"
    )
    hits = " UNION ALL ".join([*_postings("similarity_postings", keys, bounded), exact])
    hotkey_join = (
        " JOIN submissions hs ON hs.id = h.submission_id AND hs.hotkey != :exclude_hotkey" if exclude_hotkey else ""
    )
    sql = (
        f"WITH h AS ({hits}), top AS (SELECT h.submission_id, "  # noqa: S608
        "CASE WHEN max(h.w) > 1 THEN max(h.w) ELSE count(*) END AS hits "
        f"FROM h{hotkey_join} WHERE h.submission_id != :self GROUP BY h.submission_id "
        "ORDER BY hits DESC, h.submission_id LIMIT :limit) "
        "SELECT top.submission_id, top.hits, f.version, f.data, s.hotkey, s.status, s.created_at, e.score_eligible "
        "FROM top JOIN source_fingerprints f ON f.submission_id = top.submission_id "
        "JOIN submissions s ON s.id = top.submission_id "
        "LEFT OUTER JOIN evaluations e ON e.submission_id = top.submission_id"
    )
    return sql


@lru_cache(maxsize=512)
def _candidates_sql(keys: int | None, bounded: bool, exclude_hotkey: bool) -> TextualSelect:
    """`_candidates_text` as a typed statement (PostgreSQL's path; compiled once per shape)."""
    statement = text(_candidates_text(keys, bounded, exclude_hotkey))
    if bounded:
        statement = statement.bindparams(bindparam("before_at", type_=UtcDateTime()))
    return statement.columns(
        column("submission_id", String()),
        column("hits", Integer()),
        column("version", Integer()),
        column("data", LargeBinary()),
        column("hotkey", String()),
        column("status", String()),
        column("created_at", UtcDateTime()),
        column("score_eligible", Boolean()),
    )


@lru_cache(maxsize=256)
def _postings_sql(table: str, keys: int | None, bounded: bool) -> TextClause:
    return text(" UNION ALL ".join(_postings(table, keys, bounded)))


def _band_hits(session: Session, table: Table, keys: Sequence[int], before: _Before | None, cap: int) -> Counter[str]:
    """Per key, its oldest `cap` postings of prior art; counted per submission."""
    unique = sorted(set(keys))
    if not unique:
        return Counter()
    lateral = _lateral(session)
    params = _lookup_params(unique, before, cap, lateral=lateral)
    statement = _postings_sql(table.name, None if lateral else len(unique), "before_us" in params)
    rows = session.execute(statement, params)
    hits = Counter(str(row[0]) for row in rows)
    if before is not None:
        hits.pop(before.submission_id, None)
    return hits


def _lateral(session: Session) -> bool:
    """Whether keys go in as one array (PostgreSQL) rather than one parameter each (SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def _lookup_params(keys: Sequence[int], before: _Before | None, cap: int, *, lateral: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"keys": list(keys)} if lateral else {f"k{i}": key for i, key in enumerate(keys)}
    params["cap"] = cap
    params["self"] = before.submission_id if before is not None else ""
    if before is not None and before.created_us is not None:
        params["before_us"], params["before_id"] = before.created_us, before.submission_id
        params["before_at"] = _EPOCH + timedelta(microseconds=before.created_us)
    return params


def find_candidates(
    session: Session,
    fp: SourceFingerprint,
    *,
    submission_id: str | None = None,
    created_at: datetime | None = None,
    exclude_hotkey: str | None = None,
    limit: int = 20,
    posting_cap: int = DEFAULT_POSTING_CAP,
    cache: FingerprintCache = CANDIDATE_CACHE,
) -> list[Candidate]:
    """Earlier submissions that share LSH bands (or the exact normalized hash) with `fp`.

    Two statements: the new submission's arrival, then one that reads each band key's oldest
    `posting_cap` prior postings and the exact-digest matches, ranks them by band hits and returns
    the best `limit` with their fingerprints. `created_at` is the named submission's, when the
    caller has it (saves the first statement). `exclude_hotkey` drops that hotkey's submissions
    from the ranking (its postings still count towards a key's cap). Candidates' blobs are decoded
    through `cache` (the process's, unless another is given): the same bytes are decoded once.
    """
    before = _before(session, submission_id, created_at)
    keys = sorted(set(fp.band_keys))
    lateral = _lateral(session)
    params = _lookup_params(keys, before, posting_cap, lateral=lateral)
    params |= {"exact": len(fp.band_keys) + 1, "normalized": fp.normalized_sha256, "limit": limit}
    if exclude_hotkey is not None:
        params["exclude_hotkey"] = exclude_hotkey
    shape = (None if lateral else len(keys), "before_us" in params, exclude_hotkey is not None)
    out = []
    for sid, hits, version, data, hotkey, status, created, eligible in _candidate_rows(session, shape, params):
        if version != FINGERPRINT_VERSION:
            continue
        decoded = cache.decode(sid, data)
        out.append(
            Candidate(
                submission_id=sid,
                hotkey=hotkey,
                status=status,
                created_at=created,
                band_hits=hits,
                fingerprint=decoded.fingerprint,
                scored=status == "completed" and bool(eligible),
                parts=decoded.parts,
            )
        )
    out.sort(key=lambda c: (-c.band_hits, c.created_at, c.submission_id))
    return out


def _candidate_rows(
    session: Session, shape: tuple[int | None, bool, bool], params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        return [tuple(row) for row in connection.execute(_candidates_sql(*shape), params)]
    # The driver reads `:name` parameters itself: `exec_driver_sql` skips SQLAlchemy's per-statement
    # work (measured at a third of a cache-cold lookup's CPU) and keeps its error translation, so a
    # busy database is still a transient error. The two datetimes are converted as the type would.
    utc = UtcDateTime().dialect_impl(dialect)
    if "before_at" in params:
        to_db = utc.bind_processor(dialect)
        params = params | {"before_at": to_db(params["before_at"]) if to_db else params["before_at"]}
    from_db = utc.result_processor(dialect, None)
    rows = connection.exec_driver_sql(_candidates_text(*shape), params).all()
    return [(*row[:6], from_db(row[6]) if from_db else row[6], row[7]) for row in rows]


def save_graph_fingerprint(session: Session, submission_id: str, gfp: GraphFingerprint) -> None:
    session.execute(delete(GraphBand).where(GraphBand.submission_id == submission_id))
    session.execute(delete(GraphFingerprintRow).where(GraphFingerprintRow.submission_id == submission_id))
    session.execute(
        insert(_GRAPHS),
        [{"submission_id": submission_id, "graph_hash": gfp.graph_hash, "data": gfp.to_blob(), "created_at": utcnow()}],
    )
    if gfp.band_keys:
        arrival = _arrivals(session, [submission_id])[submission_id]
        session.execute(
            insert(_GRAPH_BANDS),
            [{"band_key": k, "created_us": arrival, "submission_id": submission_id} for k in gfp.band_keys],
        )


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
    before = _before(session, submission_id)
    filters = _prior_filters(before)
    same = list(
        session.execute(
            select(GraphFingerprintRow.submission_id)
            .join(Submission, Submission.id == GraphFingerprintRow.submission_id)
            .where(GraphFingerprintRow.graph_hash == gfp.graph_hash, *filters)
            .order_by(Submission.created_at, Submission.id)
            .limit(limit)
        ).scalars()
    )
    hits = _band_hits(session, _GRAPH_BANDS, gfp.band_keys, before, posting_cap)
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
