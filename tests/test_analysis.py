"""The joined table and the figures, on a small real sweep made here (the notebook: test_notebook.py)."""

import json
import math

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from ray.tune import ExperimentAnalysis

from dotmlp import analysis, tracking

pytestmark = pytest.mark.slow
NAME = "joined"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """18 trials over two tasks with learning rates 1e-3, 1e1 and 1e5 on every cell: some
    complete, some are pruned by ASHA, the largest learning rates diverge."""
    from sweep.run import main

    results = tmp_path_factory.mktemp("analysis")
    summary = main(["--num-samples", "18", "--max-steps", "256", "--reports", "6",
                    "--dimensions", "2,4", "--depths", "0,1,2", "--widths", "16",
                    "--multiply", "off", "--lr-range", "1e-3,1e5", "--seeds", "2",
                    "--results-dir", str(results), "--name", NAME])
    return results, summary


def test_joined_table_has_every_trial_once_with_both_ids(sweep):
    results, summary = sweep
    table = pd.read_csv(results / NAME / analysis.TABLE_FILE)
    tune_trials = ExperimentAnalysis(str(results / NAME)).trials
    assert len(table) == len(tune_trials) == 18 == summary["trials"]
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
        assert row["seeds"] == 2 and len(json.loads(row["val_nmse_seeds"])) == 2
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
    grid = {"dimensions": [2, 4], "depths": [0, 1, 2], "widths": [16], "multiply": [False]}
    figures = analysis.heatmap_figures(table, grid)
    assert list(figures) == ["heatmap_multiply_off"]
    panels = [ax for ax in figures["heatmap_multiply_off"].axes if ax.get_title().startswith("d = ")]
    assert [ax.get_title() for ax in panels] == ["d = 2", "d = 4"]
    # depth 0 has no width: one cell of its own ("linear"), the MLPs' columns blank in its row.
    cells = analysis.cells(table)
    assert set(cells.query("depth == 0")["width"]) == {0} and len(cells.query("depth == 0")) == 2
    labels = [t.get_text() for t in panels[0].get_xticklabels()]
    assert labels == ["linear", "16"]
    image = matplotlib.image.imread(results / NAME / "heatmap_multiply_off.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert matplotlib.image.imread(results / NAME / "frontier.png").ndim == 3


def test_heatmap_labels_keep_the_true_value_and_mark_the_cell():
    # The colour scale is clipped at 1e-8; the number printed in the cell is not.
    panel = pd.DataFrame({"depth": [0, 2], "width": [0, 64], "val_nmse": [3.7e-14, 2e-3],
                          "budget_limited": [False, True], "lrs": [3, 1]})
    values, labels = analysis.cell_labels(panel, depths=[0, 2], widths=[0, 64])
    assert labels.loc[0, 0] == "4e-14" and values.loc[0, 0] == 3.7e-14
    assert labels.loc[2, 64] == "2e-03+?"  # still improving, and fewer than 3 learning rates
    assert labels.loc[2, 0] == "" and pd.isna(values.loc[2, 0])


def cell_rows(rows):
    keys = ["dimension", "multiply", "depth", "width", "lr", "params", "val_nmse"]
    frame = pd.DataFrame([dict(zip(keys, row, strict=True)) for row in rows])
    return frame.assign(status="completed", seeds=3, trial_id=[f"t{i}" for i in range(len(frame))],
                        steps=100, samples=1e5, val_nmse_min=frame["val_nmse"] / 2,
                        val_nmse_max=frame["val_nmse"] * 2, budget_limited=False)


def test_the_frontier_keeps_only_models_no_smaller_one_beats_whatever_the_row_order():
    rows = [(8, False, 1, 16, 1e-3, 100, 0.5),
            (8, False, 1, 32, 1e-3, 200, 0.5),   # tied with a smaller model: not on the front
            (8, False, 2, 16, 1e-3, 300, 0.7),   # dominated by the 100-parameter model
            (8, False, 2, 32, 1e-3, 400, 0.1),
            (8, False, 2, 64, 1e-3, 500, 0.1)]   # tied again
    table = cell_rows(rows)
    front = analysis.frontier(table)
    assert front["params"].tolist() == [100, 400]
    shuffled = analysis.frontier(table.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(shuffled.reset_index(drop=True), front.reset_index(drop=True))


def test_every_trial_records_the_device_ray_granted_it(sweep):
    results, _ = sweep
    table = pd.read_csv(results / NAME / analysis.TABLE_FILE)
    assert (table["device"] == "cpu").all()  # no GPU share: the CPU, whatever the worker sees
    client = MlflowClient(tracking_uri=tracking.default_uri(results))
    for row in table.itertuples():
        assert client.get_run(row.run_id).data.tags[tracking.DEVICE_TAG] == "cpu"


def test_a_seed_that_goes_nan_at_the_end_is_in_the_table_and_the_figures(tmp_path):
    """MLflow's store keeps finite values only: its latest val_nmse_max is the evaluation before.
    The table, the curves and the figures show the final one's."""
    import ray
    from ray import tune

    from dotmlp import record as sweep_record
    from dotmlp.config import SweepSettings
    from dotmlp.tune.mlflow_runs import MLflowTrialRuns

    # Defined here, not at module level: Ray's workers cannot import a test module.
    def one_seed_goes_nan(config):
        """A stand-in for train_trial's reports (3 replicas, the ladder's last two evaluations):
        replica 2 goes NaN at the last one, where the seeds' range becomes [0.04, inf]; the trial
        has not diverged (most replicas have not)."""
        from ray import tune

        for steps, seed2, top, train_mse in ((128, 0.06, 0.06, 0.10), (256, math.nan, math.inf, math.inf)):
            tune.report({"steps": float(steps), "samples": steps * 1024.0, "seeds": 3.0,
                         "val_nmse": 0.05, "val_nmse_min": 0.04, "val_nmse_max": top, "val_mse": 0.1,
                         "val_r2": 0.95, "train_mse": train_mse, "diverged": 0.0,
                         "diverged_replicas": float(math.isnan(seed2)), "val_nmse_previous": 0.06,
                         "steps_previous": steps / 2, "val_nmse_seed0": 0.04, "val_nmse_seed1": 0.05,
                         "val_nmse_seed2": seed2, "params": 41, "device": "cpu"})

    settings = SweepSettings(max_steps=256, reports=2, dimensions=(2,), depths=(1,), widths=(8,),
                             multiply=(False,), halving="asynchronous")
    uri = tracking.default_uri(tmp_path)
    record = sweep_record.new(settings, "nan_seed", None, None, {"cpu": 1, "gpu": 0}, [128])
    (tmp_path / "nan_seed").mkdir()
    sweep_record.write(tmp_path, "nan_seed", record)
    tracking.ensure_experiment(uri, "nan_seed")
    runs = MLflowTrialRuns(uri, "nan_seed", record["sweep_id"], settings.trial_settings(),
                           settings.max_t)
    # "local": a bare ray.init() joins the cluster another pytest process may have running
    # (ray start and cluster_utils leave its address in /tmp/ray/ray_current_cluster).
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        tune.Tuner(one_seed_goes_nan,
                   param_space={"dimension": 2, "multiply": False, "depth": 1, "width": 8,
                                "lr": 1e-3},
                   run_config=tune.RunConfig(name="nan_seed", storage_path=str(tmp_path),
                                             callbacks=[runs], verbose=0)).fit()
    finally:
        ray.shutdown()
    table = analysis.build(tmp_path, "nan_seed")
    [row] = table.itertuples()
    logged = MlflowClient(tracking_uri=uri).get_metric_history(row.run_id, "val_nmse_max")
    assert [(m.step, m.value) for m in logged] == [(128, 0.06)]  # the store's latest: stale
    assert row.status == "completed" and row.steps == 256
    assert (row.val_nmse, row.val_nmse_min, row.val_nmse_max) == (0.05, 0.04, math.inf)
    assert row.train_mse == math.inf and row.diverged_replicas == 1
    assert json.loads(row.val_nmse_seeds)[:2] == [0.04, 0.05]
    assert math.isnan(json.loads(row.val_nmse_seeds)[2])
    written = pd.read_csv(tmp_path / "nan_seed" / analysis.TABLE_FILE)
    assert written["val_nmse_max"].tolist() == [math.inf]
    curves = pd.read_csv(tmp_path / "nan_seed" / analysis.CURVES_FILE).set_index("steps")
    assert curves.loc[256, "val_nmse_max"] == math.inf and curves.loc[128, "val_nmse_max"] == 0.06
    [cell] = analysis.cells(table).itertuples()
    assert cell.diverged_replicas == 1
    _, labels = analysis.cell_labels(analysis.cells(table), depths=[1], widths=[8])
    assert labels.loc[1, 8].endswith(analysis.MARKS["diverged_seed"])
    assert (tmp_path / "nan_seed" / "frontier.png").exists()
