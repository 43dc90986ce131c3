"""Tests of services/db/database.py on throw-away SQLite files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from services.db import AuditEntry, Database
from services.db.models import EngineMetricRow
from services.errors import ConfigurationError, StorageError, ValidationError


@pytest.fixture
def database(tmp_path):
    """A migrated database in a fresh SQLite file; disposed after the test."""
    db = Database(f"sqlite:///{tmp_path / 'workbench.db'}")
    db.upgrade()
    yield db
    db.dispose()


def _audit(action: str) -> AuditEntry:
    return AuditEntry(ts=datetime(2024, 1, 1, tzinfo=UTC), actor="tester", action=action,
                      target="run-1", outcome="ok")


def test_upgrade_creates_the_tables_on_a_fresh_file(tmp_path):
    # Arrange
    path = tmp_path / "fresh.db"
    db = Database(f"sqlite:///{path}")

    # Act
    db.upgrade()

    # Assert
    assert path.exists()
    assert {"backtest_runs", "audit_log"} <= set(db.table_names())
    db.dispose()


def test_upgrade_twice_is_harmless_and_keeps_rows(database):
    # Arrange
    with database.session() as session:
        session.add(_audit("start"))

    # Act
    database.upgrade()

    # Assert
    with database.session() as session:
        assert [e.action for e in session.scalars(select(AuditEntry))] == ["start"]


def test_session_rolls_back_everything_on_error(database):
    # Act
    with pytest.raises(RuntimeError), database.session() as session:
        session.add(_audit("half"))
        session.flush()
        raise RuntimeError("boom")

    # Assert
    with database.session() as session:
        assert session.scalars(select(AuditEntry)).all() == []


def test_rows_of_numbers_and_times_pass_the_nul_check_in_one_multi_row_insert(database):
    ts = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [EngineMetricRow(session_id="s1", ts=ts, name="nautilus.engine.cpu_usage", value=v)
            for v in (0.5, 1.5, 2.5)]

    with database.session() as session:
        session.add_all(rows)  # one INSERT with the values of every row, flat

    with database.session() as session:
        assert sorted(session.scalars(select(EngineMetricRow.value))) == [0.5, 1.5, 2.5]


def test_text_with_a_nul_character_is_refused_in_one_line_and_nothing_is_written(database):
    # PostgreSQL cannot store it; both databases refuse it the same way, before sending it.
    with pytest.raises(ValidationError, match=r"^Text may not contain a NUL character"), \
            database.session() as session:
        session.add(_audit("fine"))
        session.add(AuditEntry(ts=datetime(2024, 1, 1, tzinfo=UTC), actor="tester",
                               action="bad", target="run\x00-2", outcome="ok"))

    with database.session() as session:
        assert session.scalars(select(AuditEntry)).all() == []


@pytest.mark.parametrize("content", [b"this is not a database" * 64, bytes(range(256)) * 16])
def test_corrupt_sqlite_file_raises_storage_error_saying_how_to_fix(tmp_path, content):
    # Arrange
    path = tmp_path / "workbench.db"
    path.write_bytes(content)
    db = Database(f"sqlite:///{path}")

    # Act
    with pytest.raises(StorageError) as info:
        db.upgrade()

    # Assert
    message = str(info.value)
    assert "corrupt" in message
    assert str(path) in message
    assert "Move it aside" in message
    assert "DATABASE_URL" in message
    db.dispose()


def test_sqlite_file_in_a_missing_folder_raises_storage_error(tmp_path):
    # Arrange
    db = Database(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'workbench.db'}")

    # Act
    with pytest.raises(StorageError) as info:
        db.upgrade()

    # Assert
    assert "Cannot open the database" in str(info.value)
    assert "DATABASE_URL" in str(info.value)
    db.dispose()


@pytest.mark.parametrize("url", ["not a url", "", "://nothing"])
def test_invalid_url_raises_configuration_error(url):
    # Act
    with pytest.raises(ConfigurationError) as info:
        Database(url)

    # Assert
    assert f"DATABASE_URL {url!r} is not a valid database URL" in str(info.value)


def test_unknown_database_driver_raises_configuration_error():
    # Act
    with pytest.raises(ConfigurationError) as info:
        Database("nosuchdb://user:secret@host/db")

    # Assert
    assert "Cannot use database" in str(info.value)
    assert "secret" not in str(info.value)  # the password is not echoed
