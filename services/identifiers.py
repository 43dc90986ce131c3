"""The workbench's own checks of NautilusTrader identifiers and enum names, made before any
NautilusTrader constructor sees a value.

NautilusTrader's Rust core panics on some malformed values (a ``TraderId`` without a hyphen),
and a panic aborts the whole process; its enum parsers abort worker processes later on. So every
value from a template, a file or a user passes these checks first. The grammar is a subset of
what NautilusTrader accepts, wide enough for every listed market (BTCUSDT-PERP.BINANCE,
EUR/USD.SIM, 6EH4.XCME, BRK.B.XNYS) and free of markup, quotes, spaces and path tricks.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

SYMBOL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._/:^+#=_\-]{0,62}[A-Za-z0-9_#^=+])?\Z")
VENUE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{0,31}\Z")
TRADER_ID_RE = re.compile(r"^[A-Za-z0-9_]{1,32}-[A-Za-z0-9_]{1,32}\Z")
CURRENCY_RE = re.compile(r"^[A-Z0-9]{2,12}\Z")
RATE_RE = re.compile(r"^\d{1,9}/\d{2}:[0-5]\d:[0-5]\d\Z")
BAR_SPEC_RE = re.compile(r"^\d{1,12}-(MILLISECOND|SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|TICK|VOLUME|"
                         r"VALUE)-(LAST|BID|ASK|MID)-(EXTERNAL|INTERNAL)\Z")
ENV_REF_RE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(:int)?\}\Z")  # as services.engine.config
MAX_DEPTH = 32  # templates nest 4-6 levels; anything far deeper is a mistake or an attack

# NautilusTrader 1.231's enum member names (nautilus_trader.model.enums / common.enums).
ENUMS = {
    "oms_type": ("UNSPECIFIED", "NETTING", "HEDGING"),
    "account_type": ("CASH", "MARGIN", "BETTING", "WALLET"),
    "book_type": ("L1_MBP", "L2_MBP", "L3_MBO"),
    "oto_trigger_mode": ("PARTIAL", "FULL"),
    "log_level": ("OFF", "TRACE", "DEBUG", "INFO", "WARNING", "ERROR"),
    "log_level_file": ("OFF", "TRACE", "DEBUG", "INFO", "WARNING", "ERROR"),
}


def instrument_id_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid ``SYMBOL.VENUE`` instrument id, or None."""
    text = value if isinstance(value, str) else ""
    symbol, dot, venue = text.rpartition(".")
    if not dot or not symbol or not venue:
        return f"{value!r} is not SYMBOL.VENUE, e.g. BTCUSDT-PERP.BINANCE or EUR/USD.SIM"
    if not VENUE_RE.match(venue):
        return (f"the venue {venue!r} of {value!r} must be 1-32 upper-case letters, digits, '_' "
                "or '-' (e.g. BINANCE, XNAS, SIM)")
    if not SYMBOL_RE.match(symbol) or ".." in symbol or "//" in symbol:
        return (f"the symbol {symbol!r} of {value!r} must be 1-64 letters and digits, with "
                ". / - _ : ^ + # = inside (no spaces, quotes, markup or '..'), e.g. BTCUSDT-PERP "
                "or EUR/USD")
    return None


def bar_type_problem(value: Any) -> str | None:
    """Why ``value`` is not ``INSTRUMENT_ID-STEP-AGGREGATION-PRICE-SOURCE``, or None."""
    text = value if isinstance(value, str) else ""
    for split in re.finditer(r"-(?=\d)", text):  # symbols may hold '-' (BTCUSDT-PERP)
        if BAR_SPEC_RE.match(text[split.end():]) and not instrument_id_problem(text[:split.start()]):
            return None
    return (f"{value!r} is not a bar type like BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL "
            "(INSTRUMENT_ID-STEP-AGGREGATION-PRICE-EXTERNAL|INTERNAL)")


# Adapter client configs name their own enums alike (Binance's account_type is USDT_FUTURES):
# they are left to NautilusTrader's decode, which runs in a child process.
ADAPTER_SECTIONS = ("data_clients", "exec_clients")


def value_problems(tree: Any, where: str = "") -> list[str]:
    """Problems of the identifier and enum values anywhere in a config tree (adapter client
    sections aside), found by their field names (``trader_id``, ``oms_type``,
    ``instrument_id``, ``starting_balances``, ...)."""
    problems: list[str] = []
    _walk(tree, where, problems, 0)
    return problems


def _walk(node: Any, where: str, problems: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        problems.append(f"{where or 'the template'}: nests deeper than {MAX_DEPTH} levels")
        return
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, f"{where}[{i}]", problems, depth + 1)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        path = f"{where}.{key}" if where else str(key)
        if key in ADAPTER_SECTIONS:
            continue
        problem = _field_problem(str(key), value)
        if problem:
            problems.append(f"{path}: {problem}")
        _walk(value, path, problems, depth + 1)


def _field_problem(key: str, value: Any) -> str | None:
    if isinstance(value, str) and ENV_REF_RE.match(value):
        return None  # an environment reference, resolved inside the engine container
    if key in ENUMS:
        if value is None:
            return None
        if value not in ENUMS[key]:
            return f"must be one of {', '.join(ENUMS[key])}, was {value!r}"
        return None
    if key == "log_component_levels" and isinstance(value, dict):
        bad = [v for v in value.values() if v not in ENUMS["log_level"]]
        return f"levels must be one of {', '.join(ENUMS['log_level'])}, was {bad[0]!r}" if bad else None
    if key == "trader_id":
        if not isinstance(value, str) or not TRADER_ID_RE.match(value):
            return (f"must be NAME-TAG (letters, digits or '_' either side of one '-'), e.g. "
                    f"BACKTESTER-001, was {value!r}")
        return None
    if key == "instance_id" and value is not None:
        try:
            uuid.UUID(str(value), version=4)
        except ValueError:
            return f"must be a UUID (or left out), was {value!r}"
        return None
    if key == "instrument_id" and value is not None:
        return instrument_id_problem(value)
    if key == "instrument_ids" and value is not None:
        if not isinstance(value, list):
            return f"must be a list of instrument ids, was {value!r}"
        return next(filter(None, map(instrument_id_problem, value)), None)
    if key in ("bar_type", "external_bar_type") and value is not None:
        return bar_type_problem(value)
    if key in ("max_order_submit_rate", "max_order_modify_rate"):
        if not isinstance(value, str) or not RATE_RE.match(value) or int(value.split("/")[0]) < 1:
            return f"must be N/HH:MM:SS, e.g. 100/00:00:01 (at most N orders a second), was {value!r}"
        return None
    if key in ("base_currency", "settlement_currency") and value is not None:
        if not isinstance(value, str) or not CURRENCY_RE.match(value):
            return f"must be a currency code such as USD or USDT, was {value!r}"
        return None
    if key == "starting_balances":
        if not isinstance(value, list) or not value:
            return f"must be a list of balances like '1000000 USD', was {value!r}"
        for balance in value:
            if not isinstance(balance, str) or not re.match(r"^\d+(\.\d+)? [A-Z0-9]{2,12}\Z", balance):
                return f"each balance must be AMOUNT CURRENCY, e.g. '1000000 USD', was {balance!r}"
        return None
    if key in ("leverages", "settlement_prices", "max_notional_per_order") and isinstance(value, dict):
        return next(filter(None, map(instrument_id_problem, value)), None)
    return None
