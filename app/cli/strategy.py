"""``nautilus-workbench strategy ...``: versions, diffs, promotions, approvals, deployments,
rollbacks, rollout steps and drift.

The commands call the same pipeline services as the Pipeline page and the REST API, so the
same gates, four-eyes rules, roles and typed confirmations apply, and every action is audited.
With ``--json`` each prints one object carrying the ids it concerns (``version_id``,
``request_id``, ``deployment_id``, ``engine_session_id``) and a ``status``.
"""

from __future__ import annotations

from app.cli.output import EXIT_FAILED, check_writable, key_values, print_json, table
from services.errors import WorkbenchError

_H = "app.cli.strategy:"


def register(commands, common) -> None:
    strategy = commands.add_parser("strategy", help="strategy versions, promotions, deployments")
    cmds = strategy.add_subparsers(dest="strategy_command", required=True, metavar="ACTION")

    versions = cmds.add_parser("versions", parents=[common], help="strategy versions, newest first")
    versions.add_argument("--strategy", help="only versions of this strategy template")
    versions.add_argument("--json", action="store_true")
    versions.set_defaults(handler=_H + "cmd_versions")

    version = cmds.add_parser("version", help="create a strategy version")
    version_cmds = version.add_subparsers(dest="version_command", required=True, metavar="ACTION")
    create = version_cmds.add_parser("create", parents=[common],
                                     help="the version of a completed run (or of a template)")
    create.add_argument("--run", metavar="RUN_ID", help="a completed backtest run")
    create.add_argument("--strategy", help="or: a strategy template ...")
    create.add_argument("--bar-type", help="... on this bar type ...")
    create.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="... with these parameters (repeatable)")
    create.add_argument("--venue", action="append", default=[], metavar="KEY=VALUE",
                        help="... and venue settings (repeatable)")
    create.add_argument("--balance", help='... and starting balance, e.g. "1000000 USDT"')
    create.add_argument("--note", default="", help="free text kept with the version")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=_H + "cmd_version_create")

    show = cmds.add_parser("show", parents=[common], help="one version with its evidence")
    show.add_argument("version")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_H + "cmd_show")

    diff = cmds.add_parser("diff", parents=[common], help="what differs between two versions")
    diff.add_argument("left", metavar="V1")
    diff.add_argument("right", metavar="V2")
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(handler=_H + "cmd_diff")

    promote = cmds.add_parser("promote", parents=[common], help="ask to promote a version")
    promote.add_argument("version")
    promote.add_argument("--to", required=True, choices=["paper", "live"], dest="stage")
    promote.add_argument("--risk", action="append", default=[], metavar="NAME=VALUE",
                         help="live risk limit: max_position, max_daily_loss, max_drawdown_pct "
                              "(all three for live), max_notional_per_order (repeatable)")
    promote.add_argument("--note", default="")
    promote.add_argument("--json", action="store_true")
    promote.set_defaults(handler=_H + "cmd_promote")

    promotions = cmds.add_parser("promotions", parents=[common], help="promotion requests")
    promotions.add_argument("--json", action="store_true")
    promotions.set_defaults(handler=_H + "cmd_promotions")

    approve = cmds.add_parser("approve", parents=[common], help="approve a promotion request")
    approve.add_argument("request_id")
    approve.add_argument("--comment", default="")
    approve.add_argument("--json", action="store_true")
    approve.set_defaults(handler=_H + "cmd_decide", decision="approve")

    reject = cmds.add_parser("reject", parents=[common], help="reject a promotion request")
    reject.add_argument("request_id")
    reject.add_argument("--comment", required=True)
    reject.add_argument("--json", action="store_true")
    reject.set_defaults(handler=_H + "cmd_decide", decision="reject")

    deploy = cmds.add_parser("deploy", parents=[common],
                             help="deploy an approved version to a paper or live engine")
    deploy.add_argument("version")
    deploy.add_argument("--stage", required=True, choices=["paper", "live"])
    deploy.add_argument("--confirm", help="live: the engine's name, typed to confirm")
    deploy.add_argument("--replay-start", help="paper: where in the data to start (ISO time)")
    deploy.add_argument("--replay-speed", type=float,
                        help="paper: seconds of data replayed per second")
    deploy.add_argument("--fraction", type=float,
                        help="share of the trade size, a rollout step (default: 1 on paper, "
                             "the first step live)")
    _waiting(deploy)
    deploy.set_defaults(handler=_H + "cmd_deploy")

    for name, text in (("rollback", "stop a deployment and deploy the version approved before"),
                       ("rollout", "step a deployment up to the rollout's next fraction")):
        sub = cmds.add_parser(name, parents=[common], help=text)
        sub.add_argument("deployment_id")
        sub.add_argument("--confirm", help="live: the new engine's name, typed to confirm")
        _waiting(sub)
        sub.set_defaults(handler=_H + "cmd_replace", action=name)

    stop = cmds.add_parser("stop", parents=[common], help="stop a deployment's engine")
    stop.add_argument("deployment_id")
    stop.add_argument("--json", action="store_true")
    stop.set_defaults(handler=_H + "cmd_stop")

    deployments = cmds.add_parser("deployments", parents=[common], help="deployments, newest first")
    deployments.add_argument("--json", action="store_true")
    deployments.set_defaults(handler=_H + "cmd_deployments")

    drift = cmds.add_parser("drift", parents=[common],
                            help="compare a deployment with a backtest of the window it traded")
    drift.add_argument("deployment_id")
    drift.add_argument("-o", "--output", help="also write the HTML drift report")
    drift.add_argument("--timeout", type=float, default=1800.0,
                       help="seconds to wait for the backtest of the window")
    drift.add_argument("--json", action="store_true")
    drift.set_defaults(handler=_H + "cmd_drift")


def _waiting(parser) -> None:
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for Running")
    parser.add_argument("--no-wait", action="store_true", help="return once the engine started")
    parser.add_argument("--json", action="store_true")


def _version_row(v) -> list[str]:
    return [v.short_id, v.strategy, v.bar_type, v.stage, str(len(v.completed_run_ids)),
            f"{v.created_at:%Y-%m-%d %H:%M}", v.created_by, v.note[:40]]


def cmd_versions(wb, args) -> int:
    versions = wb.pipeline.versions.list(strategy=args.strategy)
    if args.json:
        print_json({"status": "ok", "versions": [_version_json(v) for v in versions]})
        return 0
    if not versions:
        print("No versions yet: make one with 'strategy version create --run RUN_ID'.")
        return 0
    print(table([_version_row(v) for v in versions],
                ["VERSION", "STRATEGY", "BAR TYPE", "STAGE", "BACKTESTS", "CREATED (UTC)", "BY",
                 "NOTE"]))
    return 0


def _version_json(v, status: str = "ok") -> dict:
    data = v.to_json()
    data.pop("content")
    return {**data, "status": status}


def cmd_version_create(wb, args) -> int:
    versions = wb.pipeline.versions
    from_template = args.strategy or args.bar_type or args.param or args.venue or args.balance
    if bool(args.run) == bool(from_template):
        raise WorkbenchError("Give either --run RUN_ID, or --strategy and --bar-type (with "
                             "--param/--venue) to make the version of a template.")
    if args.run:
        new = versions.create_from_run(args.run, note=args.note, principal=args.principal)
    else:
        if not (args.strategy and args.bar_type):
            raise WorkbenchError("A version of a template needs --strategy and --bar-type.")
        from app.cli.backtest import _venue_settings
        from services.backtest import BacktestSpec

        spec = BacktestSpec(strategy=args.strategy, bar_type=args.bar_type,
                            parameters=key_values(args.param, "--param"),
                            venue=_venue_settings(args))
        new = versions.create_from_template(spec, note=args.note, principal=args.principal)
    status = "created" if new.created else "exists"
    if args.json:
        print_json(_version_json(new.version, status))
    else:
        v = new.version
        print(f"{'Created' if new.created else 'Already there:'} version {v.short_id} "
              f"({v.version_id}) of {v.strategy} on {v.bar_type}; "
              f"{len(v.completed_run_ids)} completed backtest(s).")
    return 0


def cmd_show(wb, args) -> int:
    v = wb.pipeline.versions.get(args.version)
    if args.json:
        print_json({**v.to_json(), "status": "ok"})
        return 0
    print(f"{v.version_id}  {v.strategy} on {v.bar_type}  [{v.stage}]")
    print(f"  created {v.created_at:%Y-%m-%d %H:%M} UTC by {v.created_by}; NautilusTrader "
          f"{v.nautilus_version}" + (f"; from run {v.source_run_id}" if v.source_run_id else ""))
    if v.note:
        print(f"  note: {v.note}")
    for key, value in v.parameters.items():
        print(f"  {key} = {value}")
    print(f"  backtests: {', '.join(v.completed_run_ids) or 'none'}")
    if v.sweep_ids:
        print(f"  sweeps: {', '.join(v.sweep_ids)}")
    if v.deployment_ids:
        print(f"  deployments: {', '.join(v.deployment_ids)}")
    return 0


def cmd_diff(wb, args) -> int:
    result = wb.pipeline.versions.diff(args.left, args.right)
    if args.json:
        print_json({**result.to_json(), "status": "identical" if not result.differences
                    else "different"})
        return 0
    if not result.differences:
        print(f"Versions {result.left.short_id} and {result.right.short_id} are identical.")
        return 0
    print(table([[d.section, d.field, _short_value(d.left), _short_value(d.right)]
                 for d in result.differences],
                ["SECTION", "FIELD", result.left.short_id, result.right.short_id]))
    return 0


def _short_value(value) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _promotion_lines(p) -> list[str]:
    lines = [(f"{p.request_id}  version {p.version_id[:12]} to {p.stage}: {p.status} "
              f"({len(p.approvals)} of {p.approvals_needed} approvals)")]
    lines += [f"  [{'x' if g.passed else ' '}] {g.name}: {g.detail}" for g in p.gates]
    lines += [f"  {d.decision}d by {d.actor} at {d.ts:%Y-%m-%d %H:%M}"
              + (f": {d.comment}" if d.comment else "") for d in p.decisions]
    return lines


def _promotion_json(p) -> dict:
    return {**p.to_json(), "status": p.status}


def cmd_promote(wb, args) -> int:
    limits = key_values(args.risk, "--risk")
    info = wb.pipeline.promotions.request(args.version, args.stage, risk_limits=limits,
                                          note=args.note, principal=args.principal)
    if args.json:
        print_json(_promotion_json(info))
    else:
        print("\n".join(_promotion_lines(info)))
    return 0


def cmd_promotions(wb, args) -> int:
    requests = wb.pipeline.promotions.list()
    if args.json:
        print_json({"status": "ok", "promotions": [_promotion_json(p) for p in requests]})
        return 0
    if not requests:
        print("No promotion requests yet: 'strategy promote VERSION --to paper'.")
    for p in requests:
        print("\n".join(_promotion_lines(p)))
    return 0


def cmd_decide(wb, args) -> int:
    promotions = wb.pipeline.promotions
    if args.decision == "approve":
        info = promotions.approve(args.request_id, comment=args.comment, principal=args.principal)
    else:
        info = promotions.reject(args.request_id, comment=args.comment, principal=args.principal)
    if args.json:
        print_json(_promotion_json(info))
    else:
        print("\n".join(_promotion_lines(info)))
    return 0


def _deployment_json(d) -> dict:
    return d.to_json()


def _print_deployment(d) -> None:
    print(f"{d.deployment_id}  version {d.version_id[:12]} in {d.stage} at "
          f"{d.capital_fraction:.0%}: {d.state} (engine {d.engine_name}, session "
          f"{d.engine_session_id})")
    if d.pnl is not None:
        print(f"  PnL {d.pnl:,.2f}")
    if d.engine_error:
        print(f"  engine error: {d.engine_error.strip().splitlines()[0]}")
    for warning in d.warnings:
        print(f"  note: {warning}")


def _wait_running(wb, d, args):
    if args.no_wait:
        return d
    wb.engines.wait_for(d.engine_session_id, ("Running", "Error", "Stopped"),
                        timeout=args.timeout)
    return wb.pipeline.deployments.get(d.deployment_id)


def _emit_deployment(d, as_json: bool) -> int:
    if as_json:
        print_json(_deployment_json(d))
    else:
        _print_deployment(d)
    return EXIT_FAILED if d.engine_state == "Error" else 0


def cmd_deploy(wb, args) -> int:
    from services.pipeline import DeployOptions

    options = DeployOptions(fraction=args.fraction, replay_start=args.replay_start,
                            replay_speed=args.replay_speed)
    d = wb.pipeline.deployments.deploy(args.version, args.stage, confirm=args.confirm,
                                       options=options, principal=args.principal)
    return _emit_deployment(_wait_running(wb, d, args), args.json)


def cmd_replace(wb, args) -> int:
    deployments = wb.pipeline.deployments
    act = deployments.rollback if args.action == "rollback" else deployments.step_up
    d = act(args.deployment_id, confirm=args.confirm, principal=args.principal)
    return _emit_deployment(_wait_running(wb, d, args), args.json)


def cmd_stop(wb, args) -> int:
    d = wb.pipeline.deployments.stop(args.deployment_id, principal=args.principal)
    return _emit_deployment(d, args.json)


def cmd_deployments(wb, args) -> int:
    found = wb.pipeline.deployments.list()
    if args.json:
        print_json({"status": "ok", "deployments": [_deployment_json(d) for d in found]})
        return 0
    if not found:
        print("No deployments yet: 'strategy deploy VERSION --stage paper' after an approval.")
        return 0
    print(table([[d.deployment_id, d.version_id[:12], d.stage, f"{d.capital_fraction:.0%}",
                  d.state, d.engine_session_id, "" if d.pnl is None else f"{d.pnl:,.2f}",
                  "" if not d.drift else ("ok" if d.drift.get("within_bounds") else "out"),
                  f"{d.created_at:%Y-%m-%d %H:%M}", d.actor] for d in found],
                ["DEPLOYMENT", "VERSION", "STAGE", "SIZE", "STATUS", "ENGINE", "PNL", "DRIFT",
                 "CREATED (UTC)", "BY"]))
    return 0


def cmd_drift(wb, args) -> int:
    if args.output:
        check_writable(args.output, (".html",))
    report = wb.pipeline.drift.compute(args.deployment_id, principal=args.principal,
                                       timeout=args.timeout)
    if args.output:
        from components.drift_report import write_drift_report

        try:
            write_drift_report(report, args.output)
        except OSError as e:
            raise WorkbenchError(f"Cannot write {args.output}: {e.strerror or e}") from e
    summary = report.summary()
    if args.json:
        print_json({**summary, "status": "within_bounds" if report.within_bounds
                    else "out_of_bounds"})
        return 0
    print(f"Drift of {summary['deployment_id']} against run {summary['run_id']} over "
          f"{summary['window_start']} to {summary['window_end']} ({summary['bars']} bars):")
    corr = summary["correlation"]
    pct = summary["pnl_difference_pct"]
    print(f"  fills: engine {summary['engine_fills']}, backtest {summary['backtest_fills']}, "
          f"matched {summary['matched_fills']}, missed {summary['missed_fills']}, extra "
          f"{summary['extra_fills']}")
    print(f"  correlation of returns {'n/a' if corr is None else f'{corr:.4f}'}; PnL engine "
          f"{summary['engine_pnl']:,.2f}, backtest {summary['backtest_pnl']:,.2f} "
          f"(difference {'n/a' if pct is None else f'{pct:.2f} %'})")
    print(f"  commissions engine {summary['engine_commissions']:,.2f}, backtest "
          f"{summary['backtest_commissions']:,.2f}; slippage {summary['slippage_total']:,.2f}")
    print(f"  {'within' if report.within_bounds else 'OUT OF'} bounds: {report.bounds}")
    for note in report.notes:
        print(f"  note: {note}")
    if args.output:
        print(f"Wrote {args.output}")
    return 0
