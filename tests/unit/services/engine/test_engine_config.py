"""Engine templates become real TradingNodeConfigs; bad values are reported per field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.catalog import InstrumentInfo
from services.engine.config import build_engine_config, check_node_config, load_engine_template
from services.engine.docker_api import normalise_timestamp, parse_stats
from services.engine_runtime.bootstrap import resolve_env_refs
from services.errors import TemplateError, ValidationError
from services.templates import TemplateService
from tests.conftest import REPO_ROOT

TEMPLATES = TemplateService(REPO_ROOT / "engine_templates")
BTC = InstrumentInfo("BTCUSDT-PERP.BINANCE", "BINANCE", "BTCUSDT-PERP", "CryptoPerpetual", "BTC",
                     "USDT", "USDT", 1, 3, 1.0, False)
EURUSD = InstrumentInfo("EUR/USD.SIM", "SIM", "EUR/USD", "CurrencyPair", "EUR", "USD", "USD",
                        5, 0, 1.0, False)


def _template(name: str):
    return load_engine_template(REPO_ROOT / "engine_templates" / f"{name}.json",
                                TEMPLATES.strategy_names())


def _build(name: str, values: dict, instrument=BTC, strategy="ema_cross", engine_name=None):
    return build_engine_config(_template(name), values, TEMPLATES.strategy(strategy), instrument,
                               engine_name, "abc123def456")


def test_paper_template_binds_parameters_into_the_node_config():
    config = _build("paper_trading", {
        "replay_speed": 120, "oms_type": "HEDGING", "leverage": 3.0, "log_level": "WARNING",
        "risk_engine": False, "max_notional_per_order": "50000", "starting_balance": "25000",
        "replay_start": "2024-03-01", "fast_ema_period": 7, "slow_ema_period": 30,
        "memory_limit_mb": 512, "cpu_limit": 0.5,
    })
    node = config.node
    replay = node["data_clients"]["REPLAY"]["config"]
    sandbox = node["exec_clients"]["SANDBOX"]["config"]
    assert replay["speed"] == 120.0 and replay["start"] == "2024-03-01"
    assert replay["instrument_ids"] == ["BTCUSDT-PERP.BINANCE"]
    # The sandbox venue and account currency come from the instrument, not the template.
    assert sandbox["venue"] == "BINANCE"
    assert sandbox["starting_balances"] == ["25000 USDT"]
    assert sandbox["oms_type"] == "HEDGING" and sandbox["default_leverage"] == 3.0
    assert node["risk_engine"]["bypass"] is True
    assert node["risk_engine"]["max_notional_per_order"] == {"BTCUSDT-PERP.BINANCE": 50000}
    assert node["logging"]["log_level"] == "WARNING"
    assert node["trader_id"] == "PAPER-abc123def456"
    strategy = node["strategies"][0]["config"]
    assert (strategy["fast_ema_period"], strategy["slow_ema_period"]) == (7, 30)
    assert strategy["bar_type"] == "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
    assert (config.memory_limit_mb, config.cpu_limit, config.network) == (512, 0.5, False)
    assert config.name == "paper-ema_cross-btcusdt-perp"
    assert check_node_config(node) == []


def test_every_engine_template_builds_with_its_defaults():
    assert _build("paper_trading", {}, instrument=EURUSD,
                  ).node["exec_clients"]["SANDBOX"]["config"]["starting_balances"] == [
        "1000000 USD"]
    sandbox = _build("sandbox_engine", {}, instrument=None)
    assert sandbox.network is True and sandbox.mode == "sandbox"
    assert sandbox.node["data_clients"]["BINANCE"]["config"]["instrument_provider"]["load_ids"] \
        == ["BTCUSDT-PERP.BINANCE"]
    for venue, client in (("BINANCE", "BINANCE"), ("INTERACTIVE_BROKERS", "IB")):
        live = _build("live_engine", {"venue": venue}, instrument=None)
        assert client in live.node["exec_clients"] and live.mode == "live"


def test_live_config_holds_secret_references_never_values(monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", "value-that-must-not-appear")
    live = _build("live_engine", {"venue": "BINANCE", "risk_engine": False}, instrument=None)
    text = json.dumps(live.to_record())
    assert "value-that-must-not-appear" not in text
    assert live.node["exec_clients"]["BINANCE"]["config"]["api_key"] == "${BINANCE_API_KEY}"
    assert live.environment == {"BINANCE_API_KEY": "secret", "BINANCE_API_SECRET": "secret"}
    assert any("risk engine is OFF" in w for w in live.warnings)
    ib = _build("live_engine", {"venue": "INTERACTIVE_BROKERS"}, instrument=None)
    assert ib.node["data_clients"]["IB"]["config"]["ibg_port"] == "${IB_GATEWAY_PORT:int}"
    assert set(ib.environment) == {"IB_GATEWAY_HOST", "IB_GATEWAY_PORT", "IB_CLIENT_ID",
                                   "IB_ACCOUNT_ID"}


def test_every_bad_value_is_reported_with_its_field():
    with pytest.raises(ValidationError) as excinfo:
        _build("paper_trading", {"replay_speed": 0, "memory_limit_mb": 64, "cpu_limit": "lots",
                                 "oms_type": "MAYBE", "colour": "blue", "fast_ema_period": 30,
                                 "slow_ema_period": 20}, engine_name="Bad Name!")
    problems = "\n".join(excinfo.value.problems)
    for field in ("replay_speed: must be >= 1.0", "memory_limit_mb: must be >= 256",
                  "cpu_limit: must be a number", "oms_type: must be one of NETTING, HEDGING",
                  "colour: unknown parameter", "name: use 1-63 lower-case",
                  "fast_ema_period: the fast EMA period must be shorter"):
        assert field in problems


def test_paper_engine_needs_the_instrument_in_the_catalog_and_a_real_bar_type():
    with pytest.raises(ValidationError, match="not in the data catalog"):
        _build("paper_trading", {}, instrument=None)
    with pytest.raises(ValidationError, match="bar_type: expected"):
        _build("paper_trading", {"bar_type": "BTC"})


def test_templates_with_bad_bindings_or_mode_are_rejected(tmp_path: Path):
    data = json.loads((REPO_ROOT / "engine_templates" / "paper_trading.json").read_text())
    data["mode"] = "yolo"
    data["bindings"]["replay_speed"] = ["data_clients.NOPE.config.speed"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TemplateError) as excinfo:
        load_engine_template(path, TEMPLATES.strategy_names())
    problems = "\n".join(excinfo.value.problems)
    assert "mode: must be one of paper, sandbox, live" in problems
    assert "bindings.replay_speed: data_clients.NOPE.config.speed is not in the node" in problems


def test_node_config_check_names_the_client_that_does_not_decode():
    node = _build("paper_trading", {}).node
    node["exec_clients"]["SANDBOX"]["config"]["oms_type"] = 42
    problems = check_node_config(node)
    assert problems and problems[0].startswith("node.exec_clients.SANDBOX")


def test_bootstrap_resolves_environment_references(monkeypatch):
    monkeypatch.setenv("IB_GATEWAY_PORT", "4002")
    monkeypatch.setenv("IB_GATEWAY_HOST", "gateway")
    missing: list[str] = []
    resolved = resolve_env_refs({"a": ["${IB_GATEWAY_HOST}", {"p": "${IB_GATEWAY_PORT:int}"}],
                                 "b": "${NOT_SET_ANYWHERE}", "c": "plain ${X}"}, missing)
    assert resolved == {"a": ["gateway", {"p": 4002}], "b": None, "c": "plain ${X}"}
    assert missing == ["NOT_SET_ANYWHERE"]


def test_docker_stats_become_metrics():
    sample = {
        "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 3000,
                      "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        "memory_stats": {"usage": 150 * 2**20, "limit": 1024 * 2**20,
                         "stats": {"inactive_file": 50 * 2**20}},
        "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 4}, "eth1": {"rx_bytes": 5,
                                                                       "tx_bytes": 1}},
        "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 7},
                                                        {"op": "Write", "value": 3}]},
        "pids_stats": {"current": 9},
    }
    metrics = parse_stats(sample)
    assert metrics["cpu_usage"] == pytest.approx(200 / 2000 * 2 * 100)  # 20 % of one core
    assert metrics["memory_usage"] == 100 * 2**20
    assert (metrics["network_rx_bytes"], metrics["network_tx_bytes"]) == (15, 5)
    assert (metrics["block_read_bytes"], metrics["block_write_bytes"], metrics["pids"]) == (7, 3, 9)


def test_log_timestamps_compare_in_time_order_after_normalising():
    a = normalise_timestamp("2026-11-21T16:05:02.12Z")
    b = normalise_timestamp("2026-11-21T16:05:02.123131809Z")
    assert a == "2026-11-21T16:05:02.120000000Z"
    assert a < b  # unpadded, "…02.12Z" sorts after "…02.123…"


def test_live_bootstrap_refuses_to_run_outside_a_container(monkeypatch, capsys, tmp_path):
    from services.engine_runtime import bootstrap

    monkeypatch.setenv("WORKBENCH_MODE", "live")
    monkeypatch.setenv("WORKBENCH_HEARTBEAT", str(tmp_path / "heartbeat"))
    monkeypatch.setattr(bootstrap, "_inside_container", lambda: False)
    assert bootstrap.main(["bootstrap"]) == 2
    lines = [json.loads(line[len(bootstrap.STATUS_PREFIX):])
             for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["state"] == "Error" and "only inside their Docker container" in lines[-1]["error"]


def test_old_engine_metrics_are_pruned(tmp_path):
    from datetime import UTC, datetime, timedelta

    from services.audit import AuditLog
    from services.db import Database, EngineMetricRow
    from services.engine.service import EngineService
    from services.identity.authorizer import Authorizer
    from services.identity.principal import Principal

    database = Database(f"sqlite:///{tmp_path / 'wb.db'}")
    database.upgrade()
    engines = EngineService(database, TEMPLATES, None, tmp_path / "engines", "test",
                            Authorizer(AuditLog(database), Principal.local()))
    now = datetime.now(UTC)
    with database.session() as session:
        session.add_all([EngineMetricRow(session_id="s", ts=now - timedelta(days=30),
                                         name="nautilus.engine.cpu_usage", value=1.0),
                         EngineMetricRow(session_id="s", ts=now, name="nautilus.engine.cpu_usage",
                                         value=2.0)])
    assert engines.prune_metrics(older_than_days=14) == 1
    assert [m["value"] for m in engines.metrics("s")] == [2.0]
