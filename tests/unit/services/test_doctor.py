"""The doctor: what crashes leave behind is listed with the plan first, then repaired on --fix;
databases of another version are refused untouched."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import UTC, datetime

import pytest

from app.cli import main
from services.catalog import CatalogService
from services.catalog.journal import JOURNAL
from services.db import BacktestRunRow, Database
from services.doctor import Doctor
from services.errors import ConfigurationError, PermissionDenied, StorageError
from services.identity.principal import Principal
from services.settings import Settings


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _settings(tmp_path) -> Settings:
    return Settings.resolve(tmp_path / "state", str(tmp_path / "catalog"), None)


def test_a_database_migrated_by_a_newer_version_is_refused_untouched(tmp_path):
    # Arrange
    url = f"sqlite:///{tmp_path / 'wb.db'}"
    Database(url).upgrade()
    with sqlite3.connect(tmp_path / "wb.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099_future'")
    before = _digest(tmp_path / "wb.db")

    # Act
    with pytest.raises(StorageError) as info:
        Database(url).upgrade()

    # Assert
    assert "was migrated by a newer version of the workbench (revision '0099_future'" in str(info.value)
    assert _digest(tmp_path / "wb.db") == before


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url):
    with pytest.raises(ConfigurationError, match="in-memory SQLite database"):
        Database(url)


def _leftovers(settings: Settings) -> None:
    """A killed import (no journal), a killed delete (journal: one rename left), a killed sample
    build and a run recorded Running whose worker is gone."""
    root = settings.catalog
    os.makedirs(f"{root}/data/bar/S", exist_ok=True)
    unstarted = f"{root}/.staging-aaaaaaaaaaaa"
    os.makedirs(f"{unstarted}/data/bar/NEW", exist_ok=True)
    open(f"{unstarted}/data/bar/NEW/x.parquet", "w").write("staged")
    journalled = f"{root}/.staging-bbbbbbbbbbbb"
    os.makedirs(f"{journalled}/trash", exist_ok=True)
    open(f"{root}/data/bar/S/old.parquet", "w").write("old")
    with open(f"{journalled}/{JOURNAL}", "w") as fh:
        json.dump({"version": 1, "operation": "catalog.delete", "target": "S", "state": "forward",
                   "created_at": "2026-01-01T00:00:00+00:00", "pid": 1,
                   "moves": [["data/bar/S/old.parquet", ".staging-bbbbbbbbbbbb/trash/0-old.parquet"]],
                   "prune": ["data/bar/S"]}, fh)
    os.makedirs(f"{os.path.dirname(root)}/.catalog.building-999999999", exist_ok=True)
    database = Database(settings.database_url)
    database.upgrade()
    with database.session() as session:
        session.add(BacktestRunRow(
            run_id="20260101-000000-dead00", status="Running", strategy="ema_cross",
            instrument_id="X.SIM", bar_type="X.SIM-1-MINUTE-LAST-EXTERNAL", spec={},
            run_folder=str(settings.runs_dir / "20260101-000000-dead00"), actor="local:test",
            created_at=datetime.now(UTC), runtime="local", worker_pid=None, paused_seconds=0.0))
    database.dispose()


def test_the_doctor_says_what_it_will_do_and_changes_nothing_until_fix(tmp_path):
    # Arrange
    settings = _settings(tmp_path)
    settings.ensure_state_dir()
    _leftovers(settings)
    def tree():  # (SQLite's -wal/-shm working files come and go with any connection)
        return sorted(str(p) for p in tmp_path.rglob("*") if not str(p).endswith(("-wal", "-shm")))

    catalog_files = tree()

    # Act
    findings = Doctor.for_settings(settings).examine()

    # Assert: four findings, each with its plan; nothing moved.
    plans = {f.area + ":" + os.path.basename(f.subject): f.plan for f in findings}
    assert plans == {
        "catalog:.staging-aaaaaaaaaaaa":
            "remove the staging folder (the change never reached the catalog's data)",
        "catalog:.staging-bbbbbbbbbbbb":
            "complete the interrupted catalog.delete of S (1 renames journalled), then remove "
            "the staging folder",
        "catalog:.catalog.building-999999999":
            "remove the folder (the sample is generated again on the next start)",
        "runs:20260101-000000-dead00":
            "record it Failed (Interrupted), or Completed if its results are all written",
    }
    assert tree() == catalog_files
    assert Doctor.for_settings(settings).backtests.get("20260101-000000-dead00").status == "Running"


def test_fix_repairs_every_leftover_and_audits_it(tmp_path):
    # Arrange
    settings = _settings(tmp_path)
    settings.ensure_state_dir()
    _leftovers(settings)
    doctor = Doctor.for_settings(settings)

    # Act
    repairs = doctor.repair(doctor.examine())

    # Assert: all done; the delete completed (its folder pruned), the run Failed.
    assert all(r.ok for r in repairs), [r.outcome for r in repairs]
    assert sorted(os.listdir(settings.catalog)) == ["data"]
    assert not os.path.exists(f"{settings.catalog}/data/bar/S")
    assert not os.path.exists(tmp_path / ".catalog.building-999999999")
    run = doctor.backtests.get("20260101-000000-dead00")
    assert run.status == "Failed" and run.error.startswith("Interrupted")
    assert Doctor.for_settings(settings).examine() == []
    audit = [e.outcome for e in doctor.authorizer.audit.entries("catalog.recover")]
    assert audit == ["ok"] * 4


def test_recovery_needs_the_catalog_recover_action(tmp_path):
    settings = _settings(tmp_path)
    settings.ensure_state_dir()
    _leftovers(settings)
    doctor = Doctor.for_settings(settings)
    researcher = Principal.user("rita", {"researcher"})
    with pytest.raises(PermissionDenied, match="rita may not recover interrupted catalog writes"):
        doctor.repair(doctor.examine(), principal=researcher)
    assert os.path.exists(f"{settings.catalog}/.staging-bbbbbbbbbbbb")


def test_doctor_command_exit_codes(tmp_path, capsys):
    # Arrange
    settings = _settings(tmp_path)
    settings.ensure_state_dir()
    _leftovers(settings)
    args = ["--state-dir", str(settings.state_dir), "--catalog", settings.catalog]

    # Act / Assert: 1 while something needs --fix, 0 once repaired and clean.
    assert main(["doctor", *args]) == 1
    assert "Run 'nautilus-workbench doctor --fix' to do this." in capsys.readouterr().out
    assert main(["doctor", "--fix", *args]) == 0
    capsys.readouterr()
    assert main(["doctor", "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out) == {"findings": [], "repairs": []}


def test_a_catalog_write_refuses_to_run_over_an_interrupted_change(tmp_path):
    from services.catalog.importer import ImportOptions
    from services.catalog.writer import CatalogWriter
    from services.errors import CatalogError

    settings = _settings(tmp_path)
    settings.ensure_state_dir()
    _leftovers(settings)
    writer = CatalogWriter(CatalogService(settings.catalog))
    with pytest.raises(CatalogError, match="The catalog holds an unfinished change .* run "
                                           "'nautilus-workbench doctor --fix'"):
        writer.import_file(str(tmp_path / "any.csv"), ImportOptions("A.SIM"))


def test_a_change_in_progress_elsewhere_is_not_a_leftover(tmp_path):
    # Arrange: another process holds the catalog's write lock (a long import) and its staging
    # folder exists.
    import subprocess
    import sys

    settings = _settings(tmp_path)
    settings.ensure_state_dir()
    os.makedirs(f"{settings.catalog}/.staging-cccccccccccc", exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"),
        settings.catalog], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"

        # Act
        doctor = Doctor.for_settings(settings)
        findings = doctor.catalog_findings()
        repairs = doctor.repair(findings)
    finally:
        holder.kill()
        holder.wait()

    # Assert: reported as busy, nothing repaired, the live staging folder untouched.
    assert [f.problem for f in findings] == ["another process is changing the catalog right now"]
    assert repairs == [] and os.path.isdir(f"{settings.catalog}/.staging-cccccccccccc")


def test_a_killed_sample_build_is_found_before_the_sample_exists(tmp_path):
    settings = _settings(tmp_path)
    settings.ensure_state_dir()
    os.makedirs(tmp_path / ".catalog.building-999999999")
    findings = Doctor.for_settings(settings).catalog_findings()
    assert [os.path.basename(f.subject) for f in findings] == [".catalog.building-999999999"]
    assert not os.path.exists(settings.catalog)  # examining created no catalog folder


def test_the_server_start_check_repairs_as_the_operator_who_started_it(tmp_path):
    # Arrange: a server's workbench (no default principal: opening repairs nothing itself).
    from services.doctor import recover_at_start
    from services.workbench import Workbench

    settings = _settings(tmp_path)
    settings.ensure_state_dir()
    _leftovers(settings)
    workbench = Workbench.open(state_dir=settings.state_dir, catalog=settings.catalog,
                               default_principal=None)
    assert os.path.exists(f"{settings.catalog}/.staging-bbbbbbbbbbbb")

    # Act
    repairs = recover_at_start(workbench, Principal.local())

    # Assert: the catalog leftovers, the sample build and (no scheduler holds the lease) the
    # run without a worker are repaired.
    assert sorted(os.path.basename(r.finding.subject) for r in repairs if r.ok) == [
        ".catalog.building-999999999", ".staging-aaaaaaaaaaaa", ".staging-bbbbbbbbbbbb",
        "20260101-000000-dead00"]
    assert sorted(os.listdir(settings.catalog)) == ["data"]
    assert workbench.backtests.get("20260101-000000-dead00").status == "Failed"
    workbench.database.dispose()
