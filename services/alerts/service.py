"""Alerts: rules over the event hub, deduplicated, stored, shown and delivered.

One AlertService per server process follows the hub in its own thread. Each trigger of an
enabled rule becomes a row in ``alerts`` and an ``alert_events`` event on the hub (the Engines
page shows them), and is handed to the delivery threads (webhook, e-mail). The same key (rule +
engine + subject) raised again within the rule's cool-down counts as another occurrence of the
same alert, with no new delivery. Nothing here waits on a receiver: a slow or dead webhook
delays only its own delivery thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services import events
from services.alerts.channels import Dispatcher, channels_from_environment
from services.alerts.rules import CHANNELS, DEFAULT_RULES, AlertRule, RuleState, Trigger, evaluate
from services.db import AlertRow, AlertRuleRow, Database
from services.errors import ValidationError, WorkbenchError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal

log = logging.getLogger("nautilus_workbench.alerts")
WATCHED = (events.ENGINE_STATUS, events.RISK_EVENTS, events.RESOURCE_METRICS)


@dataclass(frozen=True)
class Alert:
    id: int
    rule: str
    key: str
    severity: str
    session_id: str | None
    engine: str | None
    message: str
    first_at: datetime
    last_at: datetime
    occurrences: int
    deliveries: dict

    def to_json(self) -> dict:
        out = asdict(self)
        out["first_at"], out["last_at"] = self.first_at.isoformat(), self.last_at.isoformat()
        return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _alert(row: AlertRow) -> Alert:
    return Alert(row.id, row.rule, row.key, row.severity, row.session_id, row.engine,
                 row.message, _aware(row.first_at), _aware(row.last_at), row.occurrences,
                 dict(row.deliveries or {}))


class AlertService:
    """Alert rules, the alerts they raised, and their delivery."""

    def __init__(self, database: Database, hub: events.EventHub, authorizer: Authorizer,
                 engines, channels: list | None = None) -> None:
        self.database = database
        self.hub = hub
        self.authorizer = authorizer
        self.engines = engines
        self.channel_list = channels_from_environment() if channels is None else channels
        self._rules = self._load_rules()
        self._state = RuleState()
        self._names: dict[str, str] = {}
        self._active: set[str] = set()
        self._last: dict[str, tuple[int, float]] = {}  # key -> (alert id, raised at)
        self._lock = threading.Lock()
        self._subscription: events.Subscription | None = None
        self._thread: threading.Thread | None = None
        self._dispatcher: Dispatcher | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> AlertService:
        """Follow the hub and deliver; alerts raised before a restart keep their cool-down."""
        if self._thread is not None:
            return self
        self._seed_cooldowns()
        self._dispatcher = Dispatcher(self._delivered)
        self._subscription = self.hub.subscribe(WATCHED)
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._dispatcher is not None:
            self._dispatcher.stop()
            self._dispatcher = None

    def _run(self) -> None:
        for event in self._subscription:
            try:
                self.handle(event)
            except Exception:  # one bad event must not end alerting
                log.exception("alert rules failed on %s", event.type)

    # -- rules ----------------------------------------------------------------------------

    def rules(self) -> list[AlertRule]:
        return list(self._rules.values())

    def set_rule(self, name: str, *, enabled: bool | None = None,
                 threshold: float | None = None, cooldown_s: int | None = None,
                 channels: list[str] | None = None,
                 principal: Principal | None = None) -> AlertRule:
        """Change a rule (alerts.manage: admin or approver); audited."""
        actor = self.authorizer.require(principal, "alerts.manage", f"alert rule {name}")
        if name not in self._rules:
            raise ValidationError(f"There is no alert rule {name!r}; the rules are "
                                  f"{', '.join(self._rules)}.")
        rule = self._rules[name]
        problems = []
        if threshold is not None and (rule.threshold is None or not threshold > 0):
            problems.append(f"threshold: {name} takes no threshold" if rule.threshold is None
                            else f"threshold: must be above 0 {rule.unit}, was {threshold}")
        if cooldown_s is not None and not 0 <= cooldown_s <= 86_400:
            problems.append(f"cooldown_s: must be 0 to 86400 seconds, was {cooldown_s}")
        unknown = set(channels or ()) - set(CHANNELS)
        if unknown:
            problems.append(f"channels: unknown {sorted(unknown)} (known: {', '.join(CHANNELS)})")
        if problems:
            raise ValidationError(f"Invalid settings for alert rule {name}", problems)
        changed = replace(rule, enabled=rule.enabled if enabled is None else enabled,
                          threshold=rule.threshold if threshold is None else float(threshold),
                          cooldown_s=rule.cooldown_s if cooldown_s is None else int(cooldown_s),
                          channels=rule.channels if channels is None else tuple(channels))
        with self.database.session() as session:
            row = session.get(AlertRuleRow, name)
            if row is None:
                row = AlertRuleRow(name=name)
                session.add(row)
            row.enabled, row.threshold = changed.enabled, changed.threshold
            row.cooldown_s, row.channels = changed.cooldown_s, list(changed.channels)
            row.updated_at, row.updated_by = datetime.now(UTC), actor.name
            session.add(self.authorizer.audit.row(
                actor, "alerts.rule", f"alert rule {name}", "ok",
                f"enabled {changed.enabled}, threshold {changed.threshold}, cooldown "
                f"{changed.cooldown_s} s, channels {', '.join(changed.channels)}"))
        with self._lock:
            self._rules = {**self._rules, name: changed}
        return changed

    def _load_rules(self) -> dict[str, AlertRule]:
        rules = dict(DEFAULT_RULES)
        with self.database.session() as session:
            for row in session.scalars(select(AlertRuleRow)):
                if row.name in rules:
                    rules[row.name] = replace(rules[row.name], enabled=row.enabled,
                                              threshold=row.threshold, cooldown_s=row.cooldown_s,
                                              channels=tuple(row.channels))
        return rules

    def channels(self) -> list[str]:
        """The configured channels, described without secrets."""
        return [c.describe() for c in self.channel_list]

    # -- alerts ---------------------------------------------------------------------------

    def list(self, limit: int = 100, session_id: str | None = None) -> list[Alert]:
        """Alerts, newest first."""
        query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
        if session_id:
            query = query.where(AlertRow.session_id == session_id)
        with self.database.session() as session:
            return [_alert(r) for r in session.scalars(query)]

    def handle(self, event: events.Event) -> list[Alert]:
        """Evaluate one hub event; returns the alerts it raised (not the repeats)."""
        name = self._name(event.source)
        if event.type == events.RESOURCE_METRICS and event.source not in self._state.cpu_limits:
            self._state.cpu_limits[event.source] = self._cpu_limit(event.source)
        with self._lock:
            rules = self._rules
        raised = []
        for trigger in evaluate(rules, self._state, event, name):
            alert = self._trigger(rules[trigger.rule], trigger, name)
            if alert is not None:
                raised.append(alert)
        return raised

    def _trigger(self, rule: AlertRule, trigger: Trigger, name: str) -> Alert | None:
        key, now = trigger.key, time.time()
        if not trigger.active:
            self._active.discard(key)
            return None
        edge = key not in self._active
        if rule.level:
            self._active.add(key)
            if not edge:
                return None  # a condition that holds is one alert, not one per snapshot
        last = self._last.get(key)
        if last is not None and now - last[1] < rule.cooldown_s:
            self._repeat(last[0])  # flapping or repeated within the cool-down
            return None
        alert = self._raise(rule, trigger, name)
        self._last[key] = (alert.id, now)
        return alert

    def _raise(self, rule: AlertRule, trigger: Trigger, name: str) -> Alert:
        now = datetime.now(UTC)
        targets = [c for c in self.channel_list if c.name in rule.channels]
        with self.database.session() as session:
            row = AlertRow(rule=rule.name, key=trigger.key[:256], severity=rule.severity,
                           session_id=trigger.session_id, engine=name[:64],
                           message=trigger.message, first_at=now, last_at=now, occurrences=1,
                           deliveries={c.describe(): "pending" for c in targets})
            session.add(row)
            session.flush()
            alert = _alert(row)
        self.hub.publish(events.ALERT_EVENTS, trigger.session_id or "workbench", alert.to_json())
        for channel in targets:
            if self._dispatcher is not None:
                self._dispatcher.submit(alert.id, channel, alert.to_json())
            else:  # handle() called without start(): stored and shown, not delivered
                self._delivered(alert.id, channel.describe(), "failed: alerts not started")
        return alert

    def _repeat(self, alert_id: int) -> None:
        with self.database.session() as session:
            row = session.get(AlertRow, alert_id)
            if row is not None:
                row.occurrences += 1
                row.last_at = datetime.now(UTC)

    def _delivered(self, alert_id: int, channel: str, outcome: str) -> None:
        with self._lock, self.database.session() as session:
            row = session.get(AlertRow, alert_id)
            if row is not None:
                row.deliveries = {**(row.deliveries or {}), channel: outcome}

    def _seed_cooldowns(self) -> None:
        longest = max(r.cooldown_s for r in self._rules.values())
        since = datetime.now(UTC) - timedelta(seconds=longest)
        with self.database.session() as session:
            for row in session.scalars(select(AlertRow).where(AlertRow.last_at >= since)
                                       .order_by(AlertRow.id)):
                self._last[row.key] = (row.id, _aware(row.first_at).timestamp())

    def _name(self, session_id: str) -> str:
        if session_id not in self._names:
            try:
                self._names[session_id] = self.engines.get(session_id).name
            except WorkbenchError:
                return session_id
        return self._names[session_id]

    def _cpu_limit(self, session_id: str) -> float:
        try:
            return float(self.engines.get(session_id).cpu_limit)
        except WorkbenchError:
            return 0.0
