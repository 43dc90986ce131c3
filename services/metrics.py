"""Metrics: samples recorded through the API (``POST /api/v1/metrics``) and read back together
with the engines' own (``GET /api/v1/metrics?name=...&since=...``).

Engine samples (``nautilus.engine.*``, ``nautilus.feed.*``) live in ``engine_metrics``, written
by the monitor; anything else a client records lives in ``metrics``. Reading merges both, the
engine's source being ``engine:<session id>``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from services.db import Database, EngineMetricRow, MetricRow
from services.errors import ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
MAX_POINTS = 10_000


@dataclass(frozen=True)
class MetricPoint:
    timestamp: datetime
    metric_name: str
    value: float
    source: str

    def to_json(self) -> dict:
        return {"timestamp": self.timestamp.isoformat(), "metric_name": self.metric_name,
                "value": self.value, "source": self.source}


def parse_timestamp(raw, field: str = "timestamp") -> datetime:
    """An aware datetime from ISO 8601 or epoch seconds; ValidationError naming the value."""
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    try:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return datetime.fromtimestamp(float(raw), UTC)
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValidationError(f"{field} must be ISO 8601 (2026-12-01T12:00:00Z) or epoch "
                              f"seconds, was {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class MetricsService:
    def __init__(self, database: Database, authorizer: Authorizer) -> None:
        self.database = database
        self.authorizer = authorizer

    def record(self, metric_name: str, value, source: str, timestamp=None, *,
               principal: Principal | None = None) -> MetricPoint:
        """Store one sample (metrics.write); bad input raises ValidationError naming it."""
        self.authorizer.require(principal, "metrics.write", f"metric {metric_name}")
        problems = []
        if not isinstance(metric_name, str) or not NAME.match(metric_name):
            problems.append(f"metric_name: 1-64 letters, digits, '.', '_', ':' or '-' starting "
                            f"with a letter, was {metric_name!r}")
        try:
            number = float(value)
            if isinstance(value, bool) or not math.isfinite(number):
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"value: must be a finite number, was {value!r}")
            number = 0.0
        if not isinstance(source, str) or not 0 < len(source.strip()) <= 128 \
                or not source.isprintable():
            problems.append(f"source: 1-128 printable characters, was {source!r}")
        try:
            ts = parse_timestamp(timestamp) if timestamp is not None else datetime.now(UTC)
        except ValidationError as e:
            problems.append(str(e))
            ts = None
        if problems:
            raise ValidationError("Invalid metric", problems)
        with self.database.session() as session:
            session.add(MetricRow(ts=ts, name=metric_name, value=number, source=source.strip()))
        return MetricPoint(ts, metric_name, number, source.strip())

    def query(self, name: str, since=None, limit: int = MAX_POINTS) -> list[MetricPoint]:
        """Samples of ``name`` at or after ``since``, oldest first, from both tables."""
        start = parse_timestamp(since, "since") if since is not None else None
        recorded = select(MetricRow).where(MetricRow.name == name)
        engine = select(EngineMetricRow).where(EngineMetricRow.name == name)
        if start is not None:
            recorded = recorded.where(MetricRow.ts >= start)
            engine = engine.where(EngineMetricRow.ts >= start)
        with self.database.session() as session:
            points = [MetricPoint(_aware(r.ts), r.name, r.value, r.source)
                      for r in session.scalars(recorded.order_by(MetricRow.ts.desc()).limit(limit))]
            points += [MetricPoint(_aware(r.ts), r.name, r.value, f"engine:{r.session_id}")
                       for r in session.scalars(engine.order_by(EngineMetricRow.ts.desc())
                                                .limit(limit))]
        return sorted(points, key=lambda p: p.timestamp)[-limit:]
