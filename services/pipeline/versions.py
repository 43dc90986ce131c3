"""Strategy versions: create them (from a completed run, or from a template and parameters),
find them, compare them, and keep their evidence (the backtests made with them).

A version never changes: its id is the hash of its content, so creating it again returns the
one there is.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.audit import AuditLog
from services.backtest.records import COMPLETED
from services.backtest.service import BacktestService
from services.backtest.spec import BacktestSpec
from services.db import (
    BacktestRunRow,
    Database,
    DeploymentRow,
    PromotionRow,
    StrategyVersionRow,
    VersionRunRow,
)
from services.errors import NotFound, StorageError, TemplateError, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.pipeline.content import (
    Difference,
    VersionContent,
    content_from_run_config,
    diff,
)
from services.pipeline.records import APPROVED, LIVE, PAPER, RESEARCH, VersionInfo, short
from services.templates import TemplateService, class_path_problem

SOURCE, MATCH, BACKTEST, DRIFT = "source", "match", "backtest", "drift"
MIN_PREFIX = 6  # hex digits a short version id needs


@dataclass(frozen=True)
class NewVersion:
    """The version a create call resolved to; ``created`` is False when it existed already."""

    version: VersionInfo
    created: bool


@dataclass(frozen=True)
class VersionDiff:
    """Two versions and every field in which they differ."""

    left: VersionInfo
    right: VersionInfo
    differences: tuple[Difference, ...]

    def to_json(self) -> dict:
        return {"left": self.left.version_id, "right": self.right.version_id,
                "identical": not self.differences,
                "differences": [d.to_json() for d in self.differences]}


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class VersionService:
    """Creates, reads and compares strategy versions."""

    def __init__(self, database: Database, templates: TemplateService,
                 backtests: BacktestService, authorizer: Authorizer) -> None:
        self.database = database
        self._db = database
        self._templates = templates
        self._backtests = backtests
        self._auth = authorizer

    # -- creating ------------------------------------------------------------------------------
    def create_from_run(self, run_id: str, *, note: str = "",
                        principal: Principal | None = None) -> NewVersion:
        """The version of what a completed backtest ran (its exact NautilusTrader config)."""
        actor = self._auth.require(principal, "strategy.version", f"run {run_id}")
        run = self._backtests.get(run_id)
        if run.status != COMPLETED:
            raise ValidationError(f"Run {run_id} is {run.status}; a version is made from a "
                                  "completed run (its config is what ran).")
        template = self._template(run.strategy, f"run {run_id}")
        try:
            config = json.loads((Path(run.run_folder) / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise StorageError(f"Cannot read the config of run {run_id} "
                               f"({run.run_folder}/config.json): {e}") from e
        content = content_from_run_config(config, run.strategy, template.parameters)
        new = self._store(content, actor, note, source_run_id=run_id)
        self._link(new.version.version_id, [(run_id, SOURCE)])
        self.link_matching_runs(new.version.version_id)
        return NewVersion(self.get(new.version.version_id), new.created)

    def create_from_template(self, spec: BacktestSpec, *, note: str = "",
                             principal: Principal | None = None) -> NewVersion:
        """The version a template with ``spec``'s parameters, bar type and venue builds (its
        dates are not part of a version)."""
        actor = self._auth.require(principal, "strategy.version",
                                   f"{spec.strategy} on {spec.bar_type}")
        template = self._template(spec.strategy, spec.strategy)
        undated = replace(spec, start=None, end=None, label="")
        config = json.loads(self._backtests.validate(undated).json())
        content = content_from_run_config(config, spec.strategy, template.parameters)
        new = self._store(content, actor, note, source_run_id=None)
        self.link_matching_runs(new.version.version_id)
        return NewVersion(self.get(new.version.version_id), new.created)

    def _template(self, name: str, what: str):
        try:
            return self._templates.strategy(name)
        except TemplateError as e:
            raise ValidationError(f"The strategy of {what} does not load, so no version of it "
                                  f"can be made: {e.summary}", e.problems) from e

    def _store(self, content: VersionContent, actor: Principal, note: str,
               source_run_id: str | None) -> NewVersion:
        version_id = content.version_id
        existing = self._row(version_id)
        if existing is not None:
            self._auth.audit.record(actor, "strategy.version", short(version_id), "exists",
                                    f"the same content is version {short(version_id)}")
            return NewVersion(self._info(existing), False)
        data = content.content["data"]
        row = StrategyVersionRow(
            version_id=version_id, strategy=content.spec.strategy, bar_type=data["bar_type"],
            instrument_id=data["instrument_id"], content=content.content,
            spec=content.spec.to_dict(), nautilus_version=content.content["nautilus_trader"],
            source_run_id=source_run_id, note=note[:2000], created_by=actor.name,
            created_at=_now())
        try:
            with self._db.session() as session:
                session.add(row)
                session.add(AuditLog.row(actor, "strategy.version", short(version_id), "created",
                                         f"{row.strategy} on {row.bar_type}"
                                         + (f" from run {source_run_id}" if source_run_id else "")))
        except StorageError as e:
            if not isinstance(e.__cause__, IntegrityError):
                raise
            # Another process stored the same content meanwhile: it is the same version.
            return NewVersion(self._info(self._row(version_id)), False)
        return NewVersion(self._info(self._row(version_id)), True)

    # -- evidence ------------------------------------------------------------------------------
    def _link(self, version_id: str, runs: list[tuple[str, str]]) -> None:
        with self._db.session() as session:
            known = set(session.scalars(select(VersionRunRow.run_id).where(
                VersionRunRow.version_id == version_id)))
            for run_id, relation in runs:
                if run_id not in known:
                    session.add(VersionRunRow(version_id=version_id, run_id=run_id,
                                              relation=relation, linked_at=_now()))

    def link_run(self, version_id: str, run_id: str, relation: str) -> None:
        """Record ``run_id`` as a backtest of the version (``backtest`` or ``drift``)."""
        self._link(version_id, [(run_id, relation)])

    def link_matching_runs(self, version_id: str) -> int:
        """Link every completed run whose config has this version's content; returns how
        many were new. Runs whose parameters differ are skipped without reading their files."""
        row = self._row(version_id)
        parameters = row.spec.get("parameters", {})
        with self._db.session() as session:
            linked = set(session.scalars(select(VersionRunRow.run_id).where(
                VersionRunRow.version_id == version_id)))
            candidates = session.execute(select(
                BacktestRunRow.run_id, BacktestRunRow.spec, BacktestRunRow.run_folder).where(
                BacktestRunRow.strategy == row.strategy, BacktestRunRow.bar_type == row.bar_type,
                BacktestRunRow.status == COMPLETED)).all()
        try:
            template = self._templates.strategy(row.strategy)
        except TemplateError:
            return 0
        found = []
        for run_id, spec, folder in candidates:
            if run_id in linked or not _same_given(template, spec.get("parameters", {}),
                                                   parameters):
                continue
            try:
                config = json.loads((Path(folder) / "config.json").read_text())
                content = content_from_run_config(config, row.strategy, template.parameters)
            except (OSError, ValueError, KeyError):
                continue  # a run folder that is gone or unreadable is no evidence
            if content.version_id == version_id:
                found.append((run_id, MATCH))
        self._link(version_id, found)
        return len(found)

    # -- running it ----------------------------------------------------------------------------
    def check_runnable(self, version: VersionInfo) -> None:
        """Refuse a version that can no longer run as it was made: its strategy class does not
        import, its template does not load, or the template (or NautilusTrader) now builds a
        different config from the version's values."""
        strategy = version.content["strategy"]
        problems = []
        for what, path in (("strategy_path", strategy["strategy_path"]),
                           ("config_path", strategy["config_path"])):
            problem = class_path_problem(path, what) or _import_problem(path, what)
            if problem:
                problems.append(problem)
        if problems:
            raise ValidationError(f"Version {version.short_id}'s strategy class no longer "
                                  "imports; fix the strategy package or make a new version",
                                  problems)
        self._template(version.strategy, f"version {version.short_id}")
        config = json.loads(self._backtests.validate(self.spec(version)).json())
        now = content_from_run_config(config, version.strategy,
                                      self._templates.strategy(version.strategy).parameters)
        if now.version_id != version.version_id:
            changed = [f"{d.section}.{d.field}: {d.left!r} -> {d.right!r}"
                       for d in diff(version.content, now.content)]
            raise ValidationError(f"Version {version.short_id} no longer builds as it was "
                                  "made (its template or NautilusTrader changed); make a new "
                                  "version from the template as it is now", changed[:20])

    @staticmethod
    def spec(version: VersionInfo, start: str | None = None, end: str | None = None,
             label: str = "") -> BacktestSpec:
        """The backtest spec that runs ``version`` (every value explicit) over a window."""
        spec = BacktestSpec.from_dict(version.spec)
        return replace(spec, start=start, end=end, label=label)

    def backtest(self, version_id: str, *, start: str | None = None, end: str | None = None,
                 principal: Principal | None = None, relation: str = BACKTEST,
                 action: str = "backtest.submit", label: str = "") -> str:
        """Queue a backtest of the version over [start, end] and link it as evidence."""
        version = self.get(version_id)
        self.check_runnable(version)
        run_id = self._backtests.submit(
            self.spec(version, start, end, label or f"version {version.short_id}"),
            principal=principal, action=action)
        self.link_run(version.version_id, run_id, relation)
        return run_id

    # -- reading -------------------------------------------------------------------------------
    def _row(self, version_id: str) -> StrategyVersionRow | None:
        with self._db.session() as session:
            return session.get(StrategyVersionRow, version_id)

    def resolve(self, version_id: str) -> str:
        """The full id of a version given by its id or a unique prefix of it."""
        text = (version_id or "").strip().lower()
        if len(text) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in text):
            raise ValidationError(f"{version_id!r} is not a version id: give at least "
                                  f"{MIN_PREFIX} hex digits (see 'strategy versions').")
        with self._db.session() as session:
            ids = session.scalars(select(StrategyVersionRow.version_id).where(
                StrategyVersionRow.version_id.startswith(text)).limit(2)).all()
        if not ids:
            raise NotFound(f"There is no strategy version {version_id!r}; list them with "
                           "'strategy versions'.")
        if len(ids) > 1:
            raise ValidationError(f"{version_id!r} is the start of several versions; give more "
                                  "digits.")
        return ids[0]

    def get(self, version_id: str) -> VersionInfo:
        full = self.resolve(version_id)
        return self._info(self._row(full))

    def list(self, strategy: str | None = None) -> list[VersionInfo]:
        """Every version, newest first (optionally of one strategy template)."""
        query = select(StrategyVersionRow).order_by(StrategyVersionRow.created_at.desc())
        if strategy:
            query = query.where(StrategyVersionRow.strategy == strategy)
        with self._db.session() as session:
            rows = session.scalars(query).all()
        evidence = self._evidence([r.version_id for r in rows])
        return [self._info(r, evidence) for r in rows]

    def diff(self, left: str, right: str) -> VersionDiff:
        a, b = self.get(left), self.get(right)
        return VersionDiff(a, b, tuple(diff(a.content, b.content)))

    def _evidence(self, version_ids: list[str]) -> dict[str, dict]:
        """Per version: its runs (all, completed), sweeps, deployments and furthest stage."""
        out = {v: {"runs": [], "completed": [], "sweeps": set(), "deployments": [],
                   "stage": RESEARCH} for v in version_ids}
        if not version_ids:
            return out
        with self._db.session() as session:
            runs = session.execute(
                select(VersionRunRow.version_id, VersionRunRow.run_id, BacktestRunRow.status,
                       BacktestRunRow.sweep_id)
                .join(BacktestRunRow, BacktestRunRow.run_id == VersionRunRow.run_id)
                .where(VersionRunRow.version_id.in_(version_ids))
                .order_by(VersionRunRow.linked_at)).all()
            deployments = session.execute(
                select(DeploymentRow.version_id, DeploymentRow.deployment_id)
                .where(DeploymentRow.version_id.in_(version_ids))
                .order_by(DeploymentRow.created_at)).all()
            stages = session.execute(
                select(PromotionRow.version_id, PromotionRow.stage)
                .where(PromotionRow.version_id.in_(version_ids),
                       PromotionRow.status == APPROVED)).all()
        for version_id, run_id, status, sweep_id in runs:
            entry = out[version_id]
            entry["runs"].append(run_id)
            if status == COMPLETED:
                entry["completed"].append(run_id)
            if sweep_id:
                entry["sweeps"].add(sweep_id)
        for version_id, deployment_id in deployments:
            out[version_id]["deployments"].append(deployment_id)
        for version_id, stage in stages:
            if stage == LIVE or out[version_id]["stage"] == RESEARCH:
                out[version_id]["stage"] = stage if stage in (PAPER, LIVE) else RESEARCH
        return out

    def _info(self, row: StrategyVersionRow, evidence: dict | None = None) -> VersionInfo:
        entry = (evidence or self._evidence([row.version_id]))[row.version_id]
        return VersionInfo(
            version_id=row.version_id, strategy=row.strategy, bar_type=row.bar_type,
            instrument_id=row.instrument_id, parameters=dict(row.content.get("parameters", {})),
            content=row.content, spec=row.spec, nautilus_version=row.nautilus_version,
            source_run_id=row.source_run_id, note=row.note or "", created_by=row.created_by,
            created_at=_aware(row.created_at), run_ids=tuple(entry["runs"]),
            completed_run_ids=tuple(entry["completed"]),
            sweep_ids=tuple(sorted(entry["sweeps"])),
            deployment_ids=tuple(entry["deployments"]), stage=entry["stage"])


def _same_given(template, given: dict, parameters: dict) -> bool:
    """Whether the parameters a run was submitted with could be the version's (only those it
    named: the others took defaults, which its config settles)."""
    for name, value in given.items():
        spec = template.parameters.get(name)
        if spec is None or name not in parameters:
            return False
        try:
            if spec.to_json_value(spec.coerce(value)) != parameters[name]:
                return False
        except ValueError:
            return False
    return True


def _import_problem(path: str, what: str) -> str | None:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - ImportError, or an error the module raised
        return f"{what}: cannot import module {module_name!r} ({type(e).__name__}: {e})"
    if not hasattr(module, attr):
        return f"{what}: module {module_name!r} has no class {attr!r}"
    return None
