"""``nautilus-workbench``: serve the app; catalog, backtests, engines, users and tokens.

Scripts depend on these command names and on the JSON they print; add, never rename.
Every WorkbenchError ends as one line on stderr (and a JSON object with ``--json``) and exit
code 2, never as a traceback. Each command group lives in its own module and imports what it
needs inside its handlers, so ``--help`` and the quick commands (``engine emergency-stop``,
``engine list``, ``backtest list``) start without NautilusTrader or pandas.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from app.cli.output import EXIT_USAGE, print_json
from services.errors import WorkbenchError

# Command groups, in the order --help lists them.
GROUPS = ("app.cli.serve", "app.cli.catalog", "app.cli.templates", "app.cli.backtest",
          "app.cli.report", "app.cli.scheduler", "app.cli.engine", "app.cli.strategy",
          "app.cli.alerts", "app.cli.identity", "app.cli.doctor")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=argparse.SUPPRESS,
                        help="state folder (database, run folders); env WORKBENCH_STATE_DIR")
    parser.add_argument("--catalog", default=argparse.SUPPRESS,
                        help="ParquetDataCatalog path or fsspec URL; env WORKBENCH_CATALOG "
                             "(default: a generated synthetic sample under data/)")
    parser.add_argument("--database-url", default=argparse.SUPPRESS,
                        help="SQLAlchemy database URL; env DATABASE_URL (default: SQLite in the "
                             "state folder)")
    parser.add_argument("--token", default=argparse.SUPPRESS,
                        help="act as the user of this API token; env WORKBENCH_TOKEN (default: "
                             "the local operator, audited as local:<os user>)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _common(common)
    parser = argparse.ArgumentParser(prog="nautilus-workbench",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in GROUPS:
        importlib.import_module(name).register(commands, common)
    return parser


def _handler(reference: str):
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


# Set by a command that asks to end without the interpreter's teardown (see run()).
_fast_exit = False


def main(argv: list[str] | None = None) -> int:
    global _fast_exit
    args = build_parser().parse_args(argv)
    _fast_exit = getattr(args, "fast_exit", False)
    wants_json = getattr(args, "json", False)
    try:
        handler = _handler(args.handler)
        if getattr(args, "end", None) is not None:
            # Every --end closes a data window and reads as the pages read End: a day alone is
            # that whole day.
            from services.timestamps import window_texts

            args.start, args.end = window_texts(getattr(args, "start", None), args.end,
                                                ("--start", "--end"))
        if getattr(args, "without_workbench", False):
            return handler(args)
        from app.cli.context import acting_principal, open_workbench

        wb = open_workbench(args)
        args.principal = acting_principal(wb, args)
        return handler(wb, args)
    except WorkbenchError as e:
        problems = getattr(e, "problems", [])
        if wants_json:
            print_json({"error": str(e), "problems": problems})
        # One line, whatever the error: a summary with its problems joined.
        line = f"{e.summary}: {'; '.join(problems)}" if problems else str(e)
        print(f"error: {' '.join(line.split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not an error of ours.
        sys.stderr.close()
        return 0


def run() -> None:
    """The ``nautilus-workbench`` console script: ``main()``, then end the process.

    ``engine emergency-stop`` has a 1 s budget from process start to exit; the interpreter's
    teardown (collecting the modules SQLAlchemy and docker-py loaded) takes ~0.2 s of it, after
    everything is written and committed. Such a command ends with ``os._exit`` once its output
    is flushed; every other command exits normally."""
    code = main()
    if _fast_exit:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


__all__ = ["build_parser", "main", "run"]
