from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, Engine, bindparam, column, insert, inspect, table, text

from prism.store.base import UtcDateTime
from prism.store.db import make_engine
from prism.store.migrate import alembic_config, upgrade
from prism.store.schema import metadata


def test_migrations_match_the_models(engine: Engine) -> None:
    """Alembic's head builds exactly the schema the models declare, on both backends."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        assert compare_metadata(context, metadata) == []


def test_sqlite_pragmas(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert "submissions" in inspect(sqlite_engine).get_table_names()


def test_band_postings_migrate_both_ways(db_url: str) -> None:
    """0005_i19d copies every band row into the keyed postings (with its submission's arrival) and back."""
    engine = make_engine(db_url)
    upgrade(engine, "0004_i16")
    created = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(insert(table("miners", column("hotkey"), column("first_seen_at"))), [
            {"hotkey": "hk", "first_seen_at": created}
        ])  # fmt: skip
        connection.execute(
            text(
                "INSERT INTO submissions (id, hotkey, status, archive_sha256, filename, byte_size, epoch, origin, "
                "submit_metadata, infra_attempts, created_at, updated_at) VALUES "
                "(:id, 'hk', 'completed', :sha, 'm.zip', 1, 0, 'bridge', :meta, 0, :at, :at)"
            ).bindparams(bindparam("at", type_=UtcDateTime()), bindparam("meta", type_=JSON())),
            [{"id": sid, "sha": sid.ljust(64, "0"), "meta": {}, "at": created + timedelta(seconds=n)} for n, sid in
             enumerate(["s1", "s2"])],
        )  # fmt: skip
        for name in ("similarity_bands", "graph_bands"):
            connection.execute(
                text(f"INSERT INTO {name} (band_key, submission_id) VALUES (:k, :s)"),  # noqa: S608
                [{"k": -(2**63), "s": "s2"}, {"k": 7, "s": "s1"}, {"k": 7, "s": "s2"}],
            )
    upgrade(engine)
    base_us = (created - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    with engine.connect() as connection:
        for name in ("similarity_postings", "graph_postings"):
            rows = connection.execute(
                text(f"SELECT band_key, created_us, submission_id FROM {name} ORDER BY band_key, created_us")  # noqa: S608
            ).all()
            assert [tuple(r) for r in rows] == [
                (-(2**63), base_us + 1_000_000, "s2"),
                (7, base_us, "s1"),
                (7, base_us + 1_000_000, "s2"),
            ]
    config = alembic_config(db_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004_i16")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT band_key, submission_id FROM similarity_bands ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(7, "s1"), (-(2**63), "s2"), (7, "s2")]
    upgrade(engine)
    engine.dispose()


def test_weights_generation_migrates_both_ways(db_url: str) -> None:
    """0006_i19w creates the one generation row (at 0) and drops it again."""
    engine = make_engine(db_url)
    upgrade(engine, "0005_i19d")
    upgrade(engine)
    with engine.connect() as connection:
        assert [tuple(r) for r in connection.execute(text("SELECT id, generation FROM weights_generation"))] == [(1, 0)]
    config = alembic_config(db_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005_i19d")
    assert "weights_generation" not in inspect(engine).get_table_names()
    upgrade(engine)
    engine.dispose()
