"""Crash-safe catalog changes: every change is staged, journalled, then renamed into place.

A change (import, conversion, range delete with its file rewrites, series delete) builds every
new file in a staging folder inside the catalog root (``.staging-<id>/``; NautilusTrader reads
only ``data/``, so it is invisible), then writes ``journal.json`` there: the **commit point**. The
journal lists every rename that turns the old catalog into the new one (old files go into the
staging folder's ``trash/``, new ones come out of it). The renames follow in order; then the
journal and the staging folder are removed.

If the process dies, the next start (``recover``) finds the staging folder and

* without a journal: nothing in the catalog was touched yet; the folder is removed;
* with a journal in state ``forward``: the change is completed (the renames not done yet);
* with a journal in state ``rollback`` (a failure was being undone): the renames done are undone.

Each rename is atomic on a local file system, and recovery looks at each rename's source and
target before acting, so a crash during recovery is recovered the same way. Writers and recovery
hold an exclusive lock on the catalog folder (``flock``, local catalogs), so a recovery never
touches a change that a live process is still making.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from services.errors import CatalogError

STAGING_PREFIX = ".staging-"
JOURNAL = "journal.json"
FORWARD, ROLLBACK = "forward", "rollback"

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


class CatalogBusy(CatalogError):
    """Another process is changing the catalog right now."""


@contextmanager
def write_lock(catalog, *, wait: bool = True) -> Iterator[None]:
    """Hold the catalog's write lock: one change (or recovery) at a time, across threads and,
    for local catalogs, across processes.

    With ``wait=False`` a lock held elsewhere raises CatalogBusy instead of waiting.
    """
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(catalog.location, threading.Lock())
    if not thread_lock.acquire(blocking=wait):
        raise CatalogBusy(f"The catalog {catalog.location} is being changed by this process")
    fd = None
    try:
        if catalog.protocol == "file":
            try:
                os.makedirs(catalog.root, exist_ok=True)
                fd = os.open(catalog.root, os.O_RDONLY | os.O_DIRECTORY)
            except OSError as e:
                raise CatalogError(f"Cannot open the catalog folder {catalog.root}: "
                                   f"{e.strerror or e}. Check that it is a folder you may "
                                   "write to.") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise CatalogBusy(f"Another process is changing the catalog {catalog.location}; "
                                  "wait for it to finish") from None
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the flock
        thread_lock.release()


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CatalogChange:
    """One change of a catalog in progress: a staging folder, then a journalled commit.

    Use inside :func:`write_lock`. Stage files under :attr:`path`, then :meth:`commit` the
    renames; :meth:`discard` (always, in a ``finally``) removes what is left.
    """

    def __init__(self, catalog, operation: str, target: str) -> None:
        self.catalog = catalog
        self.operation = operation
        self.target = target
        self.name = f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        self.path = f"{catalog.root}/{self.name}"
        self.trash = f"{self.path}/trash"
        self._moves: list[tuple[str, str]] = []
        self._done = 0
        self._committed = False
        self._closed = False
        self._syncing: dict[str, Future] = {}  # staged file -> its fsync, started early
        self._pool: ThreadPoolExecutor | None = None
        catalog.fs.makedirs(self.path, exist_ok=True)

    def sync_soon(self) -> None:
        """Start making the files staged so far durable, in the background, while the change
        goes on building (fsync releases the GIL); :meth:`commit` waits for them."""
        if self.catalog.protocol != "file":
            return
        for dirpath, _dirs, files in os.walk(self.path):
            for name in files:
                path = os.path.join(dirpath, name)
                if path not in self._syncing:
                    if self._pool is None:
                        self._pool = ThreadPoolExecutor(max_workers=2,
                                                        thread_name_prefix="catalog-fsync")
                    self._syncing[path] = self._pool.submit(_fsync_file, path)

    # -- paths: journals store them relative to the catalog root ------------------------------
    def _rel(self, path: str) -> str:
        root = self.catalog.root + "/"
        if not path.startswith(root):
            raise CatalogError(f"{path} is outside the catalog {self.catalog.root}")
        return path[len(root):]

    def commit(self, moves: list[tuple[str, str]], prune: list[str] = ()) -> None:
        """Make the staged change durable, journal it, and rename it into place.

        ``moves`` are (from, to) absolute paths in order; ``prune`` are catalog folders to
        remove when the renames leave them empty. After the journal is written the change is
        certain: a crash from here on is completed by the next :func:`recover`.
        """
        fs = self.catalog.fs
        moved_away = {src for src, _ in moves}  # a rewrite may reuse a retired file's name
        for _, dst in moves:
            if dst not in moved_away and fs.exists(dst):
                raise CatalogError(f"{self._rel(dst)} already exists in the catalog")
        if self.catalog.protocol == "file":
            # Durable before the commit point: a power cut must not leave a journal pointing
            # at files the disk never got. (The staging folder itself is synced once, with the
            # journal's entry, in _write_journal.)
            self.sync_soon()
            for future in self._syncing.values():
                future.result()
            for dirpath, _dirs, _files in os.walk(self.path):
                if dirpath != self.path:
                    _fsync_dir(dirpath)
        self._moves = list(moves)
        self._write_journal(FORWARD, prune)
        self._committed = True
        for src, dst in self._moves:
            _rename(fs, src, dst)
            self._done += 1
        _prune(fs, [f"{self.catalog.root}/{p}" for p in map(self._rel, prune)])

    def _write_journal(self, state: str, prune) -> None:
        record = {
            "version": 1, "operation": self.operation, "target": self.target, "state": state,
            "created_at": datetime.now(UTC).isoformat(), "pid": os.getpid(),
            "moves": [[self._rel(s), self._rel(d)] for s, d in self._moves],
            "prune": [self._rel(p) for p in prune],
        }
        data = json.dumps(record, indent=1).encode()
        journal = f"{self.path}/{JOURNAL}"
        if self.catalog.protocol == "file":
            # The first journal is written in place: until its fsync returns no rename has
            # happened, so a torn one (a power cut) reads as "never committed". A later state
            # replaces it whole, so the forward journal is never lost half way.
            first = not os.path.exists(journal)
            target = journal if first else f"{journal}.tmp"
            with open(target, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if not first:
                os.replace(target, journal)
            _fsync_dir(self.path)
        else:  # object stores put a whole object or nothing
            self.catalog.fs.pipe_file(journal, data)

    def discard(self) -> None:
        """Remove the staging folder; undo a commit that failed half way (in this process).

        Raises CatalogError when the undo itself fails: the journal then stays for
        ``nautilus-workbench doctor`` to finish.
        """
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        fs = self.catalog.fs
        if self._committed and self._done < len(self._moves):
            self._write_journal(ROLLBACK, [])
            try:
                _replay(fs, self.catalog.root, [(self._rel(s), self._rel(d))
                                                for s, d in self._moves], ROLLBACK)
            except OSError as e:
                raise CatalogError(
                    f"Undoing the interrupted {self.operation} of {self.target} failed "
                    f"({e.strerror or e}); run 'nautilus-workbench doctor --fix' to finish "
                    "undoing it.") from e
        _remove_staging(fs, self.path)


def _rename(fs, src: str, dst: str) -> None:
    parent = dst.rsplit("/", 1)[0]
    if not fs.exists(parent):
        fs.makedirs(parent, exist_ok=True)
    fs.mv(src, dst, recursive=True)


def _prune(fs, folders: list[str]) -> None:
    for folder in folders:
        if fs.exists(folder) and not fs.ls(folder):
            fs.rmdir(folder)


def _remove_staging(fs, path: str) -> None:
    # The journal goes first: a staging folder without one is garbage, whatever else is left.
    journal = f"{path}/{JOURNAL}"
    if fs.exists(journal):
        fs.rm(journal)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _replay(fs, root: str, moves: list[tuple[str, str]], state: str) -> tuple[int, int]:
    """Complete (forward) or undo (rollback) ``moves`` (relative paths); idempotent.

    Whether a rename happened is read from its staging-side path, which no other rename
    shares: a retired file's place in ``trash/`` exists, or an installed file's staged source
    is gone. (A catalog path can be both retired and installed: a rewritten file that keeps its
    name.) Returns (renames done now, renames found already in the wanted state).
    """
    done = already = 0
    installed = {dst for src, dst in moves if not _is_retire(dst)}
    retired = {src for src, dst in moves if _is_retire(dst)}
    if state == FORWARD:
        for src, dst in moves:
            if not _is_done(fs, root, src, dst):
                _rename(fs, f"{root}/{src}", f"{root}/{dst}")
                done += 1
                continue
            already += 1
            if _is_retire(dst) and src not in installed and fs.exists(f"{root}/{src}"):
                fs.rm(f"{root}/{src}", recursive=True)  # a copying file system stopped mid-move
        return done, already
    for src, dst in reversed(moves):
        if _is_done(fs, root, src, dst):
            _rename(fs, f"{root}/{dst}", f"{root}/{src}")
            done += 1
            continue
        already += 1
        if not _is_retire(dst) and dst not in retired and fs.exists(f"{root}/{dst}"):
            fs.rm(f"{root}/{dst}", recursive=True)  # a partial copy of a copying file system
    return done, already


def _is_retire(dst: str) -> bool:
    """A rename of a catalog file into a staging folder (as opposed to one out of it)."""
    return dst.startswith(STAGING_PREFIX)


def _is_done(fs, root: str, src: str, dst: str) -> bool:
    if _is_retire(dst):
        return fs.exists(f"{root}/{dst}")
    return not fs.exists(f"{root}/{src}")


@dataclass(frozen=True)
class Leftover:
    """A staging folder an interrupted change left in the catalog."""

    path: str
    operation: str | None  # catalog.import, catalog.delete, ...; None without a journal
    target: str | None
    state: str  # unstarted (no journal: the catalog was not touched) | forward | rollback
    renames: int  # renames the journal lists
    created_at: str | None
    problem: str = ""  # a journal that cannot be read

    def plan(self) -> str:
        """What recovery will do, in words."""
        if self.problem:
            return f"nothing automatically: {self.problem}"
        if self.state == "unstarted":
            return "remove the staging folder (the change never reached the catalog's data)"
        if self.state == FORWARD:
            return (f"complete the interrupted {self.operation} of {self.target} "
                    f"({self.renames} renames journalled), then remove the staging folder")
        return (f"undo the failed {self.operation} of {self.target}, then remove the staging "
                "folder")


def find_leftovers(catalog) -> list[Leftover]:
    """Staging folders of interrupted changes in ``catalog`` (metadata only)."""
    fs = catalog.fs
    try:
        if not fs.exists(catalog.root):
            return []
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(catalog.root, detail=False)]
    except PermissionError as e:
        raise CatalogError(f"Cannot list the catalog folder {catalog.root}: permission "
                           "denied; fix its permissions (the workbench needs read and write "
                           "access)") from e
    result = []
    for name in sorted(n for n in names if n.startswith(STAGING_PREFIX)):
        path = f"{catalog.root}/{name}"
        journal = f"{path}/{JOURNAL}"
        if not fs.exists(journal):
            result.append(Leftover(path, None, None, "unstarted", 0, None))
            continue
        try:
            record = json.loads(fs.cat_file(journal))
        except ValueError:  # torn while being written: its commit never happened
            result.append(Leftover(path, None, None, "unstarted", 0, None))
            continue
        except OSError as e:
            result.append(Leftover(path, None, None, "unknown", 0, None,
                                   problem=f"its journal {journal} is unreadable ({e}); move "
                                           "the folder aside and check the series by hand"))
            continue
        try:
            state = record["state"]
            if state not in (FORWARD, ROLLBACK):
                raise ValueError(f"unknown state {state!r}")
            result.append(Leftover(path, record["operation"], record["target"], state,
                                   len(record["moves"]), record.get("created_at")))
        except (ValueError, KeyError, TypeError) as e:
            result.append(Leftover(path, None, None, "unknown", 0, None,
                                   problem=f"its journal {journal} is unreadable ({e}); move "
                                           "the folder aside and check the series by hand"))
    return result


def recover_leftover(catalog, leftover: Leftover) -> str:
    """Complete, undo or remove one interrupted change (under the catalog's write lock)."""
    if leftover.problem:
        raise CatalogError(f"Cannot recover {leftover.path}: {leftover.problem}")
    fs = catalog.fs
    if leftover.state == "unstarted":
        _remove_staging(fs, leftover.path)
        return f"removed {leftover.path} (an unfinished change that had not touched the data)"
    record = json.loads(fs.cat_file(f"{leftover.path}/{JOURNAL}"))
    moves = [(s, d) for s, d in record["moves"]]
    try:
        done, already = _replay(fs, catalog.root, moves, record["state"])
        if record["state"] == FORWARD:
            _prune(fs, [f"{catalog.root}/{p}" for p in record.get("prune", [])])
    except OSError as e:
        raise CatalogError(f"Recovering {leftover.path} failed: {e.strerror or e}; fix the "
                           "cause (space, permissions) and run 'nautilus-workbench doctor "
                           "--fix' again") from e
    _remove_staging(fs, leftover.path)
    verb = "completed" if record["state"] == FORWARD else "undid"
    return (f"{verb} the interrupted {record['operation']} of {record['target']} "
            f"({done} renames now, {already} done before the interruption)")
