"""One sweep's figures, drawn from its tables (dotmlp.analysis.tables): the heatmaps (depth ×
width per dimension and flag), the frontier, the learning rates, the learning curves and, for a
pool sweep, test RMSE against the pool size. Made without pyplot: no backend to choose and
nothing left open, in a script or in a notebook."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import pandas as pd

from dotmlp.analysis.tables import (
    MIN_LEARNING_RATES,
    architecture_label,
    architecture_labels,
    cell_columns,
    cells,
    frontier,
    one_linear_cell,
    task_columns,
)

# Cells annotated as still improving (+), with too few learning rates (?), or with a seed that
# diverged (!: its median, over the others and that one as +inf, is still finite).
MARKS = {"budget_limited": "+", "few_lrs": "?", "diverged_seed": "!"}
HEATMAP_TITLE = (
    "held-out NMSE, median over seeds at each cell's best learning rate "
    "(+ still improving at its budget: an upper bound; ? fewer than 3 learning rates tried)"
)
DIVERGED_SEED_NOTE = "; ! a seed diverged (counted as +inf)"


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
            MARKS["few_lrs"] if row.lrs < MIN_LEARNING_RATES else "") + (
            MARKS["diverged_seed"] if diverged_seeds(row) else "")
        labels.loc[row.depth, row.width] += marks
    return values, labels


def diverged_seeds(row) -> bool:
    """Whether a row's trial had a replica diverge (NaN where the table predates the column)."""
    return getattr(row, "diverged_replicas", 0) > 0


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
        note = DIVERGED_SEED_NOTE if any(map(diverged_seeds, cell_table.itertuples())) else ""
        fig.suptitle(f"Multiplication flag {flag_text}: {HEATMAP_TITLE}{note}", fontsize=9)
        figures[f"heatmap_multiply_{flag_text}"] = fig
    return figures


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
    infinite = front["val_nmse_max"] == math.inf  # a seed diverged (NaN: no range recorded)
    for row in front[~infinite].itertuples():  # the seeds' range at each point
        ax.vlines(row.params, row.val_nmse_min, row.val_nmse_max, color=palette[row.d], lw=1)
    title = "The frontier: best median NMSE against model size (bars: the seeds' range"
    ax.set(xscale="log", yscale="log", xlabel="parameters",
           ylabel="best held-out NMSE with at most this many parameters")
    ax.axhline(1e-2, color="grey", lw=0.5, ls=":")
    ax.axhline(1e-3, color="grey", lw=0.5, ls=":")
    if infinite.any():  # a seed diverged (+inf): its bar runs to the top, marked ^
        top = ax.get_ylim()[1]
        for row in front[infinite].itertuples():
            ax.vlines(row.params, row.val_nmse_min, top, color=palette[row.d], lw=1)
            ax.plot(row.params, top, "^", color=palette[row.d], clip_on=False)
        ax.set_ylim(top=top)
        title += "; ^ to the top: a seed diverged"
    ax.set_title(title + ")")
    return fig


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
                infinite = curve["val_nmse_max"] == math.inf
                ax.fill_between(curve["samples"], curve["val_nmse_min"],
                                curve["val_nmse_max"].mask(infinite), alpha=0.15)
                if infinite.any():  # a seed diverged there: marked x on the median
                    gone = curve[infinite]
                    ax.scatter(gone["samples"], gone["val_nmse"], marker="x", color="red",
                               zorder=3)
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
        for _, line in panel.groupby("architecture"):  # a seed gone NaN (+inf) leaves a gap
            top = line["test_rmse_max"]
            ax.fill_between(line["users"], line["test_rmse_min"], top.mask(top == math.inf),
                            alpha=0.15)
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
