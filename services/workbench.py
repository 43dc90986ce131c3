"""The one object the app, the CLI and notebooks build: settings, database and services."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from services.audit import AuditLog
from services.backtest.service import BacktestService
from services.catalog import CatalogService
from services.catalog.sample import generate_sample_catalog, is_sample_catalog
from services.catalog.sources import SourcePolicy
from services.catalog.writer import CatalogWriter
from services.db import Database
from services.doctor import Doctor
from services.engine.service import EngineService, instance_id
from services.errors import CatalogError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.identity.sessions import SessionService
from services.identity.tokens import TokenService
from services.identity.users import UserService
from services.live import LiveFeed, LiveState
from services.pipeline import Pipeline
from services.settings import Settings
from services.templates import TemplateService

# Calls that name no principal act for this one: the OS user of a notebook, a test or the CLI.
LOCAL = "local"

_open_lock = threading.Lock()


@dataclass
class Workbench:
    """Services over one state folder, database and catalog. Build with :meth:`open`."""

    settings: Settings
    database: Database
    audit: AuditLog
    authorizer: Authorizer
    users: UserService
    tokens: TokenService
    sessions: SessionService
    templates: TemplateService
    catalog: CatalogService
    catalog_writer: CatalogWriter  # imports, conversions, exports, deletions (authorised, audited)
    backtests: BacktestService
    engines: EngineService
    pipeline: Pipeline  # strategy versions, promotions, deployments, drift
    _live: LiveState | None = field(default=None, repr=False)
    _feed: LiveFeed | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        state_dir: str | Path | None = None,
        catalog: str | None = None,
        database_url: str | None = None,
        templates_dir: str | Path | None = None,
        max_parallel: int | None = None,
        default_principal: Principal | None | str = LOCAL,
        scheduler: bool = False,
    ) -> Workbench:
        """Resolve settings, migrate the database, create the sample catalog if it is missing.

        ``default_principal`` acts for service calls that name none: by default the local OS
        user (notebooks, tests, the CLI without a token); the server passes ``None`` so that
        every call must name its signed-in user. ``scheduler=True`` also runs the backtest
        scheduler in this process (a notebook without a server): queued runs start here.

        Raises ConfigurationError / StorageError / CatalogError with a message saying how to fix
        the setting at fault.
        """
        default = Principal.local() if default_principal == LOCAL else default_principal
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
        audit = AuditLog(database)
        authorizer = Authorizer(audit, default)
        # Opening a workbench never starts or reconciles runs: only the scheduler does
        # (the server's, or backtests.start_scheduler()).
        backtests = BacktestService(database, templates, catalog_service, settings.runs_dir,
                                    authorizer, max_parallel=max_parallel)
        # Engines are reattached by the server's monitor (one per process), not here: opening a
        # workbench must not need Docker.
        engines = EngineService(database, templates, catalog_service, settings.engines_dir,
                                instance_id(settings.state_dir), authorizer,
                                image=os.environ.get("WORKBENCH_ENGINE_IMAGE"))
        workbench = cls(settings=settings, database=database, audit=audit,
                        authorizer=authorizer, users=UserService(database, audit, authorizer),
                        tokens=TokenService(database, audit, authorizer),
                        sessions=SessionService(database, audit),
                        templates=templates, catalog=catalog_service,
                        catalog_writer=CatalogWriter(
                            catalog_service, authorizer,
                            SourcePolicy.for_workbench(settings.state_dir, settings.catalog),
                            protected=(str(settings.state_dir),)),
                        backtests=backtests, engines=engines,
                        pipeline=Pipeline.build(database, templates, catalog_service, backtests,
                                                engines, authorizer))
        # A change a crash interrupted is completed (or undone) by the next start; the server
        # (no default principal) does it through recover_at_start as the user who started it.
        if catalog_service.protocol == "file" and authorizer.allows(default, "catalog.recover")[0]:
            doctor = Doctor.for_workbench(workbench)
            doctor.repair(doctor.catalog_findings(), principal=default)
        if scheduler:
            backtests.start_scheduler().wait_active(timeout=5.0)
        return workbench

    def live_state(self) -> LiveState:
        """What every component of this process shows live (runs, sweeps, engines), kept
        current by one feeder thread per process, started on first use."""
        with _open_lock:
            if self._live is None:
                self._live = LiveState()
                self._feed = LiveFeed(self, self._live).start()
        return self._live

    def close(self) -> None:
        """Stop this process's scheduler (workers go on) and release the database."""
        if self._feed is not None:
            self._feed.stop()
        self.backtests.close()
        self.database.dispose()
