"""The one object the app, the CLI and notebooks build: settings, database and services.

Services are built on first use, each once (thread-safe): ``nautilus-workbench engine list`` and
``engine emergency-stop`` touch only the database and Docker, so they must not pay for
importing pandas and NautilusTrader (the catalog and the backtest service do) or for hashing a
password (the identity services do).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from services.audit import AuditLog
from services.db import Database
from services.errors import CatalogError
from services.events import EventHub
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.settings import Settings

if TYPE_CHECKING:
    from services.alerts import AlertService
    from services.backtest.repository import RunRepository
    from services.backtest.service import BacktestService
    from services.backtest.walk_forward import WalkForwardService
    from services.catalog import CatalogService
    from services.catalog.writer import CatalogWriter
    from services.engine.commands import EngineCommands
    from services.engine.service import EngineService
    from services.identity.sessions import SessionService
    from services.identity.tokens import TokenService
    from services.identity.users import UserService
    from services.live import LiveState
    from services.metrics import MetricsService
    from services.templates import TemplateService

# Calls that name no principal act for this one: the OS user of a notebook, a test or the CLI.
LOCAL = "local"

_open_lock = threading.Lock()


class _service:
    """A service built by the decorated method on first access, once per workbench."""

    def __init__(self, build) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __get__(self, workbench, owner=None):
        if workbench is None:
            return self
        built = workbench._built
        if self.name not in built:
            with workbench._build_lock:
                if self.name not in built:
                    built[self.name] = self.build(workbench)
        return built[self.name]


class Workbench:
    """Services over one state folder, database and catalog. Build with :meth:`open`."""

    def __init__(self, settings: Settings, database: Database, audit: AuditLog,
                 authorizer: Authorizer, hub: EventHub | None = None,
                 max_parallel: int | None = None) -> None:
        self.settings = settings
        self.database = database
        self.audit = audit
        self.authorizer = authorizer
        self.hub = hub or EventHub()  # one per process: engine watchers publish, the UI listens
        self.max_parallel = max_parallel
        self._built: dict[str, object] = {}
        self._build_lock = threading.RLock()

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
        """Resolve settings and migrate the database; services follow on first use.

        ``default_principal`` acts for service calls that name none: by default the local OS
        user (notebooks, tests, the CLI without a token); the server passes ``None`` so that
        every call must name its signed-in user. ``scheduler=True`` also runs the backtest
        scheduler in this process (a notebook without a server): queued runs start here.

        Raises ConfigurationError / StorageError with a message saying how to fix the setting
        at fault (the catalog's CatalogError comes when the catalog is first used).
        """
        default = Principal.local() if default_principal == LOCAL else default_principal
        settings = Settings.resolve(state_dir, catalog, database_url, templates_dir)
        with _open_lock:
            settings.ensure_state_dir()
            database = Database(settings.database_url)
            database.upgrade()
        audit = AuditLog(database)
        workbench = cls(settings, database, audit, Authorizer(audit, default),
                        max_parallel=max_parallel)
        if scheduler:
            workbench.backtests.start_scheduler().wait_active(timeout=5.0)
        return workbench

    # -- identity ---------------------------------------------------------------------------

    @_service
    def users(self) -> UserService:
        from services.identity.users import UserService

        return UserService(self.database, self.audit, self.authorizer)

    @_service
    def tokens(self) -> TokenService:
        from services.identity.tokens import TokenService

        return TokenService(self.database, self.audit, self.authorizer)

    @_service
    def sessions(self) -> SessionService:
        from services.identity.sessions import SessionService

        return SessionService(self.database, self.audit)

    # -- data and backtests -----------------------------------------------------------------

    @_service
    def templates(self) -> TemplateService:
        from services.templates import TemplateService

        return TemplateService(self.settings.templates_dir)

    @_service
    def catalog(self) -> CatalogService:
        """The data catalog; the sample catalog is generated here the first time."""
        from services.catalog import CatalogService
        from services.catalog.sample import generate_sample_catalog, is_sample_catalog

        settings = self.settings
        if settings.catalog_is_sample:
            with _open_lock:
                try:
                    generate_sample_catalog(settings.catalog)
                except OSError as e:
                    raise CatalogError(
                        f"Cannot create the sample catalog at {settings.catalog}: {e}. "
                        "Point WORKBENCH_CATALOG / --catalog at a writable folder or an "
                        "existing catalog.") from e
        is_sample = "://" not in settings.catalog and is_sample_catalog(settings.catalog)
        catalog = CatalogService(settings.catalog, is_sample=is_sample)
        # A change a crash interrupted is completed (or undone) before the catalog is used; the
        # server (no default principal) does it through recover_at_start as who started it.
        default = self.authorizer.default
        if catalog.protocol == "file" and self.authorizer.allows(default, "catalog.recover")[0]:
            from services.doctor import Doctor

            doctor = Doctor(settings, catalog, self.database, self.authorizer)
            doctor.repair(doctor.catalog_findings(), principal=default)
        return catalog

    @_service
    def catalog_writer(self) -> CatalogWriter:
        """Imports, conversions, exports, deletions (authorised, audited)."""
        from services.catalog.sources import SourcePolicy
        from services.catalog.writer import CatalogWriter

        return CatalogWriter(self.catalog, self.authorizer,
                             SourcePolicy.for_workbench(self.settings.state_dir,
                                                        self.settings.catalog),
                             protected=(str(self.settings.state_dir),))

    @_service
    def runs(self) -> RunRepository:
        """Reading runs and sweeps from the database alone (no pandas, no NautilusTrader):
        what quick commands such as ``backtest list`` use."""
        from services.backtest.repository import RunRepository

        return RunRepository(self.database)

    @_service
    def backtests(self) -> BacktestService:
        from services.backtest.service import BacktestService

        # Opening a workbench never starts or reconciles runs: only the scheduler does (the
        # server's, or backtests.start_scheduler()).
        service = BacktestService(self.database, self.templates, self.catalog,
                                  self.settings.runs_dir, self.authorizer,
                                  max_parallel=self.max_parallel)
        # The scheduler's step advances walk-forward analyses (each fold's test run).
        service.add_step(lambda only: self.walk_forwards.advance(only))
        return service

    @_service
    def walk_forwards(self) -> WalkForwardService:
        """Walk-forward analyses: folds of train sweeps and out-of-sample test runs."""
        from services.backtest.walk_forward import WalkForwardService

        return WalkForwardService(self.backtests, self.database, lambda: self.catalog,
                                 self.authorizer)

    # -- engines ----------------------------------------------------------------------------

    @_service
    def engines(self) -> EngineService:
        """Engine sessions in Docker. Engines are reattached by the server's monitor (one per
        process), not here: opening a workbench must not need Docker."""
        from services.engine.service import EngineService, instance_id

        return EngineService(self.database, self.templates, lambda: self.catalog,
                             self.settings.engines_dir, instance_id(self.settings.state_dir),
                             self.authorizer, image=os.environ.get("WORKBENCH_ENGINE_IMAGE"),
                             hub=self.hub)

    @_service
    def commands(self) -> EngineCommands:
        """Orders, cancels, flatten, trading state, strategies and risk limits of running
        engines, and the tiered emergency stop."""
        from services.engine.commands import EngineCommands

        return EngineCommands(self.engines)

    @_service
    def live(self) -> LiveState:
        """What every session of this process shows live — runs, sweeps, the scheduler,
        engines with their orders, fills, positions, risk and alerts — kept current by the event
        hub and one database feed per process (``live.start()`` starts them, once)."""
        from services.live import LiveState

        return LiveState(self.hub, self.engines, self.backtests, self.walk_forwards)

    @_service
    def alerts(self) -> AlertService:
        """Alert rules over the event hub, delivered to webhooks and e-mail (start it with
        ``alerts.start()``; the server does)."""
        from services.alerts import AlertService

        return AlertService(self.database, self.hub, self.authorizer, self.engines)

    @_service
    def metrics(self) -> MetricsService:
        """Metrics recorded through the API, read back with the engines' own."""
        from services.metrics import MetricsService

        return MetricsService(self.database, self.authorizer)

    def close(self) -> None:
        """Stop this process's scheduler (workers go on), the live board and alerts if they
        run, and release the database."""
        for name in ("backtests", "live", "alerts"):
            service = self._built.get(name)
            if service is not None:
                (service.close if name == "backtests" else service.stop)()
        self.database.dispose()
