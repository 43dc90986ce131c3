"""What the engine components share: state colours, number formatting, problem lists,
running a service call off the event loop."""

from __future__ import annotations

import pandas as pd
import param

from components.offloop import in_thread
from services import PermissionDenied, ValidationError, WorkbenchError


def money(value) -> str:
    return f"{value:,.2f}" if isinstance(value, (int, float)) else "–"


def number(value) -> str:
    if not isinstance(value, (int, float)):
        return "–"
    return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:g}"


def problem_list(error: ValidationError) -> str:
    lines = []
    for problem in error.problems or [str(error)]:
        field, sep, text = problem.partition(": ")
        lines.append(f"- **{field}**: {text}" if sep else f"- {problem}")
    return "\n".join(lines)


def frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


class Outcome(param.Parameterized):
    """The last outcome a component shows: a message and how to show it."""

    message = param.String(default="", doc="Last outcome shown to the user (markdown).")

    message_kind = param.Selector(default="info", objects=["info", "success", "warning",
                                                           "danger"], doc="How it is shown.")

    busy = param.Boolean(default=False, doc="A call is under way.")

    def say(self, text: str, kind: str = "info") -> None:
        self.param.update(message=text, message_kind=kind)

    async def run(self, call, done: str | None = None, failed: str = "Could not do that"):
        """Run ``call`` off the event loop; show its error (one line) or ``done``. Returns its
        result, or None when it failed."""
        self.busy = True
        try:
            result = await in_thread(call)
        except PermissionDenied as e:
            self.say(f"Refused: {e}", "danger")
            return None
        except WorkbenchError as e:
            self.say(f"{failed}: {e}", "danger")
            return None
        finally:
            self.busy = False
        if done:
            self.say(done, "success")
        return result
