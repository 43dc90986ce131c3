"""``nautilus-workbench templates list``."""

from __future__ import annotations

from app.cli.output import print_json


def register(commands, common) -> None:
    templates = commands.add_parser("templates", help="strategy and engine templates")
    cmds = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")
    listing = cmds.add_parser("list", parents=[common], help="templates and their parameters")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler="app.cli.templates:cmd_list")


def cmd_list(wb, args) -> int:
    summaries = wb.templates.summaries()
    if args.json:
        print_json([s.__dict__ for s in summaries])
        return 1 if any(s.error for s in summaries) else 0
    for s in summaries:
        print(f"{s.name} [{s.kind}] - {s.title}")
        if s.error:
            print(f"  INVALID: {s.error}")
            continue
        for name, p in s.parameters.items():
            bounds = f" [{p.get('min')} .. {p.get('max')}]" if "min" in p else ""
            choices = f" one of {p['choices']}" if "choices" in p else ""
            print(f"  {name}: {p['type']} = {p['default']}{bounds}{choices}  {p['help']}")
    return 1 if any(s.error for s in summaries) else 0
