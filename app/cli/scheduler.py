"""``nautilus-workbench scheduler``: run the installation's backtest scheduler without a server."""

from __future__ import annotations

import signal
import sys
import threading


def register(commands, common) -> None:
    scheduler = commands.add_parser(
        "scheduler", parents=[common],
        help="run queued backtests (the server does this; use it when no server runs)")
    scheduler.add_argument("--max-parallel", type=int, metavar="N",
                           help="backtests at once on local workers (default: the cores)")
    scheduler.add_argument("--dask-address", metavar="ADDR",
                           help="also run on Dask: a scheduler (tcp://HOST:8786) or 'local'")
    scheduler.set_defaults(handler="app.cli.scheduler:cmd_scheduler")


def cmd_scheduler(wb, args) -> int:
    from services.backtest.scheduler import live_lease

    if args.dask_address:
        from services.backtest.runtime import DaskRuntime

        wb.backtests.attach_runtime(
            DaskRuntime(None if args.dask_address == "local" else args.dask_address))
    running = live_lease(wb.backtests.repository)
    if running is not None:
        print(f"Another scheduler runs this installation's backtests: {running.describe()}. "
              "This one waits until it stops.", file=sys.stderr)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    scheduler = wb.backtests.start_scheduler()
    print(f"Scheduler started (runtimes: {', '.join(wb.backtests.runtime_names)}); Ctrl-C stops "
          "it (running workers go on and are adopted by the next scheduler).", file=sys.stderr)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    scheduler.stop()
    return 0
