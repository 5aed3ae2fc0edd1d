"""Deep against shallow at equal parameters: does depth beat width when the budget in parameters
and in samples is the same?

`iso_parameter_pairs(trials, curves)` groups a task's architectures (depth ≥ 1) whose parameter
counts lie within `tolerance` (10 %) of each other — largest ÷ smallest ≤ 1.10 — one per depth,
and compares them at the same number of samples: the largest rung of the ladder that every
member's curve reached (ASHA-pruned trials have shorter curves), each at its best learning rate
there (the lowest median over seeds among the learning rates measured at that budget), with the
seeds' range. `iso_widths(d, params)` gives the widths to put in a sweep's grid so that such
groups exist. Pure functions on DataFrames; reads results, never trains.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dotmlp.analysis.figures import save_figure
from dotmlp.analysis.tables import architecture_label, write_csv
from dotmlp.record import write_atomically
from dotmlp.sizes import params_of, width_for_params
from dotmlp.study.points import load_tables, measured_points, out_dir

PAIRS_FILE = "deep_vs_shallow.csv"
FIGURE_FILE = "deep_vs_shallow.png"
SUMMARY_FILE = "deep_vs_shallow.md"
TOLERANCE = 0.10
DEPTHS = (1, 2, 4)
PAIR_COLUMNS = ["dimension", "multiply", "group", "params_target", "spread", "samples", "steps",
                "depth", "width", "params", "architecture", "lr", "lrs", "seeds", "nmse_median",
                "nmse_min", "nmse_max", "ratio_to_best"]


def iso_widths(dimension: int, params_target: float, depths: Sequence[int] = DEPTHS,
               multiply: bool = False, tolerance: float = TOLERANCE) -> dict[int, int | None]:
    """Per depth, the width whose parameter count is closest to params_target, or None where no
    width comes within `tolerance` (a small target at a large depth)."""
    widths = {}
    for depth in depths:
        width = width_for_params(params_target, dimension, depth, multiply)
        params = params_of(dimension, depth, width, multiply)
        widths[depth] = width if abs(params / params_target - 1) <= tolerance else None
    return widths


def iso_grid(dimension: int, targets: Sequence[float], depths: Sequence[int] = DEPTHS,
             multiply: bool = False, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """iso_widths for several targets as a table (target, depth, width, params, off): the cells
    to add to a sweep for deep-against-shallow comparisons at those sizes."""
    rows = []
    for target in targets:
        for depth, width in iso_widths(dimension, target, depths, multiply, tolerance).items():
            if width is not None:
                params = params_of(dimension, depth, width, multiply)
                rows.append({"dimension": dimension, "multiply": multiply, "target": target,
                             "depth": depth, "width": width, "params": params,
                             "off": params / target - 1})
    return pd.DataFrame(rows)


def iso_parameter_pairs(trials: pd.DataFrame, curves: pd.DataFrame | None = None,
                        tolerance: float = TOLERANCE, min_depths: int = 2,
                        min_seeds: int = 1) -> pd.DataFrame:
    """Groups of architectures of equal parameters (within `tolerance`) and different depths,
    per task, compared at a common budget at their tuned learning rate: PAIR_COLUMNS, one row per
    member. `group` numbers the groups within a task (smallest first); `spread` is the group's
    largest ÷ smallest parameters − 1; `ratio_to_best` the member's median ÷ the group's best."""
    points = measured_points(trials, curves)
    points = points[(points["depth"] >= 1) & (points["seeds"] >= min_seeds)]
    rows = []
    for (dimension, multiply), task in points.groupby(["dimension", "multiply"]):
        cells = (task[["depth", "width", "params"]].drop_duplicates()
                 .sort_values(["params", "depth"], ignore_index=True))
        group = 0
        for members in _groups(cells, tolerance, min_depths):
            budgets = [set(task[(task["depth"] == m.depth) & (task["width"] == m.width)]["samples"])
                       for m in members.itertuples()]
            common = set.intersection(*budgets)
            if not common:
                continue
            samples = max(common)
            at = task[task["samples"] == samples]
            chosen = []
            for member in members.itertuples():
                cell = at[(at["depth"] == member.depth) & (at["width"] == member.width)]
                best = cell.sort_values("val_nmse").iloc[0]
                chosen.append({**best.to_dict(), "lrs": int(cell["lr"].nunique())})
            group += 1
            best_median = min(c["val_nmse"] for c in chosen)
            target = float(np.exp(np.log(members["params"]).mean()))
            for c in chosen:
                rows.append({"dimension": int(dimension), "multiply": bool(multiply), "group": group,
                             "params_target": target,
                             "spread": members["params"].max() / members["params"].min() - 1,
                             "samples": int(samples), "steps": c["steps"], "depth": int(c["depth"]),
                             "width": int(c["width"]), "params": int(c["params"]),
                             "architecture": architecture_label(c["depth"], c["width"]),
                             "lr": c["lr"], "lrs": c["lrs"], "seeds": int(c["seeds"]),
                             "nmse_median": c["val_nmse"], "nmse_min": c["val_nmse_min"],
                             "nmse_max": c["val_nmse_max"],
                             "ratio_to_best": c["val_nmse"] / best_median if best_median > 0
                             else np.nan,
                             **({"machine": c["machine"]} if "machine" in c else {})})
    columns = PAIR_COLUMNS + (["machine"] if "machine" in points else [])
    return pd.DataFrame(rows, columns=columns)


def _groups(cells: pd.DataFrame, tolerance: float, min_depths: int):
    """Greedy, smallest first: the cells within (1 + tolerance) of the smallest cell not yet
    grouped form a group if they span at least min_depths depths; one cell per depth (the one
    closest to the group's middle, in ratio). Groups do not overlap."""
    start, n = 0, len(cells)
    while start < n:
        anchor = cells["params"].iloc[start]
        window = cells.iloc[start:][cells["params"].iloc[start:] <= anchor * (1 + tolerance)]
        if window["depth"].nunique() >= min_depths:
            middle = np.exp(np.log(window["params"]).mean())
            window = window.assign(off=np.abs(np.log(window["params"] / middle)))
            members = window.sort_values(["off", "params"]).groupby("depth").head(1)
            yield members.sort_values("depth")
            start += len(window)
        else:
            start += 1


def deep_vs_shallow_summary(pairs: pd.DataFrame) -> str:
    """Counts, per pair of depths, of how often the deeper one had the lower median and by what
    factor, and how often the two seeds' ranges did not overlap (a difference the seeds cannot
    explain). Markdown."""
    lines = ["## Deep against shallow at equal parameters", ""]
    if not len(pairs):
        return "\n".join([*lines, "No group of equal-parameter architectures of different depths "
                          "was measured (see dotmlp.study.depth.iso_widths to add some to a sweep).", ""])
    depths = sorted(pairs["depth"].unique())
    lines += ["| shallow vs deep | groups | deeper lower | median ratio shallow ÷ deep | "
              "ranges apart | d |", "|---|---|---|---|---|---|"]
    keys = ["dimension", "multiply", "group"]
    for i, shallow in enumerate(depths):
        for deep in depths[i + 1:]:
            left = pairs[pairs["depth"] == shallow].set_index(keys)
            right = pairs[pairs["depth"] == deep].set_index(keys)
            both = left.join(right, lsuffix="_s", rsuffix="_d", how="inner")
            if not len(both):
                continue
            ratio = both["nmse_median_s"] / both["nmse_median_d"]
            apart = (both["nmse_min_s"] > both["nmse_max_d"]) | (both["nmse_max_s"] < both["nmse_min_d"])
            dims = ", ".join(str(d) for d in sorted(both.index.get_level_values("dimension").unique()))
            lines.append(f"| {shallow} vs {deep} | {len(both)} | {int((ratio > 1).sum())} | "
                         f"{ratio.median():.2g} | {int(apart.sum())} | {dims} |")
    lines += ["", "Each group: architectures within 10 % in parameters, at the largest budget all "
              "of them reached, each at its best learning rate there; ranges apart: the seeds' "
              "ranges do not overlap.", ""]
    return "\n".join(lines)


def deep_vs_shallow_figure(pairs: pd.DataFrame):
    """Per task: median NMSE against depth for each group of equal parameters (bars: the seeds'
    range), at the group's common budget and each member's tuned learning rate."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatterSciNotation

    tasks = sorted({(bool(m), int(d)) for m, d in zip(pairs["multiply"], pairs["dimension"],
                                                      strict=True)})
    flags = sorted({m for m, _ in tasks})
    dims = sorted({d for _, d in tasks})
    fig = Figure(figsize=(3.3 * max(1, len(dims)), 3.2 * max(1, len(flags))), layout="constrained")
    axes = fig.subplots(max(1, len(flags)), max(1, len(dims)), squeeze=False)
    for i, flag in enumerate(flags):
        for j, dimension in enumerate(dims):
            ax = axes[i][j]
            task = pairs[(pairs["multiply"] == flag) & (pairs["dimension"] == dimension)]
            groups = sorted(task["group"].unique())
            for k, group in enumerate(groups):
                members = task[task["group"] == group].sort_values("depth")
                color = colormaps["viridis"](k / max(1, len(groups) - 1) * 0.9)
                low = (members["nmse_median"] - members["nmse_min"]).clip(lower=0).fillna(0)
                high = (members["nmse_max"] - members["nmse_median"]).clip(lower=0).fillna(0)
                first = members.iloc[0]
                ax.errorbar(members["depth"], members["nmse_median"], yerr=[low, high], marker="o",
                            capsize=3, color=color,
                            label=f"≈{first['params_target']:.2g} params, S = {first['samples']:.2g}")
            ax.set(xscale="log", yscale="log", xlabel="depth (widths set for equal params)",
                   ylabel="held-out NMSE (median, bars: seeds)",
                   title=f"d = {dimension}, flag {'on' if flag else 'off'}")
            ax.set_xticks(sorted(task["depth"].unique()) or [1])
            ax.set_xticklabels([str(d) for d in sorted(task["depth"].unique())] or ["1"])
            ax.xaxis.set_minor_locator(_no_ticks())
            # within a decade the log axis would have no labelled tick: label the minor ones
            ax.yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False,
                                                                 minor_thresholds=(2, 0.4)))
            if len(groups):
                ax.legend(fontsize=6)
            else:
                ax.text(0.5, 0.5, "no equal-parameter group\nof different depths", ha="center",
                        va="center", transform=ax.transAxes, fontsize=8)
    fig.suptitle("Deep against shallow at equal parameters (within 10 %) and equal samples, "
                 "each at its best learning rate", fontsize=9)
    return fig


def _no_ticks():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def write_deep_vs_shallow(results_dir: str | os.PathLike, names: Sequence[str] | str,
                          machines: Sequence[str] | None = None, out=None, *,
                          figures: bool = True, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """Write deep_vs_shallow.csv, deep_vs_shallow.md and (with figures) deep_vs_shallow.png."""
    trials, curves = load_tables(results_dir, names, machines)
    out = out_dir(results_dir, names, out)
    pairs = iso_parameter_pairs(trials, curves, tolerance)
    write_csv(pairs, out / PAIRS_FILE)
    write_atomically(out / SUMMARY_FILE, deep_vs_shallow_summary(pairs))
    if figures and len(pairs):
        save_figure(deep_vs_shallow_figure(pairs), out / FIGURE_FILE)
    return pairs
