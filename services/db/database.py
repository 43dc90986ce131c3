"""Database engine, sessions and migration on start."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.errors import ConfigurationError, StorageError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision) = "([^"]*)"', re.MULTILINE)


def head_revision() -> str:
    """The newest migration: the revision no other one revises (read from the files, so that
    checking an up-to-date database needs no Alembic import)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        revisions.add(found["revision"])
        parents.add(found.get("down_revision"))
    heads = revisions - parents
    if len(heads) != 1:
        raise StorageError(f"The migrations have {len(heads)} heads ({sorted(heads)}); "
                           "expected one.")
    return heads.pop()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the UI read while a run's status is being written; busy_timeout rides out
    # short write locks from other server processes and workers instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """Owns the SQLAlchemy engine; ``upgrade()`` creates or migrates the schema."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as e:
            raise ConfigurationError(
                f"DATABASE_URL {url!r} is not a valid database URL. Use e.g. "
                "sqlite:////path/to/workbench.db or postgresql+psycopg://user@host/db."
            ) from e
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        try:
            self.engine = create_engine(url, pool_pre_ping=True)
        except Exception as e:  # driver missing, bad options
            raise ConfigurationError(f"Cannot use database {parsed!r}: {e}") from e
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest revision, with a clear error on failure.

        A database already at the newest revision is recognised with one query, without
        importing Alembic (~0.3 s): quick CLI commands such as an emergency stop open it."""
        if self.current_revision() == head_revision():
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        try:
            command.upgrade(config, "head")
        except DatabaseError as e:
            raise StorageError(self._explain(e)) from e

    def current_revision(self) -> str | None:
        """The database's Alembic revision, or None for a new (or unreadable) database."""
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except DatabaseError:
            return None  # no table yet, or a file that is not a database: upgrade says which
        return rows[0][0] if len(rows) == 1 else None

    def _explain(self, error: Exception) -> str:
        text = str(getattr(error, "orig", error))
        url = make_url(self.url)
        if self.is_sqlite and ("not a database" in text or "malformed" in text):
            return (
                f"The database file {url.database} is corrupt ({text}). Move it aside "
                "(it will be recreated empty) or point DATABASE_URL / --database-url elsewhere."
            )
        if isinstance(error, OperationalError):
            return (
                f"Cannot open the database {url!r}: {text}. Check that it exists and is "
                "reachable, or use another with DATABASE_URL / --database-url."
            )
        return f"Database error on {url!r}: {text}"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error (no half rows)."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except DatabaseError as e:
            session.rollback()
            raise StorageError(self._explain(e)) from e
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def table_names(self) -> list[str]:
        return inspect(self.engine).get_table_names()

    def dispose(self) -> None:
        self.engine.dispose()
