"""What a user chose for a backtest, independent of NautilusTrader's config classes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from services.errors import ValidationError
from services.timestamps import parse_utc


@dataclass(frozen=True)
class VenueSettings:
    """The simulated venue and account. ``None`` fields take the engine template's defaults."""

    starting_balance: str | None = None
    currency: str | None = None  # None: the instrument's settlement (or quote) currency
    oms_type: str | None = None
    account_type: str | None = None
    leverage: float | None = None
    fee_model: str | None = None
    fixed_commission: str | None = None
    prob_slippage: float | None = None
    prob_fill_on_limit: float | None = None
    random_seed: int | None = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and k != "currency"}


@dataclass(frozen=True)
class BacktestSpec:
    """A backtest as the user describes it: strategy template, parameters, data and venue."""

    strategy: str
    bar_type: str
    parameters: dict[str, Any] = field(default_factory=dict)
    start: str | None = None  # ISO 8601; None: the start of the data
    end: str | None = None  # ISO 8601; None: the end of the data
    venue: VenueSettings = field(default_factory=VenueSettings)
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parameters"] = {k: str(v) if not isinstance(v, (bool, int, float, str)) else v
                              for k, v in self.parameters.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BacktestSpec:
        data = dict(data)
        venue = VenueSettings(**(data.pop("venue", None) or {}))
        return cls(venue=venue, **data)

    def time_range(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """Parse start/end as UTC timestamps, or raise ValidationError naming the field."""
        problems, parsed = [], []
        for name in ("start", "end"):
            try:
                parsed.append(parse_utc(getattr(self, name), name))
            except ValidationError as e:
                problems.append(e.summary)
                parsed.append(None)
        if problems:
            raise ValidationError("Invalid date range", problems)
        start, end = parsed
        if start is not None and end is not None and start >= end:
            raise ValidationError("Invalid date range", [
                f"end: must be after start ({start.isoformat()}), was {end.isoformat()}"])
        return start, end
