"""What every command that needs the services shares: opening the workbench and knowing who
acts."""

from __future__ import annotations

import os


def open_workbench(args):
    """The Workbench of the command's --state-dir/--catalog/--database-url (or their defaults)."""
    from services.workbench import Workbench

    local_parallel = getattr(args, "max_parallel", None) if getattr(
        args, "runtime", "local") == "local" else None
    return Workbench.open(
        state_dir=getattr(args, "state_dir", None),
        catalog=getattr(args, "catalog", None),
        database_url=getattr(args, "database_url", None),
        max_parallel=local_parallel if local_parallel and local_parallel > 0 else None,
    )


def acting_principal(wb, args):
    """The user of --token / WORKBENCH_TOKEN, else the local operator (local:<os user>)."""
    token = getattr(args, "token", None) or os.environ.get("WORKBENCH_TOKEN")
    return wb.tokens.authenticate(token.strip()) if token else wb.authorizer.default
