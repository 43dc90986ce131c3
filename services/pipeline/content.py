"""What a strategy version is made of, its content hash, and the diff of two versions.

A version is identified like a NautilusTrader config: by the SHA-256 of its canonical JSON. The
content is taken from a real ``BacktestRunConfig`` (the ``config.json`` a run wrote, or the one
the backtest service builds from a template and parameters), so it holds the *effective* values:
every strategy config field with the template's defaults filled in, the backtest engine's config
with NautilusTrader's defaults, the simulated venue, the instrument and bar type, and the
NautilusTrader version. Dates, the catalog's location and the run's progress file are not part
of it: the same strategy on other days is the same version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version as package_version
from typing import Any

from services.backtest.spec import BacktestSpec, VenueSettings
from services.errors import ValidationError

# Engine fields of a run's config that describe the run, not the strategy version.
_RUN_ONLY_ENGINE_FIELDS = ("actors", "strategies")
_FIXED_FEE_MODEL = "nautilus_trader.backtest.models:FixedFeeModel"


def nautilus_version() -> str:
    """The installed NautilusTrader version (part of every version's content)."""
    return package_version("nautilus_trader")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal content, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON: {value!r}")


def content_hash(content: dict) -> str:
    """The version id of ``content``: the hex SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


@dataclass(frozen=True)
class VersionContent:
    """The hashed content of a strategy version and the backtest spec that reproduces it."""

    content: dict
    spec: BacktestSpec  # every parameter and venue setting explicit

    @property
    def version_id(self) -> str:
        return content_hash(self.content)


def venue_settings_of(venue: dict) -> VenueSettings:
    """The explicit venue settings a BacktestVenueConfig (as JSON) was built from.

    The inverse of ``services.backtest.config_builder._venue``: building a run from the
    returned settings gives this venue again, whatever the template's defaults are by then.
    """
    amount, currency = venue["starting_balances"][0].split()
    fill = (venue.get("fill_model") or {}).get("config") or {}
    fee = venue.get("fee_model") or {}
    fixed = fee.get("fee_model_path") == _FIXED_FEE_MODEL
    return VenueSettings(
        starting_balance=amount, currency=currency, oms_type=venue["oms_type"],
        account_type=venue["account_type"], leverage=float(venue["default_leverage"]),
        fee_model="fixed" if fixed else "maker_taker",
        fixed_commission=fee["config"]["commission"].split()[0] if fixed else None,
        prob_slippage=float(fill.get("prob_slippage", 0.0)),
        prob_fill_on_limit=float(fill.get("prob_fill_on_limit", 1.0)),
        random_seed=int(fill["random_seed"]) if fill.get("random_seed") is not None else None,
    )


def content_from_run_config(run_config: dict, strategy_template, parameter_names) -> VersionContent:
    """The version content of a BacktestRunConfig given as JSON (a run's ``config.json``).

    Parameters
    ----------
    run_config : dict
        ``json.loads`` of ``BacktestRunConfig.json()``.
    strategy_template : str
        Name of the strategy template the run was made from.
    parameter_names : Iterable[str]
        The template's declared parameters; their values are read from the strategy config,
        so they are what ran even if the template's defaults changed since.
    """
    engine = run_config["engine"]
    strategies = engine.get("strategies") or []
    if len(strategies) != 1 or len(run_config.get("venues") or []) != 1:
        raise ValidationError("A strategy version is made from a run of one strategy on one "
                              f"venue; this run has {len(strategies)} strategies and "
                              f"{len(run_config.get('venues') or [])} venues")
    strategy = strategies[0]
    config = strategy["config"]
    venue = run_config["venues"][0]
    parameters = {name: config[name] for name in parameter_names if name in config}
    content = {
        "strategy": {"template": strategy_template, "strategy_path": strategy["strategy_path"],
                     "config_path": strategy["config_path"], "config": config},
        "parameters": parameters,
        "engine_template": {"name": "backtest_engine",
                            "engine": {k: v for k, v in engine.items()
                                       if k not in _RUN_ONLY_ENGINE_FIELDS}},
        "data": {"instrument_id": config["instrument_id"], "bar_type": config["bar_type"]},
        "venue": venue,
        "nautilus_trader": nautilus_version(),
    }
    spec = BacktestSpec(strategy=strategy_template, bar_type=config["bar_type"],
                        parameters=dict(parameters), venue=venue_settings_of(venue))
    return VersionContent(content, spec)


@dataclass(frozen=True)
class Difference:
    """One field that differs between two versions (``None``: absent on that side)."""

    section: str  # strategy, parameters, engine_template, data, venue, nautilus_trader
    field: str  # dotted path inside the section
    left: Any
    right: Any

    def to_json(self) -> dict:
        return {"section": self.section, "field": self.field, "left": self.left,
                "right": self.right}


_ABSENT = object()


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key in value:
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def diff(left: dict, right: dict) -> list[Difference]:
    """Every field that differs between two version contents, section by section, in the
    order of the sections then the field names."""
    differences = []
    for section in sorted(set(left) | set(right)):
        a, b = {}, {}
        _flatten(left.get(section, _ABSENT), "", a)
        _flatten(right.get(section, _ABSENT), "", b)
        for field in sorted(set(a) | set(b)):
            x, y = a.get(field, _ABSENT), b.get(field, _ABSENT)
            if x != y:
                differences.append(Difference(section, field or section,
                                              None if x is _ABSENT else x,
                                              None if y is _ABSENT else y))
    return differences
