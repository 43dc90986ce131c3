"""Metrics recorded through the API and read back with the engines' own samples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.audit import AuditLog
from services.db import Database, EngineMetricRow
from services.errors import PermissionDenied, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.metrics import MetricsService


@pytest.fixture
def metrics(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'wb.db'}")
    db.upgrade()
    yield MetricsService(db, Authorizer(AuditLog(db), Principal.local()))
    db.dispose()


def test_a_recorded_sample_is_read_back_with_engine_samples_oldest_first(metrics):
    # Arrange
    with metrics.database.session() as session:
        session.add(EngineMetricRow(session_id="abc", ts=datetime(2026, 12, 1, 12, 0, 5, tzinfo=UTC),
                                    name="nautilus.engine.cpu_usage", value=12.5))

    # Act
    metrics.record("nautilus.engine.cpu_usage", 7, "collector-1", "2026-12-01T12:00:00Z")
    metrics.record("other.metric", 1, "x")
    points = metrics.query("nautilus.engine.cpu_usage", since="2026-12-01T11:00:00Z")

    # Assert
    assert [(p.source, p.value) for p in points] == [("collector-1", 7.0), ("engine:abc", 12.5)]
    assert metrics.query("nautilus.engine.cpu_usage", since="2026-12-01T12:00:01Z")[0].source \
        == "engine:abc"


def test_bad_samples_name_every_bad_field(metrics):
    with pytest.raises(ValidationError) as excinfo:
        metrics.record("9bad name", "NaN", "", "yesterday")
    assert [p.split(":")[0] for p in excinfo.value.problems] == [
        "metric_name", "value", "source", "timestamp must be ISO 8601 (2026-12-01T12"]


def test_recording_needs_a_role_that_writes_metrics(metrics):
    with pytest.raises(PermissionDenied):
        metrics.record("a.b", 1, "s", principal=Principal.user("vera", {"viewer"}))


def test_a_source_with_control_characters_is_refused(metrics):
    # PostgreSQL's text cannot hold NUL: it must be a one-line refusal, not a storage error.
    with pytest.raises(ValidationError) as excinfo:
        metrics.record("a.b", 1, "desk\x00one")
    assert excinfo.value.problems == ["source: 1-128 printable characters, was 'desk\\x00one'"]
