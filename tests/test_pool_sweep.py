"""A sweep in Rendle et al.'s regime: `sweep/run.py --data pool --users …` searches the pool size
like any other axis, with epochs as its budget and ASHA's time."""

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from dotmlp import sweep, tracking
from dotmlp.config import ConfigError, SweepSettings, TrialConfig, epoch_steps
from dotmlp.tune import scheduler as dscheduler
from dotmlp.tune import space
from dotmlp.tune.status import trial_status


def pool_settings(**changes) -> SweepSettings:
    return SweepSettings(**{"data": "pool", "users": (1000, 4000), "dimensions": (16,),
                            "depths": (1, 2), "widths": (64,), "multiply": (False,),
                            "batch_size": 256, **changes})


def test_a_pool_sweep_budgets_in_epochs_the_paper_s_32_unless_told():
    settings = pool_settings()
    assert settings.epochs == 32 and settings.time_attr == "epochs_done" and settings.max_t == 32
    assert settings.ladder == [1, 2, 4, 8, 16, 32]  # reports 6, x2 apart, in epochs
    assert settings.grace_period == 4 and dscheduler.rung_milestones(settings) == [4, 16]
    trial = settings.trial_settings()
    assert trial["data"] == "pool" and trial["epochs"] == 32
    assert "data" not in SweepSettings().trial_settings()  # a fresh sweep's trials are unchanged


def test_a_pool_trial_s_steps_follow_its_size_rounded_onto_the_ladder():
    # 1,000 users: 90,000 training pairs; 32 epochs of batch 256 are 11,250 steps (the paper's).
    assert epoch_steps(32, 1000, 256) == 11250
    assert epoch_steps(32, 1000, 256, reports=6) == 11264  # the next multiple of 2**5
    config = TrialConfig(dimension=16, data="pool", users=1000, epochs=32, batch_size=256, reports=6)
    assert config.steps == 11264 and config.evaluates_at(11264 // 8)
    # Every evaluation at or just past its fraction of the epochs: ASHA's rungs are never missed.
    for j in range(6):
        assert (11264 >> j) * 256 / 90000 >= 32 / 2**j


@pytest.mark.parametrize("changes, words", [
    ({"users": ()}, "users must list pool sizes"),
    ({"users": (5,)}, "users must be an integer >= 10"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"target": "cosine"}, "data pool takes target dot only"),
    ({"cells": ((16, False, 1, 64),)}, "a preset's cells are for the fresh regime"),
    ({"data": "fixed"}, "data must be one of fresh, pool"),
])
def test_pool_settings_are_validated(changes, words):
    with pytest.raises(ConfigError, match=words):
        pool_settings(**changes)


def test_users_and_epochs_need_data_pool():
    for changes in ({"users": (1000,)}, {"epochs": 32}):
        with pytest.raises(ConfigError, match="apply to data pool only"):
            SweepSettings(**changes)


def test_every_cell_is_tried_at_every_pool_size_and_learning_rate():
    settings = pool_settings(num_samples=12)  # 2 cells x 2 pool sizes x 3 learning rates
    points = space.stratified_points(settings)
    assert {(p["depth"], p["users"], round(p["lr"], 6)) for p in points} == {
        (depth, users, round(lr, 6)) for depth in (1, 2) for users in (1000, 4000)
        for lr in settings.learning_rates}
    assert "users" in space.search_space(settings)
    assert "users" not in space.search_space(SweepSettings())


def test_asha_compares_a_pool_trial_only_with_trials_of_its_own_pool_size():
    scheduler = dscheduler.make_scheduler(pool_settings(reports=6))
    scheduler.set_search_properties("val_nmse", "min")
    def trial(users):
        return Trial("dotmlp_test", config={"dimension": 16, "multiply": False, "depth": 2,
                                            "width": 64, "users": users}, stub=True)
    large, small, small_worse = [trial(64000) for _ in range(4)], trial(1000), trial(64000)
    for t in [*large, small, small_worse]:
        scheduler.on_trial_add(None, t)
    for t, value in zip(large, [0.01, 0.02, 0.03, 0.04], strict=True):
        scheduler.on_trial_result(None, t, {"epochs_done": 4.0, "val_nmse": value})
    # A small pool generalises worse: judged against the large pool's trials it would be stopped.
    result = {"epochs_done": 4.01, "val_nmse": 0.3}
    assert scheduler.on_trial_result(None, small, result) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, small_worse, result) == TrialScheduler.STOP


def test_a_pool_trial_is_complete_at_its_epochs_whatever_its_steps():
    result = {"epochs_done": 32.05, "steps": 11264, "diverged": 0}
    assert trial_status(result, 32, "TERMINATED", True, "epochs_done") == "completed"
    assert trial_status({**result, "epochs_done": 16.0}, 32, "TERMINATED", True,
                        "epochs_done") == "pruned"


def test_resume_keeps_a_pool_sweep_s_users():
    record = {"name": "p", "settings": pool_settings().to_dict()}
    with pytest.raises(sweep.UsageError, match="users"):
        sweep.resume_settings(record, pool_settings(users=(1000,)), {"users"})
    assert sweep.resume_settings(record, pool_settings(), set()).users == (1000, 4000)


@pytest.mark.parametrize("argv, words", [
    (["--data", "pool"], "data pool needs --users"),
    (["--users", "1000"], "--users and --epochs apply to --data pool only"),
    (["--data", "pool", "--users", "1000", "--max-steps", "64"], "its budget is --epochs"),
    (["--data", "pool", "--users", "1000,5"], "users must be comma-separated integers >= 10"),
    (["--data", "pool", "--users", "1000", "--epochs", "0"], "epochs must be an integer >= 1"),
    (["--data", "pool", "--users", "1000", "--preset", "study-cpu"], "fresh regime"),
])
def test_pool_usage_errors_exit_2_with_one_line(run_cli, tmp_path, argv, words):
    proc = run_cli("sweep/run.py", *argv, "--results-dir", str(tmp_path), timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def pool_table() -> pd.DataFrame:
    """trials.csv of a pool sweep, one task (d = 16, 1,000 users), two cells. In cell 1x64 the
    better learning rate (1e-3) was pruned at 8 epochs, so it has no train_rmse (the training
    pairs are scored after the last step only) and, recorded before the seeds' range was
    reported, no val_nmse range; lr 1e-2 ran its 32 epochs. Cell 2x64 is worse, complete."""
    nan = float("nan")
    task = {"dimension": 16, "multiply": False, "users": 1000, "seeds": 3, "budget_limited": False,
            "missing": "", "dot_test_rmse": 0.85, "dot_fresh_rmse": 0.85, "naive_test_rmse": 1.13,
            "naive_fresh_rmse": 1.13}
    def trial(trial_id, depth, lr, status, epochs, nmse, nmse_range, test, train):
        steps = epochs * 352
        return {**task, "trial_id": trial_id, "depth": depth, "width": 64, "lr": lr,
                "params": 1153 * depth, "status": status, "rung": 0 if status == "pruned" else 1,
                "steps": steps, "samples": steps * 256, "epochs_done": float(epochs),
                "val_nmse": nmse, "val_nmse_min": nmse_range[0], "val_nmse_max": nmse_range[1],
                **{f"{split}_rmse{stat}": value for split, value in (("test", test), ("fresh", test),
                                                                       ("train", train))
                   for stat in ("", "_min", "_max")}}
    return pd.DataFrame([
        trial("a", 1, 1e-3, "pruned", 8, 0.10, (nan, nan), 0.90, nan),
        trial("b", 1, 1e-2, "completed", 32, 0.30, (0.25, 0.35), 0.95, 0.50),
        trial("c", 2, 1e-3, "completed", 32, 0.40, (0.38, 0.42), 0.97, 0.55),
    ])


def test_a_cell_row_and_the_summary_s_best_are_one_trial_s_row():
    from dotmlp import analysis

    table = pool_table()
    cells = analysis.cells(table).set_index("depth")
    best = table.set_index("trial_id").loc["a"]
    row = cells.loc[1]
    assert (row["lrs"], row["trials"]) == (2, 2)
    for column in ("lr", "status", "steps", "epochs_done", "val_nmse", "val_nmse_min",
                   "val_nmse_max", "test_rmse", "train_rmse", "train_rmse_max"):
        assert row[column] == best[column] or (pd.isna(row[column]) and pd.isna(best[column])), column
    record = {"rungs": [4, 16], "settings": pool_settings(users=(1000,)).to_dict()}
    [summary_best] = analysis.summarize(table, record)["best"]
    for column, value in summary_best.items():
        expected = row[column] if column in row else cells.reset_index().iloc[0][column]
        assert value == expected or (pd.isna(value) and pd.isna(expected)), column


@pytest.mark.slow
def test_a_pool_sweep_runs_end_to_end(ray_runtime, tmp_path, capsys):
    # The CLI's main() in this process, on the tests' shared Ray runtime (conftest.SharedRay).
    from sweep.run import main

    main(["--data", "pool", "--users", "20,40", "--epochs", "4", "--reports", "3", "--dimensions", "2",
          "--depths", "1", "--widths", "8,16", "--lrs-per-cell", "2", "--num-samples", "8",
          "--seeds", "2", "--multiply", "off", "--results-dir", str(tmp_path), "--name", "pool"])
    stdout = capsys.readouterr().out
    assert "users=    20" in stdout and "users=    40" in stdout
    assert "test RMSE" in stdout and "(1 epochs)" in stdout  # ASHA's rung, in epochs
    out = tmp_path / "pool"
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 8 and set(table["users"]) == {20, 40}
    done = table[table["status"] == "completed"]
    assert set(done["users"]) == {20, 40}  # ASHA runs some trial of each pool size's task on
    for row in done.itertuples():
        assert row.epochs_done >= 4 and row.steps <= epoch_steps(4, row.users, 256, reports=3)
        assert row.test_rmse_min <= row.test_rmse <= row.test_rmse_max
        assert 0 < row.dot_test_rmse < row.naive_test_rmse  # the paper's two reference lines
    cells = pd.read_csv(out / "cells.csv")
    assert sorted(zip(cells["users"], cells["width"], strict=True)) == [
        (20, 8), (20, 16), (40, 8), (40, 16)]  # the pool size is a cell's coordinate
    assert (out / "pool_rmse.png").stat().st_size > 10_000
    assert not (out / "answer.csv").exists()  # the answer is the fresh regime's question
    client = MlflowClient(tracking_uri=tracking.default_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("pool").experiment_id])
    assert len(runs) == 8
    for run in runs:
        users = run.data.params["users"]
        assert run.info.run_name.startswith(f"d2 U{users} off 1x")
        assert run.data.params["data"] == "pool" and run.data.params["epochs"] == "4"
        assert {"test_rmse", "test_rmse_min", "dot_test_rmse", "epochs_done"} <= set(run.data.metrics)
