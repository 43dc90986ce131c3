"""The workbench's identifier and enum checks, against NautilusTrader itself as the reference.

Property-based: every id the grammar accepts is one NautilusTrader parses to the same text, and
no id holding markup, quotes or whitespace is accepted. The enum names are NautilusTrader's.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.identifiers import (
    ENUMS,
    bar_type_problem,
    instrument_id_problem,
    value_problems,
)

SYMBOL_CHARS = string.ascii_letters + string.digits + "._/:^+#=-"
VENUE_CHARS = string.ascii_uppercase + string.digits + "_-"
HOSTILE = "<>\"'` \t\n\\&;{}()"


@settings(max_examples=300, deadline=None)
@given(st.text(SYMBOL_CHARS, min_size=1, max_size=64), st.text(VENUE_CHARS, min_size=1, max_size=32))
def test_every_accepted_instrument_id_is_one_nautilus_parses_the_same(symbol, venue):
    from nautilus_trader.model.identifiers import InstrumentId

    text = f"{symbol}.{venue}"
    if instrument_id_problem(text) is None:
        parsed = InstrumentId.from_str(text)
        assert str(parsed) == text
        assert (parsed.symbol.value, parsed.venue.value) == tuple(text.rsplit(".", 1))


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40), st.sampled_from(HOSTILE), st.integers(0, 40))
def test_no_id_with_markup_quotes_or_whitespace_is_accepted(text, bad, at):
    at = min(at, len(text))
    candidate = f"{text[:at]}{bad}{text[at:]}.SIM"
    assert instrument_id_problem(candidate) is not None


@pytest.mark.parametrize("good", ["BTCUSDT-PERP.BINANCE", "EUR/USD.SIM", "6EH4.XCME",
                                  "BRK.B.XNYS", "ES.FUT.GLBX", "AAPL.XNAS", "SPX^W.CBOE"])
def test_the_markets_symbols_are_accepted(good):
    assert instrument_id_problem(good) is None


@pytest.mark.parametrize("bad", ["<script>fetch('/x')</script>.SIM", "../../etc.SIM", "A B.SIM",
                                 "AAPL", ".SIM", "AAPL.", "AAPL.xnas", "a..b.SIM", "x" * 65 + ".SIM",
                                 "ÄPPLE.XETR", None, 42])
def test_ids_outside_the_grammar_are_refused_with_the_value(bad):
    problem = instrument_id_problem(bad)
    assert problem is not None and repr(bad)[:20].strip("'") in problem


@pytest.mark.parametrize(("bar_type", "ok"), [
    ("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL", True),
    ("EUR/USD.SIM-1-MINUTE-MID-INTERNAL", True),
    ("6EH4.XCME-15-SECOND-BID-EXTERNAL", True),
    ("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST", False),
    ("BTCUSDT-PERP.BINANCE-1-FORTNIGHT-LAST-EXTERNAL", False),
    ("<b>.SIM-1-MINUTE-LAST-EXTERNAL", False),
])
def test_bar_types(bar_type, ok):
    assert (bar_type_problem(bar_type) is None) is ok


def test_the_enum_names_are_nautilus_traders():
    from nautilus_trader.common.enums import LogLevel
    from nautilus_trader.model.enums import AccountType, BookType, OmsType, OtoTriggerMode

    reference = {"oms_type": OmsType, "account_type": AccountType, "book_type": BookType,
                 "oto_trigger_mode": OtoTriggerMode, "log_level": LogLevel,
                 "log_level_file": LogLevel}
    assert {k: set(v) for k, v in ENUMS.items()} == {
        k: {m.name for m in e} for k, e in reference.items()}


def test_trader_ids_nautilus_would_panic_on_are_refused_before_it_sees_them():
    # NautilusTrader 1.231's TraderId panics (aborting the process) without a hyphen.
    problems = value_problems({"engine": {"trader_id": "bad"}})
    assert problems == ["engine.trader_id: must be NAME-TAG (letters, digits or '_' either side "
                        "of one '-'), e.g. BACKTESTER-001, was 'bad'"]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(ENUMS)), st.text(max_size=12), min_size=1))
def test_enum_values_are_accepted_exactly_when_they_are_member_names(values):
    from services.identifiers import ENV_REF_RE

    problems = value_problems(values)
    expected = {k for k, v in values.items() if v not in ENUMS[k] and not ENV_REF_RE.match(v)}
    assert {p.split(":", 1)[0] for p in problems} == expected


def test_adapter_sections_are_left_to_nautilus_decode():
    # Binance's account_type is its own enum (USDT_FUTURES): not the core AccountType.
    node = {"data_clients": {"BINANCE": {"config": {"account_type": "USDT_FUTURES"}}},
            "risk_engine": {"max_order_submit_rate": "lots"}}
    assert value_problems(node, "node") == [
        "node.risk_engine.max_order_submit_rate: must be N/HH:MM:SS, e.g. 100/00:00:01 (at most "
        "N orders a second), was 'lots'"]


def test_nesting_deeper_than_any_template_is_refused():
    tree: dict = {}
    node = tree
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    assert any("nests deeper" in p for p in value_problems(tree))
