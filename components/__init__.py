"""Param-driven Panel components: each is a Viewer that shows in a notebook with one line and
in the served app, over the services passed to it."""

from components.backtest_configurator import BacktestConfigurator
from components.catalog_browser import CatalogBrowser
from components.confirm import ConfirmAction
from components.engine_manager import EngineManager
from components.engines import (
    AlertList,
    Blotter,
    EmergencyStop,
    EngineDetail,
    EngineList,
    EngineStartForm,
    FeedHealthView,
    OrderTicket,
    RiskPanel,
)
from components.results_viewer import ResultsViewer
from components.run_comparison import RunComparison
from components.run_queue import RunQueue
from components.sweep_view import SweepView

__all__ = ["AlertList", "BacktestConfigurator", "Blotter", "CatalogBrowser", "ConfirmAction",
           "EmergencyStop", "EngineDetail", "EngineList", "EngineManager", "EngineStartForm",
           "FeedHealthView", "OrderTicket", "ResultsViewer", "RiskPanel", "RunComparison",
           "RunQueue", "SweepView"]
