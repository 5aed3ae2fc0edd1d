"""The join: one sweep's Tune trials and MLflow runs, one row per trial (trials.csv), and every
trial's learning curve (curves.csv). A trial missing on either side keeps its row, flagged in
`missing`; its status is what its record says it became (dotmlp.tune.status)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from dotmlp import record as sweep_record
from dotmlp.tune.status import flag, trial_status

CONFIG_COLUMNS = ["dimension", "multiply", "depth", "width", "lr"]
# What a pool sweep's trial adds (Rendle et al.'s protocol): its pool size is a config column and
# a cell's coordinate; its last result carries the paper's RMSEs.
POOL_RESULTS = ("epochs_done", *(f"{split}_rmse{stat}" for split in ("test", "train", "fresh")
                                  for stat in ("", "_min", "_max")),
                "dot_test_rmse", "dot_fresh_rmse", "naive_test_rmse", "naive_fresh_rmse")
# A cell still improving at the end of its budget is an upper bound on what its architecture
# reaches, not its limit: budget-limited when the median NMSE fell by more than this fraction
# over the last doubling of the budget (the ladder's last two evaluations).
BUDGET_LIMITED_DROP = 0.2
# Below this a model is exact to float32's resolution (a linear model with the flag): its last
# digits move from one evaluation to the next, which is not "still improving".
EXACT_BELOW = 1e-7
CURVE_METRICS = ("samples", "val_nmse", "val_nmse_min", "val_nmse_max", "diverged")
# A trial's final evaluation, as Tune received it: NaN and inf kept (a seed gone NaN counts as +inf
# in the median and the seeds' range: dotmlp.module.replica_stats). MLflow's copies are used only
# for a run whose Tune trial is gone: the driver logs finite values only (MLflowTrialRuns), so
# the store's latest value of a metric that went inf is an earlier evaluation's.
FINAL_METRICS = ("val_nmse", "val_nmse_min", "val_nmse_max", "val_mse", "val_r2", "train_mse",
                 "diverged_replicas")


def load_record(results_dir: str | os.PathLike, name: str) -> dict:
    return sweep_record.load(results_dir, name)


def tune_trials(experiment_path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per Tune trial (its config, last result, status, where it ran), and every trial's
    learning curve (one row per evaluation)."""
    import logging

    from ray.tune import ExperimentAnalysis

    # Trials that never started have no results yet: Tune warns once per trial (hundreds of lines
    # for an interrupted sweep); their rows say so themselves.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    experiment = ExperimentAnalysis(experiment_path)
    rows = []
    for trial in experiment.trials:
        last = trial.last_result or {}
        seeds = int(last.get("seeds") or trial.config.get("seeds") or 1)
        first_seed = last.get("config", {}).get("seed", 0)
        replicas = sorted((k for k in last if k.startswith("val_nmse_seed")),
                          key=lambda k: int(k.removeprefix("val_nmse_seed")))
        pool = ({"users": trial.config["users"], **{key: last.get(key) for key in POOL_RESULTS}}
                if "users" in trial.config else {})
        rows.append(
            {
                "trial_id": trial.trial_id,
                **{key: trial.config.get(key) for key in CONFIG_COLUMNS},
                **pool,
                "params": last.get("params"),
                "seeds": seeds,
                "first_seed": first_seed,
                "steps": last.get("steps", 0),
                "samples": last.get("samples", 0),
                # The sentinel in val_nmse of a diverged trial goes in join().
                **{key: last.get(key) for key in FINAL_METRICS},
                # Each replica's own final NMSE as measured: NaN or inf kept (JSON's NaN and
                # Infinity, which Python's json reads back).
                "val_nmse_seeds": json.dumps([last[k] for k in replicas]),
                "val_nmse_previous": last.get("val_nmse_previous"),
                "steps_previous": last.get("steps_previous"),
                "diverged": flag(last.get("diverged")),
                "tune_status": trial.status,
                "retries": trial.run_metadata.num_failures,
                "node_ip": last.get("node_ip"),
                "node_id": last.get("node_id"),
                "device": last.get("device"),  # the kind it trained on, cpu or cuda
                "train_seconds": last.get("train_seconds"),
                "trial_seconds": last.get("time_total_s"),
            }
        )
    curves = []
    for frame in experiment.trial_dataframes.values():
        if frame is None or not len(frame) or "trial_id" not in frame:
            continue
        columns = [c for c in ("trial_id", "steps", "samples", "val_nmse", "val_nmse_min",
                               "val_nmse_max", "diverged") if c in frame]
        curves.append(frame[columns])
    curves = (pd.concat(curves, ignore_index=True) if curves
              else pd.DataFrame(columns=["trial_id", "steps", "samples", "val_nmse"]))
    return pd.DataFrame(rows), without_divergence_sentinel(curves).sort_values(
        ["trial_id", "steps"], ignore_index=True)


def without_divergence_sentinel(curves: pd.DataFrame) -> pd.DataFrame:
    """Curves whose diverged evaluations hold NaN, not the sentinel reported to the scheduler
    (the sentinel is not a measurement); the diverged column goes."""
    if "diverged" in curves:
        curves.loc[curves.pop("diverged").map(flag), "val_nmse"] = np.nan
    return curves


def mlflow_runs(uri: str, experiment: str, sweep_id: str) -> pd.DataFrame:
    from dotmlp import tracking

    runs = tracking.experiment_runs(uri, experiment, sweep_id)
    columns = {
        "run_id": "run_id",
        f"tags.{tracking.TRIAL_TAG}": "trial_id",
        f"tags.{tracking.STATUS_TAG}": "mlflow_status_tag",
        f"tags.{tracking.DEVICE_TAG}": "mlflow_device_tag",
        "status": "mlflow_run_status",
        **{f"metrics.{metric}": f"mlflow_{metric}" for metric in FINAL_METRICS},
    }
    for column in columns:
        if column not in runs:
            runs[column] = np.nan
    return runs[list(columns)].rename(columns=columns)


def mlflow_curves(uri: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Every trial's evaluations as its MLflow run logged them (the driver logs each report
    straight to the store), one row per (trial, step). Tune's own log of a trial (result.json)
    can lose the evaluations before a restart (a trial resumed from a rung, a retry, --resume):
    Ray copies the storage's copy over it when the trial restarts, and that copy may predate the
    last sync. A step logged twice (a trial resumed from an earlier checkpoint) keeps its last."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    points: dict[tuple, dict] = {}
    for run_id, trial_id in zip(runs["run_id"], runs["trial_id"], strict=True):
        for key in CURVE_METRICS:
            for metric in client.get_metric_history(run_id, key):
                points.setdefault((trial_id, float(metric.step)), {})[key] = metric.value
    return pd.DataFrame([{"trial_id": trial, "steps": step, **values}
                         for (trial, step), values in points.items()])


def merge_curves(tune_curves: pd.DataFrame, logged: pd.DataFrame) -> pd.DataFrame:
    """The MLflow runs' curves, and Tune's for any evaluation, or any value of one, they lack:
    the store has only the finite values (an evaluation where a seed went NaN has its range's
    inf from Tune's log)."""
    key = ["trial_id", "steps"]
    both = tune_curves.drop_duplicates(key, keep="first").set_index(key)
    if len(logged):
        both = without_divergence_sentinel(logged).set_index(key).combine_first(both)
    return both.reset_index()[tune_curves.columns].sort_values(key, ignore_index=True)


def join(tune_df: pd.DataFrame, runs: pd.DataFrame, record: dict) -> pd.DataFrame:
    """One row per trial; a trial missing on either side keeps its row, flagged in `missing`."""
    settings = sweep_record.settings(record)
    asha, rungs = settings.asha, record["rungs"]
    # A pool sweep measures its budget in epochs (its trials' steps differ with their pool size).
    pool, time_attr, max_t = settings.data == "pool", settings.time_attr, settings.max_t
    table = tune_df.merge(runs, on="trial_id", how="outer", indicator=True, validate="1:1")
    # A run without its Tune trial still says where it trained.
    table["device"] = table["device"].fillna(table.pop("mlflow_device_tag"))
    table["missing"] = table.pop("_merge").map(
        {"both": "", "left_only": "mlflow run", "right_only": "tune trial"}
    ).astype(str)
    orphan = table["missing"] == "tune trial"
    for metric in FINAL_METRICS:  # the final evaluation's; MLflow's only where Tune's is gone
        table[metric] = table[metric].where(~orphan, table.pop(f"mlflow_{metric}"))
    table["status"] = [
        # Without its Tune trial a run's status is what the callback tagged it with, if anything.
        (row.mlflow_status_tag if isinstance(row.mlflow_status_tag, str) else "unfinished")
        if row.missing == "tune trial"
        else trial_status({"diverged": row.diverged, time_attr: getattr(row, time_attr)}, max_t,
                          row.tune_status, asha, time_attr)
        for row in table.itertuples()
    ]
    # The rung a trial last passed: how far ASHA let it go (0 = stopped at the first rung).
    table["rung"] = [int(np.searchsorted(rungs, done, side="right")) - 1 if done else -1
                     for done in table[time_attr].fillna(0)]
    diverged = table["status"] == "diverged"
    # Its median is the sentinel the scheduler got, not a measurement; its seeds' range is one.
    table.loc[diverged, "val_nmse"] = np.nan
    table["budget_limited"] = still_improving(table) & ~diverged
    users = ["users"] if pool else []
    order = ["trial_id", "run_id", "dimension", *users, *CONFIG_COLUMNS[1:], "params", "seeds",
             "status", "rung", "steps", "samples", "val_nmse", "val_nmse_min", "val_nmse_max",
             "val_nmse_seeds", "diverged_replicas", "val_nmse_previous", "steps_previous",
             "budget_limited", "val_mse", "val_r2", "train_mse", *(POOL_RESULTS if pool else ()),
             "retries", "node_ip", "node_id", "device", "train_seconds", "trial_seconds",
             "tune_status", "mlflow_run_status", "mlflow_status_tag", "missing"]
    return table[order].sort_values(["dimension", *users, "multiply", "depth", "width", "lr"],
                                    ignore_index=True)


def still_improving(table: pd.DataFrame) -> pd.Series:
    """Budget-limited: the median NMSE fell by more than BUDGET_LIMITED_DROP over the last
    doubling of the budget (the evaluation before the last was at half the steps), and is not
    already exact (EXACT_BELOW)."""
    doubling = table["steps_previous"] * 2 == table["steps"]
    fell = table["val_nmse"] < (1 - BUDGET_LIMITED_DROP) * table["val_nmse_previous"]
    return (doubling & fell & (table["val_nmse"] >= EXACT_BELOW)).fillna(False).astype(bool)
