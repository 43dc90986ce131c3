"""One colour system for every page and the report: gains and losses, states of runs and
engines, the accent. Components and the report take their colours from here."""

from __future__ import annotations

import html

ACCENT = "#0f6e8c"
GAIN = "#2e9d4f"
LOSS = "#d62728"
RUNNING = "#1f77b4"
WARNING = "#e0a100"
NEUTRAL = "#8a8f98"

# Engine sessions and backtest runs share the meaning of a colour: blue works, green is done
# well or trading, amber waits or winds down, red failed, grey is over.
STATE_COLOURS = {
    # engines
    "Running": GAIN, "Starting": WARNING, "Stopping": WARNING, "Stopped": NEUTRAL,
    "Error": LOSS, "Killed": LOSS,
    # runs
    "Queued": NEUTRAL, "Paused": WARNING, "Completed": GAIN, "Failed": LOSS,
    "Cancelled": NEUTRAL,
}
RUN_STATE_COLOURS = {**STATE_COLOURS, "Running": RUNNING}
TRADING_COLOURS = {"ACTIVE": GAIN, "REDUCING": WARNING, "HALTED": LOSS}


def state_badge(state: str, colours: dict[str, str] = STATE_COLOURS) -> str:
    """A coloured dot and the state's name (HTML)."""
    colour = colours.get(state, NEUTRAL)
    return f'<span style="color:{colour}; font-size:1.1em">&#9679;</span> {html.escape(state)}'


def translucent(colour: str, alpha: float) -> str:
    """``colour`` (#rrggbb) as a CSS rgba() at ``alpha``: a tint that lets the page's
    background, light or dark, show through."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha:g})"


def signed_colour(value: float | None) -> str:
    """The colour of a gain, a loss, or neither."""
    if not isinstance(value, (int, float)) or value != value or value == 0:
        return "inherit"
    return GAIN if value > 0 else LOSS


# Tabulator options for tables whose columns are fitted to the page: long titles wrap onto a
# second line instead of ending in "…".
WRAPPED_HEADERS = {"columnDefaults": {"headerWordWrap": True}}


# Tables read like a terminal's: headings no larger than the cells, tight padding, so the
# columns that matter fit a 1440 px screen.
_TABLE_CSS = (".tabulator .tabulator-tableholder .tabulator-table { font-size: 0.875rem; }"
              ".tabulator .tabulator-header { font-size: 0.875rem; font-weight: 600; }"
              ".tabulator .tabulator-header .tabulator-col .tabulator-col-content"
              " { padding: 4px 6px; }"
              ".tabulator .tabulator-row .tabulator-cell { padding: 4px 6px; }"
              # The pager and the header filters take the page's colours: in the dark theme
              # Tabulator's Bootstrap 5 theme drew a light grey band and white boxes. Its
              # stylesheet comes after this one, hence !important.
              ".tabulator .tabulator-footer { background-color: transparent !important;"
              " color: inherit !important; }"
              ".tabulator .tabulator-header .tabulator-col .tabulator-header-filter input"
              " { background-color: transparent !important; color: inherit !important;"
              " border-color: rgba(128, 128, 128, 0.5) !important; }"
              # Links in cells (a sweep's "open") in the theme's link colour, dark or light.
              ".tabulator a { color: var(--bs-link-color, #0f6e8c); }")


def workbench_design():
    """Panel's Bootstrap design with the workbench's card headings (a collapsible card's title
    starts at the left like every other card's: its header is a button, which centres text) and
    compact tables."""
    from panel.layout import Card
    from panel.theme import Bootstrap, Inherit
    from panel.widgets import Tabulator

    class WorkbenchBootstrap(Bootstrap):
        modifiers = {
            **Bootstrap.modifiers,
            Card: {**Bootstrap.modifiers[Card],
                   "stylesheets": [Inherit, "button.card-header { text-align: left; }"]},
            Tabulator: {**Bootstrap.modifiers[Tabulator],
                        "stylesheets": [Inherit, _TABLE_CSS]},
        }

    return WorkbenchBootstrap
