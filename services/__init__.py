"""The shared engine-service layer of Nautilus Workbench.

Plain Python, no Panel: it calls NautilusTrader (in worker processes and engine containers) and
owns persistence. Components, the app, the CLI and notebooks all go through :class:`Workbench`.

Exports resolve lazily so that code running inside engine containers (``services.engine_runtime``,
``services.strategies``) imports without the server-side dependencies (SQLAlchemy, docker-py).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BacktestError": "services.errors",
    "CatalogError": "services.errors",
    "CommandRefused": "services.errors",
    "ConfigurationError": "services.errors",
    "DockerUnavailable": "services.errors",
    "EngineError": "services.errors",
    "EngineNotFound": "services.errors",
    "EngineStateConflict": "services.errors",
    "EngineUnresponsive": "services.errors",
    "PermissionDenied": "services.errors",
    "RuntimeUnavailableError": "services.errors",
    "StorageError": "services.errors",
    "TemplateError": "services.errors",
    "ValidationError": "services.errors",
    "WorkbenchError": "services.errors",
    "Workbench": "services.workbench",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'services' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
