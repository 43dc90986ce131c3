"""The data catalog: inventory and reads (``inventory``), quality checks (``quality``), trading
calendars (``calendars``), imports (``importer``), audited writes (``writer``) and the generated
sample catalog (``sample``)."""

from services.catalog.inventory import BacktestableSeries, CatalogService, InstrumentInfo

__all__ = ["BacktestableSeries", "CatalogService", "InstrumentInfo"]
