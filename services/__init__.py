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
from services.workbench import Workbench

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
