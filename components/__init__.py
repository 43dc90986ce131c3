"""Param-driven Panel components: each is a Viewer that shows in a notebook with one line and
in the served app, over the services passed to it."""

import panel as pn

# Untrusted text is never markup: instrument ids, labels, file names and error messages end up
# in Markdown panes (and Alerts, which are Markdown), so raw HTML in Markdown is shown as text.
# Panes that need HTML are HTML panes and escape what they interpolate.
pn.pane.Markdown.renderer_options = {"html": False}

# Containers are created empty and filled when their data arrives: not a layout mistake, and
# Bokeh's warning about it would be logged on every page load.
from bokeh.core.validation import silence  # noqa: E402
from bokeh.core.validation.warnings import EMPTY_LAYOUT  # noqa: E402

silence(EMPTY_LAYOUT, True)

from components.accounts import AccountPanel, UserAdmin  # noqa: E402
from components.backtest_configurator import BacktestConfigurator  # noqa: E402
from components.catalog_browser import CatalogBrowser  # noqa: E402
from components.confirm import ConfirmAction  # noqa: E402
from components.engine_manager import EngineManager  # noqa: E402
from components.engines import (  # noqa: E402
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
from components.overview import Overview  # noqa: E402
from components.results_viewer import ResultsViewer  # noqa: E402
from components.robustness import RobustnessPanel  # noqa: E402
from components.run_comparison import RunComparison  # noqa: E402
from components.run_queue import RunQueue  # noqa: E402
from components.sweep_view import SweepView  # noqa: E402
from components.walk_forward_view import WalkForwardView  # noqa: E402

__all__ = ["AccountPanel", "AlertList", "BacktestConfigurator", "Blotter", "CatalogBrowser",
           "ConfirmAction", "EmergencyStop", "EngineDetail", "EngineList", "EngineManager",
           "EngineStartForm", "FeedHealthView", "OrderTicket", "Overview", "ResultsViewer",
           "RiskPanel", "RobustnessPanel", "RunComparison", "RunQueue", "SweepView", "UserAdmin",
           "WalkForwardView"]
