"""The journal's recovery rules on hand-made leftovers (the crash-injection tests in
tests/integration/test_catalog_crash_safety.py make the real ones)."""

from __future__ import annotations

import json
import os

from services.catalog import CatalogService
from services.catalog.journal import JOURNAL, find_leftovers, recover_leftover


def _catalog(tmp_path) -> CatalogService:
    os.makedirs(tmp_path / "catalog" / "data" / "bar" / "S")
    (tmp_path / "catalog" / "data" / "bar" / "S" / "a.parquet").write_text("old")
    return CatalogService(str(tmp_path / "catalog"))


def test_a_torn_first_journal_means_the_change_never_happened(tmp_path):
    # Arrange: a power cut while the first journal was written (no rename can have happened).
    catalog = _catalog(tmp_path)
    staging = tmp_path / "catalog" / ".staging-000000000001"
    staging.mkdir()
    (staging / "new.parquet").write_text("new")
    (staging / JOURNAL).write_text('{"version": 1, "operation": "catalog.del')

    # Act
    [leftover] = find_leftovers(catalog)
    outcome = recover_leftover(catalog, leftover)

    # Assert
    assert leftover.state == "unstarted" and outcome.startswith("removed")
    assert sorted(os.listdir(tmp_path / "catalog")) == ["data"]
    assert (tmp_path / "catalog" / "data" / "bar" / "S" / "a.parquet").read_text() == "old"


def test_recovering_twice_is_the_same_as_once(tmp_path):
    # Arrange: a rewrite keeping its file name, journalled, its retire done, its install not.
    catalog = _catalog(tmp_path)
    staging = tmp_path / "catalog" / ".staging-000000000002"
    (staging / "trash").mkdir(parents=True)
    (staging / "new-0-a.parquet").write_text("new")
    os.rename(tmp_path / "catalog/data/bar/S/a.parquet", staging / "trash" / "0-a.parquet")
    (staging / JOURNAL).write_text(json.dumps({
        "version": 1, "operation": "catalog.delete", "target": "S", "state": "forward",
        "moves": [["data/bar/S/a.parquet", ".staging-000000000002/trash/0-a.parquet"],
                  [".staging-000000000002/new-0-a.parquet", "data/bar/S/a.parquet"]],
        "prune": ["data/bar/S"]}))
    [leftover] = find_leftovers(catalog)

    # Act: recovery is interrupted after its rename (the journal still there), then runs again.
    from services.catalog.journal import _replay

    _replay(catalog.fs, catalog.root, [tuple(m) for m in json.loads(
        (staging / JOURNAL).read_text())["moves"]], "forward")
    outcome = recover_leftover(catalog, leftover)

    # Assert: the new file in place once; the old one gone with the staging folder.
    assert (tmp_path / "catalog/data/bar/S/a.parquet").read_text() == "new"
    assert sorted(os.listdir(tmp_path / "catalog")) == ["data"]
    assert "0 renames now, 2 done before" in outcome
