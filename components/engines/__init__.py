"""The Engines page's components: list, start form, detail view and its parts."""

from components.engines.alerts import AlertList
from components.engines.blotter import Blotter
from components.engines.detail import EngineDetail
from components.engines.emergency import EmergencyStop
from components.engines.engine_list import EngineList
from components.engines.feed import FeedHealthView
from components.engines.risk import RiskPanel
from components.engines.start_form import EngineStartForm
from components.engines.ticket import OrderTicket

__all__ = ["AlertList", "Blotter", "EmergencyStop", "EngineDetail", "EngineList",
           "EngineStartForm", "FeedHealthView", "OrderTicket", "RiskPanel"]
