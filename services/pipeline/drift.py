"""Live (or paper) against backtest: how far an engine's trading drifted from a backtest of the
same version over the exact window the engine traded.

The pure part maps an engine's wall-clock fills onto the data's bars and compares two fill
lists over the same bars: equity curves (both marked to market on the same closes by
``services.backtest.statistics.mark_to_market``), the correlation of their per-bar returns,
fill-by-fill and trade-by-trade matching, slippage of every matched fill, commissions and the
final PnL. :class:`DriftService` gathers the inputs: it reads the engine's log, re-runs the
version as a backtest of the window through the normal queue, and records the summary the
live gate reads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from services.backtest.service import BacktestService
from services.backtest.statistics import mark_to_market
from services.catalog import CatalogService
from services.engine.service import EngineService
from services.errors import PipelineError, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.pipeline.engine_log import EngineTrades, ReplayTiming, read_engine_trades
from services.pipeline.gates import drift_within_bounds
from services.pipeline.records import LIVE, DeploymentInfo, aware
from services.pipeline.settings import PipelineSettings
from services.pipeline.versions import DRIFT, VersionService

_STEP = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_BAR_SPEC = re.compile(r"-(\d+)-(SECOND|MINUTE|HOUR|DAY)-[A-Z]+-(EXTERNAL|INTERNAL)$")
# A fill counts in the bar whose emission it follows; the replay's origin is read to within a
# fraction of a bar, so a fill is snapped to a bar once it is this far into it.
SNAP = 0.25
MATCH_BARS = 5  # fills further apart than this many bars are not the same trade
BACKTEST_TIMEOUT_S = 1800.0


def bar_seconds(bar_type: str) -> int:
    """The length of one bar of ``bar_type`` in seconds; ValidationError for internal or
    tick-based bars, which a replay cannot reproduce (see README, drift)."""
    match = _BAR_SPEC.search(bar_type)
    if match is None:
        raise ValidationError(f"Drift is measured on time bars; {bar_type} is not one.")
    if match.group(3) == "INTERNAL":
        raise ValidationError(
            f"{bar_type} is aggregated inside the engine on its own clock, so a replay at any "
            "speed but 1 builds other bars than the catalog's; drift is measured on EXTERNAL "
            "bar types.")
    return int(match.group(1)) * _STEP[match.group(2)]


@dataclass(frozen=True)
class ReplayClock:
    """Maps the engine's wall clock to the data's time: data time ``data_origin`` was handed
    to the engine at wall time ``wall_origin``, then ``speed`` data seconds per wall second."""

    data_origin: int  # ns
    wall_origin: int  # ns
    speed: float

    def data_time(self, wall: np.ndarray | int) -> np.ndarray:
        return self.data_origin + (np.asarray(wall, dtype="int64") - self.wall_origin) * self.speed

    def wall_time(self, data: np.ndarray) -> np.ndarray:
        return self.wall_origin + (np.asarray(data, dtype="int64") - self.data_origin) / self.speed


def snap_to_bars(data_times: np.ndarray, bars: pd.DatetimeIndex, step_ns: int) -> np.ndarray:
    """Positions in ``bars`` of the bar each data time falls in: the latest bar at or before
    it, allowing it to be read SNAP of a bar early. -1 before the first bar."""
    keys = bars.as_unit("ns").asi8
    return np.searchsorted(keys, np.asarray(data_times) + SNAP * step_ns, side="right") - 1


def last_traded_bar(timing: ReplayTiming, clock: ReplayClock, bars: pd.DatetimeIndex,
                    step_ns: int) -> int:
    """Position in ``bars`` of the last bar the engine traded on, where its window ends."""
    return int(snap_to_bars(clock.data_time(timing.last_traded_wall), bars, step_ns))


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """Trades (flat to flat, a reversal closes one and opens the next) from fills in order;
    columns entry_time, exit_time, direction, quantity, entry_price, exit_price."""
    trades, position, entry = [], 0.0, None
    for ts, side, qty, price in fills[["ts", "side", "quantity", "price"]].itertuples(index=False):
        signed = qty if side == "BUY" else -qty
        before, position = position, position + signed
        if abs(position) < 1e-12:
            position = 0.0
        if before == 0.0 and position != 0.0:
            entry = (ts, price, "LONG" if position > 0 else "SHORT", abs(position))
        elif before != 0.0 and (position == 0.0 or np.sign(position) != np.sign(before)):
            trades.append({"entry_time": entry[0], "exit_time": ts, "direction": entry[2],
                           "quantity": entry[3], "entry_price": entry[1], "exit_price": price})
            entry = (ts, price, "LONG" if position > 0 else "SHORT", abs(position)) \
                if position != 0.0 else None
    return pd.DataFrame(trades, columns=["entry_time", "exit_time", "direction", "quantity",
                                         "entry_price", "exit_price"])


def match_rows(left: pd.DataFrame, right: pd.DataFrame, keys: list[str], time: str,
               tolerance: pd.Timedelta) -> list[tuple[int | None, int | None]]:
    """Pair rows of two time-ordered tables: each left row takes the earliest unpaired right
    row with equal ``keys`` within ``tolerance``; what stays unpaired pairs with None."""
    pairs: list[tuple[int | None, int | None]] = []
    free: dict[tuple, list[int]] = {}
    for j, key in enumerate(right[keys].itertuples(index=False, name=None)):
        free.setdefault(key, []).append(j)
    used = set()
    for i, key in enumerate(left[keys].itertuples(index=False, name=None)):
        t = left[time].iloc[i]
        chosen = None
        for j in free.get(key, []):
            if j not in used and abs(right[time].iloc[j] - t) <= tolerance:
                chosen = j
                break
        if chosen is None:
            pairs.append((i, None))
        else:
            used.add(chosen)
            pairs.append((i, chosen))
    pairs.extend((None, j) for j in range(len(right)) if j not in used)
    return sorted(pairs, key=lambda p: (left[time].iloc[p[0]] if p[0] is not None
                                        else right[time].iloc[p[1]]))


@dataclass(frozen=True)
class DriftResult:
    """A comparison of an engine's fills with a backtest's over the same bars."""

    window_start: pd.Timestamp
    window_end: pd.Timestamp
    bars: int
    equity: pd.DataFrame  # per bar: close, engine, backtest
    fills: pd.DataFrame  # per fill pair: times, sides, prices, slippage, commissions
    trades: pd.DataFrame  # per trade pair: entry/exit times and prices of both
    engine_fills: int
    backtest_fills: int
    matched_fills: int
    missed_fills: int  # in the backtest, not in the engine
    extra_fills: int  # in the engine, not in the backtest
    correlation: float | None
    engine_pnl: float
    backtest_pnl: float
    pnl_difference: float
    pnl_difference_pct: float | None
    engine_commissions: float
    backtest_commissions: float
    slippage_total: float  # cost of matched fills' price differences, in the account currency
    slippage_mean_bps: float | None
    time_difference_max_s: float | None  # largest |engine - backtest| time of matched fills
    latency_ms: dict = field(default_factory=dict)  # engine lateness behind the replay schedule

    @property
    def window_minutes(self) -> float:
        return (self.window_end - self.window_start).total_seconds() / 60.0


def _returns_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    ra, rb = np.diff(a) / a[:-1], np.diff(b) / b[:-1]
    if len(ra) < 2 or np.std(ra) == 0 or np.std(rb) == 0:
        return None
    value = float(np.corrcoef(ra, rb)[0, 1])
    return value if math.isfinite(value) else None


def compare(engine_fills: pd.DataFrame, backtest_fills: pd.DataFrame, closes: pd.Series,
            starting_balance: float, multiplier: float, step: pd.Timedelta,
            latency_ms: dict | None = None) -> DriftResult:
    """Compare fills (columns ts, side, quantity, price, commission; ``ts`` on the bars of
    ``closes``) of an engine and of a backtest over the bars of ``closes``."""
    engine = mark_to_market(closes, engine_fills, starting_balance, multiplier)
    backtest = mark_to_market(closes, backtest_fills, starting_balance, multiplier)
    equity = pd.DataFrame({"close": closes.to_numpy(float), "engine": engine["equity"],
                           "backtest": backtest["equity"]}, index=closes.index)
    tolerance = step * MATCH_BARS
    # Sizes parsed from a log and read from Parquet compare equal once rounded.
    e = engine_fills.reset_index(drop=True).assign(quantity=lambda f: f["quantity"].round(9))
    b = backtest_fills.reset_index(drop=True).assign(quantity=lambda f: f["quantity"].round(9))
    pairs = match_rows(e, b, ["side", "quantity"], "ts", tolerance)
    rows = []
    for i, j in pairs:
        left = e.iloc[i] if i is not None else None
        right = b.iloc[j] if j is not None else None
        row = {"engine_time": left["ts"] if left is not None else pd.NaT,
               "backtest_time": right["ts"] if right is not None else pd.NaT,
               "side": (left if left is not None else right)["side"],
               "quantity": (left if left is not None else right)["quantity"],
               "engine_price": left["price"] if left is not None else np.nan,
               "backtest_price": right["price"] if right is not None else np.nan,
               "engine_commission": left["commission"] if left is not None else np.nan,
               "backtest_commission": right["commission"] if right is not None else np.nan,
               "match": "matched" if left is not None and right is not None else
               "extra" if left is not None else "missed"}
        rows.append(row)
    fills = pd.DataFrame(rows, columns=["engine_time", "backtest_time", "side", "quantity",
                                        "engine_price", "backtest_price", "engine_commission",
                                        "backtest_commission", "match"])
    for column in ("engine_time", "backtest_time"):
        fills[column] = pd.to_datetime(fills[column], utc=True)
    sign = np.where(fills["side"] == "BUY", 1.0, -1.0)
    # Positive slippage: the engine paid more (bought higher / sold lower) than the backtest.
    fills["slippage"] = (fills["engine_price"] - fills["backtest_price"]) * sign + 0.0  # no -0
    fills["slippage_bps"] = fills["slippage"] / fills["backtest_price"] * 1e4
    fills["time_difference_s"] = (fills["engine_time"] - fills["backtest_time"]).dt.total_seconds()
    matched = fills[fills["match"] == "matched"]
    trades = _trade_pairs(round_trips(e), round_trips(b), tolerance)
    start = float(starting_balance)
    engine_pnl = float(equity["engine"].iloc[-1] - start) if len(equity) else 0.0
    backtest_pnl = float(equity["backtest"].iloc[-1] - start) if len(equity) else 0.0
    difference = engine_pnl - backtest_pnl
    if backtest_pnl != 0:
        pct = abs(difference) / abs(backtest_pnl) * 100.0
    else:
        pct = 0.0 if difference == 0 else None
    return DriftResult(
        window_start=closes.index[0], window_end=closes.index[-1], bars=len(closes),
        equity=equity, fills=fills, trades=trades, engine_fills=len(e),
        backtest_fills=len(b), matched_fills=len(matched),
        missed_fills=int((fills["match"] == "missed").sum()),
        extra_fills=int((fills["match"] == "extra").sum()),
        correlation=_returns_correlation(equity["engine"].to_numpy(float),
                                         equity["backtest"].to_numpy(float)),
        engine_pnl=engine_pnl, backtest_pnl=backtest_pnl, pnl_difference=difference,
        pnl_difference_pct=pct, engine_commissions=float(e["commission"].sum()),
        backtest_commissions=float(b["commission"].sum()),
        slippage_total=float((matched["slippage"] * matched["quantity"]).sum() * multiplier),
        slippage_mean_bps=float(matched["slippage_bps"].mean()) if len(matched) else None,
        time_difference_max_s=float(matched["time_difference_s"].abs().max())
        if len(matched) else None,
        latency_ms=dict(latency_ms or {}))


def _trade_pairs(engine: pd.DataFrame, backtest: pd.DataFrame,
                 tolerance: pd.Timedelta) -> pd.DataFrame:
    columns = ["direction", "engine_entry", "backtest_entry", "engine_exit", "backtest_exit",
               "engine_entry_price", "backtest_entry_price", "engine_exit_price",
               "backtest_exit_price", "match"]
    rows = []
    for i, j in match_rows(engine, backtest, ["direction", "quantity"], "entry_time", tolerance):
        a = engine.iloc[i] if i is not None else None
        b = backtest.iloc[j] if j is not None else None
        rows.append({
            "direction": (a if a is not None else b)["direction"],
            "engine_entry": a["entry_time"] if a is not None else pd.NaT,
            "backtest_entry": b["entry_time"] if b is not None else pd.NaT,
            "engine_exit": a["exit_time"] if a is not None else pd.NaT,
            "backtest_exit": b["exit_time"] if b is not None else pd.NaT,
            "engine_entry_price": a["entry_price"] if a is not None else np.nan,
            "backtest_entry_price": b["entry_price"] if b is not None else np.nan,
            "engine_exit_price": a["exit_price"] if a is not None else np.nan,
            "backtest_exit_price": b["exit_price"] if b is not None else np.nan,
            "match": "matched" if a is not None and b is not None else
            "extra" if a is not None else "missed"})
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class DriftReport:
    """A deployment's drift: the comparison, the backtest run it was made against, and what
    the comparison could not account for."""

    deployment: DeploymentInfo
    run_id: str
    result: DriftResult
    within_bounds: bool
    bounds: str  # why within or out of the live gate's bounds
    notes: tuple[str, ...]  # systematic differences this deployment is known to have
    computed_at: datetime

    def summary(self) -> dict:
        """What is stored with the deployment and printed as JSON (no per-bar data)."""
        r = self.result
        return {
            "deployment_id": self.deployment.deployment_id,
            "version_id": self.deployment.version_id,
            "engine_session_id": self.deployment.engine_session_id, "run_id": self.run_id,
            "window_start": r.window_start.isoformat(), "window_end": r.window_end.isoformat(),
            "window_minutes": r.window_minutes, "bars": r.bars, "engine_fills": r.engine_fills,
            "backtest_fills": r.backtest_fills, "matched_fills": r.matched_fills,
            "missed_fills": r.missed_fills, "extra_fills": r.extra_fills,
            "correlation": r.correlation, "engine_pnl": r.engine_pnl,
            "backtest_pnl": r.backtest_pnl, "pnl_difference": r.pnl_difference,
            "pnl_difference_pct": r.pnl_difference_pct,
            "engine_commissions": r.engine_commissions,
            "backtest_commissions": r.backtest_commissions,
            "slippage_total": r.slippage_total, "slippage_mean_bps": r.slippage_mean_bps,
            "time_difference_max_s": r.time_difference_max_s, "latency_ms": r.latency_ms,
            "within_bounds": self.within_bounds, "bounds": self.bounds,
            "notes": list(self.notes), "computed_at": self.computed_at.isoformat(),
        }


class DriftService:
    """Computes and records drift for deployments."""

    def __init__(self, versions: VersionService, deployments, engines: EngineService,
                 backtests: BacktestService, catalog: CatalogService, authorizer: Authorizer,
                 settings: PipelineSettings) -> None:
        self._versions = versions
        self._deployments = deployments
        self._engines = engines
        self._backtests = backtests
        self._catalog = catalog
        self._auth = authorizer
        self.settings = settings

    def compute(self, deployment_id: str, *, principal: Principal | None = None,
                timeout: float = BACKTEST_TIMEOUT_S) -> DriftReport:
        """Re-run the deployment's version over the window its engine traded and compare."""
        deployment = self._deployments.get(deployment_id)
        actor = self._auth.require(principal, "strategy.drift", deployment_id)
        version = self._versions.get(deployment.version_id)
        step_ns = bar_seconds(version.bar_type) * 10**9
        trades = self._engine_trades(deployment, version)
        closes = self._closes(version.bar_type, deployment, trades)
        clock = self._clock(deployment, trades, closes)
        end = last_traded_bar(trades.timing, clock, closes.index, step_ns)
        if end < 1:
            raise PipelineError(f"Deployment {deployment_id}'s engine traded less than two bars; "
                                "there is no window to compare yet.")
        closes = closes.iloc[:end + 1]
        run_id = self._versions.backtest(
            version.version_id, start=closes.index[0].isoformat(),
            end=closes.index[-1].isoformat(), principal=actor, relation=DRIFT,
            action="strategy.drift", label=f"drift of {deployment_id}")
        info = self._wait(run_id, timeout)
        if info.status != "Completed":
            raise PipelineError(f"The backtest of deployment {deployment_id}'s window (run "
                                f"{run_id}) ended {info.status}: {info.error or 'no reason'}")
        report = self._report(deployment, version, trades, closes, clock, run_id,
                              datetime.now(UTC))
        self._deployments.record_drift(deployment_id, run_id, report.summary())
        self._auth.audit.record(actor, "strategy.drift", deployment_id, "ok",
                                f"run {run_id}: {report.bounds}")
        return report

    def report(self, deployment_id: str) -> DriftReport:
        """The latest drift of a deployment again, from its stored backtest run (no rerun)."""
        deployment = self._deployments.get(deployment_id)
        if not deployment.drift_run_id:
            raise PipelineError(f"No drift computed yet for deployment {deployment_id} "
                                f"(strategy drift {deployment_id}).")
        version = self._versions.get(deployment.version_id)
        trades = self._engine_trades(deployment, version)
        window = deployment.drift
        closes = self._catalog.bars(version.bar_type, pd.Timestamp(window["window_start"]),
                                    pd.Timestamp(window["window_end"]),
                                    columns=["close"])["close"]
        return self._report(deployment, version, trades, closes,
                            self._clock(deployment, trades, closes), deployment.drift_run_id,
                            aware(deployment.drift_at) or datetime.now(UTC))

    def _report(self, deployment: DeploymentInfo, version, trades: EngineTrades,
                closes: pd.Series, clock: ReplayClock, run_id: str,
                computed_at: datetime) -> DriftReport:
        step_s = bar_seconds(version.bar_type)
        engine_fills, latency = self._engine_fills(trades, closes.index, clock, step_s * 10**9,
                                                   deployment.capital_fraction)
        results = self._backtests.results(run_id)
        venue = version.spec.get("venue") or {}
        result = compare(engine_fills, results.fills[["ts", "side", "quantity", "price",
                                                      "commission"]], closes,
                         float(venue.get("starting_balance") or 0.0),
                         float(self._catalog.instrument(version.instrument_id).multiplier),
                         pd.Timedelta(seconds=step_s), latency)
        ok, why = drift_within_bounds(result.correlation, result.pnl_difference_pct,
                                      self.settings)
        return DriftReport(deployment, run_id, result, ok, why,
                           self._notes(deployment, trades, result), computed_at)

    # -- inputs --------------------------------------------------------------------------------
    def _default_speed(self) -> float:
        template = self._engines.template("paper_trading")
        return float(template.parameters["replay_speed"].default)

    def _engine_trades(self, deployment: DeploymentInfo, version) -> EngineTrades:
        path = self._engines.engines_dir / deployment.engine_session_id / "engine.log"
        if not path.exists():
            raise PipelineError(f"Deployment {deployment.deployment_id}'s engine "
                                f"{deployment.engine_session_id} left no log; it never ran.")
        component = version.content["strategy"]["strategy_path"].rpartition(":")[2]
        trades = read_engine_trades(path, strategy_component=component,
                                    bar_type=version.bar_type)
        if trades.timing.origin_wall is None or trades.timing.end_wall is None:
            raise PipelineError(f"Deployment {deployment.deployment_id}'s engine log holds no "
                                f"replayed {version.bar_type} data yet; wait until it trades.")
        return trades

    def _speed(self, deployment: DeploymentInfo) -> float:
        if deployment.stage == LIVE:
            return 1.0
        return float(deployment.parameters.get("replay_speed") or self._default_speed())

    def _clock(self, deployment: DeploymentInfo, trades: EngineTrades,
               closes: pd.Series) -> ReplayClock:
        """Replayed data starts at the window's first bar when its first record is handed
        over; a live engine's clock is the data's."""
        if deployment.stage == LIVE:
            return ReplayClock(0, 0, 1.0)
        return ReplayClock(closes.index[0].value, trades.timing.origin_wall,
                           self._speed(deployment))

    def _closes(self, bar_type: str, deployment: DeploymentInfo,
                trades: EngineTrades) -> pd.Series:
        """The bars the engine was handed, from the replay's start to (past) its end."""
        timing = trades.timing
        span = pd.Timedelta((timing.end_wall - timing.origin_wall) * self._speed(deployment),
                            "ns")
        start = deployment.parameters.get("replay_start") or None
        if deployment.stage == LIVE:
            first = pd.Timestamp(timing.origin_wall, tz="UTC")
        else:
            first = pd.Timestamp(start, tz="UTC") if start else None
        series = self._catalog.backtestable_series(bar_type)
        begin = first if first is not None else series.first
        # Gaps in the data (weekends, nights) pass in replayed time too: read generously.
        closes = self._catalog.bars(bar_type, begin, begin + span * 2 + pd.Timedelta(days=3),
                                    columns=["close"])["close"]
        if closes.empty:
            raise PipelineError(f"The catalog holds no {bar_type} bars from {begin:%Y-%m-%d %H:%M}"
                                " on, so the engine's window cannot be backtested.")
        return closes

    @staticmethod
    def _engine_fills(trades: EngineTrades, bars: pd.DatetimeIndex, clock: ReplayClock,
                      step_ns: int, fraction: float) -> tuple[pd.DataFrame, dict]:
        """The engine's fills stamped with the bar they happened on (sizes scaled to 100 % of
        the version's, when a rollout ran it smaller), and how late the engine received and
        acted on each bar behind the replay's schedule, in wall milliseconds."""
        fills = trades.fills
        positions = snap_to_bars(clock.data_time(fills["ts_wall"].to_numpy("int64")), bars,
                                 step_ns)
        inside = (positions >= 0) & (positions < len(bars))
        fills = fills[inside]
        positions = positions[inside]
        stamped = pd.DataFrame({"ts": bars[positions], "side": fills["side"].to_numpy(),
                                "quantity": fills["quantity"].to_numpy(float) / fraction,
                                "price": fills["price"].to_numpy(float),
                                "commission": fills["commission"].to_numpy(float) / fraction})
        late = (fills["ts_wall"].to_numpy("int64")
                - clock.wall_time(bars[positions].as_unit("ns").asi8)) / 1e6
        latency = ({"median": float(np.median(late)), "p95": float(np.percentile(late, 95)),
                    "max": float(np.max(late))} if len(late) else {})
        return stamped, latency

    def _wait(self, run_id: str, timeout: float):
        scheduler = self._backtests.scheduled_here([run_id])
        try:
            return self._backtests.wait(run_id, timeout=timeout)
        finally:
            if scheduler is not None:
                scheduler.stop()

    def _notes(self, deployment: DeploymentInfo, trades: EngineTrades,
               result: DriftResult) -> tuple[str, ...]:
        notes = list(deployment.warnings)
        if trades.timing.first_bar_wall is None:
            notes.append("The strategy does not log its bars: the replay's start was read from "
                         "the data client's subscription, to within a fraction of a bar.")
        if trades.timing.paused:
            end = trades.timing.end_wall
            seconds = sum(((stop or end) - start) / 1e9 for start, stop in trades.timing.paused)
            notes.append(f"The strategy was paused {len(trades.timing.paused)} time(s) for "
                         f"{seconds * self._speed(deployment) / 60:,.0f} minutes of data; the "
                         "backtest traded through, so fills it made then are missed here.")
        if trades.unreadable_fills:
            notes.append(f"{trades.unreadable_fills} OrderFilled log lines could not be read "
                         "and are left out.")
        if result.latency_ms:
            notes.append(f"Engine timestamps are wall-clock: fills were stamped a median "
                         f"{result.latency_ms['median']:.1f} ms (max "
                         f"{result.latency_ms['max']:.1f} ms) after the replay's schedule "
                         "handed their bar over, and are compared on that bar.")
        if deployment.engine_state == "Error":
            notes.append("The engine ended in Error; the window is what it traded before.")
        if deployment.capital_fraction < 1.0:
            notes.append(f"The engine ran at {deployment.capital_fraction:.0%} of the version's "
                         "trade size; its fill sizes and commissions are scaled to 100 % here.")
        return tuple(notes)
