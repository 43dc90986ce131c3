"""Standalone HTML reports of one run or a comparison of runs.

One file that opens offline in any browser: Bokeh's JavaScript is inlined (nothing loads from a
CDN), the interactive charts are decimated, and every trade is kept. Tables travel as
gzip-compressed columnar JSON (base64) and are rendered by a small script that sorts, searches
and pages them, so a run with tens of thousands of trades stays within a few megabytes.
"""

from __future__ import annotations

import base64
import gzip
import html
import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from bokeh.embed import components
from bokeh.resources import Resources

from components import charts
from components.formats import run_names
from services import ValidationError, Workbench
from services.backtest.metric_labels import METRIC_GROUPS, best_index, format_statistic
from services.backtest.robustness import run_robustness
from services.formatting import format_number

# Compressed bytes allowed for the fills and orders tables together; every trade is always kept.
SECONDARY_TABLE_BUDGET = 1_000_000
# A table cut to its budget uses at least this share of it (finding the exact longest prefix
# takes a dozen compressions of the whole table), starting from a prefix of this many rows.
_BUDGET_FILL = 0.98
_FIRST_PROBE_ROWS = 2_000
_EPOCH = pd.Timestamp(0, tz="UTC")
_SECOND = pd.Timedelta(seconds=1)

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#0f6e8c;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:1.5em}
main{padding:12px 28px 40px}section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:14px 0;padding:12px 16px}
h2{font-size:1.15em;margin:4px 0 10px}.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:140px}
.card .l{font-size:.8em;opacity:.7}.card .v{font-size:1.2em;font-weight:600}
table{border-collapse:collapse;font-size:.88em}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
th{background:#f3f3f3;cursor:pointer;white-space:nowrap}td:first-child,th:first-child{text-align:left}
.groups{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}.best{background:#d8f3dc;font-weight:600}
.note{color:#8a5300;background:#fff4e0;border-radius:4px;padding:6px 10px}.muted{opacity:.7}
pre{background:#f6f6f6;padding:10px;overflow:auto;max-height:420px;font-size:.82em}
.tbl-controls{display:flex;gap:10px;align-items:center;margin:6px 0}.tbl-controls input{padding:4px 8px}
"""

_TABLE_JS = """
async function wbDecode(b64){const bytes=Uint8Array.from(atob(b64),c=>c.charCodeAt(0));
 const stream=new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
 return JSON.parse(await new Response(stream).text());}
function wbFixed(v,d){const t=Number(v).toLocaleString('en-US',{minimumFractionDigits:d,maximumFractionDigits:d});
 return /[1-9]/.test(t)?t:t.replace('-','');}
function wbDuration(v){const t=Math.max(Math.round(v),0),d=Math.floor(t/86400),h=Math.floor(t%86400/3600),
  m=Math.floor(t%3600/60),s=t%60,p=n=>String(n).padStart(2,'0');
 if(d>=10)return (d+(h>=12?1:0))+'d';if(d)return d+'d'+p(h)+'h';if(h)return h+'h'+p(m)+'m';return m?m+'m'+p(s)+'s':s+'s';}
function wbFmt(v,kind,digits){if(v===null||v===undefined)return '';
 if(kind==='time')return new Date(v*1000).toISOString().replace('T',' ').slice(0,19);
 if(kind==='num')return digits===null||digits===undefined?Number(v).toLocaleString('en-US',{maximumFractionDigits:8}):wbFixed(v,digits);
 if(kind==='duration')return wbDuration(v);
 return String(v);}
const wbEsc=s=>String(s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'})[c]);
async function wbTable(id){const host=document.getElementById(id);
 let t;try{t=await wbDecode(host.dataset.payload);}catch(e){host.textContent='This browser cannot open the table ('+e+').';return;}
 const n=t.rows,cols=t.columns,kinds=t.kinds,digits=t.digits||[],order=[...Array(n).keys()];let page=0,size=25,rows=order,sortCol=null,asc=true;
 const ctl=document.createElement('div');ctl.className='tbl-controls';
 const q=document.createElement('input');q.placeholder='Search';const info=document.createElement('span');
 const prev=document.createElement('button');prev.textContent='‹ Prev';const next=document.createElement('button');next.textContent='Next ›';
 ctl.append(q,prev,next,info);const table=document.createElement('table');host.append(ctl,table);
 function render(){const start=page*size,shown=rows.slice(start,start+size);
  let h='<tr>'+cols.map((c,i)=>'<th data-i="'+i+'">'+wbEsc(c)+(sortCol===i?(asc?' ▲':' ▼'):'')+'</th>').join('')+'</tr>';
  for(const r of shown){h+='<tr>'+cols.map((c,i)=>'<td>'+wbEsc(wbFmt(t.data[i][r],kinds[i],digits[i]))+'</td>').join('')+'</tr>';}
  table.innerHTML=h;info.textContent=(rows.length?start+1:0)+'-'+Math.min(start+size,rows.length)+' of '+rows.length+(rows.length<n?' (filtered from '+n+')':'');
  table.querySelectorAll('th').forEach(th=>th.onclick=()=>{const i=+th.dataset.i;asc=sortCol===i?!asc:true;sortCol=i;
   const col=t.data[i];rows=[...rows].sort((a,b)=>(col[a]>col[b]?1:col[a]<col[b]?-1:0)*(asc?1:-1));page=0;render();});}
 q.oninput=()=>{const s=q.value.toLowerCase();rows=s?order.filter(r=>cols.some((c,i)=>wbFmt(t.data[i][r],kinds[i],digits[i]).toLowerCase().includes(s))):order;page=0;render();};
 prev.onclick=()=>{if(page>0){page--;render();}};next.onclick=()=>{if((page+1)*size<rows.length){page++;render();}};render();}
document.querySelectorAll('.wb-table').forEach(el=>wbTable(el.id));
"""


def _nullable(values: np.ndarray, missing: np.ndarray) -> list:
    """``values`` as a JSON-ready list with ``None`` where ``missing``."""
    out = values.tolist()
    for i in np.flatnonzero(missing):
        out[i] = None
    return out


def _columnar(frame: pd.DataFrame, digits: dict[str, int] | None = None
              ) -> tuple[list, list, list, list]:
    """Column names, kinds, decimals shown (``digits``: per numeric column; None shows up to 8)
    and JSON-ready value lists (times as epoch seconds, durations in seconds, NaN as null).
    Vectorised: a 1M-bar run's tables have tens of thousands of rows."""
    digits = digits or {}
    columns, kinds, shown, data = [], [], [], []
    for name in frame.columns:
        series = frame[name]
        missing = series.isna().to_numpy(dtype=bool)
        if pd.api.types.is_datetime64_any_dtype(series):
            if series.dt.tz is None:  # naive times are taken as UTC
                series = series.dt.tz_localize("UTC")
            seconds = ((series - _EPOCH) / _SECOND).to_numpy(dtype="float64", na_value=np.nan)
            values, kind = _nullable(seconds, missing), "time"
        elif pd.api.types.is_timedelta64_dtype(series):  # seconds: they sort as durations
            seconds = (series / _SECOND).to_numpy(dtype="float64", na_value=np.nan)
            values, kind = _nullable(seconds, missing), "duration"
        elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            numbers = series.astype(float).round(10).to_numpy(dtype="float64", na_value=np.nan)
            values, kind = _nullable(numbers, ~np.isfinite(numbers)), "num"
        else:  # text and flags, as pandas prints them
            values, kind = _nullable(series.astype(str).to_numpy(dtype=object), missing), "text"
        columns.append(name)
        kinds.append(kind)
        shown.append(digits.get(name) if kind == "num" else None)
        data.append(values)
    return columns, kinds, shown, data


def _pack(columns: list, kinds: list, digits: list, data: list, rows: int) -> tuple[str, int]:
    """gzip + base64 of the first ``rows`` rows. Returns (payload, compressed bytes)."""
    raw = json.dumps({"columns": columns, "kinds": kinds, "digits": digits,
                      "data": [v[:rows] for v in data], "rows": rows},
                     separators=(",", ":"), allow_nan=False).encode()
    packed = gzip.compress(raw, compresslevel=6, mtime=0)
    return base64.b64encode(packed).decode(), len(packed)


def _encode_table(frame: pd.DataFrame, digits: dict[str, int] | None = None) -> tuple[str, int]:
    """Columnar JSON (times as epoch seconds), gzip, base64. Returns (payload, compressed bytes)."""
    return _pack(*_columnar(frame, digits), len(frame))


def _table_html(table_id: str, payload: str, note: str = "") -> str:
    note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return f'{note_html}<div class="wb-table" id="{table_id}" data-payload="{payload}"></div>'


def _budgeted_table_html(table_id: str, frame: pd.DataFrame, budget: int,
                         digits: dict[str, int] | None = None) -> str:
    """A table of ``frame``, truncated to ``budget`` compressed bytes (and saying so)."""
    payload, _, note = _fit_budget(frame, budget, digits)
    return _table_html(table_id, payload, note)


def _within_budget(frame: pd.DataFrame, budget: int) -> tuple[pd.DataFrame, str]:
    """The frame, or its first rows that fit ``budget`` compressed bytes, with a note saying so."""
    _, kept, note = _fit_budget(frame, budget)
    return (frame if kept == len(frame) else frame.iloc[:kept]), note


def _fit_budget(frame: pd.DataFrame, budget: int, digits: dict[str, int] | None = None
                ) -> tuple[str, int, str]:
    """The payload of ``frame``, or of a prefix within ``budget`` compressed bytes that fills at
    least ``_BUDGET_FILL`` of it: (payload, rows kept, note). The columns are converted once;
    each probe only serialises and compresses a prefix."""
    columns, kinds, shown, data = _columnar(frame, digits)
    rows = len(frame)
    if rows == 0:
        return _pack(columns, kinds, shown, data, 0)[0], 0, ""
    # Between a prefix that fits (low) and one that does not (high). The first probe is a
    # small prefix (its bytes per row aim the next one), not the whole table: a 1M-bar run's
    # fills are megabytes of JSON, and each compression of them costs a tenth of a second.
    # Rows compress unevenly, so each next guess interpolates from both ends, and every third
    # one halves the interval, which bounds the search by a bisection's probes.
    low, low_size, payload = 0, 0, ""
    high, high_size = rows + 1, None
    guess, target = min(rows, _FIRST_PROBE_ROWS), budget * (1 + _BUDGET_FILL) / 2
    for probe in itertools.count(1):
        packed, size = _pack(columns, kinds, shown, data, guess)
        if size <= budget:
            low, low_size, payload = guess, size, packed
            if guess == rows or size >= budget * _BUDGET_FILL:
                break
        else:
            high, high_size = guess, size
        if high - low <= 1:
            break
        if high_size is None:
            guess = int(low * target / low_size)
        elif probe % 3 == 0:
            guess = (low + high) // 2
        else:
            guess = low + int((target - low_size) * (high - low) / (high_size - low_size))
        guess = min(max(guess, low + 1), high - 1, rows)
    if low == rows:
        return payload, rows, ""
    keep = max(low, 1)  # always show something; the note says how much is missing
    if keep != low:
        payload = _pack(columns, kinds, shown, data, keep)[0]
    return payload, keep, (f"Showing the first {keep:,} of {rows:,} rows to keep this file small; "
                           "export the run's tables as CSV or Parquet for all of them.")


def _trades_table(results) -> pd.DataFrame:
    positions = results.positions
    return pd.DataFrame({
        "#": range(1, len(positions) + 1),
        "entry time": positions["opened"], "exit time": positions["closed"],
        "side": positions["entry"].map({"BUY": "LONG", "SELL": "SHORT"}).fillna(positions["entry"]),
        "quantity": positions["quantity"], "entry price": positions["avg_px_open"],
        "exit price": positions["avg_px_close"], "pnl": positions["realized_pnl"],
        "return % (after commission)": results.net_returns() * 100,
        "duration": positions["closed"] - positions["opened"],
        "commission": positions["commissions"],
    })


def _render_charts(*layouts) -> tuple[str, list[str]]:
    """One script (one Bokeh document) and a div per layout."""
    script, divs = components(layouts)
    return script, list(divs)


def _page(title: str, subtitle: str, body: str, scripts: str) -> str:
    # Raw sources only: Resources.render_js() also emits a script tag Panel adds for its own
    # server (a relative URL that cannot load from a file).
    bokeh_js = "".join(f"<script>{js}</script>"
                       for js in Resources(mode="inline", components=["bokeh"]).js_raw)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="generator" content="Nautilus Workbench"><style>{_CSS}</style>{bokeh_js}</head>
<body><header><h1>{html.escape(title)}</h1><div>{subtitle}</div>
<div class="muted" style="color:#e0eef3">Generated {generated} by Nautilus Workbench</div></header>
<main>{body}</main>{scripts}<script>{_TABLE_JS}</script></body></html>"""


def _cards(statistics: dict, currency: str) -> str:
    keys = ["total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor",
            "num_trades", "benchmark_return", "final_equity"]
    labels = {k: label for group in METRIC_GROUPS.values() for k, (label, _) in group.items()}
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="l">{labels[k]}</div>'
        f'<div class="v">{html.escape(format_statistic(k, statistics.get(k), currency))}</div></div>'
        for k in keys) + "</div>"


def _metric_groups(statistics: dict, currency: str) -> str:
    blocks = []
    for group, metrics in METRIC_GROUPS.items():
        rows = "".join(f"<tr><td>{label}</td><td>{html.escape(format_statistic(k, statistics.get(k), currency))}</td></tr>"
                       for k, (label, _) in metrics.items())
        blocks.append(f"<div><h3>{group}</h3><table>{rows}</table></div>")
    return '<div class="groups">' + "".join(blocks) + "</div>"


def _drawdowns_table(statistics: dict) -> str:
    rows = "".join(
        f"<tr><td>{format_statistic('max_drawdown', p['depth'])}</td>"
        f"<td>{format_statistic('max_drawdown_peak', p['peak'])}</td>"
        f"<td>{format_statistic('max_drawdown_trough', p['trough'])}</td>"
        f"<td>{format_statistic('max_drawdown_recovery', p['recovery'])}</td>"
        f"<td>{format_number(p['days'], 1)}</td></tr>"
        for p in statistics.get("worst_drawdowns", []))
    return ("<table><tr><th>Depth</th><th>Peak</th><th>Trough</th><th>Recovered</th><th>Days</th></tr>"
            f"{rows}</table>") if rows else "<p>No drawdown.</p>"


def _robustness_html(figures) -> str:
    """The readings and the Monte Carlo's distributions table, escaped."""
    parts = []
    mc = figures.monte_carlo
    if mc is not None:
        parts.append(f"<p>{html.escape(mc.reading)}</p>")
        rows = "".join(
            f"<tr><td>{label}</td>" + "".join(
                f"<td>{html.escape(format_statistic(key, v))}</td>"
                for v in (dist.actual, dist.p5, dist.p50, dist.p95)) + "</tr>"
            for label, key, dist in (("Final return", "total_return", mc.final_return),
                                     ("Max drawdown", "max_drawdown", mc.max_drawdown),
                                     ("Longest drawdown (trades)", "num_trades",
                                      mc.longest_drawdown)))
        parts.append("<table><tr><th></th><th>This run</th><th>5 %</th><th>50 %</th>"
                     f"<th>95 %</th></tr>{rows}</table>")
    for figure in (figures.psr, figures.min_track_record):
        if figure is not None:
            parts.append(f"<p>{html.escape(figure.reading)}</p>")
    parts += [f'<p class="muted">{html.escape(note)}</p>' for note in figures.notes]
    return "".join(parts)


def run_report_html(results) -> str:
    """A standalone HTML report of one completed run (``RunResults``)."""
    info, summary, stats = results.info, results.summary, results.statistics
    currency = summary.get("currency", "")
    # The tables compress in threads while the charts are built: zlib releases the GIL.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="report-table") as pool:
        price, size = results.precisions()
        trades = pool.submit(lambda: _table_html("trades", _encode_table(
            _trades_table(results), {"quantity": size, "entry price": price, "exit price": price,
                                     "pnl": 2, "return % (after commission)": 2,
                                     "commission": 2})[0]))
        fills = pool.submit(_budgeted_table_html, "fills", results.fills,
                            SECONDARY_TABLE_BUDGET // 2,
                            {"quantity": size, "price": price, "commission": 2})
        orders = pool.submit(_budgeted_table_html, "orders", results.orders,
                             SECONDARY_TABLE_BUDGET // 2,
                             {"quantity": size, "filled_qty": size, "avg_px": price})
        assessed = pool.submit(run_robustness, results)
        layouts = [charts.time_charts(results), charts.distribution_charts(results)]
        figures = assessed.result()
        if figures.monte_carlo is not None:
            layouts.append(charts.monte_carlo_charts(figures.monte_carlo,
                                                     figures.starting_balance, currency))
        script, (time_div, dist_div, *robust_div) = _render_charts(*layouts)
        tables = {"trades": trades.result(), "fills": fills.result(), "orders": orders.result()}
    params = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                     for k, v in info.parameters.items())
    warnings = "".join(f'<p class="note">{html.escape(w)}</p>' for w in summary.get("warnings", []))
    body = f"""
<section><h2>Summary</h2>{warnings}{_cards(stats, currency)}</section>
<section><h2>Charts</h2><p class="muted">Zoom one time chart and the others follow.</p>{time_div}{dist_div}</section>
<section><h2>Metrics</h2>{_metric_groups(stats, currency)}</section>
<section><h2>Worst drawdowns</h2>{_drawdowns_table(stats)}</section>
<section id="robustness"><h2>Robustness: Monte Carlo of trades and probabilistic Sharpe ratio</h2>
{_robustness_html(figures)}{"".join(robust_div)}</section>
<section><h2>Trades ({len(results.positions):,})</h2>{tables["trades"]}</section>
<section><h2>Fills ({len(results.fills):,})</h2>{tables["fills"]}</section>
<section><h2>Orders ({len(results.orders):,})</h2>{tables["orders"]}</section>
<section><h2>Configuration</h2><table><tr><th>Parameter</th><th>Value</th></tr>{params}</table>
<h3>NautilusTrader BacktestRunConfig</h3><pre>{html.escape(json.dumps(results.config, indent=2))}</pre></section>
"""
    subtitle = html.escape(
        f"{info.strategy} on {info.bar_type} · {info.start:%Y-%m-%d %H:%M} to {info.end:%Y-%m-%d %H:%M} UTC"
        f" · run {info.run_id}")
    return _page(f"Backtest report: {info.label or info.strategy}", subtitle, body, script)


def comparison_report_html(all_results: list) -> str:
    """A standalone HTML report comparing completed runs side by side."""
    script, (div,) = _render_charts(charts.comparison_charts(all_results))
    currencies = {r.summary.get("currency") for r in all_results}
    note = ""
    if len(currencies) > 1:
        note = ('<p class="note">These runs are in different currencies ('
                + ", ".join(sorted(c or "?" for c in currencies))
                + "): money amounts are not comparable; compare returns and ratios.</p>")
    body = (f"<section><h2>Metrics</h2>{note}{metrics_comparison_html(all_results)}</section>"
            f"<section><h2>Equity and drawdown</h2>{div}</section>"
            f"<section><h2>Parameters</h2>{parameter_diff_html(all_results)}</section>")
    subtitle = html.escape(", ".join(f"{name} ({r.info.run_id})" for name, r in
                                     zip(run_names([r.info for r in all_results]), all_results,
                                         strict=True)))
    return _page(f"Comparison of {len(all_results)} backtests", subtitle, body, script)


def _run_headers(all_results: list) -> str:
    """Column headings naming the runs as a user knows them; the run id on hover."""
    infos = [r.info for r in all_results]
    return "".join(f'<th title="{html.escape(info.run_id)}">{html.escape(name)}</th>'
                   for name, info in zip(run_names(infos), infos, strict=True))


def metrics_comparison_frame(all_results: list) -> pd.DataFrame:
    """One row per metric, one column per run, with the raw values."""
    rows = []
    for group, metrics in METRIC_GROUPS.items():
        for key, (label, _) in metrics.items():
            rows.append({"group": group, "key": key, "metric": label,
                         **{r.info.run_id: r.statistics.get(key) for r in all_results}})
    return pd.DataFrame(rows)


def metrics_comparison_html(all_results: list) -> str:
    frame = metrics_comparison_frame(all_results)
    run_ids = [r.info.run_id for r in all_results]
    currencies = {r.info.run_id: r.summary.get("currency", "") for r in all_results}
    head = f"<tr><th>Metric</th>{_run_headers(all_results)}</tr>"
    body = []
    kinds = {k: kind for group in METRIC_GROUPS.values() for k, (_, kind) in group.items()}
    mixed_currencies = len(set(currencies.values())) > 1
    for _, row in frame.iterrows():
        values = [row[i] for i in run_ids]
        # Money amounts in different currencies cannot be ranked against each other.
        comparable = not (mixed_currencies and kinds.get(row["key"]) == "money")
        texts = [format_statistic(row["key"], v, currencies[run_ids[j]])
                 for j, v in enumerate(values)]
        best = best_index(row["key"], values) if comparable else None
        if best is not None and texts.count(texts[best]) > 1:
            best = None  # "0.00 %" beside "0.00 %": a winner the reader cannot see is none
        cells = "".join(f'<td class="{"best" if j == best else ""}">{html.escape(text)}</td>'
                        for j, text in enumerate(texts))
        body.append(f"<tr><td>{html.escape(row['group'])}: {html.escape(row['metric'])}</td>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def parameter_diff_frame(all_results: list) -> pd.DataFrame:
    """Strategy, data and parameters of each run; ``differs`` marks rows that are not all equal."""
    rows = {"strategy": [r.info.strategy for r in all_results],
            "bar_type": [r.info.bar_type for r in all_results],
            "start": [f"{r.info.start:%Y-%m-%d %H:%M}" for r in all_results],
            "end": [f"{r.info.end:%Y-%m-%d %H:%M}" for r in all_results]}
    # Effective values (template defaults included), from the config each run really used.
    effective = [_strategy_config(r) for r in all_results]
    for key in sorted({k for config in effective for k in config} - {"instrument_id", "bar_type"}):
        rows[key] = [str(config.get(key, "—")) for config in effective]
    for key in sorted({k for r in all_results for k in (r.spec.get("venue") or {})}):
        values = [(r.spec.get("venue") or {}).get(key) for r in all_results]
        rows[f"venue.{key}"] = ["—" if v is None else str(v) for v in values]
    frame = pd.DataFrame(rows, index=[r.info.run_id for r in all_results]).T
    frame["differs"] = frame.nunique(axis=1) > 1
    return frame


def _strategy_config(results) -> dict:
    try:
        return dict(results.config["engine"]["strategies"][0]["config"])
    except (KeyError, IndexError, TypeError):
        return dict(results.info.parameters)


def parameter_diff_html(all_results: list) -> str:
    frame = parameter_diff_frame(all_results)
    run_ids = [r.info.run_id for r in all_results]
    head = f"<tr><th>Setting</th>{_run_headers(all_results)}</tr>"
    rows = "".join(
        f'<tr class="{"best" if frame.loc[key, "differs"] else ""}"><td>{html.escape(key)}</td>'
        + "".join(f"<td>{html.escape(str(frame.loc[key, i]))}</td>" for i in run_ids) + "</tr>"
        for key in frame.index)
    return f'<p class="muted">Highlighted rows differ between runs.</p><table>{head}{rows}</table>'


def export_run_report(workbench: Workbench, run_id: str, path: str | Path) -> Path:
    """Write the HTML report of ``run_id`` to ``path`` (notebook and CLI entry point)."""
    path = Path(path)
    path.write_text(run_report_html(workbench.backtests.results(run_id)), encoding="utf-8")
    return path


def export_comparison_report(workbench: Workbench, run_ids: list[str], path: str | Path) -> Path:
    """Write the HTML comparison of ``run_ids`` to ``path``."""
    if len(run_ids) < 2:
        raise ValidationError("A comparison needs at least two runs",
                              [f"runs: got {len(run_ids)} ({', '.join(run_ids) or 'none'})"])
    path = Path(path)
    results = [workbench.backtests.results(r) for r in run_ids]
    path.write_text(comparison_report_html(results), encoding="utf-8")
    return path
