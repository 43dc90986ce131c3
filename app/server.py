"""Serve the workbench: the Panel pages and the REST API on one ASGI app (FastAPI + Panel's
native ASGI integration) under uvicorn, behind one access gate.

The services (database, catalog, backtest workers, engine monitor) are built once per server
process and shared; components are built anew for every browser session, as Panel requires.
The server's workbench has no default principal: every service call names the signed-in user.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("nautilus_workbench.app")

MAX_UPLOAD_BYTES = 300 * 1024 * 1024  # a 200 MB file, base64-encoded, plus headroom
COOKIE_SECRET_FILE = "cookie_secret"
API_DESCRIPTION = ("Control NautilusTrader engines and backtests. Every call needs a personal API "
                   "token (Authorization: Bearer) and is authorised and audited like the same "
                   "action in the UI.")


@dataclass(frozen=True)
class ServeOptions:
    port: int = 5006
    address: str = "127.0.0.1"
    show: bool = False
    allow_hosts: list[str] = field(default_factory=list)
    certfile: str | None = None
    keyfile: str | None = None
    insecure_http: bool = False
    admin_password_file: str | None = None
    state_dir: str | None = None
    catalog: str | None = None
    database_url: str | None = None
    max_parallel: int | None = None
    dask_address: str | None = None

    @property
    def tls(self) -> bool:
        return bool(self.certfile)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def cookie_secret(state_dir: Path) -> str:
    """The secret that signs session cookies: made once, kept in the state folder (0600)."""
    path = Path(state_dir) / COOKIE_SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
        return value


def create_app(workbench, options: ServeOptions, monitor=None):
    """The ASGI application: the access gate around FastAPI (API, sign-in) and Panel."""
    import holoviews as hv
    import panel as pn
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool
    from panel.io.fastapi import add_applications
    from starlette.middleware.gzip import GZipMiddleware

    from app.api import OPENAPI_URL, ROUTERS, install_error_handlers
    from app.web.access import AccessGate, ServedAs, SessionCookie
    from app.web.pages import TITLE, Pages
    from app.web.signin import signin_router
    from services.errors import AuthenticationError

    served_as = ServedAs.build(options.address, options.port, options.allow_hosts, options.tls)
    cookie = SessionCookie(cookie_secret(workbench.settings.state_dir), secure=options.tls)
    api = FastAPI(title="Nautilus Workbench API", version="1", openapi_url=OPENAPI_URL,
                  docs_url=None, redoc_url=None, description=API_DESCRIPTION)
    api.state.workbench, api.state.monitor = workbench, monitor
    install_error_handlers(api)
    for router in ROUTERS:
        api.include_router(router)
    api.include_router(signin_router(workbench, cookie))
    # gzip: Panel's and Bokeh's JavaScript is ~5.6 MB uncompressed.
    api.add_middleware(GZipMiddleware, minimum_size=1024)

    pn.extension("tabulator", notifications=True, sizing_mode="stretch_width")
    hv.extension("bokeh", logo=False)
    pages = Pages(workbench, cookie, monitor)
    add_applications({route: pages.guarded(route) for route in pages.routes}, app=api,
                     title=TITLE, websocket_origin=sorted(served_as.hosts))

    async def session_valid(secret: str) -> bool:
        try:
            await run_in_threadpool(workbench.sessions.resolve, secret)
        except AuthenticationError:
            return False
        return True

    return AccessGate(api, served_as, cookie, session_valid)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic's plugin and dialect chatter; each migration step it runs is still logged.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(
        lambda record: record.getMessage().startswith("Running upgrade"))


def _refuse_unsafe_address(options: ServeOptions) -> None:
    if is_loopback(options.address):
        return
    if options.tls:
        if not options.keyfile:
            _exit("--certfile needs --keyfile (the certificate's private key).")
        return
    if not options.insecure_http:
        _exit(f"--address {options.address} makes the workbench reachable from the network: "
              "serve HTTPS with --certfile and --keyfile, or acknowledge plain HTTP with "
              "--insecure-http.")
    print(f"WARNING: serving plain HTTP on {options.address}: the workbench is reachable from "
          "the network and passwords and session cookies cross it unencrypted.",
          file=sys.stderr, flush=True)


def _exit(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def serve(options: ServeOptions) -> None:
    """Open the services and serve the app until interrupted."""
    import uvicorn

    from services import Workbench, WorkbenchError
    from services.engine.monitor import EngineMonitor

    _configure_logging()
    _refuse_unsafe_address(options)
    listener = _listen(options)  # before the slow start-up: a taken port is said at once
    try:
        workbench = Workbench.open(state_dir=options.state_dir, catalog=options.catalog,
                                   database_url=options.database_url,
                                   max_parallel=options.max_parallel, default_principal=None)
        if options.dask_address:
            from services.backtest.runtime import DaskRuntime

            workbench.backtests.attach_runtime(
                DaskRuntime(None if options.dask_address == "local" else options.dask_address))
        password_file = options.admin_password_file or os.environ.get(
            "WORKBENCH_ADMIN_PASSWORD_FILE")
        generated = workbench.users.ensure_first_admin(password_file)
    except WorkbenchError as e:
        _exit(str(e))
    # Leftovers of a crash (half-done catalog changes, runs whose worker is gone), repaired as
    # the OS user who started the server, before anything else runs.
    from services.doctor import recover_at_start
    from services.identity.principal import Principal

    recover_at_start(workbench, Principal.local())
    _attach_docker_runtime(workbench)
    # The installation's one backtest scheduler (standby while another process holds it).
    workbench.backtests.start_scheduler()
    # One engine monitor per server process, shared by every browser session; the live board
    # (what every session's components watch) and the alert rules follow its event hub.
    monitor = EngineMonitor(workbench.engines).start()
    workbench.live.start()
    workbench.alerts.start()
    app = create_app(workbench, options, monitor)
    _warm_up(workbench)
    scheme = "https" if options.tls else "http"
    host = "localhost" if options.address in ("127.0.0.1", "0.0.0.0", "::") else options.address
    log.info("state folder %s, catalog %s", workbench.settings.state_dir,
             workbench.catalog.location)
    if generated:
        print(f"\nFirst start: created the administrator account.\n  username: admin\n"
              f"  password: {generated}\n(shown once; change it with 'nautilus-workbench users "
              "password admin')\n", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=options.address, port=options.port, log_level="warning",
                            ws_max_size=MAX_UPLOAD_BYTES, ssl_certfile=options.certfile,
                            ssl_keyfile=options.keyfile, proxy_headers=False, lifespan="on")
    server = uvicorn.Server(config)
    # Everything loaded so far (NautilusTrader, Panel, Bokeh, the services) lives as long as
    # the server: frozen, the collector no longer walks it. Full collections had paused every
    # thread, the event loop included, for 0.1-0.4 s each, several times a minute under load;
    # with fewer, larger generations they come minutes apart.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    # Worker threads (results loads, sweep rankings, Bokeh's serialisation) hold the
    # interpreter in turns; the event loop waits for its turn at every wake-up. Handing it over
    # every 1 ms instead of 5 ms cut the slowest emergency-stop answer under load from
    # 343-467 ms to 225-276 ms of server time (bench_responsiveness.py).
    sys.setswitchinterval(0.001)
    print(f"Nautilus Workbench listening on {scheme}://{host}:{options.port}/", file=sys.stderr,
          flush=True)
    server.run(sockets=[listener])


def _warm_up(workbench) -> None:
    """Import now what the first pages would: the strategies' NautilusTrader modules (loading
    the templates imports them) and pandas' table styler (Tabulator's). Imported while the first
    user opened Sweeps, they held the interpreter for seconds and every other session's clicks,
    the emergency stop included, waited."""
    import pandas.io.formats.style  # noqa: F401

    workbench.templates.summaries()  # a template that fails to load says so on its page


def _listen(options: ServeOptions) -> socket.socket:
    """The server's socket, bound now (uvicorn serves on it)."""
    family = socket.AF_INET6 if ":" in options.address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((options.address, options.port))
    except OSError as e:
        listener.close()
        _exit(f"cannot listen on {options.address}:{options.port} ({e.strerror}). Is another "
              "server running there? Choose another port with --port.")
    listener.listen(2048)
    return listener


def _attach_docker_runtime(workbench) -> None:
    """Offer the docker runtime for backtests when Docker and the engine image are there; the
    sweep page says why it is missing otherwise."""
    from services import WorkbenchError
    from services.backtest.docker_runtime import DockerRuntime

    try:
        workbench.backtests.attach_runtime(
            DockerRuntime(max_parallel=workbench.backtests.max_parallel))
    except WorkbenchError as e:
        log.info("docker runtime for backtests not attached: %s", e)
