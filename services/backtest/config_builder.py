"""Turn a BacktestSpec into NautilusTrader's BacktestRunConfig, validating everything first."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pandas as pd

from services.backtest.spec import BacktestSpec
from services.catalog import BacktestableSeries, CatalogService, InstrumentInfo
from services.errors import ValidationError
from services.templates import BacktestEngineTemplate, StrategyTemplate

_DATA_CLASSES = {
    "bars": "nautilus_trader.model.data:Bar",
    "quotes": "nautilus_trader.model.data:QuoteTick",
}


def resolve_time_range(spec: BacktestSpec, series: BacktestableSeries) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the run's [start, end], defaulting to the data's coverage and refusing to leave it.

    A date inside the first or last covered day is accepted (bars are stamped at their close,
    so a run "from 2024-01-01" on data whose first bar closes at 00:01 is what users mean).
    """
    start, end = spec.time_range()
    first_day, last_day = series.first.floor("D"), series.last.ceil("D")
    coverage = f"{series.first:%Y-%m-%d %H:%M} to {series.last:%Y-%m-%d %H:%M} UTC"
    problems = []
    if start is not None and not first_day <= start <= last_day:
        problems.append(f"start: {start:%Y-%m-%d %H:%M} is outside the data of {series.bar_type} "
                        f"({coverage})")
    if end is not None and not first_day <= end <= last_day:
        problems.append(f"end: {end:%Y-%m-%d %H:%M} is outside the data of {series.bar_type} "
                        f"({coverage})")
    if problems:
        raise ValidationError("The date range is outside the data", problems)
    start = max(start, series.first - pd.Timedelta(minutes=1)) if start is not None else series.first - pd.Timedelta(minutes=1)
    end = min(end, series.last) if end is not None else series.last
    if start >= end:
        raise ValidationError("The date range holds no data", [
            f"start/end: {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} selects no data of "
            f"{series.bar_type} ({coverage})"])
    return start, end


def _venue(spec: BacktestSpec, engine: BacktestEngineTemplate, instrument: InstrumentInfo) -> tuple[dict, str]:
    values = {name: p.default for name, p in engine.parameters.items()}
    overrides = spec.venue.overrides()
    problems = []
    for name, value in overrides.items():
        param = engine.parameters.get(name)
        if param is None:
            problems.append(f"venue.{name}: unknown venue setting")
            continue
        try:
            values[name] = param.coerce(value)
        except ValueError as e:
            problems.append(f"venue.{name}: {e}")
    if instrument.is_inverse:
        problems.append(f"bar_type: {instrument.instrument_id} is an inverse instrument; the "
                        "workbench's mark-to-market equity supports linear instruments only")
    currency = (spec.venue.currency or instrument.settlement_currency).upper()
    if currency != instrument.settlement_currency:
        problems.append(
            f"venue.currency: the account currency must be {instrument.settlement_currency} "
            f"(the settlement currency of {instrument.instrument_id}), was {currency}")
    if problems:
        raise ValidationError("Invalid venue settings", problems)

    venue = dict(engine.venue)
    venue.update({
        "name": instrument.venue,
        "oms_type": values["oms_type"],
        "account_type": values["account_type"],
        "starting_balances": [f"{values['starting_balance']} {currency}"],
        "base_currency": currency,
        "default_leverage": float(values["leverage"]),
        "fill_model": {
            "fill_model_path": "nautilus_trader.backtest.models:FillModel",
            "config_path": "nautilus_trader.backtest.config:FillModelConfig",
            "config": {"prob_fill_on_limit": values["prob_fill_on_limit"],
                       "prob_slippage": values["prob_slippage"],
                       "random_seed": values["random_seed"]},
        },
    })
    if values["fee_model"] == "fixed":
        venue["fee_model"] = {
            "fee_model_path": "nautilus_trader.backtest.models:FixedFeeModel",
            "config_path": "nautilus_trader.backtest.config:FixedFeeModelConfig",
            "config": {"commission": f"{Decimal(values['fixed_commission'])} {currency}"},
        }
    else:
        venue["fee_model"] = {
            "fee_model_path": "nautilus_trader.backtest.models:MakerTakerFeeModel",
            "config_path": "nautilus_trader.backtest.config:MakerTakerFeeModelConfig",
            "config": {},
        }
    return venue, currency


def build_run_config(
    spec: BacktestSpec,
    strategy: StrategyTemplate,
    engine: BacktestEngineTemplate,
    catalog: CatalogService,
    progress_file: str,
):
    """Return ``(BacktestRunConfig, resolved)`` where resolved holds what the spec left open.

    Raises ValidationError (every problem with its field) or CatalogError.
    """
    from nautilus_trader.backtest.config import BacktestRunConfig

    series = catalog.backtestable_series(spec.bar_type)
    instrument = catalog.instrument(series.instrument_id)
    # Check every part before raising, so the user sees all problems at once.
    problems: list[str] = []
    stages = {
        "dates": lambda: resolve_time_range(spec, series),
        "strategy": lambda: strategy.strategy_config(spec.parameters, instrument.instrument_id,
                                                     spec.bar_type, instrument.instrument_class),
        "venue": lambda: _venue(spec, engine, instrument),
    }
    outcome = {}
    for name, stage in stages.items():
        try:
            outcome[name] = stage()
        except ValidationError as e:
            problems.extend(e.problems or [e.summary])
    if problems:
        raise ValidationError(f"The backtest of {spec.strategy} on {spec.bar_type} is invalid", problems)
    (start, end), strategy_config, (venue, currency) = outcome["dates"], outcome["strategy"], outcome["venue"]
    data = {
        "catalog_path": catalog.root,
        "catalog_fs_protocol": None if catalog.protocol == "file" else catalog.protocol,
        "data_cls": _DATA_CLASSES[series.data_type],
        "instrument_id": instrument.instrument_id,
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
    }
    if series.data_type == "bars":
        data["bar_types"] = [spec.bar_type]
    engine_config = dict(engine.engine)
    engine_config["strategies"] = [{
        "strategy_path": strategy.strategy_path,
        "config_path": strategy.config_path,
        "config": strategy_config,
    }]
    engine_config["actors"] = [{
        "actor_path": "services.backtest.progress:ProgressReporter",
        "config_path": "services.backtest.progress:ProgressReporterConfig",
        "config": {"progress_file": progress_file, "start_ns": start.value, "end_ns": end.value},
    }]
    raw = {"engine": engine_config, "venues": [venue], "data": [data],
           "dispose_on_completion": False, "raise_exception": True}
    try:
        config = BacktestRunConfig.parse(msgspec.json.encode(raw))
    except (msgspec.ValidationError, ValueError, TypeError) as e:
        raise ValidationError("The backtest does not form a valid NautilusTrader configuration",
                              [str(e)]) from e
    resolved = {"instrument": instrument, "series": series, "start": start, "end": end,
                "currency": currency, "strategy_config": strategy_config}
    return config, resolved

