"""Join a sweep's Tune trials and MLflow runs into one table, and draw what it says.

`python -m dotmlp.analysis --results-dir DIR --name NAME` writes DIR/NAME/trials.csv and the
figures. Reads results only; never trains.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from dotmlp.cli import ArgumentParser, fail

SETTINGS_FILE = "sweep.json"
TABLE_FILE = "trials.csv"
CONFIG_COLUMNS = ["dimension", "multiply", "depth", "width", "lr"]
HEATMAP_TITLE = (
    "Held-out NMSE, best trial per cell over learning rates "
    "(pruned trials count at the budget they reached; diverged and errored trials left out)"
)


# ---------------------------------------------------------------------------- reading
def load_record(results_dir: str | os.PathLike, name: str) -> dict:
    path = Path(results_dir) / name / SETTINGS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no sweep named {name!r} in {results_dir} ({path} is missing)")
    return json.loads(path.read_text())


def tune_trials(experiment_path: str) -> pd.DataFrame:
    """One row per Tune trial: its config, last reported result, status and where it ran."""
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(experiment_path).trials
    rows = []
    for trial in trials:
        last = trial.last_result or {}
        rows.append(
            {
                "trial_id": trial.trial_id,
                **{key: trial.config.get(key) for key in CONFIG_COLUMNS},
                "params": last.get("params"),
                "steps": last.get("steps", 0),
                "samples": last.get("samples", 0),
                "tune_val_nmse": last.get("val_nmse"),
                "diverged": bool(last.get("diverged", False)),
                "tune_status": trial.status,
                "retries": trial.run_metadata.num_failures,
                "node_ip": last.get("node_ip"),
                "node_id": last.get("node_id"),
                "train_seconds": last.get("train_seconds"),
                "trial_seconds": last.get("time_total_s"),
            }
        )
    return pd.DataFrame(rows)


def mlflow_runs(uri: str, sweep: str) -> pd.DataFrame:
    from dotmlp import tracking

    runs = tracking.experiment_runs(uri, sweep, sweep)
    columns = {
        "run_id": "run_id",
        f"tags.{tracking.TRIAL_TAG}": "trial_id",
        f"tags.{tracking.STATUS_TAG}": "mlflow_status_tag",
        "status": "mlflow_run_status",
        "metrics.val_nmse": "val_nmse",
        "metrics.val_mse": "val_mse",
        "metrics.val_r2": "val_r2",
        "metrics.train_mse": "train_mse",
    }
    for column in columns:
        if column not in runs:
            runs[column] = np.nan
    return runs[list(columns)].rename(columns=columns)


# ---------------------------------------------------------------------------- the table
def join(tune_df: pd.DataFrame, runs: pd.DataFrame, record: dict) -> pd.DataFrame:
    """One row per trial; a trial missing on either side keeps its row, flagged in `missing`."""
    from dotmlp.tune import trial_status

    max_steps = record["settings"]["max_steps"]
    rungs = record["rungs"]
    table = tune_df.merge(runs, on="trial_id", how="outer", indicator=True, validate="1:1")
    table["missing"] = table.pop("_merge").map(
        {"both": "", "left_only": "mlflow run", "right_only": "tune trial"}
    ).astype(str)
    table["status"] = [
        trial_status({"diverged": row.diverged, "steps": row.steps}, max_steps, row.tune_status == "ERROR")
        for row in table.itertuples()
    ]
    # The rung a trial last passed: how far ASHA let it go (0 = stopped at the first rung).
    table["rung"] = [int(np.searchsorted(rungs, steps, side="right")) - 1 if steps else -1
                     for steps in table["steps"].fillna(0)]
    table.loc[table["status"] == "diverged", "val_nmse"] = np.nan
    order = ["trial_id", "run_id", *CONFIG_COLUMNS, "params", "status", "rung", "steps", "samples",
             "val_nmse", "val_mse", "val_r2", "train_mse", "retries", "node_ip", "node_id",
             "train_seconds", "trial_seconds", "tune_status",
             "mlflow_run_status", "mlflow_status_tag", "missing"]
    return table[order].sort_values(["dimension", "multiply", "depth", "width", "lr"],
                                    ignore_index=True)


def build(results_dir: str | os.PathLike, name: str, figures: bool = True) -> pd.DataFrame:
    """Join the sweep's two records, write trials.csv (atomically) and the figures."""
    record = load_record(results_dir, name)
    table = join(tune_trials(record["experiment_path"]), mlflow_runs(record["mlflow_uri"], name), record)
    out = Path(results_dir) / name
    tmp = out / f".{TABLE_FILE}.tmp"
    table.to_csv(tmp, index=False)
    os.replace(tmp, out / TABLE_FILE)
    if figures:
        draw_all(table, out, {key: record["settings"][key] for key in
                              ("dimensions", "depths", "widths", "multiply")})
    return table


def summarize(table: pd.DataFrame, record: dict) -> dict:
    counts = table["status"].value_counts()
    rungs = record["rungs"]
    pruned = table[table["status"] == "pruned"]
    best = (
        table.dropna(subset=["val_nmse"])
        .sort_values("val_nmse")
        .groupby(["dimension", "multiply"], as_index=False)
        .first()
    )
    return {
        "trials": len(table),
        "status": {status: int(counts.get(status, 0)) for status in
                   ("completed", "pruned", "diverged", "errored")},
        "pruned_at_rung": {f"rung {k} ({steps} steps)": int((pruned["rung"] == k).sum())
                           for k, steps in enumerate(rungs)},
        "missing": table.loc[table["missing"] != "", ["trial_id", "missing"]].to_dict("records"),
        "best": best[["dimension", "multiply", "depth", "width", "lr", "params", "val_nmse", "status"]]
        .to_dict("records"),
    }


def format_summary(summary: dict, out: Path) -> str:
    lines = [f"\n{summary['trials']} trials: " + ", ".join(f"{n} {s}" for s, n in summary["status"].items())]
    lines.append("ASHA stopped: " + ", ".join(f"{n} at {k}" for k, n in summary["pruned_at_rung"].items()))
    if summary["missing"]:
        lines.append(f"WARNING: {len(summary['missing'])} trials missing a side: {summary['missing']}")
    lines.append("Best held-out NMSE per dimension (flag = a*b fed as input):")
    for row in summary["best"]:
        lines.append(
            f"  d={row['dimension']:>3} flag={'on ' if row['multiply'] else 'off'} "
            f"nmse={row['val_nmse']:.2e}  depth={row['depth']} width={row['width']} "
            f"lr={row['lr']:.1e} params={int(row['params'])} ({row['status']})"
        )
    if "wall_seconds" in summary:
        lines.append(f"Wall time: {summary['wall_seconds']:.0f} s")
    lines.append(f"Results: {out}/{TABLE_FILE} and {out}/*.png")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- figures
def best_per_cell(table: pd.DataFrame) -> pd.DataFrame:
    usable = table[table["status"].isin(["completed", "pruned"])].dropna(subset=["val_nmse"])
    return usable.groupby(["multiply", "dimension", "depth", "width"], as_index=False)["val_nmse"].min()


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

    cells = best_per_cell(table)
    grid = grid or {key: sorted(table[column].dropna().unique()) for key, column in
                    (("dimensions", "dimension"), ("depths", "depth"), ("widths", "width"),
                     ("multiply", "multiply"))}
    dimensions, depths, widths = grid["dimensions"], grid["depths"], grid["widths"]
    values = cells["val_nmse"].clip(lower=1e-8)
    norm = LogNorm(vmin=max(values.min(), 1e-8), vmax=max(values.max(), 1.0)) if len(values) else None
    figures = {}
    for multiply in sorted(grid["multiply"]):
        columns = min(4, len(dimensions))
        rows = math.ceil(len(dimensions) / columns)
        fig = Figure(figsize=(4.2 * columns, 3.6 * rows), layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False)
        for ax, dimension in zip(axes.flat, dimensions, strict=False):
            panel = cells[(cells["multiply"] == multiply) & (cells["dimension"] == dimension)]
            grid = panel.pivot(index="depth", columns="width", values="val_nmse").reindex(
                index=depths, columns=widths
            )  # cells with no trial stay NaN: drawn blank, not as zero
            sns.heatmap(grid.clip(lower=1e-8), ax=ax, norm=norm, cmap="viridis", annot=True, fmt=".0e",
                        annot_kws={"fontsize": 7}, cbar=False, mask=grid.isna(),
                        linewidths=0.5, linecolor="white")
            ax.set_title(f"d = {int(dimension)}")
            ax.set_xlabel("width")
            ax.set_ylabel("depth (0 = linear)")
        for ax in list(axes.flat)[len(dimensions):]:
            ax.set_visible(False)
        if norm is not None:
            fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=axes.ravel().tolist(),
                         label="held-out NMSE (log scale)", shrink=0.8)
        flag = "on" if multiply else "off"
        fig.suptitle(f"Multiplication flag {flag}: {HEATMAP_TITLE}", fontsize=9)
        figures[f"heatmap_multiply_{flag}"] = fig
    return figures


def frontier(table: pd.DataFrame) -> pd.DataFrame:
    """Best NMSE reachable with at most N parameters, per dimension and flag value."""
    usable = table[table["status"].isin(["completed", "pruned"])].dropna(subset=["val_nmse", "params"])
    rows = []
    for (dimension, multiply), group in usable.groupby(["dimension", "multiply"]):
        group = group.sort_values("params")
        group = group.assign(best_val_nmse=group["val_nmse"].cummin())
        group = group[group["best_val_nmse"] == group["val_nmse"]]  # points that improve the front
        rows.append(group.assign(dimension=dimension, multiply=multiply))
    if not rows:
        return pd.DataFrame(columns=["dimension", "multiply", "params", "best_val_nmse"])
    return pd.concat(rows, ignore_index=True)[["dimension", "multiply", "params", "best_val_nmse",
                                               "depth", "width"]]


def frontier_figure(table: pd.DataFrame):
    import seaborn as sns
    from matplotlib.figure import Figure

    front = frontier(table)
    # Dimensions as labels, not numbers: a numeric hue gets a continuous legend (15, 30, 45, …).
    dimensions = [f"d = {d}" for d in sorted(front["dimension"].unique())]
    front = front.assign(flag=front["multiply"].map({True: "a*b fed (flag on)", False: "flag off"}),
                         d=front["dimension"].map(lambda d: f"d = {d}"))
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    sns.lineplot(data=front, x="params", y="best_val_nmse", hue="d", hue_order=dimensions,
                 style="flag", markers=True, dashes=True, drawstyle="steps-post", palette="viridis",
                 estimator=None, errorbar=None, ax=ax)  # points, not means with bands
    ax.set(xscale="log", yscale="log", xlabel="parameters",
           ylabel="best held-out NMSE with at most this many parameters",
           title="The frontier: best NMSE against model size, per dimension")
    ax.axhline(1e-2, color="grey", lw=0.5, ls=":")
    ax.axhline(1e-3, color="grey", lw=0.5, ls=":")
    return fig


def save_figure(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def draw_all(table: pd.DataFrame, out: Path, grid: dict | None = None) -> list[Path]:
    """Write every figure as DIR/NAME/<figure>.png."""
    figures = {**heatmap_figures(table, grid), "frontier": frontier_figure(table)}
    paths = []
    for name, fig in figures.items():
        paths.append(out / f"{name}.png")
        save_figure(fig, paths[-1])
    return paths


def smallest_reaching(table: pd.DataFrame, thresholds=(1e-2, 1e-3)) -> pd.DataFrame:
    """Per dimension and flag value, the smallest model (parameters) whose held-out NMSE reached
    each threshold, with its architecture; blank where no trial did."""
    usable = table[table["status"].isin(["completed", "pruned"])].dropna(subset=["val_nmse"])
    rows = []
    for (dimension, multiply), group in usable.groupby(["dimension", "multiply"]):
        row = {"dimension": dimension, "multiply": multiply, "best_val_nmse": group["val_nmse"].min()}
        for threshold in thresholds:
            hits = group[group["val_nmse"] <= threshold].sort_values("params")
            best = hits.iloc[0] if len(hits) else None
            row[f"params@{threshold:g}"] = best["params"] if best is not None else np.nan
            row[f"arch@{threshold:g}"] = (
                f"{int(best['depth'])}x{int(best['width'])}" if best is not None else ""
            )
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ArgumentParser(prog="python -m dotmlp.analysis", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--name", default="sweep")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    try:
        record = load_record(args.results_dir, args.name)
    except FileNotFoundError as error:
        fail(parser.prog, str(error))
    table = build(args.results_dir, args.name, figures=not args.no_figures)
    print(format_summary(summarize(table, record), Path(args.results_dir) / args.name))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
