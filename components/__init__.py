"""Param-driven Panel components: each is a Viewer that shows in a notebook with one line and
in the served app, over the services passed to it."""

from components.backtest_configurator import BacktestConfigurator
from components.catalog_browser import CatalogBrowser
from components.engine_manager import EmergencyStop, EngineManager
from components.results_viewer import ResultsViewer
from components.run_comparison import RunComparison
from components.run_queue import RunQueue
from components.sweep_view import SweepView

__all__ = ["BacktestConfigurator", "CatalogBrowser", "EmergencyStop", "EngineManager",
           "ResultsViewer", "RunComparison", "RunQueue", "SweepView"]
