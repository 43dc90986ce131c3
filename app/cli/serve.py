"""``nautilus-workbench serve``."""

from __future__ import annotations

import os


def register(commands, common) -> None:
    serve = commands.add_parser("serve", parents=[common], help="serve the web app")
    serve.add_argument("--port", type=int, default=5006)
    serve.add_argument("--address", default="127.0.0.1",
                       help="interface to listen on (0.0.0.0 to accept remote browsers; needs "
                            "--certfile/--keyfile or --insecure-http)")
    serve.add_argument("--allow-host", action="append", default=None, metavar="HOST[:PORT]",
                       help="another name browsers reach this server by (repeatable; env "
                            "WORKBENCH_ALLOWED_HOSTS, comma-separated)")
    serve.add_argument("--certfile", default=os.environ.get("WORKBENCH_CERTFILE"),
                       help="TLS certificate (PEM) to serve HTTPS (env WORKBENCH_CERTFILE)")
    serve.add_argument("--keyfile", default=os.environ.get("WORKBENCH_KEYFILE"),
                       help="TLS private key (PEM) of --certfile (env WORKBENCH_KEYFILE)")
    serve.add_argument("--insecure-http", action="store_true",
                       default=os.environ.get("WORKBENCH_INSECURE_HTTP", "").lower() in (
                           "1", "true", "yes"),
                       help="serve plain HTTP on a non-loopback address (passwords and session "
                            "cookies then cross the network unencrypted; env "
                            "WORKBENCH_INSECURE_HTTP=1)")
    serve.add_argument("--admin-password-file", metavar="FILE",
                       help="first start: the admin's password (env WORKBENCH_ADMIN_PASSWORD_FILE)"
                            "; else a random one is printed once")
    serve.add_argument("--show", action="store_true", help="open a browser tab")
    serve.add_argument("--max-parallel", type=int, metavar="N",
                       help="backtests at once on local workers (default: the number of cores)")
    serve.add_argument("--dask-address", metavar="ADDR",
                       help="also run backtests on Dask: a scheduler (tcp://HOST:8786) or 'local' "
                            "for a LocalCluster on this machine")
    serve.set_defaults(handler="app.cli.serve:cmd_serve", without_workbench=True)


def cmd_serve(args) -> int:
    from app.server import ServeOptions, serve

    serve(ServeOptions(
        port=args.port, address=args.address, show=args.show,
        allow_hosts=(args.allow_host or []) + [
            h.strip() for h in os.environ.get("WORKBENCH_ALLOWED_HOSTS", "").split(",")
            if h.strip()],
        certfile=args.certfile, keyfile=args.keyfile, insecure_http=args.insecure_http,
        admin_password_file=args.admin_password_file,
        state_dir=getattr(args, "state_dir", None), catalog=getattr(args, "catalog", None),
        database_url=getattr(args, "database_url", None), max_parallel=args.max_parallel,
        dask_address=args.dask_address))
    return 0
