"""Engine templates (paper, sandbox, live TradingNodes as data) and the configs built from them.

A template holds a real TradingNodeConfig JSON ("node"), declared parameters, and bindings from
parameters to places in the node config. Building an engine config fills in the strategy (from a
strategy template), the instrument, the account and the bound parameters, then checks that the
result decodes into TradingNodeConfig and that every client config decodes into its class.

Secrets never enter a config: templates reference them as "${NAME}", resolved from the
container's environment by the bootstrap; EngineConfig.environment names the variables to pass.

Risk limits (services.engine_runtime.risk) come from the template's ``risk`` section and
``risk.NAME`` parameters (``risk.max_daily_loss=500``, ``risk.max_daily_loss.action=HALTED``);
the engine enforces them itself.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from services.engine_runtime import risk as risk_limits
from services.errors import TemplateError, ValidationError
from services.identifiers import ADAPTER_SECTIONS, value_problems
from services.template_probe import ENGINE_NODE, nautilus_problems
from services.templates import ParameterSpec, _parse_parameters, _read_json, class_path_problem
from services.timestamps import parse_utc

MODES = ("paper", "sandbox", "live")
ENGINE_TEMPLATE_NAMES = ("paper_trading", "sandbox_engine", "live_engine")
# Parameters the service applies itself rather than through bindings.
BUILTIN_PARAMETERS = ("strategy", "bar_type", "venue", "starting_balance", "balance_currency",
                      "replay_start", "risk_engine", "max_notional_per_order",
                      "memory_limit_mb", "cpu_limit")
RESOURCE_PARAMETERS = ("memory_limit_mb", "cpu_limit")
# Packages a node's data and execution clients may come from (plus WORKBENCH_STRATEGY_PACKAGES).
CLIENT_PACKAGES = ("nautilus_trader", "services.engine_runtime")
ENV_REF = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)(:int)?\}$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}\Z")


@dataclass(frozen=True)
class EngineTemplate:
    name: str
    title: str
    description: str
    mode: str
    node: dict
    parameters: dict[str, ParameterSpec]
    bindings: dict[str, list[str]]
    network: bool
    load_instruments: list[str]
    venues: dict[str, dict]
    path: Path
    risk: dict = field(default_factory=dict)  # limit -> {"value", "action", "cancel_orders"}

    def environment_for(self, venue: str | None) -> dict[str, str]:
        """Environment variables this engine needs -> "secret" or "setting"."""
        return dict(self.venues.get(venue or "", {}).get("environment", {}))


@dataclass(frozen=True)
class EngineConfig:
    """Everything needed to start one engine container, with no secret in it."""

    name: str
    template: str
    mode: str
    parameters: dict[str, Any]
    strategy_parameters: dict[str, Any]
    node: dict
    memory_limit_mb: int
    cpu_limit: float
    network: bool
    environment: dict[str, str] = field(default_factory=dict)  # variable -> "secret"/"setting"
    warnings: tuple[str, ...] = ()
    risk: dict = field(default_factory=dict)  # the engine's risk limits, as limits_to_json

    def to_record(self) -> dict:
        """JSON-safe form for the database (secrets are only ever references)."""
        return {
            "name": self.name, "template": self.template, "mode": self.mode,
            "parameters": _jsonable(self.parameters),
            "strategy_parameters": _jsonable(self.strategy_parameters),
            "node": self.node, "memory_limit_mb": self.memory_limit_mb,
            "cpu_limit": self.cpu_limit, "network": self.network,
            "environment": self.environment, "warnings": list(self.warnings),
            "risk": self.risk,
        }


def _jsonable(values: dict) -> dict:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def load_engine_template(path: Path, strategy_names: list[str]) -> EngineTemplate:
    data = _read_json(path)
    problems: list[str] = []
    for key in ("name", "title", "mode", "node", "parameters"):
        if key not in data:
            problems.append(f"{key}: missing")
    if problems:
        raise TemplateError(f"Template {path.name} is incomplete", problems)
    if data["mode"] not in MODES:
        problems.append(f"mode: must be one of {', '.join(MODES)}, was {data['mode']!r}")
    raw_params = copy.deepcopy(data["parameters"])
    for spec in raw_params.values() if isinstance(raw_params, dict) else ():
        if isinstance(spec, dict) and spec.get("type") == "strategy":
            spec.update(type="choice", choices=strategy_names)
    parameters = _parse_parameters(raw_params, problems)
    bindings = data.get("bindings", {})
    for name, paths in bindings.items():
        if name not in parameters:
            problems.append(f"bindings.{name}: not a declared parameter")
        for dotted in paths:
            if _get(data["node"], dotted, default=_MISSING) is _MISSING and not _parent_exists(
                    data["node"], dotted):
                problems.append(f"bindings.{name}: {dotted} is not in the node config")
    venues = data.get("venues", {})
    if "venue" in parameters and set(parameters["venue"].choices) - set(venues):
        problems.append("venues: needs a section for every choice of the venue parameter")
    problems.extend(_client_path_problems(data["node"], "node"))
    for venue_name, section in venues.items() if isinstance(venues, dict) else ():
        problems.extend(_client_path_problems(section, f"venues.{venue_name}"))
    problems.extend(value_problems(probe_environment(data["node"]), "node"))
    limits, risk_problems = risk_limits.parse_section(data.get("risk"))
    problems.extend(risk_problems)
    if problems:
        raise TemplateError(f"Template {path.name} is invalid", problems)
    template = EngineTemplate(
        name=data["name"], title=data["title"], description=data.get("description", ""),
        mode=data["mode"], node=data["node"], parameters=parameters, bindings=bindings,
        network=bool(data.get("network", True)), load_instruments=data.get("load_instruments", []),
        venues=venues, path=path, risk=risk_limits.limits_to_json(limits),
    )
    return template


_MISSING = object()


def _client_path_problems(section: Any, where: str) -> list[str]:
    """Client class paths outside the allowed packages, checked before anything imports them."""
    problems = []
    if not isinstance(section, dict):
        return [f"{where}: must be an object, was {type(section).__name__}"]
    for kind in ("data_clients", "exec_clients"):
        clients = section.get(kind, {})
        if not isinstance(clients, dict):
            problems.append(f"{where}.{kind}: must be an object of name -> client")
            continue
        for name, client in clients.items():
            if not isinstance(client, dict) or not isinstance(client.get("factory"), dict):
                problems.append(f"{where}.{kind}.{name}: needs 'path', 'factory': {{'path'}} "
                                "and 'config'")
                continue
            for label, path in (("path", client.get("path")),
                                ("factory.path", client["factory"].get("path"))):
                problem = class_path_problem(path, f"{where}.{kind}.{name}.{label}",
                                             CLIENT_PACKAGES)
                if problem:
                    problems.append(problem)
    return problems


def _get(tree: dict, dotted: str, default=None):
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _parent_exists(tree: dict, dotted: str) -> bool:
    parent, _, _ = dotted.rpartition(".")
    return not parent or isinstance(_get(tree, parent), dict)


def _set(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def probe_environment(node: dict) -> dict:
    """The node config with every "${NAME}" replaced by a value of the right type, for checks."""
    if isinstance(node, dict):
        return {k: probe_environment(v) for k, v in node.items()}
    if isinstance(node, list):
        return [probe_environment(v) for v in node]
    if isinstance(node, str) and (match := ENV_REF.match(node)):
        return 1 if match.group(2) else "probe"
    return node


def check_node_config(node: dict) -> list[str]:
    """Problems that keep ``node`` from building NautilusTrader's live configs, decoded the
    way the engine's bootstrap decodes them."""
    from nautilus_trader.common.config import resolve_path
    from nautilus_trader.config import TradingNodeConfig
    from nautilus_trader.trading.config import StrategyFactory

    from services.engine_runtime.client_configs import build_client_config

    problems: list[str] = []
    probe = probe_environment(node)
    for kind in ("data_clients", "exec_clients"):
        for name, client in probe.pop(kind, {}).items():
            try:
                build_client_config(client["path"], client.get("config", {}))
                resolve_path(client["factory"]["path"])
            except Exception as e:  # import errors, msgspec validation, bad paths, missing keys
                problems.append(f"node.{kind}.{name}: {type(e).__name__}: {e}")
    try:
        config = TradingNodeConfig.parse(json.dumps(probe))
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError) as e:
        return [*problems, f"node: does not decode into TradingNodeConfig: {e}"]
    for i, strategy in enumerate(config.strategies):
        try:
            StrategyFactory.create(strategy)
        except Exception as e:
            problems.append(f"node.strategies[{i}]: {type(e).__name__}: {e}")
    return problems


def build_engine_config(
    template: EngineTemplate,
    values: dict[str, Any],
    strategy_template,
    instrument,
    name: str | None,
    session_tag: str,
) -> EngineConfig:
    """Fill ``template`` with ``values`` (engine and strategy parameters together).

    ``instrument`` is the catalog's InstrumentInfo for the bar type's instrument, or None when the
    instrument is not in the catalog (live venues load it themselves). Raises ValidationError
    listing every problem with its field name.
    """
    values = dict(values)
    problems: list[str] = []
    risk_settings = {k: values.pop(k) for k in list(values) if k.startswith(risk_limits.PREFIX)}
    limits, risk_problems = risk_limits.parse_section(template.risk)
    limits, found = risk_limits.apply_settings(limits, risk_settings)
    problems.extend(risk_problems + found)
    engine_values: dict[str, Any] = {}
    for key, spec in template.parameters.items():
        try:
            engine_values[key] = spec.coerce(values.pop(key, spec.default))
        except ValueError as e:
            problems.append(f"{key}: {e}")
    strategy_values = {k: v for k, v in values.items() if k in strategy_template.parameters}
    for key in set(values) - set(strategy_values):
        known = sorted(set(template.parameters) | set(strategy_template.parameters)) + [
            f"{risk_limits.PREFIX}LIMIT"]
        problems.append(f"{key}: unknown parameter (known: {', '.join(known)})")
    bar_type = str(engine_values.get("bar_type", ""))
    instrument_id = instrument_id_of(bar_type) or ""
    if not instrument_id:
        problems.append(f"bar_type: expected e.g. BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL, "
                        f"was {bar_type!r}")
    for key, paths in template.bindings.items():  # bound values land in enum/identifier fields
        if key not in engine_values:
            continue
        for dotted in paths:
            if dotted.split(".", 1)[0] in ADAPTER_SECTIONS:
                continue
            leaf = dotted.rsplit(".", 1)[-1]
            for problem in value_problems({leaf: _to_json(engine_values[key])}):
                problems.append(f"{key}: {problem.split(': ', 1)[1]}")
    if engine_values.get("replay_start"):
        try:
            parse_utc(engine_values["replay_start"], "replay_start")
        except ValidationError as e:
            problems.append(e.summary)
    if template.mode == "paper" and instrument is None and not problems:
        problems.append(f"bar_type: instrument {instrument_id} is not in the data catalog, so "
                        "there is nothing to replay; choose a bar type from the catalog")
    if name is not None and not NAME_RE.match(name):
        problems.append(f"name: use 1-63 lower-case letters, digits, '.', '_' or '-', was {name!r}")
    try:
        strategy_config = strategy_template.strategy_config(
            strategy_values, instrument_id, bar_type,
            instrument.instrument_class if instrument is not None else None)
    except ValidationError as e:
        problems.extend(e.problems)
        strategy_config = {}
    if problems:
        raise ValidationError(f"Invalid configuration for engine template '{template.name}'",
                              problems)

    node = copy.deepcopy(template.node)
    venue = engine_values.get("venue")
    if venue:
        section = template.venues[venue]
        node["data_clients"] = copy.deepcopy(section.get("data_clients", {}))
        node["exec_clients"] = copy.deepcopy(section.get("exec_clients", {}))
        load_paths = section.get("load_instruments", [])
    else:
        load_paths = template.load_instruments
    for key, paths in template.bindings.items():
        for dotted in paths:
            _set(node, dotted, _to_json(engine_values[key]))
    for dotted in load_paths:
        _set(node, dotted, [instrument_id])
    node["trader_id"] = f"{template.mode.upper()}-{session_tag}"
    node["strategies"] = [{
        "strategy_path": strategy_template.strategy_path,
        "config_path": strategy_template.config_path,
        "config": strategy_config,
    }]
    risk = node.setdefault("risk_engine", {})
    risk["bypass"] = not engine_values.get("risk_engine", True)
    limit = engine_values.get("max_notional_per_order")
    if limit:
        risk["max_notional_per_order"] = {instrument_id: int(limit)}
    for client in node.get("exec_clients", {}).values():
        config = client.get("config", {})
        if client.get("path", "").startswith("nautilus_trader.adapters.sandbox"):
            config["venue"] = instrument_id.rsplit(".", 1)[1]
            currency = (engine_values.get("balance_currency")
                        or (instrument.settlement_currency if instrument is not None else None))
            config["starting_balances"] = [f"{engine_values['starting_balance']} {currency}"]
    if "replay_start" in engine_values:
        _set(node, "data_clients.REPLAY.config.start", engine_values["replay_start"] or None)

    warnings = []
    if template.mode == "live" and not engine_values.get("risk_engine", True):
        warnings.append("The risk engine is OFF: orders reach the venue with no pre-trade checks.")
    # The workbench's own checks, then NautilusTrader's decode in a child process (a panic in
    # its core must not abort the server); the session's own trader id is not part of the check.
    problems = value_problems(probe_environment(node), "node")
    if not problems:
        problems = nautilus_problems(ENGINE_NODE, {"node": {**node, "trader_id":
                                                            f"{template.mode.upper()}-PROBE"}})
    if problems:
        raise ValidationError(f"Engine template '{template.name}' does not build a valid "
                              "TradingNodeConfig", problems)
    default_name = f"{template.mode}-{strategy_template.name}-{instrument_id.split('.')[0]}"
    return EngineConfig(
        name=name or re.sub(r"[^a-z0-9_.-]", "-", default_name.lower())[:63],
        template=template.name, mode=template.mode,
        parameters={k: v for k, v in engine_values.items()},
        strategy_parameters=strategy_template.validate_parameters(
            strategy_values, instrument.instrument_class if instrument is not None else None),
        node=node,
        memory_limit_mb=int(engine_values.get("memory_limit_mb", 1024)),
        cpu_limit=float(engine_values.get("cpu_limit", 1.0)),
        network=template.network,
        environment=template.environment_for(venue),
        warnings=tuple(warnings),
        risk=risk_limits.limits_to_json(limits),
    )


def instrument_id_of(bar_type: str) -> str | None:
    """The instrument id of a bar type string (symbols may contain '-', e.g. BTCUSDT-PERP)."""
    match = re.match(r"^(.+\.[A-Za-z0-9_]+)-\d+-[A-Z]+-[A-Z_]+-(EXTERNAL|INTERNAL)$", bar_type)
    return match.group(1) if match else None


def _to_json(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value
