"""A narrowly scoped fix for NautilusTrader 1.231's quadratic trade recording.

``PortfolioAnalyzer._append_pnl_record`` grows a pandas Series with ``pd.concat`` on every
closed position (upstream issue #4434), so a run's cost grows with the square of its trades
(EMA cross on 200k bars: minutes instead of seconds). This module buffers the records in
lists and materialises them with one concat the first time anything reads the analyzer.
The observable results are unchanged: ``tests/unit/services/backtest/test_analyzer_fix.py`` compares a
patched and an unpatched analyzer on the same trades. Applied only inside backtest workers, through
``services.backtest.nautilus_fixes``, and only on the NautilusTrader version it was written for.
"""

from __future__ import annotations

import functools

import pandas as pd
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer

_PENDING = "_workbench_pending_pnls"
# Methods that never read the PnL records: they must not flush, or flushing per call would make
# post-run analysis (add_positions -> add_position_return per position) quadratic again.
# Every other public method may read the records and flushes first.
_NON_READERS = {"add_trade", "record_trade", "add_positions", "add_position_return", "add_return",
                "register_statistic", "deregister_statistic", "deregister_statistics"}


def _buffered_append(self, pnls, timestamps, position_id, realized_pnl, ts_event) -> None:
    pending = self.__dict__.setdefault(_PENDING, {})
    currency = realized_pnl.currency
    key = (id(pnls), currency)
    entry = pending.get(key)
    if entry is None:
        entry = pending[key] = (pnls, timestamps, currency, [], [], [])
    entry[3].append(position_id.value)
    entry[4].append(realized_pnl.as_double())
    entry[5].append(int(ts_event) if ts_event is not None else None)


def _flush(self) -> None:
    pending = self.__dict__.get(_PENDING)
    if not pending:
        return
    for pnls, timestamps, currency, ids, values, ts_events in pending.values():
        new_pnls = pd.Series(values, index=ids, dtype="float64")
        new_ts = pd.Series(ts_events, index=ids, dtype=object)
        old_pnls, old_ts = pnls.get(currency), timestamps.get(currency)
        pnls[currency] = new_pnls if old_pnls is None else pd.concat([old_pnls, new_pnls])
        timestamps[currency] = new_ts if old_ts is None else pd.concat([old_ts, new_ts])
    pending.clear()


def _flushing(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        _flush(self)
        return method(self, *args, **kwargs)

    wrapper._workbench_flushing = True
    return wrapper


def install() -> None:
    """Patch PortfolioAnalyzer in this process (idempotent)."""
    if getattr(PortfolioAnalyzer._append_pnl_record, "_workbench_buffered", False):
        return
    _buffered_append._workbench_buffered = True
    PortfolioAnalyzer._append_pnl_record = _buffered_append
    for name, member in list(vars(PortfolioAnalyzer).items()):
        if name.startswith("_") or name in _NON_READERS or not callable(member):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            continue
        setattr(PortfolioAnalyzer, name, _flushing(member))
    # reset() clears the stores; drop anything buffered too rather than flushing it back in.
    original_reset = PortfolioAnalyzer.reset.__wrapped__

    def reset(self) -> None:
        self.__dict__.pop(_PENDING, None)
        original_reset(self)

    PortfolioAnalyzer.reset = reset
