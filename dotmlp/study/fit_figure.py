"""The scaling fit drawn (fit.png, fit_multiply_on.png): the parameters each threshold needs against
d and the law's exponents, then per dimension the measured points and the law's slices.

Readable at 1,000 px wide: the figure is about 1,000 px wide as saved (8.95 in at the 110 dpi of
dotmlp.analysis.figures.save_figure), every text is 10 pt, four panels a row (the summary's two
first, then two per dimension), and one key for all panels below them instead of a legend in each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dotmlp.study.fit import MAX_NMSE
from dotmlp.study.law import FLOOR, nmse
from dotmlp.study.predictions import EXTRAPOLATION, THRESHOLDS

DEPTH_MARKERS = {2: "o", 4: "s", 1: "^", 3: "D", 8: "P"}
FONT = 10  # points: at the saved size, 1,000 px wide, what a reader sees
WIDTH_INCHES = 8.95  # × 110 dpi ≈ 1,000 px (bbox_inches="tight" trims a little)
SUMMARY_HEIGHT, ROW_HEIGHT = 2.9, 2.15
COLUMNS = 4


def hand_built_params(dimension, threshold: float):
    """Dense parameters of the hand-built one-hidden-layer net that represents a·b to `threshold`
    (dotmlp.construction): the fixed-depth reference the fit is set against."""
    from dotmlp import construction

    k = construction.smallest_k(threshold)
    return np.array([construction.params(int(d), k) for d in np.atleast_1d(dimension)])


def fit_figure(points: pd.DataFrame, fit: pd.DataFrame, predictions: pd.DataFrame | None = None,
               multiply: bool = False, thresholds: Sequence[float] = THRESHOLDS,
               per_dimension: bool = True):
    """Top row: the parameters the law needs at each threshold against d (with intervals, beside
    the hand-built net's) and the exponents α, β, δ with their intervals. Then, per dimension, two
    panels: NMSE against samples (one line of the law per network size, coloured by size) and
    against parameters (the three largest budgets, coloured by budget, and S → ∞ dashed), with the
    thresholds dotted and, flag off, the hand-built net's size for each as a dash-dot vertical.
    per_dimension=False: the top row alone (the notebook's, which must stay small)."""
    from matplotlib import colormaps, rc_context
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    points = points[points["multiply"] == multiply]
    fit = fit[fit["multiply"] == multiply]
    dimensions = sorted(set(points["dimension"]) | set(fit["dimension"])) if per_dimension else []
    rows = 1 + -(-len(dimensions) // (COLUMNS // 2))
    threshold_colors = dict(zip(thresholds, ("tab:red", "tab:purple", "tab:brown"), strict=False))
    style = {"font.size": FONT, "axes.titlesize": FONT, "axes.labelsize": FONT, "xtick.labelsize": FONT,
             "ytick.labelsize": FONT, "legend.fontsize": FONT, "figure.titlesize": FONT + 1}
    with rc_context(style):
        fig = Figure(figsize=(WIDTH_INCHES, SUMMARY_HEIGHT + ROW_HEIGHT * (rows - 1) + 1.3),
                     layout="constrained")
        grid = fig.add_gridspec(rows, COLUMNS, height_ratios=[SUMMARY_HEIGHT] + [ROW_HEIGHT] * (rows - 1))
        needed = fig.add_subplot(grid[0, :2])
        exponents = fig.add_subplot(grid[0, 2:])
        _summary_panels(needed, exponents, fit, predictions, multiply, thresholds, threshold_colors)
        for j, dimension in enumerate(dimensions):
            row, column = 1 + j // 2, 2 * (j % 2)
            _dimension_panels(fig.add_subplot(grid[row, column]), fig.add_subplot(grid[row, column + 1]),
                              points[points["dimension"] == dimension], fit[fit["dimension"] == dimension],
                              dimension, multiply, threshold_colors, first=column == 0)
        key = []
        if dimensions:  # what the per-dimension panels draw
            key += [Line2D([], [], ls="", marker=DEPTH_MARKERS[d], color="grey",
                           label=f"{d} hidden layer" + ("s" if d > 1 else "")) for d in (1, 2, 4)]
            key += [Line2D([], [], color=colormaps["viridis"](0.1), label="vs samples: small net (dark)"),
                    Line2D([], [], color=colormaps["viridis"](0.95), label="… to large net (yellow)"),
                    Line2D([], [], color=colormaps["plasma"](0.0), label="vs params: budget S, small"),
                    Line2D([], [], color=colormaps["plasma"](0.8), label="… to large S"),
                    Line2D([], [], color="black", ls="--", label="the law at S → ∞"),
                    Line2D([], [], color="grey", ls="--", lw=0.8, label=f"NMSE {MAX_NMSE:g}: fitted below")]
        for threshold, color in threshold_colors.items():
            if dimensions:
                key.append(Line2D([], [], color=color, ls=":", label=f"ε = {threshold:g}"))
            key.append(Line2D([], [], color=color, marker="o", label=f"fit's need, ε = {threshold:g}"))
            if not multiply:
                key.append(Line2D([], [], color=color, ls="-.", label=f"hand-built net, ε = {threshold:g}"))
        key.append(Line2D([], [], color="grey", ls="--", lw=0.8, label="largest net fitted (top left)"))
        fig.legend(handles=key, loc="outside lower center", ncols=3, frameon=False)
        flag = "on, a·b fed" if multiply else "off"
        fig.suptitle(f"The grid study's scaling fit, flag {flag}; Adam at a constant learning rate\n"
                     "NMSE ≈ f/(1+f), f = A·N^−α + B·N^−δ·S^−β + E, N parameters, S samples")
    return fig


def _dimension_panels(top, bottom, task, row, dimension, multiply, threshold_colors, first: bool):
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    row = row.iloc[0] if len(row) else None
    fitted = row is not None and row["alpha"] is not None and np.isfinite(row["alpha"])
    sizes = np.sort(task["params"].unique())
    size_norm = LogNorm(vmin=max(sizes.min(), 1), vmax=max(sizes.max(), 2)) if len(sizes) else None
    s_range = (np.geomspace(task["samples"].min() / 2, task["samples"].max() * 10, 100)
               if len(task) else np.array([]))
    for (depth, params), cell in task.groupby(["depth", "params"]):
        cell = cell.sort_values("samples")
        color = colormaps["viridis"](size_norm(params))
        top.scatter(cell["samples"], cell["val_nmse"].clip(lower=FLOOR), s=10, color=color,
                    marker=DEPTH_MARKERS.get(int(depth), "x"))
        if fitted:
            top.plot(s_range, nmse(row, params, s_range, int(depth)), color=color, lw=1,
                     ls="-" if depth == row["reference_depth"] else ":")
    budgets = np.sort(task["samples"].unique())[-3:]
    n_range = (np.geomspace(max(task["params"].min() / 2, 1), task["params"].max() * EXTRAPOLATION, 100)
               if len(task) else [])
    budget_norm = (LogNorm(vmin=budgets.min(), vmax=max(budgets.max(), budgets.min() * 2))
                   if len(budgets) else None)
    for samples in budgets:
        at = task[task["samples"] == samples]
        color = colormaps["plasma"](0.8 * budget_norm(samples))
        for depth, at_depth in at.groupby("depth"):
            bottom.scatter(at_depth["params"], at_depth["val_nmse"].clip(lower=FLOOR), s=10, color=color,
                           marker=DEPTH_MARKERS.get(int(depth), "x"))
        if fitted:
            bottom.plot(n_range, nmse(row, n_range, samples), color=color, lw=1)
    if fitted:
        bottom.plot(n_range, nmse(row, n_range, np.inf), color="black", ls="--", lw=1)
    for ax in (top, bottom):
        ax.axhline(MAX_NMSE, color="grey", lw=0.8, ls="--")  # fitted below it only
        for threshold, color in threshold_colors.items():
            ax.axhline(threshold, color=color, lw=0.8, ls=":")
    if not multiply:
        for threshold, color in threshold_colors.items():
            bottom.axvline(hand_built_params(dimension, threshold)[0], color=color, lw=1, ls="-.")
    exponents = f": α {row['alpha']:.2f}, β {row['beta']:.2f}" if fitted else ": not fitted"
    top.set_title(f"d = {dimension}{exponents}", loc="left")
    bottom.set_title(f"d = {dimension}, against N", loc="left")
    top.set(xscale="log", yscale="log", xlabel="samples S")
    bottom.set(xscale="log", yscale="log", xlabel="parameters N")
    measured = task["val_nmse"][task["val_nmse"] > 0]
    if len(measured):  # the law's S → ∞ line may fall far below anything measured
        low = max(measured.min() / 20, FLOOR)
        for ax in (top, bottom):
            ax.set_ylim(bottom=low, top=1.5)
    for ax in (top, bottom):
        _few_ticks(ax)
    if first:
        top.set_ylabel("held-out NMSE")


def _few_ticks(ax) -> None:
    from matplotlib.ticker import LogLocator, NullFormatter

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, numticks=4))
        axis.set_minor_formatter(NullFormatter())


def _summary_panels(needed, exponents, fit, predictions, multiply, thresholds, colors):
    dims = np.array(sorted(int(d) for d in fit["dimension"].unique())) if len(fit) else np.array([])
    if predictions is not None and len(predictions):
        pred = predictions[(predictions["multiply"] == multiply) & predictions["determined"].astype(bool)]
        for threshold in thresholds:
            rows = pred[pred["threshold"] == threshold].sort_values("dimension")
            finite = rows[np.isfinite(rows["params_min"])]
            if len(finite):
                lower = finite["params_min"] - finite["params_min_lo"].clip(upper=finite["params_min"])
                upper = ((finite["params_min_hi"].replace(np.inf, np.nan) - finite["params_min"])
                         .fillna(0).clip(lower=0))
                needed.errorbar(finite["dimension"], finite["params_min"], yerr=[lower, upper], marker="o",
                                color=colors[threshold], capsize=2, label=f"fit, ε = {threshold:g}")
    if not multiply and len(dims):
        for threshold in thresholds:
            needed.plot(dims, hand_built_params(dims, threshold), ls="-.", color=colors[threshold],
                        label=f"hand-built, ε = {threshold:g}")
    fitted = fit.dropna(subset=["alpha"])
    fitted = fitted[fitted["determined"].fillna(False).astype(bool)]
    if len(fitted):
        needed.plot(fitted["dimension"], fitted["max_params"], color="grey", lw=0.8, ls="--",
                    label="largest net fitted")
    needed.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="parameters",
               title="parameters needed, S → ∞ (determined fits)")
    _dimension_ticks(needed, dims)
    if not needed.get_legend_handles_labels()[0]:
        needed.text(0.5, 0.5, "no determined fit", ha="center", va="center", transform=needed.transAxes)
    for name, marker in (("alpha", "o"), ("beta", "s"), ("delta", "^")):
        if not len(fitted) or not fitted[name].abs().gt(0).any():
            continue
        low = (fitted[name] - fitted[f"{name}_lo"]).clip(lower=0).fillna(0)
        high = (fitted[f"{name}_hi"] - fitted[name]).clip(lower=0).fillna(0)
        label = {"alpha": "α (N)", "beta": "β (S)", "delta": "δ (N in the S term)"}[name]
        exponents.errorbar(fitted["dimension"], fitted[name], yerr=[low, high], marker=marker, capsize=2,
                           label=label)
    exponents.set(xscale="log", xlabel="dimension d", ylabel="exponent (95 % interval)",
                  title="the law's exponents (determined fits)")
    _dimension_ticks(exponents, dims)
    if exponents.get_legend_handles_labels()[0]:
        exponents.legend(loc="best", frameon=False)
    else:
        exponents.text(0.5, 0.5, "no determined fit", ha="center", va="center", transform=exponents.transAxes)


def _dimension_ticks(ax, dims) -> None:
    if len(dims):
        ax.set_xticks(dims)
        ax.set_xticklabels([str(d) for d in dims])
        ax.minorticks_off()
        ax.set_xlim(dims[0] / 1.4, dims[-1] * 1.4)
