"""``nautilus-workbench alerts ...``: the alerts raised, and the rules that raise them.

Alerts are raised by the server (its AlertService follows the engines); these commands read
them from the database and change rules (admin or approver), audited.
"""

from __future__ import annotations

from app.cli.output import print_json, table

_H = "app.cli.alerts:"


def register(commands, common) -> None:
    alerts = commands.add_parser("alerts", help="alerts and alert rules")
    cmds = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")

    listing = cmds.add_parser("list", parents=[common], help="alerts, newest first")
    listing.add_argument("--engine", metavar="SESSION_ID", help="only this engine's")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_H + "cmd_list")

    rules = cmds.add_parser("rules", parents=[common], help="the alert rules and channels")
    rules.add_argument("--json", action="store_true")
    rules.set_defaults(handler=_H + "cmd_rules")

    rule = cmds.add_parser("rule", parents=[common], help="change one rule (admin, approver)")
    rule.add_argument("name")
    state = rule.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_true", default=None)
    state.add_argument("--disable", dest="enabled", action="store_false")
    rule.add_argument("--threshold", type=float)
    rule.add_argument("--cooldown", type=int, metavar="SECONDS")
    rule.add_argument("--channels", metavar="webhook,email")
    rule.add_argument("--json", action="store_true")
    rule.set_defaults(handler=_H + "cmd_rule")


def cmd_list(wb, args) -> int:
    alerts = wb.alerts.list(limit=args.limit, session_id=args.engine)
    if args.json:
        print_json([a.to_json() for a in alerts])
        return 0
    if not alerts:
        print("No alerts.")
        return 0
    print(table([[a.id, f"{a.first_at:%Y-%m-%d %H:%M:%S}", a.severity, a.rule, a.engine or "-",
                  a.occurrences, ", ".join(f"{k}: {v}" for k, v in a.deliveries.items()) or "-",
                  a.message] for a in alerts],
                ["ID", "FIRST (UTC)", "SEVERITY", "RULE", "ENGINE", "TIMES", "DELIVERED",
                 "MESSAGE"]))
    return 0


def cmd_rules(wb, args) -> int:
    rules, channels = wb.alerts.rules(), wb.alerts.channels()
    if args.json:
        print_json({"rules": [r.to_json() for r in rules], "channels": channels})
        return 0
    print(table([[r.name, "on" if r.enabled else "off",
                  "-" if r.threshold is None else f"{r.threshold:g} {r.unit}", f"{r.cooldown_s} s",
                  r.severity, ",".join(r.channels), r.title] for r in rules],
                ["RULE", "", "THRESHOLD", "COOL-DOWN", "SEVERITY", "CHANNELS", "WHAT"]))
    print("channels: " + (", ".join(channels) if channels else
                          "none configured (WORKBENCH_ALERT_WEBHOOKS, WORKBENCH_SMTP_HOST and "
                          "WORKBENCH_ALERT_EMAIL_TO)"))
    return 0


def cmd_rule(wb, args) -> int:
    channels = [c.strip() for c in args.channels.split(",") if c.strip()] \
        if args.channels is not None else None
    rule = wb.alerts.set_rule(args.name, enabled=args.enabled, threshold=args.threshold,
                              cooldown_s=args.cooldown, channels=channels,
                              principal=args.principal)
    if args.json:
        print_json(rule.to_json())
    else:
        print(f"{rule.name}: {'on' if rule.enabled else 'off'}, threshold "
              f"{'-' if rule.threshold is None else f'{rule.threshold:g} {rule.unit}'}, "
              f"cool-down {rule.cooldown_s} s, channels {','.join(rule.channels)}")
    return 0
