"""The backtest worker's fixes for NautilusTrader 1.231, behind one version guard.

Both fixes replace NautilusTrader internals whose shape is only known for the pinned release:

* ``analyzer_fix``: ``PortfolioAnalyzer`` records trades with one ``pd.concat`` each (quadratic
  in trades, upstream issue #4434);
* ``position_orders_fix``: ``OrderMatchingEngine.fill_order`` walks every order ever linked to
  the position after each fill (quadratic in orders under NETTING).

On any other NautilusTrader version neither is installed: the run is NautilusTrader's own (slower
on large runs, never silently wrong) and the worker says so in its log and in the run's warnings.
"""

from __future__ import annotations

from dataclasses import dataclass

PINNED_VERSION = "1.231.0"
ANALYZER_FIX = "analyzer_fix"
POSITION_ORDERS_FIX = "position_orders_fix"


@dataclass(frozen=True)
class FixesOutcome:
    """What :func:`install` did: the fixes now in place and what the user should know."""

    installed: tuple[str, ...]
    warnings: tuple[str, ...]


def refusal(version: str) -> str:
    """The warning of a worker that found ``version`` instead of the pinned NautilusTrader."""
    return (f"NautilusTrader {version} is installed, but the workbench's fixes for NautilusTrader "
            f"{PINNED_VERSION}'s quadratic trade recording and fill path are written for "
            f"{PINNED_VERSION} only, so they were not installed: this run is NautilusTrader's "
            f"own and large runs are slower. Install nautilus_trader=={PINNED_VERSION}, or "
            "check the fixes against this version and update PINNED_VERSION in "
            "services/backtest/nautilus_fixes.py.")


def install(version: str | None = None) -> FixesOutcome:
    """Install both fixes in this process if NautilusTrader is the pinned version (idempotent).

    Parameters
    ----------
    version : str, optional
        The NautilusTrader version to check; defaults to the installed one.
    """
    if version is None:
        import nautilus_trader

        version = nautilus_trader.__version__
    if version != PINNED_VERSION:
        return FixesOutcome(installed=(), warnings=(refusal(version),))
    from services.backtest import analyzer_fix, position_orders_fix

    analyzer_fix.install()
    position_orders_fix.install()
    return FixesOutcome(installed=(ANALYZER_FIX, POSITION_ORDERS_FIX), warnings=())
