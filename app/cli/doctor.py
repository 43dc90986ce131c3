"""``nautilus-workbench doctor [--fix]``: find (and repair) what crashes left behind."""

from __future__ import annotations

import os

from app.cli.output import EXIT_FAILED, print_json


def register(commands, common) -> None:
    doctor = commands.add_parser(
        "doctor", parents=[common],
        help="find interrupted catalog changes, runs stuck without a worker and database "
             "mismatches; --fix repairs them")
    doctor.add_argument("--fix", action="store_true",
                        help="repair what was found (needs the catalog.recover action: admin)")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(handler="app.cli.doctor:cmd_doctor", without_workbench=True)


def cmd_doctor(args) -> int:
    """Exit 0 when nothing is (left) wrong, 1 when something needs --fix or could not be fixed."""
    from services.doctor import Doctor
    from services.settings import Settings

    settings = Settings.resolve(getattr(args, "state_dir", None), getattr(args, "catalog", None),
                                getattr(args, "database_url", None))
    doctor = Doctor.for_settings(settings, _principal(args, settings))
    findings = doctor.examine()
    repairs = doctor.repair(findings) if args.fix else []
    if args.json:
        print_json({"findings": [f.to_dict() for f in findings],
                    "repairs": [r.to_dict() for r in repairs]})
    else:
        _print(findings, repairs, args.fix)
    unfixed = [f for f in findings if not f.fixable] + [r for r in repairs if not r.ok]
    if args.fix:
        return EXIT_FAILED if unfixed else 0
    return EXIT_FAILED if findings else 0


def _principal(args, settings):
    """The user of --token / WORKBENCH_TOKEN, else the local operator."""
    token = getattr(args, "token", None) or os.environ.get("WORKBENCH_TOKEN")
    if not token:
        return None
    from services.audit import AuditLog
    from services.db import Database
    from services.identity.authorizer import Authorizer
    from services.identity.principal import Principal
    from services.identity.tokens import TokenService

    database = Database(settings.database_url)
    audit = AuditLog(database)
    return TokenService(database, audit, Authorizer(audit, Principal.local())).authenticate(
        token.strip())


def _print(findings, repairs, fixing: bool) -> None:
    if not findings:
        print("Nothing to repair: no interrupted catalog changes, no runs without a worker, "
              "the database schema is current.")
        return
    print(f"Found {len(findings)} problem(s):")
    for finding in findings:
        print(f"  [{finding.area}] {finding.subject}: {finding.problem}")
        print(f"      {'will' if finding.fixable else 'cannot fix'}: {finding.plan}")
    if not fixing:
        if any(f.fixable for f in findings):
            print("Run 'nautilus-workbench doctor --fix' to do this.")
        return
    for repair in repairs:
        print(f"  {'done' if repair.ok else 'FAILED'}: {repair.finding.subject}: {repair.outcome}")
