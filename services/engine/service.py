"""Start, watch and stop paper/sandbox/live TradingNodes, each in its own Docker container.

State machine: Stopped -> Starting -> Running -> Stopping -> Stopped, and any -> Error. States
change only on what the container and the bootstrap inside it report (status lines in the log
stream, the container's exit), never on a guess. Every control action is authorised here, not
only in the UI, and written to the audit log with its outcome, refusals included.

What the watchers see is published on the workbench's event hub (services.events): state
changes and status snapshots (nautilus_engine_status), docker stats samples (resource_metrics),
errors (error_events) and the engine's order, position and risk events. Commands into running
engines are services.engine.commands.EngineCommands.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from services import events
from services.db import Database, EngineMetricRow, EngineSessionRow
from services.engine.docker_api import DockerGateway
from services.engine.image import DEFAULT_IMAGE
from services.engine.states import (
    ACTIVE_STATES,
    ERROR,
    RUNNING,
    STARTING,
    STOPPED,
    STOPPING,
    may_move,
)
from services.engine_runtime.protocol import EVENT_KINDS, STATUS_PREFIX
from services.errors import (
    EngineError,
    EngineNotFound,
    EngineStateConflict,
    PermissionDenied,
    TemplateError,
    ValidationError,
)
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.templates import TemplateService

if TYPE_CHECKING:
    from services.catalog import CatalogService
    from services.db import AuditEntry
    from services.engine.config import EngineConfig, EngineTemplate

LOG_TAIL_ON_ERROR = 15
STOP_GRACE_SECONDS = 20  # SIGTERM, then SIGKILL: a node stops in ~1 s with timeout_post_stop low
METRICS_RETENTION_DAYS = 14  # engine_metrics grows by ~12 rows per engine every 5 s
STATUS_WRITE_INTERVAL = 2.0  # seconds between database writes of an engine's status snapshot
SETTLE_WAIT_S = 2.0  # a command finding its engine gone waits so long for its end to be written
_LOG_TS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) (.*)$")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EngineInfo:
    """An engine session as the UI, API, CLI and notebooks see it (no secret values in it)."""

    session_id: str
    name: str
    template: str
    mode: str
    state: str
    container_name: str
    container_id: str | None
    image: str
    actor: str
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    final_state: str | None
    exit_code: int | None
    error: str | None
    status: dict
    status_at: datetime | None
    parameters: dict
    memory_limit_mb: int
    cpu_limit: float
    risk_limits: dict = field(default_factory=dict)  # limit -> {"value", "action", ...}

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("created_at", "started_at", "stopped_at", "status_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@dataclass
class _Watch:
    """What the service follows for one running container."""

    session_id: str
    container_id: str
    stop: threading.Event = field(default_factory=threading.Event)
    stats: dict | None = None
    status: dict = field(default_factory=dict)
    status_written: float = 0.0
    lines: deque = field(default_factory=lambda: deque(maxlen=400))
    exit_claimed: threading.Event = field(default_factory=threading.Event)
    exit_settled: threading.Event = field(default_factory=threading.Event)


class EngineService:
    """Engine sessions over Docker, the database and the audit log.

    ``catalog`` is the CatalogService, or a function returning it: listing and stopping
    engines never needs the catalog (nor the pandas and NautilusTrader it imports), so the
    workbench hands over a function and the catalog is opened when an engine is validated.
    """

    def __init__(self, database: Database, templates: TemplateService,
                 catalog: CatalogService | Callable[[], CatalogService],
                 engines_dir: Path, instance: str, authorizer: Authorizer,
                 image: str | None = None, gateway: DockerGateway | None = None,
                 hub: events.EventHub | None = None) -> None:
        self.database = database
        self.templates = templates
        self._catalog = catalog
        self.hub = hub or events.EventHub()
        self.engines_dir = Path(engines_dir)
        self.instance = instance
        self.image = image or DEFAULT_IMAGE
        self.authorizer = authorizer
        self.audit = authorizer.audit
        self.docker = gateway or DockerGateway()
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.RLock()
        self._expected_exit: dict[str, str] = {}  # session -> "stop" | "kill"
        self._changed = threading.Condition()

    @property
    def catalog(self) -> CatalogService:
        if callable(self._catalog):
            self._catalog = self._catalog()
        return self._catalog

    # -- templates and validation --------------------------------------------------------------

    def template_names(self) -> list[str]:
        from services.engine.config import ENGINE_TEMPLATE_NAMES

        return [n for n in ENGINE_TEMPLATE_NAMES if (self.templates.root / f"{n}.json").exists()]

    def template(self, name: str) -> EngineTemplate:
        if name not in self.template_names():
            raise TemplateError(f"Unknown engine template {name!r}. Known engine templates: "
                                f"{', '.join(self.template_names()) or 'none'}.")
        from services.engine.config import load_engine_template

        return load_engine_template(self.templates.root / f"{name}.json",
                                    self.templates.strategy_names())

    def validate(self, template: str, parameters: dict | None = None,
                 name: str | None = None, session_id: str | None = None) -> EngineConfig:
        """Build the engine configuration or raise ValidationError listing every problem."""
        from services.engine.config import build_engine_config, instrument_id_of

        engine_template = self.template(template)
        values = dict(parameters or {})
        strategy_spec = engine_template.parameters.get("strategy")
        strategy_name = str(values.get("strategy", strategy_spec.default if strategy_spec else ""))
        try:
            strategy = self.templates.strategy(strategy_name)
        except TemplateError as e:
            raise ValidationError(f"Invalid configuration for engine template '{template}'",
                                  [f"strategy: {e}"]) from e
        bar_spec = engine_template.parameters.get("bar_type")
        bar_type = str(values.get("bar_type", bar_spec.default if bar_spec else ""))
        instrument = None
        instrument_id = instrument_id_of(bar_type)
        if instrument_id:
            try:
                instrument = self.catalog.instrument(instrument_id)
            except Exception:  # not in the catalog: live venues load their own instruments
                instrument = None
        tag = (session_id or uuid.uuid4().hex)[:12]
        return build_engine_config(engine_template, values, strategy, instrument, name, tag)

    # -- control actions ----------------------------------------------------------------------

    def start(self, template: str, parameters: dict | None = None, *,
              principal: Principal | None = None, name: str | None = None,
              confirm: str | None = None, permission: str = "engine.start") -> EngineInfo:
        """Validate, authorise and start an engine container; returns in state Starting.

        ``permission`` is the action that authorises the start: ``engine.start``, or the
        action of a feature that starts engines on its own terms (the pipeline's
        ``strategy.deploy`` and ``strategy.rollout``); live starts need the typed
        confirmation whatever authorises them.
        """
        target = name or template
        # The role first (the template says whether it is live), then the details.
        actor = self.authorizer.require(principal, permission, target,
                                        live=self.template(template).mode == "live",
                                        state=STOPPED)
        session_id = uuid.uuid4().hex[:12]
        try:
            config = self.validate(template, parameters, name, session_id)
        except ValidationError as e:
            self._audit(actor, "engine.start", target, None, None, "invalid", str(e))
            raise
        return self._start_config(config, actor, confirm, session_id, permission)

    def _start_config(self, config: EngineConfig, actor: Principal, confirm: str | None,
                      session_id: str | None = None,
                      permission: str = "engine.start") -> EngineInfo:
        target = config.name
        actor = self._authorise(actor, "engine.start", target, config.mode, confirm, STOPPED,
                                permission)
        secrets = self._environment_values(config, actor)
        with self._lock:
            running = self._active_by_name(config.name)
            if running is not None:
                self._audit(actor, "engine.start", target, running.state, running.state, "refused",
                            f"already {running.state} as session {running.session_id}")
                raise EngineStateConflict(
                    f"An engine named '{config.name}' is already {running.state} "
                                  f"(session {running.session_id}). Stop it first, or start this "
                                  "one under another name.")
            session_id = session_id or uuid.uuid4().hex[:12]
            container_name = f"nautilus-engine-{session_id}"
            folder = self.engines_dir / session_id
            try:
                container = self.docker.create_engine(
                    image=self.image, name=container_name, config=config,
                    labels=self._labels(session_id, config), environment=secrets,
                    catalog=self.catalog.location, session_id=session_id)
            except (EngineError, ValidationError) as e:
                self._audit(actor, "engine.start", target, STOPPED, STOPPED, "failed", str(e))
                raise
            folder.mkdir(parents=True, exist_ok=True)
            now = _now()
            with self.database.session() as session:
                session.add(EngineSessionRow(
                    session_id=session_id, name=config.name, template=config.template,
                    mode=config.mode, config=config.to_record(), state=STARTING,
                    container_id=container.id, container_name=container_name, image=self.image,
                    actor=actor.name, created_at=now, started_at=None))
                session.add(self._audit_row(actor, "engine.start", f"{config.name} ({session_id})",
                                            STOPPED, STARTING, "accepted",
                                            f"template {config.template}, mode {config.mode}"))
            try:
                self.docker.start(container)
            except EngineError as e:
                self._finish(session_id, ERROR, error=str(e))
                self._audit(actor, "engine.start", f"{config.name} ({session_id})", STARTING, ERROR,
                            "failed", str(e))
                raise
            self._watch(session_id, container.id, secrets)
        return self.get(session_id)

    def stop(self, session_id: str, *, principal: Principal | None = None,
             permission: str = "engine.stop") -> EngineInfo:
        """Ask the engine to stop gracefully (SIGTERM; the node stops its strategies);
        ``permission`` as for :meth:`start`."""
        info = self.get(session_id)
        actor = self._authorise(principal, "engine.stop", _target(info), info.mode, "not-needed",
                                info.state, permission)
        if info.state not in (STARTING, RUNNING):
            self._audit(actor, "engine.stop", _target(info), info.state, info.state, "refused",
                        f"engine is {info.state}")
            raise EngineStateConflict(f"Engine '{info.name}' is {info.state}; there is nothing to stop."
                              + (" Use emergency stop to kill it now." if info.state == STOPPING
                                 else ""))
        self._ensure_watched(info)  # the exit must be seen by this process to settle the state
        self._set_state(session_id, STOPPING)
        self._audit(actor, "engine.stop", _target(info), info.state, STOPPING, "accepted")
        self._expected_exit[session_id] = "stop"

        def stop_container():
            try:
                self.docker.stop(info.container_id, timeout=STOP_GRACE_SECONDS)
            except EngineError as e:
                self._finish(session_id, ERROR, error=f"Stopping failed: {e}")
        threading.Thread(target=stop_container, name=f"stop-{session_id}", daemon=True).start()
        return self.get(session_id)

    def emergency_stop(self, session_id: str, *, principal: Principal | None = None) -> EngineInfo:
        """Kill the engine's container now (SIGKILL), from any state. Never refused for state."""
        info = self.get(session_id)
        actor = self._authorise(principal, "engine.emergency_stop", _target(info), info.mode,
                                "not-needed", info.state)
        self._expected_exit[session_id] = "kill"  # commands racing the kill are refused
        if info.is_active:
            self._mark_killed(session_id)
        started = time.perf_counter()
        try:
            killed = self.docker.kill(info.container_id) if info.container_id else False
        except EngineError as e:
            # Not killed (Docker unreachable): a later exit must not pass for this stop.
            self._expected_exit.pop(session_id, None)
            if info.is_active:
                self._mark_killed(session_id, info.final_state)
            self._audit(actor, "engine.emergency_stop", _target(info), info.state, info.state,
                        "failed", str(e)[:2000])
            raise
        if killed:
            self.docker.wait_exited(info.container_id, timeout=10)
        took = time.perf_counter() - started
        was = info.state
        # The record goes in with the Stopped state: whoever is told of it finds who did it.
        self._finish(session_id, STOPPED,
                     final_state="Killed" if killed else info.final_state or STOPPED,
                     error=None if killed or was != ERROR else info.error,
                     audit=lambda now: self._audit_row(
                         actor, "engine.emergency_stop", _target(info), was, now,
                         "killed" if killed else "noop",
                         f"container killed in {took:.2f} s" if killed
                         else "container was not running"))
        self._expected_exit.pop(session_id, None)
        return self.get(session_id)

    def is_being_killed(self, session_id: str) -> bool:
        """An emergency stop of this engine is under way in this process."""
        return self._expected_exit.get(session_id) == "kill"

    def emergency_stop_all(self, *, principal: Principal | None = None) -> list[EngineInfo]:
        """Kill every active engine of this workbench (the button on every page)."""
        return [self.emergency_stop(e.session_id, principal=principal)
                for e in self.list_sessions() if e.is_active]

    def restart(self, session_id: str, *, principal: Principal | None = None,
                confirm: str | None = None, timeout: float = 60) -> EngineInfo:
        """Stop the engine (if active) and start a new session with the same configuration."""
        info = self.get(session_id)
        config = self._stored_config(session_id)
        # A live restart starts a live engine again: the same typed confirmation (its name).
        actor = self._authorise(principal, "engine.restart", info.name, info.mode, confirm,
                                info.state)
        self._audit(actor, "engine.restart", _target(info), info.state, info.state, "accepted")
        if info.state in (STARTING, RUNNING):
            self.stop(session_id, principal=actor)
        if self.get(session_id).is_active:
            self.wait_for(session_id, (STOPPED, ERROR), timeout=timeout)
        return self._start_config(config, actor, confirm)

    def update_config(self, session_id: str, parameters: dict, *,
                      principal: Principal | None = None) -> EngineInfo:
        """Validate new parameters for a stopped session; the next restart uses them."""
        info = self.get(session_id)
        actor = self._authorise(principal, "engine.update_config", _target(info), info.mode,
                                "not-needed", info.state)
        if info.is_active:
            self._audit(actor, "engine.update_config", _target(info), info.state, info.state,
                        "refused", f"engine is {info.state}")
            raise EngineStateConflict(f"Engine '{info.name}' is {info.state}; stop it before changing "
                              "its configuration.")
        merged = {**info.parameters, **self._stored_config(session_id).strategy_parameters,
                  **parameters}
        try:
            config = self.validate(info.template, merged, info.name)
        except ValidationError as e:
            self._audit(actor, "engine.update_config", _target(info), info.state, info.state,
                        "invalid", str(e))
            raise
        with self.database.session() as session:
            row = session.get(EngineSessionRow, session_id)
            row.config = config.to_record()
            session.add(self._audit_row(actor, "engine.update_config", _target(info), info.state,
                                        info.state, "accepted",
                                        json.dumps(_jsonable(parameters), sort_keys=True)))
        return self.get(session_id)

    # -- reading ------------------------------------------------------------------------------

    def get(self, session_id: str) -> EngineInfo:
        with self.database.session() as session:
            row = session.get(EngineSessionRow, session_id)
            if row is None:
                raise EngineNotFound(f"There is no engine session {session_id!r}. "
                                  "List engines with `nautilus-workbench engine list`.")
            info = self._info(row)
        watch = self._watches.get(session_id)
        if watch is not None and watch.status:
            info = _with_status(info, watch.status)
        return info

    def list_sessions(self, limit: int = 200) -> list[EngineInfo]:
        with self.database.session() as session:
            rows = session.scalars(select(EngineSessionRow)
                                   .order_by(EngineSessionRow.created_at.desc()).limit(limit)).all()
            infos = [self._info(r) for r in rows]
        return [_with_status(i, self._watches[i.session_id].status)
                if i.session_id in self._watches and self._watches[i.session_id].status else i
                for i in infos]

    def logs(self, session_id: str, tail: int = 200, search: str | None = None) -> list[str]:
        """The engine's log lines (newest last), kept by the workbench even after cleanup.

        Reads backwards from the end of the file only as far as ``tail`` lines need, so polling
        the tail of a long log stays cheap; ``tail=0`` reads everything."""
        self.get(session_id)
        path = self.engines_dir / session_id / "engine.log"
        if not path.exists():
            return []
        needle = search.lower() if search else None
        if not tail:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            return [line for line in lines if needle is None or needle in line.lower()]
        found: list[str] = []
        for line in _lines_backwards(path):
            if needle is None or needle in line.lower():
                found.append(line)
                if len(found) == tail:
                    break
        return found[::-1]

    def metrics(self, session_id: str, since: datetime | None = None) -> list[dict]:
        query = select(EngineMetricRow).where(EngineMetricRow.session_id == session_id)
        if since is not None:
            query = query.where(EngineMetricRow.ts >= since)
        with self.database.session() as session:
            return [{"ts": r.ts, "name": r.name, "value": r.value}
                    for r in session.scalars(query.order_by(EngineMetricRow.id))]

    def audit_log(self, target: str | None = None, limit: int = 200) -> list[dict]:
        """Engine actions of the audit log, newest first."""
        return [{"ts": r.ts, "actor": r.actor, "action": r.action, "target": r.target,
                 "from_state": r.from_state, "to_state": r.to_state, "outcome": r.outcome,
                 "detail": r.detail}
                for r in self.audit.entries("engine.", target=target, limit=limit)]

    def containers(self) -> list[dict]:
        """Every engine container of this workbench on the Docker host."""
        return self.docker.list_engines(self.instance)

    def cleanup(self, *, principal: Principal | None = None) -> list[str]:
        """Remove this workbench's exited engine containers (their logs stay in the workbench)."""
        actor = self.authorizer.require(principal, "engine.cleanup", "containers")
        removed = self.docker.remove_exited(self.instance)
        self._audit(actor, "engine.cleanup", "containers", None, None, "done",
                    f"removed {len(removed)}: {', '.join(removed)}" if removed else "removed 0")
        return removed

    def health(self) -> dict:
        reachable, detail = self.docker.ping()
        image = self.docker.image_present(self.image) if reachable else None
        return {"docker": "reachable" if reachable else "unreachable", "detail": detail,
                "image": self.image, "image_present": image,
                "active_engines": sum(1 for e in self.list_sessions() if e.is_active)}

    def wait_for(self, session_id: str, states: tuple[str, ...], timeout: float = 60) -> EngineInfo:
        """Block until the session reaches one of ``states``; EngineError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.get(session_id)
            if info.state in states or not info.is_active:
                return info  # reached, or final (Stopped/Error) and will not change any more
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineError(f"Engine '{info.name}' is still {info.state} after "
                                  f"{timeout:.0f} s.")
            with self._changed:
                self._changed.wait(min(remaining, 0.5))

    # -- following containers -----------------------------------------------------------------

    def reattach(self) -> None:
        """Follow running engine containers again and settle sessions whose container is gone
        (after a server restart). Raises EngineError when Docker is unreachable."""
        containers = {c["session_id"]: c for c in self.docker.list_engines(self.instance)}
        with self.database.session() as session:
            active = session.scalars(select(EngineSessionRow)
                                     .where(EngineSessionRow.state.in_(ACTIVE_STATES))).all()
            pending = [(r.session_id, r.container_id, r.config) for r in active]
        for session_id, container_id, config in pending:
            found = containers.get(session_id)
            if found is None:
                self._finish(session_id, ERROR, error="The engine's container is gone (removed "
                             "outside the workbench, or the Docker host was reset).")
                self._audit(Principal.system("monitor"), "engine.reconcile", session_id, None, ERROR, "error",
                            "container missing")
            elif session_id not in self._watches:
                secrets = self._environment_values_quiet(config)
                self._watch(session_id, found["id"], secrets)

    def _watch(self, session_id: str, container_id: str, secrets: dict[str, str]) -> None:
        watch = _Watch(session_id, container_id)
        self._watches[session_id] = watch
        redact = [v for v in secrets.values() if v and len(v) >= 4]
        log_thread = threading.Thread(target=self._follow_logs, args=(watch, redact),
                                      name=f"engine-logs-{session_id}", daemon=True)
        stats_thread = threading.Thread(target=self._follow_stats, args=(watch,),
                                        name=f"engine-stats-{session_id}", daemon=True)
        log_thread.start()
        stats_thread.start()

    def _follow_logs(self, watch: _Watch, redact: list[str]) -> None:
        folder = self.engines_dir / watch.session_id
        folder.mkdir(parents=True, exist_ok=True)
        position = folder / "engine.log.pos"
        last_ts = position.read_text().strip() if position.exists() else ""
        try:
            stream = self.docker.log_stream(watch.container_id, since=last_ts or None)
            with open(folder / "engine.log", "a", encoding="utf-8") as out:
                for stamped in stream:
                    match = _LOG_TS.match(stamped)
                    ts, line = (match.group(1), match.group(2)) if match else ("", stamped)
                    if ts and last_ts and ts <= last_ts:
                        continue  # already written before a reattach
                    for secret in redact:
                        line = line.replace(secret, "***")
                    if line.startswith(STATUS_PREFIX):
                        self._on_status(watch, line[len(STATUS_PREFIX):])
                    else:
                        out.write(line + "\n")
                        out.flush()
                        watch.lines.append(line)
                    if ts:
                        last_ts = ts
                        position.write_text(ts)
        except Exception:  # noqa: BLE001 - daemon away or container gone: decided in _on_exit
            pass
        finally:
            self._on_exit(watch)

    def _follow_stats(self, watch: _Watch) -> None:
        try:
            for sample in self.docker.stats_stream(watch.container_id):
                if watch.stop.is_set():
                    return
                watch.stats = sample
                self.hub.publish(events.RESOURCE_METRICS, watch.session_id,
                                 {"session_id": watch.session_id, **sample})
        except EngineError:
            return

    def _on_status(self, watch: _Watch, text: str) -> None:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            return
        kind = payload.pop("event", None)
        if kind is not None:
            self._on_engine_event(watch, kind, payload)
            return
        state = payload.pop("state", None)
        error = payload.pop("error", None)
        if payload:
            watch.status = {**watch.status, **payload}
        if state == RUNNING:
            self._set_state(watch.session_id, RUNNING, started=True, status=watch.status)
        elif state == STOPPING:
            self._set_state(watch.session_id, STOPPING)
        elif state == ERROR:
            tail = "\n".join(list(watch.lines)[-LOG_TAIL_ON_ERROR:])
            self._finish(watch.session_id, ERROR, error=f"{error}\nLast log lines:\n{tail}"
                         if tail else error)
        elif state == STOPPED:
            pass  # the node is down; the session is Stopped once the container has exited
        elif payload and time.monotonic() - watch.status_written >= STATUS_WRITE_INTERVAL:
            watch.status_written = time.monotonic()
            self._write_status(watch.session_id, watch.status)
        if payload and state is None:
            self.hub.publish(events.ENGINE_STATUS, watch.session_id,
                             {"session_id": watch.session_id, "status": watch.status})
        with self._changed:
            self._changed.notify_all()

    def _on_engine_event(self, watch: _Watch, kind: str, payload: dict) -> None:
        """An order, position or risk event line: publish it; audit risk breaches (the engine
        has already acted on them)."""
        event_type = EVENT_KINDS.get(kind)
        if event_type is None:
            return
        self.hub.publish(event_type, watch.session_id, {"session_id": watch.session_id, **payload})
        if kind == "risk" and payload.get("type") == "RiskLimitBreached":
            self._audit(Principal.system("engine-risk"), "engine.risk_breach",
                        self._target_of(watch.session_id), None, payload.get("trading_state"),
                        "breached", payload.get("message"))

    def _target_of(self, session_id: str) -> str:
        try:
            return _target(self.get(session_id))
        except EngineNotFound:
            return session_id

    def _on_exit(self, watch: _Watch) -> None:
        """The log stream ended: the container exited (or Docker went away)."""
        self._settle_if_exited(watch)
        watch.stop.set()
        if self._watches.get(watch.session_id) is watch:
            self._watches.pop(watch.session_id, None)

    def _settle_if_exited(self, watch: _Watch) -> bool:
        """Settle the session once if its container no longer runs; True if it does not.
        Both the log follower and a caller that just saw the container vanish (refresh) may
        ask: the first one settles."""
        exit_info = self.docker.exit_info(watch.container_id)
        if exit_info is None:
            return False  # unknown (daemon unreachable): reattach decides later
        code, oom, running = exit_info
        if running:  # the stream broke while the container runs on: reattach later
            return False
        with self._lock:
            claimed = watch.exit_claimed.is_set()
            watch.exit_claimed.set()
        if not claimed:
            try:
                self._settle_exit(watch, code, oom)
            finally:
                watch.exit_settled.set()
        else:
            # The other asker is writing the session's end: wait for it, so this caller (a
            # command that just found the container gone) reads the settled state, not Running.
            watch.exit_settled.wait(SETTLE_WAIT_S)
        return True

    def _settle_exit(self, watch: _Watch, code: int, oom: bool) -> None:
        info = self.get(watch.session_id)
        if self._expected_exit.get(watch.session_id) == "kill":
            return  # this process's emergency stop settles it, with its audit record
        expected = self._expected_exit.pop(watch.session_id, None)
        if expected is None and info.final_state == "Killed":
            expected = "kill"  # an emergency stop from another process (the CLI, the API)
        if expected == "kill":
            self._finish(watch.session_id, STOPPED, final_state="Killed", exit_code=code)
        elif info.state == ERROR:
            self._finish(watch.session_id, ERROR, exit_code=code, error=info.error)
        elif code == 0 and info.state in (STOPPING, STOPPED):
            self._finish(watch.session_id, STOPPED, final_state=STOPPED, exit_code=code)
        elif info.state in ACTIVE_STATES:
            reason = ("killed: out of memory (raise memory_limit_mb)" if oom else
                      "was killed from outside the workbench (SIGKILL)" if code == 137 else
                      "was terminated from outside the workbench (SIGTERM)" if code == 143 else
                      "container no longer exists" if code == -1 else
                      f"exited with code {code}")
            tail = "\n".join(list(watch.lines)[-LOG_TAIL_ON_ERROR:])
            # Audit first: whoever waits for the Error state finds the record already there.
            self._audit(Principal.system("monitor"), "engine.exited", _target(info), info.state, ERROR, "error",
                        reason)
            self._finish(watch.session_id, ERROR, exit_code=code,
                         error=f"The engine's container {reason} while {info.state}."
                         + (f"\nLast log lines:\n{tail}" if tail else ""))

    def refresh(self, session_id: str) -> EngineInfo:
        """Bring an active session up to date from its container when this process does not
        follow it (the CLI): the latest status line, or the exit it missed. A followed
        session is settled at once if its container is gone (its log follower may lag)."""
        info = self.get(session_id)
        if not info.is_active or not info.container_id:
            return info
        followed = self._watches.get(session_id)
        if followed is not None:
            return self.get(session_id) if self._settle_if_exited(followed) else info
        exit_info = self.docker.exit_info(info.container_id)
        if exit_info is None:
            return info
        watch = _Watch(session_id, info.container_id)
        for stamped in self.docker.log_tail(info.container_id, 300):
            match = _LOG_TS.match(stamped)
            line = match.group(2) if match else stamped
            if line.startswith(STATUS_PREFIX):
                self._on_status(watch, line[len(STATUS_PREFIX):])
            else:
                watch.lines.append(line)
        if watch.status:
            self._write_status(session_id, watch.status)
        code, oom, running = exit_info
        if not running:
            self._settle_exit(watch, code, oom)
        return self.get(session_id)

    def _ensure_watched(self, info: EngineInfo) -> None:
        if info.session_id not in self._watches and info.container_id and info.is_active:
            self._watch(info.session_id, info.container_id,
                        self._environment_values_quiet(self._stored_config(info.session_id)
                                                       .to_record()))

    # -- metrics (called by the monitor) ------------------------------------------------------

    def record_metrics(self) -> int:
        """Write one sample of every followed engine's resources and state; returns rows."""
        now = _now()
        rows = []
        for watch in list(self._watches.values()):
            sample = dict(watch.stats or {})
            for key in ("open_orders", "realized_pnl", "unrealized_pnl", "fills"):
                if isinstance(watch.status.get(key), (int, float)):
                    sample[key] = float(watch.status[key])
            rows.extend(EngineMetricRow(session_id=watch.session_id, ts=now,
                                        name=f"nautilus.engine.{k}", value=float(v))
                        for k, v in sample.items() if v is not None)
            rows.extend(EngineMetricRow(session_id=watch.session_id, ts=now,
                                        name=f"nautilus.feed.{k}", value=float(v))
                        for k, v in feed_metrics(watch.status.get("feed")).items())
        if rows:
            with self.database.session() as session:
                session.add_all(rows)
        return len(rows)

    def prune_metrics(self, older_than_days: float = METRICS_RETENTION_DAYS) -> int:
        """Delete metric samples older than the retention period; returns rows deleted."""
        from datetime import timedelta

        from sqlalchemy import delete

        cutoff = _now() - timedelta(days=older_than_days)
        with self.database.session() as session:
            return session.execute(delete(EngineMetricRow)
                                   .where(EngineMetricRow.ts < cutoff)).rowcount

    @property
    def followed_sessions(self) -> list[str]:
        return list(self._watches)

    # -- persistence helpers ------------------------------------------------------------------

    def _set_state(self, session_id: str, state: str, started: bool = False,
                   status: dict | None = None) -> None:
        with self.database.session() as session:
            row = session.get(EngineSessionRow, session_id)
            if row is None or not may_move(row.state, state):
                return  # a late event about an engine that has moved on
            row.state = state
            if started and row.started_at is None:
                row.started_at = _now()
            if status is not None:
                row.status, row.status_at = status, _now()
        self._publish_state(session_id)
        with self._changed:
            self._changed.notify_all()

    def _publish_state(self, session_id: str) -> None:
        info = self.get(session_id)
        self.hub.publish(events.ENGINE_STATUS, session_id, {"session_id": session_id,
                                                            "engine": info.to_json()})
        if info.state == ERROR and info.error:
            self.hub.publish(events.ERROR_EVENTS, session_id,
                             {"session_id": session_id, "name": info.name, "error": info.error})

    def _write_status(self, session_id: str, status: dict) -> None:
        with self.database.session() as session:
            row = session.get(EngineSessionRow, session_id)
            if row is not None:
                row.status, row.status_at = status, _now()

    def _finish(self, session_id: str, state: str, final_state: str | None = None,
                exit_code: int | None = None, error: str | None = None,
                audit: Callable[[str], AuditEntry] | None = None) -> None:
        """Settle the session in ``state``; ``audit(state it is in)`` makes the audit row
        written in the same transaction."""
        watch = self._watches.get(session_id)
        with self.database.session() as session:
            row = session.get(EngineSessionRow, session_id)
            settled = row is None or not may_move(row.state, state,
                                                  by_kill=final_state == "Killed")
            if audit is not None:
                session.add(audit(state if row is None or not settled else row.state))
            if settled:
                return  # settled already: a late outcome must not rewrite it
            row.state = state
            row.final_state = final_state or row.final_state or state
            row.stopped_at = row.stopped_at or _now()
            if exit_code is not None:
                row.exit_code = exit_code
            if error is not None:
                row.error = error
            if watch is not None and watch.status:
                row.status, row.status_at = watch.status, _now()
        self._publish_state(session_id)
        with self._changed:
            self._changed.notify_all()

    def _mark_killed(self, session_id: str, final_state: str | None = "Killed") -> None:
        """Say "Killed" before the kill, so that any process following this engine knows the
        exit that follows was an emergency stop, not a kill from outside the workbench (and
        put the previous value back when the kill failed)."""
        with self.database.session() as session:
            row = session.get(EngineSessionRow, session_id)
            if row is not None:
                row.final_state = final_state

    def store_risk_limits(self, session_id: str, limits: dict) -> None:
        """Keep limits changed in a running engine in its configuration (a restart keeps
        them); authorised and audited by the caller."""
        with self.database.session() as session:
            row = session.get(EngineSessionRow, session_id)
            row.config = {**row.config, "risk": limits}

    def _stored_config(self, session_id: str) -> EngineConfig:
        with self.database.session() as session:
            record = dict(session.get(EngineSessionRow, session_id).config)
        record.pop("warnings", None)
        from services.engine.config import EngineConfig

        return EngineConfig(**record)

    def _active_by_name(self, name: str) -> EngineInfo | None:
        with self.database.session() as session:
            row = session.scalars(select(EngineSessionRow).where(
                EngineSessionRow.name == name,
                EngineSessionRow.state.in_(ACTIVE_STATES))).first()
            return self._info(row) if row else None

    def _info(self, row: EngineSessionRow) -> EngineInfo:
        config = row.config or {}
        return EngineInfo(
            session_id=row.session_id, name=row.name, template=row.template, mode=row.mode,
            state=row.state, container_name=row.container_name, container_id=row.container_id,
            image=row.image, actor=row.actor, created_at=_aware(row.created_at),
            started_at=_aware(row.started_at), stopped_at=_aware(row.stopped_at),
            final_state=row.final_state, exit_code=row.exit_code, error=row.error,
            status=dict(row.status or {}), status_at=_aware(row.status_at),
            parameters={**config.get("parameters", {}), **config.get("strategy_parameters", {})},
            memory_limit_mb=int(config.get("memory_limit_mb", 0)),
            cpu_limit=float(config.get("cpu_limit", 0)),
            risk_limits=dict(config.get("risk") or {}),
        )

    def _labels(self, session_id: str, config: EngineConfig) -> dict[str, str]:
        return {"nautilus-workbench.engine": "1", "nautilus-workbench.instance": self.instance,
                "nautilus-workbench.session": session_id, "nautilus-workbench.name": config.name,
                "nautilus-workbench.mode": config.mode,
                "nautilus-workbench.template": config.template}

    def _authorise(self, principal: Principal | None, action: str, target: str, mode: str,
                   confirm: str | None, state: str | None,
                   permission: str | None = None) -> Principal:
        """The acting principal after the role check of ``permission`` (default: ``action``)
        and, to start a live engine, the typed confirmation; refusals are audited."""
        actor = self.authorizer.require(principal, permission or action, target,
                                        live=mode == "live", state=state)
        if mode == "live" and action in ("engine.start", "engine.restart") and confirm != target:
            self._audit(actor, action, target, state, state, "refused",
                        "live start without the typed confirmation")
            raise PermissionDenied(
                f"Starting live engine '{target}' sends real orders with real money. Type the "
                f"engine's name to confirm (CLI: --confirm {target}; API: \"confirm\": \"{target}\").")
        return actor

    def _environment_values(self, config: EngineConfig, actor: Principal) -> dict[str, str]:
        import os

        missing = [n for n in config.environment if not os.environ.get(n)]
        if missing:
            detail = ", ".join(missing)
            self._audit(actor, "engine.start", config.name, STOPPED, STOPPED, "invalid",
                        f"environment variables not set: {detail}")
            raise ValidationError(
                f"Engine '{config.name}' needs settings from the server's environment",
                [f"{n}: not set; export it in the environment of the workbench server (it is "
                 "passed only into the engine container, never stored)" for n in missing])
        return {n: os.environ[n] for n in config.environment}

    def _environment_values_quiet(self, record: dict) -> dict[str, str]:
        import os

        return {n: os.environ.get(n, "") for n in record.get("environment", {})}

    def _audit(self, actor: Principal, action: str, target: str, from_state: str | None,
               to_state: str | None, outcome: str, detail: str | None = None) -> None:
        self.audit.record(actor, action, target, outcome, detail, from_state, to_state)

    def _audit_row(self, actor: Principal, action, target, from_state, to_state, outcome,
                   detail=None):
        return self.audit.row(actor, action, target, outcome, detail, from_state, to_state)


def feed_metrics(feed: dict | None) -> dict[str, float]:
    """One engine's feed health as metrics: the worst latency and age over its instruments,
    gaps and disconnections so far."""
    if not feed:
        return {}
    instruments = (feed.get("instruments") or {}).values()
    out = {"disconnections": float(feed.get("disconnections", 0))}
    if instruments:
        out.update(latency_ms=max(float(i["latency_max_ms"]) for i in instruments),
                   tick_age_s=max(float(i["age_s"]) for i in instruments),
                   gaps=float(sum(i["gaps"] for i in instruments)))
    return out


def _lines_backwards(path: Path, block: int = 64 * 1024):
    """The lines of a text file from the last to the first, reading blocks from the end."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        position, remainder = handle.tell(), b""
        while position > 0:
            step = min(block, position)
            position -= step
            handle.seek(position)
            chunk = handle.read(step) + remainder
            lines = chunk.split(b"\n")
            remainder = lines.pop(0)  # may continue in the previous block
            for raw in reversed(lines):
                if raw:
                    yield raw.decode("utf-8", errors="replace")
        if remainder:
            yield remainder.decode("utf-8", errors="replace")


def instance_id(state_dir: Path) -> str:
    """Labels tell this workbench's containers from another's on a shared Docker host."""
    return hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:12]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _jsonable(values: dict) -> dict:
    return {k: str(v) if not isinstance(v, (int, float, bool, str, type(None))) else v
            for k, v in values.items()}


def _target(info: EngineInfo) -> str:
    return f"{info.name} ({info.session_id})"


def _with_status(info: EngineInfo, status: dict) -> EngineInfo:
    from dataclasses import replace

    return replace(info, status=dict(status))


__all__ = ["ACTIVE_STATES", "ERROR", "EngineInfo", "EngineService", "RUNNING", "STARTING",
           "STOPPED", "STOPPING", "instance_id"]
