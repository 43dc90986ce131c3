"""Database engine, sessions and migration on start."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.errors import ConfigurationError, StorageError, ValidationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x4E57_4D49  # PostgreSQL advisory lock key of schema migrations ("NWMI")
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


def _values(parameters) -> Iterator:
    """Every bound value, however SQLAlchemy shaped them: a dict or a tuple of one row, a list
    of rows, or the flat tuple of a multi-row INSERT ("insertmanyvalues")."""
    if isinstance(parameters, dict):
        parameters = parameters.values()
    elif not isinstance(parameters, (list, tuple)):
        yield parameters
        return
    for value in parameters:
        if isinstance(value, (dict, list, tuple)):
            yield from _values(value)
        else:
            yield value


def _refuse_nul_text(_connection, _cursor, _statement, parameters, _context,
                     _executemany) -> None:
    """PostgreSQL cannot hold a NUL character in text (the driver fails mid-transaction): such
    a value is refused with one line, on either database, before anything is sent."""
    if any(isinstance(v, str) and "\x00" in v for v in _values(parameters)):
        raise ValidationError("Text may not contain a NUL character (\\x00).")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the UI read while a run's status is being written; busy_timeout rides out
    # short write locks from other server processes and workers instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@dataclass(frozen=True)
class MigrationStatus:
    """Where a database's schema stands against this version's migrations."""

    current: str | None  # the database's revision; None for an empty database
    head: str  # the newest revision this version knows
    known: bool  # False: migrated by another (newer) version of the workbench

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.up_to_date:
            return f"schema at revision {self.head} (current)"
        if not self.known:
            return (f"migrated by a newer version of the workbench (revision {self.current!r}; "
                    f"this version knows up to {self.head})")
        return f"schema at revision {self.current or 'none (empty)'}, {self.head} expected"


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
        if self.is_sqlite and parsed.database in (None, "", ":memory:"):
            # Every pooled connection would get its own empty database: the run watchers'
            # threads would never see the rows the caller wrote.
            raise ConfigurationError(
                f"DATABASE_URL {url!r} is an in-memory SQLite database, which vanishes when the "
                "command ends and is not shared between threads; use a file such as "
                "sqlite:////path/to/workbench.db (the default is one in the state folder).")
        try:
            self.engine = create_engine(url, pool_pre_ping=True)
        except Exception as e:  # driver missing, bad options
            raise ConfigurationError(f"Cannot use database {parsed!r}: {e}") from e
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        event.listen(self.engine, "before_cursor_execute", _refuse_nul_text)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _alembic_config(self):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        return config

    def migration_status(self) -> MigrationStatus:
        """The database's schema revision against this version's newest one (reads only)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        head = script.get_current_head()
        try:
            with self.engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
        except DatabaseError as e:
            raise StorageError(self._explain(e)) from e
        known = current is None or current in {r.revision for r in script.walk_revisions()}
        return MigrationStatus(current, head, known)

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest revision, with a clear error on failure.

        A database migrated by a newer workbench is refused before anything is changed. One
        already at the newest revision is recognised with one query, without importing Alembic
        (~0.3 s): quick CLI commands such as an emergency stop open it.
        """
        if self.current_revision() == head_revision():
            return
        from alembic import command

        with self._migration_lock():  # processes starting at once migrate one after another
            status = self.migration_status()
            if not status.known:
                raise StorageError(
                    f"The database {make_url(self.url)!r} was {status.describe()}; run that "
                    "version, or point DATABASE_URL / --database-url at another database.")
            if status.up_to_date:
                return
            try:
                command.upgrade(self._alembic_config(), "head")
            except DatabaseError as e:
                raise StorageError(self._explain(e)) from e

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Hold a lock across processes while checking and migrating the schema: a flock on
        the SQLite file's folder, or a PostgreSQL advisory lock."""
        url = make_url(self.url)
        if self.is_sqlite:
            folder = Path(url.database).resolve().parent
            try:
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            except OSError as e:
                raise StorageError(f"Cannot open the database {url!r}: its folder {folder} "
                                   f"cannot be opened ({e.strerror or e}). Create it, or use "
                                   "another database with DATABASE_URL / --database-url.") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)
            return
        if url.get_backend_name() == "postgresql":
            try:
                connection = self.engine.connect()
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
            except DatabaseError as e:
                raise StorageError(self._explain(e)) from e
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
                connection.close()
            return
        yield

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
