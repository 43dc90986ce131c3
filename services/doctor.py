"""Find and repair what crashes leave behind, saying what will be done before doing it.

Three kinds of leftovers: interrupted catalog changes (staging folders, completed or undone from
their journal, see ``services.catalog.journal``; also a sample catalog whose generation was
killed), runs recorded Running or Paused whose worker is gone, and a database whose schema is
not this version's (behind: migrated; migrated by a newer version: refused, never touched).

``nautilus-workbench doctor`` lists the findings and ``--fix`` repairs them; the server calls
:func:`recover_at_start` once when it starts. Repairs need the ``catalog.recover`` action.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil

from services.catalog.journal import (
    CatalogBusy,
    find_leftovers,
    recover_leftover,
    write_lock,
)
from services.errors import StorageError, WorkbenchError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal

log = logging.getLogger(__name__)

CATALOG, RUNS, DATABASE = "catalog", "runs", "database"


@dataclass(frozen=True)
class Finding:
    """One thing that is not as it should be, and what repairing it does."""

    area: str  # catalog | runs | database
    subject: str  # a folder, a run id, the database URL
    problem: str
    plan: str  # what --fix does about it
    fixable: bool = True

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Repair:
    finding: Finding
    ok: bool
    outcome: str

    def to_dict(self) -> dict:
        return {**self.finding.to_dict(), "ok": self.ok, "outcome": self.outcome}


class Doctor:
    """Examines and repairs one installation: its catalog, database and runs.

    Built from parts rather than an opened Workbench, because opening one migrates the
    database and reconciles runs, and the doctor must report those before changing them.
    """

    def __init__(self, settings, catalog, database, authorizer: Authorizer,
                 backtests=None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.database = database
        self.authorizer = authorizer
        self.backtests = backtests  # None while the database is not at this version's schema

    @classmethod
    def for_settings(cls, settings, principal: Principal | None = None) -> Doctor:
        """A doctor over the installation ``settings`` name, opening nothing that changes it."""
        from services.audit import AuditLog
        from services.catalog import CatalogService
        from services.db import Database

        settings.ensure_state_dir()  # where a first start would put the database
        database = Database(settings.database_url)
        catalog = CatalogService(settings.catalog)
        doctor = cls(settings, catalog, database, Authorizer(None, principal or Principal.local()))
        doctor._attach_services(AuditLog(database))
        return doctor

    @classmethod
    def for_workbench(cls, workbench) -> Doctor:
        return cls(workbench.settings, workbench.catalog, workbench.database,
                   workbench.authorizer, workbench.backtests)

    def _attach_services(self, audit) -> None:
        try:
            status = self.database.migration_status()
        except StorageError:
            return
        if not status.up_to_date:
            return
        from services.backtest.service import BacktestService
        from services.templates import TemplateService

        self.authorizer = Authorizer(audit, self.authorizer.default)
        self.backtests = BacktestService(self.database, TemplateService(self.settings.templates_dir),
                                         self.catalog, self.settings.runs_dir, self.authorizer)

    # -- examine ------------------------------------------------------------------------------
    def examine(self) -> list[Finding]:
        """Every leftover found, with what repairing it will do; changes nothing."""
        return [*self._database(), *self.catalog_findings(), *self._runs()]

    def _database(self) -> list[Finding]:
        url = self.database.url
        try:
            status = self.database.migration_status()
        except StorageError as e:
            return [Finding(DATABASE, url, str(e), "nothing: fix the database first", False)]
        if status.up_to_date:
            return []
        if not status.known:
            return [Finding(DATABASE, url, status.describe(),
                            "nothing: run the newer workbench version, or use another database "
                            "(DATABASE_URL / --database-url)", False)]
        return [Finding(DATABASE, url, status.describe(),
                        f"migrate the schema to {status.head} (as every start does)")]

    def catalog_findings(self) -> list[Finding]:
        """Interrupted catalog changes and sample generations (a listing of the folder)."""
        findings = self._sample_builds()
        if self.catalog.protocol == "file" and not Path(self.catalog.root).is_dir():
            return findings  # no catalog yet (or a typo): no change to recover, none created
        try:
            # Under the write lock: a staging folder is a leftover only if nobody is writing.
            with write_lock(self.catalog, wait=False):
                leftovers = find_leftovers(self.catalog)
        except CatalogBusy:
            return findings + [Finding(CATALOG, self.catalog.location, "another process is changing the "
                            "catalog right now", "nothing: its staging folder is not a leftover; "
                            "run the doctor again when it has finished", False)]
        except WorkbenchError as e:
            return findings + [Finding(CATALOG, self.catalog.location, str(e), "nothing", False)]
        for leftover in leftovers:
            what = (f"an interrupted {leftover.operation} of {leftover.target}"
                    if leftover.operation else "an unfinished change")
            when = f" (started {leftover.created_at})" if leftover.created_at else ""
            findings.append(Finding(CATALOG, leftover.path, f"{what}{when}", leftover.plan(),
                                    not leftover.problem))
        return findings

    def _sample_builds(self) -> list[Finding]:
        """Folders of a sample catalog generation that was killed (``.NAME.building-PID``)."""
        if self.catalog.protocol != "file":
            return []
        target = Path(self.catalog.root)
        if not target.parent.is_dir():
            return []
        findings = []
        for path in sorted(target.parent.glob(f".{target.name}.building-*")):
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and psutil.pid_exists(int(pid)):
                continue  # still being built
            findings.append(Finding(CATALOG, str(path), "a sample catalog generation that was "
                                    "interrupted", "remove the folder (the sample is generated "
                                    "again on the next start)"))
        return findings

    def _runs(self) -> list[Finding]:
        if self.backtests is None:
            return []
        return [Finding(RUNS, run.run_id,
                        f"recorded {run.status} on the {run.runtime} runtime, but its worker is "
                        "gone", "record it Failed (Interrupted), or Completed if its results "
                        "are all written")
                for run in self.backtests.orphaned_runs()]

    # -- repair -------------------------------------------------------------------------------
    def repair(self, findings: list[Finding], *, principal: Principal | None = None) -> list[Repair]:
        """Repair the fixable ``findings`` (as from :meth:`examine`), each on its own."""
        fixable = [f for f in findings if f.fixable]
        if not fixable:
            return []
        actor = self.authorizer.require(principal, "catalog.recover",
                                        f"{len(fixable)} leftovers")
        repairs = []
        for finding in fixable:
            try:
                outcome = self._repair_one(finding)
                repairs.append(Repair(finding, True, outcome))
            except WorkbenchError as e:
                repairs.append(Repair(finding, False, str(e)))
            audit = self.authorizer.audit
            if audit is not None:
                last = repairs[-1]
                audit.record(actor, "catalog.recover", finding.subject,
                             "ok" if last.ok else "failed", last.outcome[:2000])
        return repairs

    def _repair_one(self, finding: Finding) -> str:
        if finding.area == DATABASE:
            self.database.upgrade()
            from services.audit import AuditLog

            self._attach_services(AuditLog(self.database))
            return f"migrated to {self.database.migration_status().head}"
        if finding.area == RUNS:
            info = self.backtests.settle_orphan(finding.subject)
            return f"recorded {info.status}" + (f": {info.error}" if info.error else "")
        if ".building-" in finding.subject:
            shutil.rmtree(finding.subject, ignore_errors=True)
            return f"removed {finding.subject}"
        try:
            with write_lock(self.catalog, wait=False):
                for leftover in find_leftovers(self.catalog):
                    if leftover.path == finding.subject:
                        return recover_leftover(self.catalog, leftover)
        except CatalogBusy as e:
            raise WorkbenchError(f"{e}; its changes are not leftovers. Run the doctor again "
                                 "when it has finished.") from e
        return f"{finding.subject} was already gone"


def recover_at_start(workbench, principal: Principal) -> list[Repair]:
    """What the server does once at start: repair every leftover and log what was done.

    ``principal`` is who started the server (it owns the state folder and the catalog).
    Unfixable findings (a database of a newer version) are raised by opening the workbench.
    """
    doctor = Doctor.for_workbench(workbench)
    findings = doctor.examine()
    for finding in findings:
        log.warning("start-up check: %s %s: %s; will %s", finding.area, finding.subject,
                    finding.problem, finding.plan)
    repairs = doctor.repair(findings, principal=principal)
    for repair in repairs:
        (log.info if repair.ok else log.error)("start-up repair of %s: %s",
                                               repair.finding.subject, repair.outcome)
    return repairs
