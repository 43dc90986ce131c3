"""A pipeline over a migrated SQLite database: a version made from a real run's config, its
completed backtest, and the services the tests drive (engines stood in: none are started)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.audit import AuditLog
from services.db import BacktestRunRow, Database, DeploymentRow, PromotionRow, StrategyVersionRow
from services.errors import EngineNotFound
from services.identity.authorizer import Authorizer
from services.pipeline.content import content_from_run_config
from services.pipeline.promotions import PromotionService
from services.pipeline.settings import PipelineSettings
from services.pipeline.versions import VersionService
from services.templates import TemplateService

DATA = Path(__file__).parent / "data"


class NoEngines:
    """Stands in for the EngineService: these tests start no engine."""

    def get(self, session_id):
        raise EngineNotFound(session_id)


@dataclass
class Setup:
    database: Database
    audit: AuditLog
    versions: VersionService
    promotions: PromotionService
    version_id: str

    def add_paper_drift(self, minutes: float, correlation: float, pnl_pct: float) -> None:
        """A paper deployment of the version whose drift was measured."""
        now = datetime.now(UTC)
        with self.database.session() as session:
            session.add(PromotionRow(request_id="pr-seededpaper", version_id=self.version_id,
                                     stage="paper", status="Approved", requested_by="alice",
                                     requested_at=now, risk_limits={}, revision=1))
            session.flush()
            session.add(DeploymentRow(
                deployment_id="dep-seeded", version_id=self.version_id, strategy="ema_cross",
                bar_type="BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL", stage="paper",
                request_id="pr-seededpaper", engine_session_id="0123456789ab",
                engine_name="paper-x", kind="deploy", capital_fraction=1.0, state="Stopped",
                actor="alice", created_at=now, risk_limits={}, parameters={},
                drift={"window_minutes": minutes, "correlation": correlation,
                       "pnl_difference_pct": pnl_pct}))


@pytest.fixture
def pipeline(tmp_path, shipped_templates) -> Setup:
    database = Database(f"sqlite:///{tmp_path / 'pipeline.db'}")
    database.upgrade()
    audit = AuditLog(database)
    authorizer = Authorizer(audit, None)  # as in the server: every call names who acts
    templates = TemplateService(shipped_templates)
    versions = VersionService(database, templates, backtests=None, authorizer=authorizer)
    promotions = PromotionService(database, versions, NoEngines(), authorizer,
                                  PipelineSettings())
    config = json.loads((DATA / "run_config.json").read_text())
    content = content_from_run_config(config, "ema_cross",
                                      templates.strategy("ema_cross").parameters)
    run_folder = tmp_path / "runs" / "run-1"
    run_folder.mkdir(parents=True)
    (run_folder / "config.json").write_text(json.dumps(config))
    now = datetime.now(UTC)
    with database.session() as session:
        session.add(StrategyVersionRow(
            version_id=content.version_id, strategy="ema_cross",
            bar_type=content.spec.bar_type, instrument_id="BTCUSDT-PERP.BINANCE",
            content=content.content, spec=content.spec.to_dict(), nautilus_version="1.231.0",
            source_run_id=None, note="", created_by="alice", created_at=now))
        # A completed run with the version's content, found by its config alone.
        session.add(BacktestRunRow(
            run_id="run-1", status="Completed", strategy="ema_cross",
            instrument_id="BTCUSDT-PERP.BINANCE", bar_type=content.spec.bar_type, start=now,
            end=now, spec={"parameters": {"fast_ema_period": 10}}, run_folder=str(run_folder),
            actor="alice", created_at=now, currency="USDT"))
    yield Setup(database, audit, versions, promotions, content.version_id)
    database.dispose()
