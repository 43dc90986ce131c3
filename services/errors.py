"""One error tree for the product: callers catch at the level they can handle.

Every message says what was wrong (the offending value) and what to do about it.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error the workbench reports to a user."""


class NotFound(WorkbenchError):
    """The thing asked for (a run, an engine session, a template, a user) does not exist."""


class ConfigurationError(WorkbenchError):
    """A setting (state folder, database URL, catalog location) cannot be used."""


class StorageError(WorkbenchError):
    """The database or a run folder cannot be read or written."""


class CatalogError(WorkbenchError):
    """The data catalog cannot be read, or holds no data for a request."""


class ValidationError(WorkbenchError):
    """User input failed validation; ``problems`` lists every problem with its field name."""

    def __init__(self, summary: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        text = summary if not self.problems else summary + "\n" + "\n".join(
            f"  - {p}" for p in self.problems
        )
        super().__init__(text)
        self.summary = summary


class TemplateError(ValidationError):
    """An engine or strategy template is malformed or does not decode into NautilusTrader."""


class BacktestError(WorkbenchError):
    """A backtest could not be submitted, or a run's artefacts are missing or unusable."""


class EngineError(WorkbenchError):
    """An engine could not be started, controlled or found, or Docker is unavailable."""


class AuthenticationError(WorkbenchError):
    """Nobody is signed in, or the credentials (password, token, session) are not valid."""


class PermissionDenied(WorkbenchError):
    """The principal may not do this: a role is missing, or a confirmation was not given."""


class PipelineError(WorkbenchError):
    """A promotion or deployment cannot go ahead: its state, its gates or its approvals do not
    allow it (or another decision came first)."""


class EngineNotFound(EngineError, NotFound):
    """There is no engine session with that id."""


class EngineStateConflict(EngineError):
    """The engine's state does not allow the action (double start, stop of a stopped engine)."""


class CommandRefused(EngineError):
    """The engine refused a command (bad input, a risk check, a state that does not allow it)."""


class EngineUnresponsive(EngineError):
    """The engine did not answer a command in time (its event loop may be hung)."""


class DockerUnavailable(EngineError):
    """The Docker daemon cannot be reached, or the engine image is not built on it."""


class RunNotFound(BacktestError, NotFound):
    """There is no backtest run or sweep with that id."""


class RuntimeUnavailableError(BacktestError):
    """A runtime (Docker, a Dask cluster) cannot be used; nothing was queued on it."""
