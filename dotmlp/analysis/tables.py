"""One sweep's tables: the joined trials (dotmlp.analysis.trials) as cells (cells.csv: each
architecture's best learning rate's median over seeds), its frontier, the smallest cell reaching
each threshold, and the summary a sweep prints; reading and writing them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dotmlp import record as sweep_record
from dotmlp.analysis.trials import BUDGET_LIMITED_DROP, POOL_RESULTS

TABLE_FILE = "trials.csv"
CELLS_FILE = "cells.csv"
CURVES_FILE = "curves.csv"
CELL_COLUMNS = ["dimension", "multiply", "depth", "width"]
# Fewer learning rates than this on a cell, and its best is not called tuned.
MIN_LEARNING_RATES = 3


def task_columns(table: pd.DataFrame) -> list[str]:
    """What a trial's task is: its dimension and flag, and in a pool sweep its pool size."""
    return ["dimension", "multiply", *(["users"] if "users" in table else [])]


def cell_columns(table: pd.DataFrame) -> list[str]:
    return [*task_columns(table), "depth", "width"]


def pool_results(table: pd.DataFrame) -> list[str]:
    return [column for column in POOL_RESULTS if column in table]


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture cell: the learning rate whose median over seeds is lowest (pruned
    trials count at the budget they reached: an upper bound), how many learning rates and seeds
    stand behind it, and whether it was still improving at the end of its budget."""
    keys = cell_columns(table)
    # diverged_replicas: how many of its seeds went NaN or blew up (tables before it lack it).
    replicas = ["diverged_replicas"] if "diverged_replicas" in table else []
    columns = [*keys, "lr", "lrs", "trials", "seeds", "params", "steps", "samples", "val_nmse",
               "val_nmse_min", "val_nmse_max", *replicas, "budget_limited", "status",
               *pool_results(table)]
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


def architecture_label(depth, width) -> str:
    return "linear" if depth == 0 else f"{int(depth)}x{int(width)}"


def architecture_labels(frame: pd.DataFrame) -> list[str]:
    """Each row's architecture, with its pool size in a pool sweep ('2x64, 4k users')."""
    labels = [architecture_label(d, w) for d, w in zip(frame["depth"], frame["width"], strict=True)]
    if "users" not in frame:
        return labels
    return [f"{label}, {users / 1000:g}k users" for label, users in zip(labels, frame["users"],
                                                                        strict=True)]


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
