"""Where the workbench keeps its state, its database and its data catalog.

Every setting comes from (in order) an explicit argument, an environment variable, or an
embedded default that needs nothing installed: a state folder, a SQLite file inside it, and a
generated sample catalog under ``data/``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from services.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CATALOG_NAME = "sample_catalog"


def _is_source_checkout() -> bool:
    return (PROJECT_ROOT / "pyproject.toml").exists() and (PROJECT_ROOT / "engine_templates").is_dir()


def shipped_templates_dir() -> Path:
    """The templates that come with the workbench: the engine_templates package (inside the
    wheel of an installed workbench, the folder of a checkout)."""
    import engine_templates

    return Path(engine_templates.__file__).resolve().parent


def default_state_dir() -> Path:
    """Return ``./var`` of a source checkout, else the user's data directory."""
    if _is_source_checkout():
        return PROJECT_ROOT / "var"
    return Path(platformdirs.user_data_dir("nautilus-workbench"))


def default_catalog_location(state_dir: Path) -> str:
    """Return ``data/sample_catalog`` of a source checkout, else a folder in the state dir."""
    if _is_source_checkout():
        return str(PROJECT_ROOT / "data" / SAMPLE_CATALOG_NAME)
    return str(state_dir / SAMPLE_CATALOG_NAME)


def default_templates_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_TEMPLATES") or shipped_templates_dir())


@dataclass(frozen=True)
class Settings:
    """Resolved locations; build with :meth:`resolve`."""

    state_dir: Path
    catalog: str
    database_url: str
    templates_dir: Path
    catalog_is_sample: bool

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def engines_dir(self) -> Path:
        """Per engine session: the engine's log as the workbench received it."""
        return self.state_dir / "engines"

    @classmethod
    def resolve(
        cls,
        state_dir: str | os.PathLike | None = None,
        catalog: str | None = None,
        database_url: str | None = None,
        templates_dir: str | os.PathLike | None = None,
    ) -> Settings:
        """Resolve settings from arguments, then environment variables, then defaults."""
        state = Path(state_dir or os.environ.get("WORKBENCH_STATE_DIR") or default_state_dir())
        state = state.expanduser().resolve()
        explicit_catalog = catalog or os.environ.get("WORKBENCH_CATALOG") or None
        url = database_url or os.environ.get("DATABASE_URL") or f"sqlite:///{state / 'workbench.db'}"
        return cls(
            state_dir=state,
            catalog=explicit_catalog or default_catalog_location(state),
            database_url=url,
            templates_dir=Path(templates_dir) if templates_dir else default_templates_dir(),
            catalog_is_sample=explicit_catalog is None,
        )

    def ensure_state_dir(self) -> None:
        """Create the state folder and check it is writable, with a clear error if not."""
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            # A probe of its own: processes starting at once must not remove each other's.
            with tempfile.TemporaryFile(dir=self.state_dir, prefix=".write-probe-"):
                pass
        except OSError as e:
            raise ConfigurationError(
                f"The state folder {self.state_dir} is not writable ({e.strerror or e}). "
                "Choose another with --state-dir or WORKBENCH_STATE_DIR, or fix its permissions."
            ) from e
