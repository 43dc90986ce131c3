"""The shared engine-service layer of Nautilus Workbench.

Plain Python, no Panel: it calls NautilusTrader (in worker processes) and owns persistence.
Components, the app, the CLI and notebooks all go through :class:`Workbench`.
"""

from services.errors import (
    BacktestError,
    CatalogError,
    ConfigurationError,
    StorageError,
    TemplateError,
    ValidationError,
    WorkbenchError,
)


def __getattr__(name: str):
    # Imported on first use: backtest workers import this package too, and need neither the
    # database nor the migrations that Workbench brings in (half a second per worker).
    if name == "Workbench":
        from services.workbench import Workbench

        return Workbench
    raise AttributeError(f"module 'services' has no attribute {name!r}")


__all__ = [
    "BacktestError",
    "CatalogError",
    "ConfigurationError",
    "StorageError",
    "TemplateError",
    "ValidationError",
    "Workbench",
    "WorkbenchError",
]
