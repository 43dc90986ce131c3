"""The one object the app, the CLI and notebooks build: settings, database and services."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from services.backtest.service import BacktestService
from services.catalog import CatalogService
from services.catalog.writer import CatalogWriter
from services.db import Database
from services.engine.service import EngineService, instance_id
from services.errors import CatalogError
from services.catalog.sample import generate_sample_catalog, is_sample_catalog
from services.settings import Settings
from services.templates import TemplateService

_open_lock = threading.Lock()


@dataclass
class Workbench:
    """Services over one state folder, database and catalog. Build with :meth:`open`."""

    settings: Settings
    database: Database
    templates: TemplateService
    catalog: CatalogService
    backtests: BacktestService
    engines: EngineService
    catalog_writer: CatalogWriter | None = None  # imports, conversions, deletions (audited)

    def __post_init__(self) -> None:
        if self.catalog_writer is None:
            self.catalog_writer = CatalogWriter(self.catalog, self.database)

    @classmethod
    def open(
        cls,
        state_dir: str | Path | None = None,
        catalog: str | None = None,
        database_url: str | None = None,
        templates_dir: str | Path | None = None,
        max_parallel: int | None = None,
    ) -> Workbench:
        """Resolve settings, migrate the database, create the sample catalog if it is missing.

        Raises ConfigurationError / StorageError / CatalogError with a message saying how to fix
        the setting at fault.
        """
        settings = Settings.resolve(state_dir, catalog, database_url, templates_dir)
        with _open_lock:
            settings.ensure_state_dir()
            database = Database(settings.database_url)
            database.upgrade()
            if settings.catalog_is_sample:
                try:
                    generate_sample_catalog(settings.catalog)
                except OSError as e:
                    raise CatalogError(
                        f"Cannot create the sample catalog at {settings.catalog}: {e}. "
                        "Point WORKBENCH_CATALOG / --catalog at a writable folder or an existing "
                        "catalog."
                    ) from e
        is_sample = "://" not in settings.catalog and is_sample_catalog(settings.catalog)
        catalog_service = CatalogService(settings.catalog, is_sample=is_sample)
        templates = TemplateService(settings.templates_dir)
        backtests = BacktestService(database, templates, catalog_service, settings.runs_dir,
                                    max_parallel=max_parallel)
        backtests.reconcile()
        # Engines are reattached by the server's monitor (one per process), not here: opening a
        # workbench must not need Docker.
        engines = EngineService(database, templates, catalog_service, settings.engines_dir,
                                instance_id(settings.state_dir),
                                image=os.environ.get("WORKBENCH_ENGINE_IMAGE"))
        return cls(settings, database, templates, catalog_service, backtests, engines)
