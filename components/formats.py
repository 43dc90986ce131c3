"""Number formats for tables that format in the browser and for chart axes: the same reading as
``services.formatting`` (fixed decimals with separators, no ``-0.00``, ratios by magnitude), so
a table keeps sorting numerically and shows what the cards and the report show; and how runs
are named wherever a user picks one."""

from __future__ import annotations

import re

from bokeh.models import CustomJSTickFormatter
from panel.io import JSCode

from services import WorkbenchError

# services.formatting._fixed and ratio_decimals, in JavaScript.
_FIXED = ("const fx=(v,d)=>{const t=Number(v).toLocaleString('en-US',{minimumFractionDigits:d,"
          "maximumFractionDigits:d});return /[1-9]/.test(t)?t:t.replace('-','');};")
_RATIO_DECIMALS = "const rd=v=>{const a=Math.abs(v);return a<1?3:a<10?2:a<100?1:0;};"
_MISSING = "if(v===null||v===undefined||v===''||!isFinite(Number(v)))return '';"


def _cell(body: str) -> JSCode:
    return JSCode(f"function(cell){{const v=cell.getValue();{_MISSING}{_FIXED}{_RATIO_DECIMALS}"
                  f"{body}}}")


def fixed_cell(decimals: int, suffix: str = "") -> JSCode:
    """A Tabulator formatter: the number at ``decimals`` decimals (a price or size at its
    instrument's precision, money at 2), then ``suffix``; blank when missing."""
    return _cell(f"return fx(v,{max(int(decimals), 0)})+{suffix!r};")


def ratio_cell() -> JSCode:
    """A Tabulator formatter for ratios (Sharpe, profit factor): about 3 significant digits."""
    return _cell("return fx(v,rd(Number(v)));")


def percent_cell(decimals: int = 2) -> JSCode:
    """A Tabulator formatter for a fraction shown as a percentage: 0.1234 reads 12.34 %."""
    return _cell(f"return fx(Number(v)*100,{max(int(decimals), 0)})+' %';")


def progress_cell() -> JSCode:
    """A Tabulator formatter for a percentage done: a bar with "42.5 %" written across it."""
    return _cell("const p=Math.min(Math.max(Number(v),0),100);"
                 "return `<div style=\"position:relative;height:1.2em;background:#dfe5ea;"
                 "border-radius:2px\"><div style=\"width:${p}%;height:100%;background:#6fb3ca;"
                 "border-radius:2px\"></div><span style=\"position:absolute;inset:0;"
                 "text-align:center;font-size:0.85em;line-height:1.4em;color:#111\">"
                 "${fx(p,1)} %</span></div>`;")


def plain_ticks() -> CustomJSTickFormatter:
    """Axis labels as plain numbers with separators: 100,000 and 0.0015, never 1.000e+5 (what
    Bokeh's default shows from 10^5 on and below 10^-3)."""
    return CustomJSTickFormatter(code=(
        "return tick.toLocaleString('en-US',{maximumFractionDigits:"
        "Math.abs(tick)>=1000?0:8});"))


def run_name(run) -> str:
    """How a user recognises a run: its label, else strategy on instrument over its period."""
    period = (f"{run.start:%Y-%m-%d}–{run.end:%Y-%m-%d}" if run.start and run.end else "")
    return run.label or f"{run.strategy} · {run.instrument_id} · {period}".rstrip(" ·")


def markdown_text(text: str) -> str:
    """``text`` shown as written in a Markdown pane: its punctuation backslash-escaped, so a
    label such as ``*best* [v2]`` is neither emphasis nor a link (raw HTML is off anyway)."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def run_heading(run) -> str:
    """A run's headings on its page (Markdown): its label, as written, over what it ran; what
    it ran alone when it has no label."""
    ran = f"{run.strategy} on {run.bar_type}"
    return f"### {markdown_text(run.label)}\n#### {ran}" if run.label else f"### {ran}"


def run_names(runs) -> list[str]:
    """Names of runs shown side by side (legends, comparison columns): each run's name, with
    its id where two runs would read alike."""
    names = [run_name(r) for r in runs]
    return [f"{name} · {r.run_id}" if names.count(name) > 1 else name
            for name, r in zip(names, runs, strict=True)]


def parameters_text(run) -> str:
    """A run's strategy parameters in one line: ``fast_ema_period=10 slow_ema_period=30``."""
    return " ".join(f"{k}={v}" for k, v in run.parameters.items())


def run_choices(runs) -> dict[str, str]:
    """Runs as a picker offers them: its name and id (names may repeat) -> run id."""
    return {f"{run_name(r)} · {r.run_id}": r.run_id for r in runs}


def strategy_title(templates, name: str) -> str:
    """A strategy as menus show it: its template's title with its name (what other pages and
    the CLI call it); a template that does not load is listed by name and says why when
    chosen."""
    try:
        return f"{templates.strategy(name).title} ({name})"
    except WorkbenchError:
        return name
