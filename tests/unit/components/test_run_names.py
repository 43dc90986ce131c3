"""How runs are named where a user sees several at once (components/formats.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from components.formats import markdown_text, run_heading, run_names


def _run(run_id: str, label: str = "", strategy: str = "ema_cross",
         instrument_id: str = "AAPL.XNAS") -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, label=label, strategy=strategy,
                           instrument_id=instrument_id,
                           start=pd.Timestamp("2024-01-01", tz="UTC"),
                           end=pd.Timestamp("2024-01-31", tz="UTC"))


def test_runs_are_named_by_label_else_strategy_instrument_and_period():
    assert run_names([_run("r1", "BTC Jan-22 EMA 10/20"), _run("r2")]) == [
        "BTC Jan-22 EMA 10/20", "ema_cross · AAPL.XNAS · 2024-01-01–2024-01-31"]


def test_runs_that_would_read_alike_carry_their_ids():
    assert run_names([_run("r1", "EMA"), _run("r2", "EMA"), _run("r3", "other")]) == [
        "EMA · r1", "EMA · r2", "other"]


def test_a_run_page_is_headed_by_its_label_and_what_it_ran():
    run = SimpleNamespace(label="BTC Jan EMA 10/20", strategy="ema_cross",
                          bar_type="BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    assert run_heading(run) == ("### BTC Jan EMA 10\\/20\n"
                                "#### ema_cross on BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    run.label = ""
    assert run_heading(run) == "### ema_cross on BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"


def test_a_label_reads_as_written_in_markdown_not_as_markup():
    import panel as pn

    import components  # noqa: F401 - sets the Markdown renderer the pages use

    from html import unescape

    rendered = pn.pane.Markdown(markdown_text("*best* [v2](x) `a` # _b_ <i>c</i>"))
    html = unescape(rendered.get_root().text)  # the model carries the HTML escaped once
    assert "<em>" not in html and "<a " not in html and "<code>" not in html
    assert "*best* [v2](x) `a` # _b_ &lt;i&gt;c&lt;/i&gt;" in html
