"""The joined table, the figures and the notebook, on a small real sweep made here."""

import os

import matplotlib.image
import nbformat
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient
from ray.tune import ExperimentAnalysis

from dotmlp import analysis, tracking
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
NAME = "joined"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """12 trials over two tasks with learning rates up to 1e5 (seed 3 puts three above 3e3 on
    depth-1 nets): some complete, some are pruned by ASHA, some diverge."""
    from sweep.run import main

    results = tmp_path_factory.mktemp("analysis")
    summary = main(["--num-samples", "12", "--max-steps", "256", "--reports", "8",
                    "--dimensions", "2,4", "--depths", "0,1,2", "--widths", "16,32",
                    "--multiply", "off", "--lr-range", "1e-3,1e5", "--seed", "3",
                    "--results-dir", str(results), "--name", NAME])
    return results, summary


def test_joined_table_has_every_trial_once_with_both_ids(sweep):
    results, summary = sweep
    table = pd.read_csv(results / NAME / analysis.TABLE_FILE)
    tune_trials = ExperimentAnalysis(str(results / NAME)).trials
    assert len(table) == len(tune_trials) == 12 == summary["trials"]
    assert table["trial_id"].is_unique and table["run_id"].notna().all()
    assert (table["missing"].fillna("") == "").all()
    assert {"completed", "pruned", "diverged"} <= set(table["status"]), table["status"].tolist()


def test_statuses_agree_with_tune(sweep):
    results, _ = sweep
    table = pd.read_csv(results / NAME / analysis.TABLE_FILE).set_index("trial_id")
    for trial in ExperimentAnalysis(str(results / NAME)).trials:
        row, last = table.loc[trial.trial_id], trial.last_result
        assert row["tune_status"] == trial.status
        if last["diverged"]:
            assert row["status"] == "diverged"
        elif last["steps"] >= 256:
            assert row["status"] == "completed"
        else:
            assert row["status"] == "pruned" and row["rung"] >= 0
        assert row["steps"] == last["steps"]


def test_final_nmse_is_the_last_value_logged_to_mlflow(sweep):
    results, _ = sweep
    table = pd.read_csv(results / NAME / analysis.TABLE_FILE)
    client = MlflowClient(tracking_uri=tracking.default_uri(results))
    for row in table.itertuples():
        history = client.get_metric_history(row.run_id, "val_nmse")
        if row.status == "diverged":
            assert np.isnan(row.val_nmse)
            continue
        last = max(history, key=lambda m: (m.step, m.timestamp))
        assert last.step == row.steps
        assert row.val_nmse == pytest.approx(last.value, rel=1e-12)


def test_analysis_cli_rebuilds_the_same_table(sweep, run_cli):
    results, _ = sweep
    before = pd.read_csv(results / NAME / analysis.TABLE_FILE)
    (results / NAME / analysis.TABLE_FILE).unlink()
    proc = run_cli("-m", "dotmlp.analysis", "--results-dir", str(results), "--name", NAME)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(results / NAME / analysis.TABLE_FILE), before)


def test_analysis_cli_with_no_such_sweep(run_cli, tmp_path):
    proc = run_cli("-m", "dotmlp.analysis", "--results-dir", str(tmp_path), "--name", "nope")
    assert proc.returncode == 2 and "no sweep named 'nope'" in proc.stderr


def test_heatmaps_have_one_panel_per_dimension_and_blank_cells(sweep):
    results, _ = sweep
    table = pd.read_csv(results / NAME / analysis.TABLE_FILE)
    grid = {"dimensions": [2, 4], "depths": [0, 1, 2], "widths": [16, 32], "multiply": [False]}
    figures = analysis.heatmap_figures(table, grid)
    assert list(figures) == ["heatmap_multiply_off"]
    panels = [ax for ax in figures["heatmap_multiply_off"].axes if ax.get_title().startswith("d = ")]
    assert [ax.get_title() for ax in panels] == ["d = 2", "d = 4"]
    # depth 0 has no width: its row has exactly one filled cell, the others blank (masked).
    assert pd.isna(analysis.best_per_cell(table).query("depth == 0")["width"]).sum() == 0
    image = matplotlib.image.imread(results / NAME / "heatmap_multiply_off.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert matplotlib.image.imread(results / NAME / "frontier.png").ndim == 3


def test_notebook_runs_top_to_bottom(sweep):
    results, _ = sweep
    notebook = nbformat.read(ROOT / "results" / "heatmaps.ipynb", as_version=4)
    os.environ.update(DOTMLP_RESULTS_DIR=str(results), DOTMLP_SWEEP=NAME)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "results")}}).execute()
    finally:
        del os.environ["DOTMLP_RESULTS_DIR"], os.environ["DOTMLP_SWEEP"]
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # heatmap and frontier
