"""Strategy versions and promotions on both database backends (no Docker): the same content is
one version across processes, a version whose strategy class no longer imports is refused,
two approvers racing on one request count once, and every bad input is one line."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import threading

import pytest

from services.backtest import BacktestSpec
from services.errors import PipelineError, ValidationError
from services.identity.principal import Principal
from services.workbench import Workbench
from tests.conftest import REPO_ROOT, close_workbench

pytestmark = pytest.mark.integration

BAR_TYPE = "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL"
ALICE = Principal.user("alice", {"researcher", "trader"})
BOB = Principal.user("bob", {"approver", "trader"})
CAROL = Principal.user("carol", {"approver", "trader"})


@pytest.fixture
def wb(tmp_path, sample_catalog_path, database_url):
    workbench = Workbench.open(state_dir=tmp_path / "state", catalog=str(sample_catalog_path),
                               scheduler=True, database_url=database_url)
    yield workbench
    close_workbench(workbench)


def _cli(wb, *args):
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "strategy", *args, "--state-dir",
         str(wb.settings.state_dir), "--catalog", wb.settings.catalog,
         "--database-url", wb.settings.database_url],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=False)


def _backtested_version(wb):
    run_id = wb.backtests.submit(BacktestSpec("ema_cross", BAR_TYPE, {"fast_ema_period": 8},
                                              start="2024-03-04", end="2024-03-06"))
    assert wb.backtests.wait(run_id, timeout=300).status == "Completed"
    return wb.pipeline.versions.create_from_run(run_id, principal=ALICE).version


def test_the_same_content_is_one_version_whichever_way_and_process_makes_it(wb):
    # Arrange: a run, and its version
    version = _backtested_version(wb)

    # Act: the template with the same values, from another process, twice
    first = _cli(wb, "version", "create", "--strategy", "ema_cross", "--bar-type", BAR_TYPE,
                 "--param", "fast_ema_period=8", "--json")
    changed = _cli(wb, "version", "create", "--strategy", "ema_cross", "--bar-type", BAR_TYPE,
                   "--param", "fast_ema_period=9", "--json")

    # Assert
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["version_id"] == version.version_id
    assert json.loads(first.stdout)["status"] == "exists"
    other = json.loads(changed.stdout)
    assert other["status"] == "created" and other["version_id"] != version.version_id
    listed = json.loads(_cli(wb, "versions", "--json").stdout)["versions"]
    assert sorted(v["version_id"] for v in listed) == sorted([version.version_id,
                                                              other["version_id"]])
    diff = json.loads(_cli(wb, "diff", version.short_id, other["short_id"], "--json").stdout)
    assert diff["status"] == "different"
    assert {(d["section"], d["field"], d["left"], d["right"]) for d in diff["differences"]} == {
        ("parameters", "fast_ema_period", 8, 9), ("strategy", "config.fast_ema_period", 8, 9)}


def test_a_later_run_of_the_same_content_becomes_evidence(wb):
    version = wb.pipeline.versions.create_from_template(
        BacktestSpec("ema_cross", BAR_TYPE, {"fast_ema_period": 7}), principal=ALICE).version
    assert version.completed_run_ids == ()
    with pytest.raises(PipelineError, match="has no completed backtest"):
        wb.pipeline.promotions.request(version.version_id, "paper", principal=ALICE)
    run_id = wb.backtests.submit(BacktestSpec("ema_cross", BAR_TYPE, {"fast_ema_period": 7},
                                              start="2024-03-04", end="2024-03-05"))
    assert wb.backtests.wait(run_id, timeout=300).status == "Completed"
    request = wb.pipeline.promotions.request(version.version_id, "paper", principal=ALICE)
    assert request.gates_pass
    assert wb.pipeline.versions.get(version.version_id).completed_run_ids == (run_id,)


def test_two_approvers_racing_on_one_request_count_once(wb, monkeypatch):
    # Arrange: both read the request before either commits
    version = _backtested_version(wb)
    request = wb.pipeline.promotions.request(version.version_id, "paper", principal=ALICE)
    promotions = wb.pipeline.promotions
    barrier = threading.Barrier(2)
    read = promotions._revision

    def read_then_wait(request_id):
        revision = read(request_id)
        barrier.wait(timeout=10)
        return revision

    monkeypatch.setattr(promotions, "_revision", read_then_wait)
    outcomes = {}

    def approve(person):
        try:
            outcomes[person.name] = promotions.approve(request.request_id, principal=person)
        except PipelineError as e:
            outcomes[person.name] = e

    # Act
    threads = [threading.Thread(target=approve, args=(p,)) for p in (BOB, CAROL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Assert: one approval made it Approved; the other was refused, audited, not half-written
    final = promotions.get(request.request_id)
    assert final.status == "Approved" and len(final.decisions) == 1
    losers = [n for n, o in outcomes.items() if isinstance(o, PipelineError)]
    assert len(losers) == 1 and "changed while" in str(outcomes[losers[0]])
    refusals = [e for e in wb.audit.entries("strategy.approve_paper", actor=losers[0])
                if e.outcome == "refused"]
    assert refusals and "changed while" in refusals[0].detail


@pytest.fixture
def own_strategy(tmp_path, monkeypatch):
    """A strategy package of the operator's (WORKBENCH_STRATEGY_PACKAGES) and its template."""
    package = tmp_path / "packages" / "h13_strategies"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from nautilus_trader.examples.strategies.ema_cross import EMACross, EMACrossConfig\n\n"
        "class OwnCrossConfig(EMACrossConfig, frozen=True):\n    pass\n\n"
        "class OwnCross(EMACross):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path / "packages"))
    monkeypatch.setenv("WORKBENCH_STRATEGY_PACKAGES", "h13_strategies")
    templates = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "engine_templates", templates)
    data = json.loads((templates / "strategies" / "ema_cross.json").read_text())
    data.update(name="own_cross", strategy_path="h13_strategies:OwnCross",
                config_path="h13_strategies:OwnCrossConfig")
    (templates / "strategies" / "own_cross.json").write_text(json.dumps(data))
    yield package, templates
    sys.modules.pop("h13_strategies", None)


def test_a_version_whose_strategy_class_no_longer_imports_is_refused(
        own_strategy, tmp_path, sample_catalog_path, database_url):
    # Arrange: a version of the operator's strategy, then its package goes away
    package, templates = own_strategy
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(sample_catalog_path),
                        templates_dir=templates, database_url=database_url)
    try:
        version = wb.pipeline.versions.create_from_template(
            BacktestSpec("own_cross", BAR_TYPE), principal=ALICE).version
        shutil.rmtree(package)
        sys.modules.pop("h13_strategies", None)
        importlib.invalidate_caches()
        runs = len(wb.backtests.list_runs())

        # Act / Assert
        with pytest.raises(ValidationError) as refused:
            wb.pipeline.versions.backtest(version.version_id, principal=ALICE)
        assert "strategy class no longer imports" in refused.value.summary
        assert "cannot import module 'h13_strategies'" in str(refused.value)
        assert len(wb.backtests.list_runs()) == runs  # nothing was queued
    finally:
        close_workbench(wb)


def test_bad_input_is_one_line_naming_the_problem(wb):
    version = wb.pipeline.versions.create_from_template(
        BacktestSpec("ema_cross", BAR_TYPE, {"fast_ema_period": 11}), principal=ALICE).version
    cases = [
        (("promote", version.short_id, "--to", "paper"), "has no completed backtest"),
        (("deploy", version.short_id, "--stage", "paper"), "is not approved for paper"),
        (("promote", version.short_id, "--to", "live", "--risk", "max_position=-2"),
         "max_position: must be a positive number"),
        (("rollback", "dep-0000000000"), "There is no deployment 'dep-0000000000'"),
        (("approve", "pr-0000000000"), "There is no promotion request 'pr-0000000000'"),
        (("diff", "zz", version.short_id), "'zz' is not a version id"),
        (("version", "create", "--run", "no-such-run"), "no-such-run"),
        (("drift", "dep-0000000000", "-o", "/no/such/folder/drift.html"),
         "the folder /no/such/folder does not exist"),
    ]
    for args, says in cases:
        done = _cli(wb, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, done.stderr)
        assert says in lines[0], (args, lines[0])
        assert "Traceback" not in done.stderr
