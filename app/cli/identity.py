"""``nautilus-workbench users ...`` and ``tokens ...``: accounts, roles and API tokens."""

from __future__ import annotations

import sys

from app.cli.output import print_json, table
from services.errors import WorkbenchError

_H = "app.cli.identity:"


def register(commands, common) -> None:
    users = commands.add_parser("users", help="workbench users and their roles")
    cmds = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    add = cmds.add_parser("add", parents=[common], help="create a user")
    add.add_argument("name")
    add.add_argument("--role", action="append", required=True, metavar="ROLE",
                     help="viewer, researcher, trader, live_trader, approver or admin "
                          "(repeatable)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (default: a random one is "
                          "printed once)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(handler=_H + "cmd_users_add")

    listing = cmds.add_parser("list", parents=[common], help="every user")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_H + "cmd_users_list")

    for verb, text in (("disable", "disable a user: sign-in, sessions and tokens stop working"),
                       ("enable", "enable a disabled user again")):
        sub = cmds.add_parser(verb, parents=[common], help=text)
        sub.add_argument("name")
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(handler=_H + "cmd_users_disable", disabled=verb == "disable")

    roles = cmds.add_parser("set-roles", parents=[common], help="replace a user's roles")
    roles.add_argument("name")
    roles.add_argument("--role", action="append", required=True, metavar="ROLE")
    roles.add_argument("--json", action="store_true")
    roles.set_defaults(handler=_H + "cmd_users_roles")

    password = cmds.add_parser("password", parents=[common],
                               help="set a user's password, read from standard input")
    password.add_argument("name")
    password.set_defaults(handler=_H + "cmd_users_password")

    matrix = cmds.add_parser("roles", help="what each role may do")
    matrix.set_defaults(handler=_H + "cmd_roles", without_workbench=True)

    tokens = commands.add_parser("tokens", help="personal API tokens")
    tcmds = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = tcmds.add_parser("create", parents=[common],
                              help="a new token for user NAME, printed once")
    create.add_argument("name", metavar="NAME", help="the user the token acts as")
    create.add_argument("--label", default="cli", help="what the token is for (default: cli)")
    create.add_argument("--expires-days", type=float, metavar="N",
                        help="valid for N days (default: until revoked)")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=_H + "cmd_tokens_create")

    tlist = tcmds.add_parser("list", parents=[common],
                             help="your tokens (every user's as the local operator or an admin)")
    tlist.add_argument("--json", action="store_true")
    tlist.set_defaults(handler=_H + "cmd_tokens_list")

    revoke = tcmds.add_parser("revoke", parents=[common], help="revoke a token: it stops at once")
    revoke.add_argument("token_id", metavar="ID")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(handler=_H + "cmd_tokens_revoke")


def _read_password() -> str:
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise WorkbenchError("The two passwords differ; nothing was changed.")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_users_add(wb, args) -> int:
    password = _read_password() if args.password_stdin else None
    user, generated = wb.users.add(args.name, args.role, password, principal=args.principal)
    if args.json:
        print_json({**user.to_json(), **({"password": generated} if generated else {})})
        return 0
    print(f"Created user {user.username} with roles {', '.join(user.roles)}.")
    if generated:
        print(f"Password (shown once): {generated}")
    return 0


def cmd_users_list(wb, args) -> int:
    users = wb.users.list()
    if args.json:
        print_json([u.to_json() for u in users])
        return 0
    print(table([[u.username, ", ".join(u.roles), "disabled" if u.disabled else "active",
                  f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"]
                 for u in users], ["USER", "ROLES", "STATE", "LAST SIGN-IN (UTC)"]))
    return 0


def cmd_users_disable(wb, args) -> int:
    user = wb.users.set_disabled(args.name, args.disabled, principal=args.principal)
    if args.json:
        print_json(user.to_json())
    else:
        print(f"User {user.username} is {'disabled' if user.disabled else 'enabled'}.")
    return 0


def cmd_users_roles(wb, args) -> int:
    user = wb.users.set_roles(args.name, args.role, principal=args.principal)
    if args.json:
        print_json(user.to_json())
    else:
        print(f"User {user.username} now has roles {', '.join(user.roles)}.")
    return 0


def cmd_users_password(wb, args) -> int:
    wb.users.set_password(args.name, _read_password(), principal=args.principal)
    print(f"Password of {args.name} changed.")
    return 0


def cmd_roles(args) -> int:
    from services.identity.roles import ROLE_DESCRIPTIONS, ROLES, role_matrix

    for role in ROLES:
        print(f"{role:<12} {ROLE_DESCRIPTIONS[role]}")
    print()
    rows = [[action, *(cells[r] or "-" for r in ROLES)] for action, _, cells in role_matrix()]
    print(table(rows, ["ACTION", *[r.upper() for r in ROLES]]))
    return 0


def cmd_tokens_create(wb, args) -> int:
    token, secret = wb.tokens.create(args.label, expires_days=args.expires_days,
                                     username=args.name, principal=args.principal)
    if args.json:
        print_json({**token.to_json(), "token": secret})
        return 0
    print(f"Token {token.token_id} for {token.username} ({token.name})"
          + (f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "")
          + ". It is shown this once:")
    print(secret)
    return 0


def cmd_tokens_list(wb, args) -> int:
    everyone = not args.principal.is_user
    tokens = wb.tokens.list(all_users=everyone, principal=args.principal)
    if args.json:
        print_json([t.to_json() for t in tokens])
        return 0
    print(table([[t.token_id, t.username, t.name, t.state,
                  f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "-",
                  f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"]
                 for t in tokens], ["ID", "USER", "NAME", "STATE", "EXPIRES", "LAST USED (UTC)"]))
    return 0


def cmd_tokens_revoke(wb, args) -> int:
    token = wb.tokens.revoke(args.token_id, principal=args.principal)
    if args.json:
        print_json(token.to_json())
    else:
        print(f"Token {token.token_id} of {token.username} is revoked.")
    return 0
