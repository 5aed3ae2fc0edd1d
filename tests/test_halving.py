"""Synchronous halving keeps each rung's best, and a sweep interrupted while a rung fills resumes to
the same end, to the last bit. In a file of its own so that pytest's two processes (make test) run it
beside test_record.py's interrupted sweep, the suite's two longest tests."""

import signal
from pathlib import Path

import pandas as pd
import pytest

from dotmlp import analysis, tracking
from sweep.run import main
from tests.conftest import disturbed, store_count
from tests.test_record import read
from tests.test_sweep import sweep_runs

pytestmark = pytest.mark.slow


def rung_reports(results_dir: Path, name: str, step: int) -> int:
    """How many of a sweep's MLPs have a held-out NMSE at this step (store_count)."""
    return store_count(
        results_dir, "SELECT COUNT(DISTINCT metrics.run_uuid) FROM metrics JOIN runs USING (run_uuid)"
        " JOIN experiments USING (experiment_id) JOIN params USING (run_uuid)"
        " WHERE experiments.name = ? AND metrics.key = 'val_nmse' AND metrics.step = ?"
        " AND params.key = 'depth' AND params.value != '0'", (name, step))


def test_synchronous_halving_keeps_each_rung_s_best_and_resumes_mid_rung_to_the_same_end(
        ray_runtime, tmp_path, capsys):
    # One task: 8 MLPs (two widths × four learning rates) and 4 linear models. Rungs at 256 and
    # 1,024 of 2,048 steps, factor 4: 2 of the 8 go on from 256 steps, 1 of those 2 from 1,024.
    def args(results):
        return ["--num-samples", "12", "--max-steps", "2048", "--reports", "4",
                "--dimensions", "4", "--depths", "0,2", "--widths", "128,256", "--multiply", "off",
                "--lrs-per-cell", "4", "--seeds", "1", "--halving", "synchronous", "--no-figures",
                "--results-dir", str(results), "--name", "sha"]

    whole = tmp_path / "whole"
    main(args(whole))
    table = read(whole, "sha").set_index("trial_id")
    curves = pd.read_csv(whole / "sha" / analysis.CURVES_FILE)
    assert (table.loc[table["depth"] == 0, "status"] == "completed").all()  # exempt
    mlps = table[table["depth"] > 0]
    assert len(mlps) == 8 and (mlps["status"] != "unfinished").all()
    at = {step: curves[curves["steps"] == step].set_index("trial_id")["val_nmse"]
          for step in (256, 1024)}
    first = at[256].loc[mlps.index].nsmallest(2).index
    assert set(mlps.index[mlps["steps"] > 256]) == set(first)  # the rung's best two, whatever order
    (winner,) = mlps.index[mlps["status"] == "completed"]
    assert winner == at[1024].loc[first].idxmin() and (mlps["status"] == "pruned").sum() == 7
    # The two that went on were paused at 256 steps and resumed from their checkpoint there: their
    # curves go on along the ladder, each evaluation once, and their MLflow runs finished.
    for trial in first:
        steps = curves.loc[curves["trial_id"] == trial, "steps"].tolist()
        assert steps == [256, 512, 1024, 2048][:len(steps)] and len(steps) >= 3
    _, runs = sweep_runs(whole, "sha")
    tags = {r.data.tags[tracking.TRIAL_TAG]: r.data.tags.get(tracking.STATUS_TAG) for r in runs}
    assert tags == table["status"].to_dict() and {r.info.status for r in runs} == {"FINISHED"}
    # Every trial ended, and the experiment state on disk (the table's tune_status is read from
    # it) says so, the trials stopped while paused among them: --resume has nothing to run.
    assert (table["tune_status"] == "TERMINATED").all(), table["tune_status"].value_counts()

    # The same sweep interrupted while its first rung fills (some MLPs paused there, the rest still
    # to reach it), then resumed: the rungs come back with the experiment (HalvingState) and every
    # trial from its checkpoint with its data streams, so it prunes the same trials and ends on the
    # same numbers, to the last bit, as the sweep that was never stopped.
    stopped = tmp_path / "stopped"
    code, err = disturbed(["sweep/run.py", *args(stopped)], tmp_path / "driver",
                          ready=lambda driver: rung_reports(stopped, "sha", 256) >= 2,
                          disturb=lambda driver: driver.send_signal(signal.SIGINT))
    assert code == 130, err[-3000:]
    assert rung_reports(stopped, "sha", 256) < 8, "the first rung filled before the interruption"
    capsys.readouterr()
    main(["--resume", "--no-figures", "--results-dir", str(stopped), "--name", "sha"])
    assert "its rungs as they were left" in capsys.readouterr().out
    key = ["dimension", "depth", "width", "lr"]
    columns = ["status", "steps", "val_nmse"]
    expected, got = (read(r, "sha").set_index(key).sort_index()[columns] for r in (whole, stopped))
    pd.testing.assert_frame_equal(got, expected)
