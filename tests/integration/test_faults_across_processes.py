"""Faults that involve more than one process or the operating system's permissions: two starts
racing on a fresh checkout, catalog folders the workbench may not read, a database locked when
a run ends."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from services.catalog import CatalogService
from services.errors import CatalogError

pytestmark = pytest.mark.integration


def test_two_processes_creating_the_sample_catalog_at_once_both_get_it(tmp_path):
    # Arrange: two fresh processes generate the same (missing) sample catalog.
    target = tmp_path / "data" / "sample_catalog"
    code = ("import sys; from services.catalog.sample import generate_sample_catalog; "
            "print(generate_sample_catalog(sys.argv[1]))")

    # Act
    children = [subprocess.Popen([sys.executable, "-c", code, str(target)], text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)]
    results = [child.communicate(timeout=300) for child in children]

    # Assert: both succeed with the one catalog; no building folder is left.
    assert [c.returncode for c in children] == [0, 0], [err for _, err in results]
    assert {out.strip() for out, _ in results} == {str(target)}
    series = CatalogService(str(target)).series()
    assert len(series) == 3 and 527_040 in [s.rows for s in series]  # BTC: every minute of 2024
    assert [p.name for p in target.parent.iterdir()] == ["sample_catalog"]


def _as_nobody(function) -> tuple[int, str]:
    """Run ``function()`` in a forked child as uid/gid 65534 (root reads everything, so the
    permission check needs another user); returns (exit code, what it wrote)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            message = function()
            os.write(write, message.encode())
            os._exit(0)
        except BaseException as e:
            os.write(write, f"{type(e).__name__}: {e}".encode())
            os._exit(1)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    text = os.read(read, 65536).decode()
    os.close(read)
    return os.WEXITSTATUS(status), text


@pytest.fixture
def open_folder():
    """A folder every user may enter (pytest's own temporary folders are root's alone)."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="wb-perm-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    for dirpath, dirs, _files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(dirpath, name), 0o755)
    shutil.rmtree(path)


@pytest.mark.parametrize("locked", ["series folder", "catalog root"])
def test_an_unreadable_catalog_folder_is_one_line_naming_it(open_folder, write_bars_catalog,
                                                            locked):
    # Arrange: a catalog whose series folder (or the catalog itself) its reader may not open.
    if os.geteuid() != 0:
        from tests.conftest import skip_or_fail

        skip_or_fail("acting as another user needs root (as on this machine and CI)")
    root = write_bars_catalog(open_folder / "catalog")
    folder = next((root / "data" / "bar").iterdir()) if locked == "series folder" else root
    os.chmod(folder, 0o000)

    def list_series() -> str:
        try:
            CatalogService(str(root)).series()
        except CatalogError as e:
            return f"CatalogError: {e}"
        return "no error"

    # Act
    code, text = _as_nobody(list_series)
    os.chmod(folder, 0o755)

    # Assert
    assert code == 0, text
    assert text.startswith("CatalogError: Cannot read ") and "permission denied" in text
    assert str(folder if locked == "series folder" else root) in text and "\n" not in text


@pytest.fixture
def write_bars_catalog():
    def write(root):
        from services.catalog.importer import ImportOptions
        from services.catalog.writer import CatalogWriter

        csv = root.parent / "bars.csv"
        csv.write_text("timestamp,open,high,low,close\n" + "".join(
            f"2024-01-02 00:{m:02d}:00,1,2,0.5,1.5\n" for m in range(1, 30)))
        CatalogWriter(CatalogService(str(root))).import_file(
            str(csv), ImportOptions("BTCUSDT-PERP.BINANCE"))
        os.chmod(root, 0o755)
        for dirpath, dirs, files in os.walk(root):
            for name in dirs:
                os.chmod(os.path.join(dirpath, name), 0o755)
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o644)
        return root

    return write


def test_a_database_locked_when_a_run_ends_never_leaves_the_run_running(workbench):
    # Arrange: a writer holds the database when the run's worker finishes, for longer than
    # SQLite's busy timeout (10 s), so the first attempts to record the end fail (on
    # PostgreSQL the runs table is locked: the end waits for it).
    import sqlalchemy as sa

    from services.backtest.spec import BacktestSpec

    bar_type = workbench.catalog.backtestable()[0].bar_type
    run_id = workbench.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=bar_type, start="2024-01-02", end="2024-01-03"))
    held = threading.Event()

    def hold_lock_while_the_worker_ends():
        folder = workbench.settings.runs_dir / run_id
        while not (folder / "results" / "summary.json").exists():
            time.sleep(0.05)
        if workbench.database.is_sqlite:
            locker = sqlite3.connect(workbench.settings.state_dir / "workbench.db", timeout=60,
                                     isolation_level=None, check_same_thread=False)
            locker.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(25)
            locker.execute("COMMIT")
            return
        engine = sa.create_engine(workbench.database.url)
        with engine.begin() as connection:
            connection.execute(sa.text("LOCK TABLE backtest_runs IN EXCLUSIVE MODE"))
            held.set()
            time.sleep(25)
        engine.dispose()

    holder = threading.Thread(target=hold_lock_while_the_worker_ends, daemon=True)
    holder.start()

    # Act: the wait ends (the watcher retries until the lock is gone) instead of hanging.
    info = workbench.backtests.wait(run_id, timeout=240)
    holder.join(60)

    # Assert: the lock was really held at the end, and the run's end was recorded.
    assert held.is_set()
    assert info.status == "Completed", info.error


def test_processes_migrating_a_fresh_database_at_once_all_succeed(tmp_path, database_url):
    # Arrange: three CLI commands on a fresh state folder, released at the same instant after
    # their imports (each then migrates the new database).
    start_at = time.time() + 20
    code = ("import sys, time; from app.cli import main; import services.workbench; "
            "t = float(sys.argv[1]); time.sleep(max(0.0, t - time.time())); "
            "sys.exit(main(sys.argv[2:]))")
    cli = [sys.executable, "-c", code, str(start_at), "backtest", "list",
           "--state-dir", str(tmp_path / "state"), "--catalog", str(tmp_path / "catalog")]

    # Act
    children = [subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
    outcomes = [(c.wait(timeout=120), c.stderr.read()) for c in children]

    # Assert: every one migrated or waited for the one migrating; none saw "already exists"
    # (on PostgreSQL too: DATABASE_URL names a fresh database there).
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    from services.db import Database

    database = Database(database_url or f"sqlite:///{tmp_path / 'state' / 'workbench.db'}")
    assert database.migration_status().up_to_date
    database.dispose()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: a real full disk (root mounts it, as on this machine and CI)."""
    from tests.conftest import skip_or_fail

    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_an_export_onto_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, tiny_disk,
                                                                    write_bars_catalog):
    from services.catalog.writer import CatalogWriter

    # Arrange: a series whose CSV (~2.5 MB) cannot fit on the 256 KiB disk.
    csv = tmp_path / "big.csv"
    index = __import__("pandas").date_range("2024-01-02 00:01", periods=40_000, freq="1min")
    csv.write_text("timestamp,open,high,low,close\n" + "".join(
        f"{t:%Y-%m-%d %H:%M:%S},1.5,2.25,0.75,1.75\n" for t in index))
    catalog = CatalogService(str(tmp_path / "catalog"))
    writer = CatalogWriter(catalog)
    from services.catalog.importer import ImportOptions

    writer.import_file(str(csv), ImportOptions("BTCUSDT-PERP.BINANCE"))

    # Act
    with pytest.raises(CatalogError) as info:
        writer.export("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL", str(tiny_disk / "out.csv"))

    # Assert: the disk is named as full, and nothing (not even the partial file) is left.
    assert str(info.value).startswith("The disk is full: cannot write")
    assert os.listdir(tiny_disk) == []


def test_an_import_onto_a_full_disk_leaves_the_catalog_as_it_was(tmp_path, tiny_disk):
    import hashlib

    import pandas as pd

    from services.catalog.importer import ImportOptions
    from services.catalog.writer import CatalogWriter

    def bars(path, n, start):
        index = pd.date_range(start, periods=n, freq="1min")
        path.write_text("timestamp,open,high,low,close\n" + "".join(
            f"{t:%Y-%m-%d %H:%M:%S},{1.5 + i % 7 * 0.01:.2f},2.25,0.75,1.75\n"
            for i, t in enumerate(index)))
        return str(path)

    # Arrange: a small series fits on the disk; the next file does not.
    catalog = CatalogService(str(tiny_disk / "catalog"))
    writer = CatalogWriter(catalog)
    writer.import_file(bars(tmp_path / "small.csv", 100, "2024-01-02 00:01"),
                       ImportOptions("BTCUSDT-PERP.BINANCE"))
    before = {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted((tiny_disk / "catalog").rglob("*")) if p.is_file()}

    # Act
    with pytest.raises(CatalogError) as info:
        writer.import_file(bars(tmp_path / "big.csv", 200_000, "2024-01-03 00:01"),
                           ImportOptions("BTCUSDT-PERP.BINANCE", chunk_rows=20_000))

    # Assert
    assert "No space left on device; the catalog is unchanged" in str(info.value)
    after = {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((tiny_disk / "catalog").rglob("*")) if p.is_file()}
    assert after == before
    assert not [p for p in os.listdir(tiny_disk / "catalog") if p.startswith(".staging-")]
