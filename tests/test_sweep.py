"""The sweep end to end: the real CLI, a real local Ray runtime, a real SQLite MLflow store."""

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from dotmlp import tracking

pytestmark = pytest.mark.slow


def sweep_runs(results_dir, name):
    client = MlflowClient(tracking_uri=tracking.default_uri(results_dir))
    experiment = client.get_experiment_by_name(name)
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def test_issue_command_runs_end_to_end(run_cli, tmp_path):
    proc = run_cli("sweep/run.py", "--num-samples", "6", "--max-steps", "256",
                   "--results-dir", str(tmp_path), "--name", "e2e")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 trials:" in proc.stdout and "Best held-out NMSE per dimension" in proc.stdout
    assert "cells: 0 single-seed" in proc.stdout  # three seeds per trial by default
    assert "RuntimeWarning" not in proc.stderr  # panels without trials are drawn blank, quietly
    assert (tmp_path / "e2e" / "tuner.pkl").exists()  # the Tune experiment lives under DIR/NAME
    client, runs = sweep_runs(tmp_path, "e2e")
    assert len(runs) == 6
    trial_dirs = {p.name for p in (tmp_path / "e2e").iterdir() if p.name.startswith("train_trial")}
    for run in runs:
        trial_id = run.data.tags[tracking.TRIAL_TAG]
        assert any(trial_id in d for d in trial_dirs)  # each run tied to its Tune trial
        assert {"dimension", "depth", "lr", "multiply", "steps", "seeds"} <= set(run.data.params)
        assert ("width" in run.data.params) == (run.data.params["depth"] != "0")
        assert run.info.run_name.startswith(f"d{run.data.params['dimension']} ")  # d4 off 2x64 lr…
        curve = client.get_metric_history(run.info.run_id, "val_nmse")
        steps = sorted(m.step for m in curve)
        assert len(curve) >= 2 and steps[-1] <= 256
        assert all(b == 2 * a for a, b in zip(steps, steps[1:], strict=False))  # the x2 ladder
        for seed in (0, 1, 2):  # every replica's own curve
            assert len(client.get_metric_history(run.info.run_id, f"val_nmse_seed{seed}")) == len(curve)
        assert run.info.status == "FINISHED"
    table = pd.read_csv(tmp_path / "e2e" / "trials.csv")
    assert len(table) == 6
    assert {"heatmap_multiply_off.png", "heatmap_multiply_on.png", "frontier.png",
            "learning_rates.png", "learning_curves.png", "cells.csv", "curves.csv"} <= {
        p.name for p in (tmp_path / "e2e").iterdir()}
    experiment = client.get_experiment_by_name("e2e")  # artifacts beside the store, not ./mlruns
    assert experiment.artifact_location == (tmp_path / "mlartifacts").resolve().as_uri()


def test_diverging_trials_are_recorded_and_the_others_complete(ray_runtime, tmp_path):
    # Eight learning rates log-spaced from 1e-3 to 1e5 (1e-3, 1.4e-2, …, 7.2e3, 1e5): Adam with
    # lr >= 1e3 on a depth-4 ReLU net overflows to NaN within a few steps, lr <= 1e-2 trains normally.
    # The CLI's main() in this process, on the tests' shared Ray runtime (the command above is
    # the CLI in its own process, with its own runtime): a sweep leaves a runtime it did not start.
    import ray

    from sweep.run import main

    node = ray.get_runtime_context().get_node_id()
    main(["--num-samples", "8", "--max-steps", "128", "--reports", "5", "--dimensions", "4",
          "--depths", "4", "--widths", "64", "--multiply", "off", "--lr-range", "1e-3,1e5",
          "--lrs-per-cell", "8", "--results-dir", str(tmp_path), "--name", "div"])
    assert ray.is_initialized() and ray.get_runtime_context().get_node_id() == node
    table = pd.read_csv(tmp_path / "div" / "trials.csv")
    high, low = table[table["lr"] >= 1e3], table[table["lr"] <= 1e-2]
    assert len(high) and len(low), "the seed must draw both kinds of learning rate"
    assert (high["status"] == "diverged").all() and high["val_nmse"].isna().all()
    assert (low["status"] != "diverged").all() and (low["status"] != "errored").all()
    assert (table["status"] == "completed").any()
    assert (table["tune_status"] == "TERMINATED").all()  # a diverged trial ends; it does not crash
    _, runs = sweep_runs(tmp_path, "div")
    tags = {r.data.tags[tracking.TRIAL_TAG]: r.data.tags.get(tracking.STATUS_TAG) for r in runs}
    assert tags == dict(zip(table["trial_id"], table["status"], strict=True))


def few_second_trials(results, name) -> list[str]:
    """A sweep of trials of a few seconds each (width 256, no ASHA): trials are still running when
    the first ones have finished (6 trials, 2 at a time), so a kill or a Ctrl-C lands mid-sweep.
    No figures: the tests that interrupt it read its tables (the --resume that follows draws them)."""
    return ["sweep/run.py", "--num-samples", "6", "--max-steps", "768", "--batch-size", "512",
            "--reports", "4", "--dimensions", "2,4", "--depths", "2,4", "--widths", "256",
            "--multiply", "off", "--seeds", "1", "--no-asha", "--no-figures",
            "--results-dir", str(results), "--name", name]
