"""Crash injection into every catalog write: a child process is killed (SIGKILL) at each file
system step of an import, a conversion, a range delete with rewrites, a series delete and an
export; recovery then leaves the catalog byte for byte as it was before, or as the completed
change leaves it — never anything in between.

The steps are the calls that change files (opening one for writing, rename, replace, unlink,
rmdir, fsync after a staged file is written); the child counts them and kills itself before
step N. The child is a
fork of the test process, so 100 crash points take seconds rather than minutes.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.catalog import CatalogService
from services.catalog.importer import ImportOptions
from services.catalog.journal import find_leftovers
from services.catalog.writer import CatalogWriter
from services.doctor import Doctor
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning")]

BTC = "BTCUSDT-PERP.BINANCE"
KEY = f"{BTC}-1-MINUTE-LAST-EXTERNAL"
STEPS = ("rename", "replace", "unlink", "remove", "rmdir", "fsync")


def _bars_csv(path: Path, n: int, start: str) -> str:
    index = pd.date_range(start, periods=n, freq="1min")
    close = 40_000 + np.cumsum(np.sin(np.arange(n)) * 3)
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"),
                  "open": np.round(close - 1, 1), "high": np.round(close + 5, 1),
                  "low": np.round(close - 5, 1), "close": np.round(close, 1),
                  "volume": np.arange(n) % 7 + 1}).to_csv(path, index=False)
    return str(path)


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _folders(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


def _run_in_child(operation, catalog_root: Path, kill_at: int | None) -> tuple[int, int]:
    """Run ``operation(writer)`` in a forked child killed before file step ``kill_at``;
    returns (how the child ended: exit code or -signal, steps it counted)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count steps, die at the chosen one
        os.close(read)
        count = [0]

        def counting(name, real):
            def step(*args, **kwargs):
                count[0] += 1
                if kill_at is not None and count[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)
            return step

        for name in STEPS:
            setattr(os, name, counting(name, getattr(os, name)))
        real_open = builtins.open

        def opening(file, mode="r", *args, **kwargs):  # files opened for writing (the journal)
            if any(c in mode for c in "wax+"):
                return counting("open", real_open)(file, mode, *args, **kwargs)
            return real_open(file, mode, *args, **kwargs)

        builtins.open = opening
        code = 0
        try:
            operation(CatalogWriter(CatalogService(str(catalog_root))))
        except BaseException as e:  # reported through the exit code
            os.write(2, f"child failed: {type(e).__name__}: {e}\n".encode())
            code = 3
        os.write(write, str(count[0]).encode())
        os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    counted = os.read(read, 64).decode()
    os.close(read)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return code, int(counted) if counted else 0


def _recover(catalog_root: Path) -> list[str]:
    """What the next start does: the doctor's catalog repairs, as the local operator."""
    doctor = Doctor(None, CatalogService(str(catalog_root)), None, Authorizer(None, Principal.local()))
    repairs = doctor.repair(doctor.catalog_findings())
    assert all(r.ok for r in repairs), [r.outcome for r in repairs]
    return [r.outcome for r in repairs]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A catalog with one BTC series of 3 files (chunks), cut across by the deletes below."""
    folder = tmp_path_factory.mktemp("crash-base")
    catalog = folder / "catalog"
    writer = CatalogWriter(CatalogService(str(catalog)))
    writer.import_file(_bars_csv(folder / "base.csv", 3000, "2024-01-02 00:01"),
                       ImportOptions(BTC, bar_spec="1-MINUTE-LAST", chunk_rows=1000))
    return catalog


def _append(writer):
    csv = _bars_csv(Path(writer.catalog.root).parent / "more.csv", 2000, "2024-01-05 00:01")
    writer.import_file(csv, ImportOptions(BTC, bar_spec="1-MINUTE-LAST", chunk_rows=700))


def _new_instrument(writer):
    csv = _bars_csv(Path(writer.catalog.root).parent / "eth.csv", 1500, "2024-01-02 00:01")
    writer.import_file(csv, ImportOptions("ETHUSDT-PERP.BINANCE", bar_spec="1-MINUTE-LAST",
                                          chunk_rows=1000))


def _convert(writer):
    writer.convert(KEY, "5-MINUTE-LAST")


def _delete_range(writer):
    # Cuts the first and the second file (both rewritten) and removes nothing whole.
    writer.delete(KEY, "2024-01-02 10:00", "2024-01-02 20:00", confirm=True)


def _delete_inside_one_file(writer):
    # Rows inside one file: the rewrite keeps the file's name (same first and last bar).
    writer.delete(KEY, "2024-01-02 05:00", "2024-01-02 06:00", confirm=True)


def _delete_series(writer):
    writer.delete(KEY, confirm=True)


OPERATIONS = {"import-append": _append, "import-new-instrument": _new_instrument,
              "convert": _convert, "delete-range": _delete_range,
              "delete-inside-a-file": _delete_inside_one_file, "delete-series": _delete_series}


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_crash_at_any_step_recovers_to_before_or_after(name, base, tmp_path):
    operation = OPERATIONS[name]
    # Arrange: the states before and after the change, from an uninterrupted run.
    before = _snapshot(base)
    done = tmp_path / "done" / "catalog"
    shutil.copytree(base, done)
    code, steps = _run_in_child(operation, done, kill_at=None)
    assert code == 0 and steps > 2
    after = _snapshot(done)
    assert after != before and not find_leftovers(CatalogService(str(done)))

    outcomes = []
    for kill_at in range(1, steps + 1):
        root = tmp_path / f"crash-{kill_at}" / "catalog"
        shutil.copytree(base, root)

        # Act: kill the change at one step, then start again.
        code, _ = _run_in_child(operation, root, kill_at)
        recovered = _recover(root)
        state = _snapshot(root)

        # Assert: the child died there; the catalog is whole, as before or as after.
        assert code == -signal.SIGKILL, f"step {kill_at}: the child ended with {code}"
        assert state in (before, after), f"{name}, killed at step {kill_at}: {recovered}"
        assert not [f for f in _folders(root) if ".staging-" in f]
        outcomes.append("after" if state == after else "before")
        shutil.rmtree(root.parent)

    # Once a crash point leads to "after" (the journal is written), every later one does too.
    assert "after" in outcomes and "before" in outcomes
    first_after = outcomes.index("after")
    assert set(outcomes[first_after:]) == {"after"}, outcomes


def test_an_export_killed_at_any_step_leaves_no_half_file(base, tmp_path):
    # Arrange
    before = _snapshot(base)
    target = tmp_path / "out" / "btc.csv"
    target.parent.mkdir()

    def export(writer):
        writer.export(KEY, str(target))

    code, steps = _run_in_child(export, base, kill_at=None)
    complete = target.read_bytes()
    assert code == 0 and complete.count(b"\n") == 3001
    target.unlink()

    for kill_at in range(1, steps + 1):
        # Act
        code, _ = _run_in_child(export, base, kill_at)

        # Assert: no file, or the whole file, under the target's name; the catalog untouched.
        assert code == -signal.SIGKILL
        assert not target.exists() or target.read_bytes() == complete
        assert _snapshot(base) == before
        for leftover in target.parent.iterdir():
            leftover.unlink()


def test_the_next_workbench_start_completes_an_interrupted_delete(base, tmp_path):
    # Arrange: a series delete killed after its journal, at its second rename (the crash
    # the issue reported: the whole series invisible, its only copy in the staging trash).
    from services.workbench import Workbench

    root = tmp_path / "catalog"
    shutil.copytree(base, root)
    code, steps = _run_in_child(_delete_series, root, kill_at=None)
    shutil.rmtree(root)
    shutil.copytree(base, root)
    journalled = next(k for k in range(1, steps + 1)
                      if _crash_leaves_journal(root, base, k))
    code, _ = _run_in_child(_delete_series, root, journalled + 1)
    assert code == -signal.SIGKILL
    [leftover] = find_leftovers(CatalogService(str(root)))
    assert leftover.operation == "catalog.delete" and leftover.target == KEY

    # Act
    workbench = Workbench.open(state_dir=tmp_path / "state", catalog=str(root))

    # Assert: the delete was completed and audited as a recovery.
    assert [s.key for s in workbench.catalog.series()] == []
    assert not find_leftovers(workbench.catalog)
    entries = [e for e in workbench.audit.entries() if e.action == "catalog.recover"]
    assert entries and "completed the interrupted catalog.delete" in entries[0].detail
    workbench.database.dispose()


def _crash_leaves_journal(root: Path, base: Path, kill_at: int) -> bool:
    shutil.rmtree(root)
    shutil.copytree(base, root)
    _run_in_child(_delete_series, root, kill_at)
    found = find_leftovers(CatalogService(str(root)))
    journalled = bool(found) and found[0].state == "forward"
    shutil.rmtree(root)
    shutil.copytree(base, root)
    return journalled


def _fail_then_kill(operation, catalog_root: Path, fail_at: int, kill_at: int | None) -> int:
    """Run ``operation`` in a forked child whose ``fail_at``-th rename fails (a full disk) and
    which is killed before its ``kill_at``-th rename (while undoing); returns how it ended.
    (Renames are counted where the journal makes them: an OSError from os.rename itself would
    only make shutil.move fall back to copying.)"""
    from services.catalog import journal

    pid = os.fork()
    if pid == 0:
        real = journal._rename
        count = [0]

        def rename(fs, src, dst):
            count[0] += 1
            if kill_at is not None and count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if count[0] == fail_at:
                raise OSError(28, "No space left on device")
            return real(fs, src, dst)

        journal._rename = rename
        try:
            operation(CatalogWriter(CatalogService(str(catalog_root))))
        except Exception:  # the expected CatalogError of the failed rename
            os._exit(4)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def test_a_crash_while_undoing_a_failed_change_recovers_to_before(base, tmp_path):
    # Arrange: the range delete renames 4 times (a retire and an install per rewritten file);
    # the k-th fails, then the undo is killed at each of its renames.
    before = _snapshot(base)
    renames = 0
    for fail_at in range(1, 12):
        root = tmp_path / f"probe-{fail_at}" / "catalog"
        shutil.copytree(base, root)
        ended = _fail_then_kill(_delete_range, root, fail_at, None)
        shutil.rmtree(root.parent)
        if ended == 0:  # fewer renames than fail_at: the delete just completed
            break
        renames = fail_at
        assert ended == 4
    assert renames == 4
    cases = 0
    for fail_at in range(2, renames + 1):
        for kill_at in range(fail_at + 1, 2 * fail_at + 1):  # renames of the undo
            root = tmp_path / f"undo-{fail_at}-{kill_at}" / "catalog"
            shutil.copytree(base, root)

            # Act
            ended = _fail_then_kill(_delete_range, root, fail_at, kill_at)
            _recover(root)

            # Assert
            assert _snapshot(root) == before, (fail_at, kill_at, ended)
            cases += 1
            shutil.rmtree(root.parent)
    assert cases >= 3
