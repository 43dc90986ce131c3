"""Database engine, sessions and migration on start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.errors import ConfigurationError, StorageError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
        """Create or migrate the schema to the newest revision, with a clear error on failure."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        try:
            command.upgrade(config, "head")
        except DatabaseError as e:
            raise StorageError(self._explain(e)) from e

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
