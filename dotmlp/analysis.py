"""Join a sweep's Tune trials and MLflow runs into one table, and draw what it says.

`python -m dotmlp.analysis --results-dir DIR --name NAME` writes DIR/NAME/trials.csv (one row per
trial), cells.csv (one row per architecture cell: its best learning rate's median over seeds),
curves.csv (every trial's held-out learning curve) and the figures. A results dir without its
Tune experiment (the committed one, a fetched one) redraws the figures from those tables.
Reads results only; never trains.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dotmlp import record as sweep_record
from dotmlp.cli import ArgumentParser, fail
from dotmlp.tune.status import flag, trial_status

TABLE_FILE = "trials.csv"
CELLS_FILE = "cells.csv"
CURVES_FILE = "curves.csv"
CONFIG_COLUMNS = ["dimension", "multiply", "depth", "width", "lr"]
CELL_COLUMNS = ["dimension", "multiply", "depth", "width"]
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
# Fewer learning rates than this on a cell, and its best is not called tuned.
MIN_LEARNING_RATES = 3
# Cells annotated as still improving (+) or with too few learning rates (?).
MARKS = {"budget_limited": "+", "few_lrs": "?"}
HEATMAP_TITLE = (
    "held-out NMSE, median over seeds at each cell's best learning rate "
    "(+ still improving at its budget: an upper bound; ? fewer than 3 learning rates tried)"
)


# ---------------------------------------------------------------------------- reading
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
                "tune_val_nmse": last.get("val_nmse"),
                "val_nmse_seeds": json.dumps([_finite(last[k]) for k in replicas]),
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


def _finite(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def mlflow_runs(uri: str, experiment: str, sweep_id: str) -> pd.DataFrame:
    from dotmlp import tracking

    runs = tracking.experiment_runs(uri, experiment, sweep_id)
    columns = {
        "run_id": "run_id",
        f"tags.{tracking.TRIAL_TAG}": "trial_id",
        f"tags.{tracking.STATUS_TAG}": "mlflow_status_tag",
        f"tags.{tracking.DEVICE_TAG}": "mlflow_device_tag",
        "status": "mlflow_run_status",
        "metrics.val_nmse": "val_nmse",
        "metrics.val_nmse_min": "val_nmse_min",
        "metrics.val_nmse_max": "val_nmse_max",
        "metrics.val_mse": "val_mse",
        "metrics.val_r2": "val_r2",
        "metrics.train_mse": "train_mse",
    }
    for column in columns:
        if column not in runs:
            runs[column] = np.nan
    return runs[list(columns)].rename(columns=columns)


CURVE_METRICS = ("samples", "val_nmse", "val_nmse_min", "val_nmse_max", "diverged")


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
    """The MLflow runs' curves, and Tune's for any evaluation they lack."""
    both = pd.concat([without_divergence_sentinel(logged), tune_curves], ignore_index=True)
    both = both.drop_duplicates(["trial_id", "steps"], keep="first")
    return both[tune_curves.columns].sort_values(["trial_id", "steps"], ignore_index=True)


# ---------------------------------------------------------------------------- the table
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
    table.loc[diverged, ["val_nmse", "val_nmse_min", "val_nmse_max"]] = np.nan
    table["budget_limited"] = still_improving(table) & ~diverged
    users = ["users"] if pool else []
    order = ["trial_id", "run_id", "dimension", *users, *CONFIG_COLUMNS[1:], "params", "seeds",
             "status", "rung", "steps", "samples", "val_nmse", "val_nmse_min", "val_nmse_max",
             "val_nmse_seeds", "val_nmse_previous", "steps_previous", "budget_limited", "val_mse",
             "val_r2", "train_mse", *(POOL_RESULTS if pool else ()), "retries", "node_ip",
             "node_id", "device", "train_seconds", "trial_seconds", "tune_status", "mlflow_run_status",
             "mlflow_status_tag", "missing"]
    return table[order].sort_values(["dimension", *users, "multiply", "depth", "width", "lr"],
                                    ignore_index=True)


def task_columns(table: pd.DataFrame) -> list[str]:
    """What a trial's task is: its dimension and flag, and in a pool sweep its pool size."""
    return ["dimension", "multiply", *(["users"] if "users" in table else [])]


def cell_columns(table: pd.DataFrame) -> list[str]:
    return [*task_columns(table), "depth", "width"]


def pool_results(table: pd.DataFrame) -> list[str]:
    return [column for column in POOL_RESULTS if column in table]


def still_improving(table: pd.DataFrame) -> pd.Series:
    """Budget-limited: the median NMSE fell by more than BUDGET_LIMITED_DROP over the last
    doubling of the budget (the evaluation before the last was at half the steps), and is not
    already exact (EXACT_BELOW)."""
    doubling = table["steps_previous"] * 2 == table["steps"]
    fell = table["val_nmse"] < (1 - BUDGET_LIMITED_DROP) * table["val_nmse_previous"]
    return (doubling & fell & (table["val_nmse"] >= EXACT_BELOW)).fillna(False).astype(bool)


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture cell: the learning rate whose median over seeds is lowest (pruned
    trials count at the budget they reached: an upper bound), how many learning rates and seeds
    stand behind it, and whether it was still improving at the end of its budget."""
    keys = cell_columns(table)
    columns = [*keys, "lr", "lrs", "trials", "seeds", "params", "steps", "samples", "val_nmse",
               "val_nmse_min", "val_nmse_max", "budget_limited", "status", *pool_results(table)]
    usable = table[table["status"].isin(["completed", "pruned"])].dropna(subset=["val_nmse"])
    if not len(usable):
        return pd.DataFrame(columns=columns)
    usable = one_linear_cell(usable)
    best = best_rows(usable, keys)
    counts = usable.groupby(keys).agg(lrs=("lr", "nunique"), trials=("trial_id", "size"))
    best = best.merge(counts.reset_index(), on=keys)
    return best[columns]


def best_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The row with the lowest val_nmse of each group of `keys`, whole: every column from that
    one trial (groupby().first() would take each column's first non-null value separately, so a
    pruned best trial without a train_rmse would show another learning rate's). Ties go to the
    earlier row; groups in the order of their keys."""
    ranked = frame.sort_values("val_nmse", kind="stable")
    return ranked.drop_duplicates(keys, keep="first").sort_values(keys, ignore_index=True)


def one_linear_cell(frame: pd.DataFrame) -> pd.DataFrame:
    """Depth 0 has no width: one cell (width 0), whatever width its trials carried."""
    return frame.assign(width=frame["width"].where(frame["depth"] > 0, 0))


def build(results_dir: str | os.PathLike, name: str, figures: bool = True,
          mlflow_uri: str | None = None, storage: str | None = None) -> pd.DataFrame:
    """Join the sweep's two records, write trials.csv, cells.csv and curves.csv (atomically) and
    the figures. Without the Tune experiment (a committed or fetched results dir), redraw the
    figures from the tables already there."""
    record = load_record(results_dir, name)
    out = Path(results_dir) / name
    experiment = (f"{storage.rstrip('/')}/{name}" if storage and "://" in storage
                  else str(Path(storage) / name) if storage
                  else sweep_record.experiment_path(record, results_dir))
    if "://" not in experiment and not (Path(experiment) / "tuner.pkl").exists():
        if not (out / TABLE_FILE).exists():
            raise FileNotFoundError(f"{out} has neither the Tune experiment nor {TABLE_FILE}")
        table, curves = read_tables(out)
    else:
        uri = mlflow_uri or sweep_record.mlflow_uri(record, results_dir)
        tune_df, curves = tune_trials(experiment)
        runs = mlflow_runs(uri, name, sweep_record.sweep_id(record))
        curves = merge_curves(curves, mlflow_curves(uri, runs))
        table = join(tune_df, runs, record)
        write_csv(table, out / TABLE_FILE)
        write_csv(curves, out / CURVES_FILE)
        write_csv(cells(table), out / CELLS_FILE)
    if figures:
        draw_all(table, curves, out, grid_of(record))
    return table


def read_tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = pd.read_csv(out / TABLE_FILE)
    curves_file = out / CURVES_FILE
    curves = pd.read_csv(curves_file) if curves_file.exists() else pd.DataFrame(
        columns=["trial_id", "steps", "samples", "val_nmse"])
    return table, curves


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def grid_of(record: dict) -> dict:
    return {key: record["settings"][key] for key in ("dimensions", "depths", "widths", "multiply")}


def summarize(table: pd.DataFrame, record: dict) -> dict:
    counts = table["status"].value_counts()
    rungs = record["rungs"]
    unit = "epochs" if sweep_record.settings(record).data == "pool" else "steps"
    pruned = table[table["status"] == "pruned"]
    cell_table = cells(table)
    best = best_rows(cell_table, task_columns(table))
    return {
        "trials": len(table),
        "status": {status: int(counts.get(status, 0)) for status in
                   ("completed", "pruned", "diverged", "errored", "unfinished")},
        "pruned_at_rung": {f"rung {k} ({budget:g} {unit})": int((pruned["rung"] == k).sum())
                           for k, budget in enumerate(rungs)},
        "cells": len(cell_table),
        "single_seed_cells": int((cell_table["seeds"] < 2).sum()),
        "few_lr_cells": int((cell_table["lrs"] < MIN_LEARNING_RATES).sum()),
        "budget_limited_cells": int(cell_table["budget_limited"].astype(bool).sum()),
        # A trial that never started has no MLflow run yet: that is not a lost record.
        "missing": table.loc[(table["missing"] != "") & ~((table["missing"] == "mlflow run")
                                                          & (table["status"] == "unfinished")
                                                          & (table["steps"].fillna(0) == 0)),
                             ["trial_id", "missing"]].to_dict("records"),
        "best": best[[*task_columns(table), "depth", "width", "lr", "lrs", "params", "val_nmse",
                      "val_nmse_min", "val_nmse_max", "budget_limited", "status",
                      *(["test_rmse", "dot_test_rmse"] if "users" in table else [])]]
        .to_dict("records"),
    }


def format_summary(summary: dict, out: Path) -> str:
    lines = []
    if summary.get("nothing_to_run"):
        lines.append("\nNothing left to run: every trial of this sweep had already ended.")
    lines.append(f"\n{summary['trials']} trials: "
                 + ", ".join(f"{n} {s}" for s, n in summary["status"].items()))
    if summary.get("asha", True):
        lines.append("Pruned: "
                     + ", ".join(f"{n} at {k}" for k, n in summary["pruned_at_rung"].items()))
    lines.append(
        f"{summary['cells']} cells: {summary['single_seed_cells']} single-seed, "
        f"{summary['few_lr_cells']} with fewer than {MIN_LEARNING_RATES} learning rates, "
        f"{summary['budget_limited_cells']} budget-limited (NMSE fell by more than "
        f"{BUDGET_LIMITED_DROP:.0%} over the last doubling: an upper bound, not the limit)"
    )
    if summary["missing"]:
        shown = ", ".join(f"{m['trial_id']} (no {m['missing']})" for m in summary["missing"][:5])
        more = f" and {len(summary['missing']) - 5} more" if len(summary["missing"]) > 5 else ""
        lines.append(f"WARNING: {len(summary['missing'])} trials missing a side: {shown}{more}")
    lines.append("Best held-out NMSE per dimension, median over seeds [their range] "
                 "(flag = a*b fed as input; + still improving):")
    for row in summary["best"]:
        architecture = "linear" if row["depth"] == 0 else f"{row['depth']}x{row['width']}"
        users = f" users={int(row['users']):>6}" if "users" in row else ""
        rmse = (f" test RMSE {row['test_rmse']:.3f} (dot {row['dot_test_rmse']:.3f})"
                if "test_rmse" in row else "")
        lines.append(
            f"  d={row['dimension']:>3}{users} flag={'on ' if row['multiply'] else 'off'} "
            f"nmse={row['val_nmse']:.2e} [{row['val_nmse_min']:.1e}, {row['val_nmse_max']:.1e}]"
            f"{'+' if row['budget_limited'] else ' '} {architecture:>7} lr={row['lr']:.1e} "
            f"({row['lrs']} lrs) params={int(row['params'])} ({row['status']}){rmse}"
        )
    if "wall_seconds" in summary:
        lines.append(f"Wall time: {summary['wall_seconds']:.0f} s in all (Ray's start "
                     f"{summary['ray_start_seconds']:.0f} s, the trials "
                     f"{summary['fit_seconds']:.0f} s, then the table and figures)")
    figures = " and figures (*.png)" if summary.get("figures", True) else ""
    lines.append(f"Results: {out}/{TABLE_FILE}, {CELLS_FILE}, {CURVES_FILE}{figures}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- figures
def cell_labels(panel: pd.DataFrame, depths, widths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The panel's NMSE grid (depth × width) and its annotations: the value itself, not the
    colour scale's clipped one, with the cell's marks."""
    values = panel.pivot(index="depth", columns="width", values="val_nmse").reindex(
        index=depths, columns=widths)
    labels = values.map(lambda v: "" if pd.isna(v) else f"{v:.0e}")
    for row in panel.itertuples():
        if row.depth not in labels.index or row.width not in labels.columns:
            continue
        marks = (MARKS["budget_limited"] if row.budget_limited else "") + (
            MARKS["few_lrs"] if row.lrs < MIN_LEARNING_RATES else "")
        labels.loc[row.depth, row.width] += marks
    return values, labels


def heatmap_figures(table: pd.DataFrame, grid: dict | None = None) -> dict:
    """One figure per flag value; one panel per dimension: depth × width, log colour scale.

    grid: the sweep's dimensions, depths, widths and multiply values, so every panel shows the
    whole search space (unvisited cells blank); by default, the values present in the table.
    Figures are made without pyplot: no backend to choose and nothing left open, in a script or in
    a notebook (where `%matplotlib inline` displays them).
    """
    import seaborn as sns
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    cell_table = cells(table)
    grid = grid or {key: sorted(table[column].dropna().unique()) for key, column in
                    (("dimensions", "dimension"), ("depths", "depth"), ("widths", "width"),
                     ("multiply", "multiply"))}
    dimensions, depths = grid["dimensions"], grid["depths"]
    # A linear model (depth 0) has no width: its row has one cell, in a column of its own.
    widths = ([0] if 0 in depths else []) + list(grid["widths"])
    floor = 1e-8  # the colour scale's floor; the annotations keep the true value
    values = cell_table["val_nmse"].clip(lower=floor)
    norm = LogNorm(vmin=max(values.min(), floor), vmax=max(values.max(), 1.0)) if len(values) else None
    # A pool sweep: a row of panels per dimension, a panel per pool size.
    pools = sorted(cell_table["users"].dropna().unique()) if "users" in cell_table else [None]
    panels = [(dimension, users) for dimension in dimensions for users in pools]
    figures = {}
    for multiply in sorted(grid["multiply"]):
        columns = len(pools) if pools != [None] else min(4, len(dimensions))
        rows = math.ceil(len(panels) / columns)
        fig = Figure(figsize=(4.2 * columns, 3.6 * rows), layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False)
        for ax, (dimension, users) in zip(axes.flat, panels, strict=False):
            panel = cell_table[(cell_table["multiply"] == multiply)
                               & (cell_table["dimension"] == dimension)]
            if users is not None:
                panel = panel[panel["users"] == users]
            nmse, labels = cell_labels(panel, depths, widths)
            # cells with no trial stay NaN: drawn blank, not as zero
            sns.heatmap(nmse.clip(lower=floor), ax=ax, norm=norm, cmap="viridis", annot=labels,
                        fmt="", annot_kws={"fontsize": 8}, cbar=False, mask=nmse.isna(),
                        linewidths=0.5, linecolor="white",
                        xticklabels=["linear" if w == 0 else w for w in widths])
            ax.set_title(f"d = {int(dimension)}" + (f", {int(users):,} users" if users else ""))
            ax.set_xlabel("width")
            ax.set_ylabel("depth (0 = linear)")
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        if norm is not None:
            fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=axes.ravel().tolist(),
                         label="held-out NMSE (log scale)", shrink=0.8)
        flag_text = "on" if multiply else "off"
        fig.suptitle(f"Multiplication flag {flag_text}: {HEATMAP_TITLE}", fontsize=9)
        figures[f"heatmap_multiply_{flag_text}"] = fig
    return figures


def frontier(table: pd.DataFrame) -> pd.DataFrame:
    """Per dimension and flag value, the cells no smaller cell beats: the best median NMSE
    reachable with at most N parameters (ties go to the smaller model; row order does not
    matter)."""
    usable = cells(table).dropna(subset=["val_nmse", "params"])
    tasks = task_columns(usable)
    rows = []
    for _, group in usable.groupby(tasks):
        group = group.sort_values(["params", "val_nmse", "depth", "width"], kind="stable")
        best_before = group["val_nmse"].cummin().shift(fill_value=np.inf)
        rows.append(group[group["val_nmse"] < best_before])  # strictly better than every smaller
    columns = [*tasks, "params", "best_val_nmse", "val_nmse_min", "val_nmse_max", "depth", "width"]
    if not rows:
        return pd.DataFrame(columns=columns)
    front = pd.concat(rows, ignore_index=True).rename(columns={"val_nmse": "best_val_nmse"})
    return front[columns]


def task_label(row) -> str:
    """'d = 16', or a pool sweep's 'd = 16, 4,000 users'."""
    users = getattr(row, "users", None)
    return f"d = {int(row.dimension)}" + (f", {int(users):,} users" if users and users == users else "")


def frontier_figure(table: pd.DataFrame):
    import seaborn as sns
    from matplotlib.figure import Figure

    front = frontier(table)
    # Dimensions as labels, not numbers: a numeric hue gets a continuous legend (15, 30, 45, …).
    front = front.sort_values(task_columns(front)).assign(
        flag=front["multiply"].map({True: "a*b fed (flag on)", False: "flag off"}),
        d=[task_label(row) for row in front.itertuples()])
    dimensions = list(dict.fromkeys(front["d"]))
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    palette = dict(zip(dimensions, sns.color_palette("viridis", len(dimensions)), strict=True))
    sns.lineplot(data=front, x="params", y="best_val_nmse", hue="d", hue_order=dimensions,
                 style="flag", markers=True, dashes=True, drawstyle="steps-post", palette=palette,
                 estimator=None, errorbar=None, ax=ax)  # points, not means with bands
    for row in front.itertuples():  # the seeds' range at each point
        ax.vlines(row.params, row.val_nmse_min, row.val_nmse_max, color=palette[row.d], lw=1)
    ax.set(xscale="log", yscale="log", xlabel="parameters",
           ylabel="best held-out NMSE with at most this many parameters",
           title="The frontier: best median NMSE against model size (bars: the seeds' range)")
    ax.axhline(1e-2, color="grey", lw=0.5, ls=":")
    ax.axhline(1e-3, color="grey", lw=0.5, ls=":")
    return fig


def architecture_label(depth, width) -> str:
    return "linear" if depth == 0 else f"{int(depth)}x{int(width)}"


def architecture_labels(frame: pd.DataFrame) -> list[str]:
    """Each row's architecture, with its pool size in a pool sweep ('2x64, 4k users')."""
    labels = [architecture_label(d, w) for d, w in zip(frame["depth"], frame["width"], strict=True)]
    if "users" not in frame:
        return labels
    return [f"{label}, {users / 1000:g}k users" for label, users in zip(labels, frame["users"],
                                                                        strict=True)]


def learning_rate_figure(table: pd.DataFrame):
    """Final median NMSE against learning rate, one line per architecture, one panel per
    dimension and flag: is the learning rate right? (Pruned trials sit at a smaller budget.)"""
    import seaborn as sns
    from matplotlib.figure import Figure

    usable = table[table["status"].isin(["completed", "pruned"])].dropna(subset=["val_nmse"])
    usable = usable.assign(architecture=architecture_labels(usable))
    dimensions = sorted(usable["dimension"].unique())
    flags = sorted(usable["multiply"].unique())
    fig = Figure(figsize=(2.6 * max(1, len(dimensions)), 2.8 * max(1, len(flags))),
                 layout="constrained")
    axes = fig.subplots(max(1, len(flags)), max(1, len(dimensions)), squeeze=False, sharex=True)
    for i, multiply in enumerate(flags):
        for j, dimension in enumerate(dimensions):
            ax = axes[i][j]
            panel = usable[(usable["multiply"] == multiply) & (usable["dimension"] == dimension)]
            sns.lineplot(data=panel, x="lr", y="val_nmse", hue="architecture", style="status",
                         markers=True, estimator=None, errorbar=None, ax=ax,
                         legend=(i == 0 and j == len(dimensions) - 1))
            ax.set(xscale="log", yscale="log", title=f"d = {dimension}, flag {'on' if multiply else 'off'}",
                   xlabel="learning rate", ylabel="held-out NMSE (median)")
    fig.suptitle("Final NMSE against the learning rate (pruned: at the budget ASHA let it reach)",
                 fontsize=9)
    return fig


def learning_curves_figure(table: pd.DataFrame, curves: pd.DataFrame, best: int = 3):
    """NMSE against training samples for each dimension's best architectures (flag off): the data
    axis. A curve still falling at its right end is a bound, not a limit."""
    import seaborn as sns
    from matplotlib.figure import Figure

    chosen = cells(table[table["multiply"] == False])  # noqa: E712 (a pandas mask)
    chosen = chosen.sort_values("val_nmse").groupby("dimension").head(best)
    usable = one_linear_cell(table[table["status"].isin(["completed", "pruned"])])
    keys = cell_columns(table) + ["lr"]
    trials = usable.merge(chosen[keys].astype(usable[keys].dtypes.to_dict()), on=keys)
    trials = trials.assign(architecture=architecture_labels(trials))
    data = curves.merge(trials[["trial_id", "dimension", "architecture"]], on="trial_id")
    dimensions = sorted(data["dimension"].unique())
    fig = Figure(figsize=(2.6 * max(1, len(dimensions)), 3.0), layout="constrained")
    axes = fig.subplots(1, max(1, len(dimensions)), squeeze=False, sharey=True)[0]
    for ax, dimension in zip(axes, dimensions, strict=False):
        panel = data[data["dimension"] == dimension]
        sns.lineplot(data=panel, x="samples", y="val_nmse", hue="architecture", marker="o",
                     estimator=None, errorbar=None, ax=ax)
        for _, curve in panel.groupby("trial_id"):  # the seeds' range along the curve
            if {"val_nmse_min", "val_nmse_max"} <= set(curve):
                ax.fill_between(curve["samples"], curve["val_nmse_min"], curve["val_nmse_max"],
                                alpha=0.15)
        ax.set(xscale="log", yscale="log", title=f"d = {dimension}", xlabel="training samples",
               ylabel="held-out NMSE (median, band: seeds)")
    fig.suptitle("Learning curves of each dimension's best architectures (flag off)", fontsize=9)
    return fig


def pool_figure(table: pd.DataFrame):
    """A pool sweep's Rendle et al. Figure 3: test RMSE (against noisy ratings, on unseen pairs of
    known users and items) against the pool size, one line per architecture at its best learning
    rate (band: the seeds' range), with the exact dot product's and the naive predictor's (0)."""
    import seaborn as sns
    from matplotlib.figure import Figure

    cell_table = cells(table).dropna(subset=["test_rmse"])
    cell_table = cell_table.assign(architecture=[architecture_label(d, w) for d, w in zip(
        cell_table["depth"], cell_table["width"], strict=True)])
    panels = sorted({(d, m) for d, m in zip(cell_table["dimension"], cell_table["multiply"],
                                            strict=True)})
    fig = Figure(figsize=(4.2 * max(1, len(panels)), 3.6), layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False, sharey=True)[0]
    for ax, (dimension, multiply) in zip(axes, panels, strict=False):
        panel = cell_table[(cell_table["dimension"] == dimension)
                           & (cell_table["multiply"] == multiply)].sort_values("users")
        sns.lineplot(data=panel, x="users", y="test_rmse", hue="architecture", marker="o",
                     estimator=None, errorbar=None, ax=ax)
        for _, line in panel.groupby("architecture"):
            ax.fill_between(line["users"], line["test_rmse_min"], line["test_rmse_max"], alpha=0.15)
        stopped = panel[panel["status"] == "pruned"]  # at the epochs ASHA let it reach: a bound
        ax.scatter(stopped["users"], stopped["test_rmse"], s=40, facecolors="white",
                   edgecolors="black", linewidths=0.8, zorder=3)
        references = panel.groupby("users")[["dot_test_rmse", "naive_test_rmse"]].median()
        ax.plot(references.index, references["dot_test_rmse"], ":", color="black",
                label="dot product")
        ax.plot(references.index, references["naive_test_rmse"], "-.", color="gray",
                label="naive: 0")
        ax.set(xscale="log", xlabel="users (= items), 100 ratings per user", ylabel="test RMSE",
               title=f"d = {dimension}, flag {'on' if multiply else 'off'}")
        ax.set_xticks(references.index, [f"{users:,.0f}" for users in references.index])
        ax.minorticks_off()
        ax.legend(fontsize=7)
    fig.suptitle("Rendle et al.'s protocol: test RMSE against the pool size (median over seeds, "
                 "band: their range; hollow: stopped by ASHA early, an upper bound)", fontsize=9)
    return fig


def save_figure(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def figures(table: pd.DataFrame, curves: pd.DataFrame, grid: dict | None = None) -> dict:
    """Every figure of a sweep, by file name (without .png)."""
    # Panels with no trial yet make numpy warn (all-NaN slices); a blank panel is the answer.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        drawn = {**heatmap_figures(table, grid), "frontier": frontier_figure(table),
                 "learning_rates": learning_rate_figure(table)}
        if len(curves):
            drawn["learning_curves"] = learning_curves_figure(table, curves)
        if "test_rmse" in table:
            drawn["pool_rmse"] = pool_figure(table)
    return drawn


def draw_all(table: pd.DataFrame, curves: pd.DataFrame, out: Path, grid: dict | None = None) -> list[Path]:
    """Write every figure as DIR/NAME/<figure>.png."""
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, fig in figures(table, curves, grid).items():
            paths.append(out / f"{name}.png")
            save_figure(fig, paths[-1])
    return paths


def smallest_reaching(table: pd.DataFrame, thresholds=(1e-2, 1e-3)) -> pd.DataFrame:
    """Per dimension and flag value, the smallest cell (parameters) whose median held-out NMSE
    reached each threshold, with its architecture; blank where no cell did."""
    cell_table = cells(table)
    rows = []
    for (dimension, multiply), group in cell_table.groupby(["dimension", "multiply"]):
        row = {"dimension": dimension, "multiply": multiply, "best_val_nmse": group["val_nmse"].min()}
        for threshold in thresholds:
            hits = group[group["val_nmse"] <= threshold].sort_values("params")
            best = hits.iloc[0] if len(hits) else None
            row[f"params@{threshold:g}"] = best["params"] if best is not None else np.nan
            row[f"arch@{threshold:g}"] = (
                architecture_label(best["depth"], best["width"]) if best is not None else ""
            )
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ArgumentParser(prog="python -m dotmlp.analysis", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--name", default="sweep")
    parser.add_argument("--mlflow-uri", default=None,
                        help="the sweep's MLflow store (default: the record's, or <results-dir>/mlflow.db)")
    parser.add_argument("--storage-path", default=None,
                        help="where the Tune experiment's folder is (default: the record's, "
                        "or the results dir)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    try:
        record = load_record(args.results_dir, args.name)
        table = build(args.results_dir, args.name, figures=not args.no_figures,
                      mlflow_uri=args.mlflow_uri, storage=args.storage_path)
    except FileNotFoundError as error:
        fail(parser.prog, str(error))
    summary = {**summarize(table, record), "figures": not args.no_figures,
               "asha": record["settings"].get("asha", True)}
    print(format_summary(summary, Path(args.results_dir) / args.name))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
