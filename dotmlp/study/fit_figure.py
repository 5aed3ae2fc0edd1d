"""The scaling fit drawn (fit.png, fit_multiply_on.png): the measured points, the law's slices,
the parameters each threshold needs against d, and the law's exponents."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dotmlp.study.fit import MAX_NMSE
from dotmlp.study.law import FLOOR, nmse, yarotsky_params
from dotmlp.study.predictions import EXTRAPOLATION, THRESHOLDS

DEPTH_MARKERS = {2: "o", 4: "s", 1: "^", 3: "D", 8: "P"}


def fit_figure(points: pd.DataFrame, fit: pd.DataFrame, predictions: pd.DataFrame | None = None,
               multiply: bool = False, thresholds: Sequence[float] = THRESHOLDS):
    """Per dimension (columns): the measured points and the law's slices, against samples (top:
    one line per network size) and against parameters (bottom: at the three largest budgets and
    at S → ∞, dashed), the thresholds, and d·ln(1/ε) units as a depth-2 net (dotted verticals).
    Last column: the parameters the law needs at each threshold against d, with intervals and
    the theory's line, and the exponents α, β with their intervals."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    points = points[points["multiply"] == multiply]
    fit = fit[fit["multiply"] == multiply]
    dimensions = sorted(set(points["dimension"]) | set(fit["dimension"]))
    columns = len(dimensions) + 1
    fig = Figure(figsize=(3.1 * columns, 6.4), layout="constrained")
    axes = fig.subplots(2, columns, squeeze=False)
    cmap = colormaps["viridis"]
    threshold_colors = dict(zip(thresholds, ("tab:red", "tab:purple", "tab:brown"), strict=False))
    for j, dimension in enumerate(dimensions):
        task = points[points["dimension"] == dimension]
        row = fit[fit["dimension"] == dimension]
        row = row.iloc[0] if len(row) else None
        fitted = row is not None and row["alpha"] is not None and np.isfinite(row["alpha"])
        top, bottom = axes[0][j], axes[1][j]
        sizes = np.sort(task["params"].unique())
        size_norm = LogNorm(vmin=max(sizes.min(), 1), vmax=max(sizes.max(), 2)) if len(sizes) else None
        s_range = (np.geomspace(task["samples"].min() / 2, task["samples"].max() * 10, 100)
                   if len(task) else np.array([]))
        for (depth, params), cell in task.groupby(["depth", "params"]):
            cell = cell.sort_values("samples")
            color = cmap(size_norm(params))
            marker = DEPTH_MARKERS.get(int(depth), "x")
            top.scatter(cell["samples"], cell["val_nmse"].clip(lower=FLOOR), s=10, color=color,
                        marker=marker)
            if fitted:
                top.plot(s_range, nmse(row, params, s_range, int(depth)), color=color, lw=1,
                         ls="-" if depth == row["reference_depth"] else ":")
        budgets = np.sort(task["samples"].unique())[-3:]
        n_range = (np.geomspace(max(task["params"].min() / 2, 1),
                                task["params"].max() * EXTRAPOLATION, 100) if len(task) else [])
        budget_norm = LogNorm(vmin=budgets.min(), vmax=max(budgets.max(), budgets.min() * 2)) \
            if len(budgets) else None
        for samples in budgets:
            at = task[task["samples"] == samples]
            color = colormaps["plasma"](0.8 * budget_norm(samples))
            for depth, at_depth in at.groupby("depth"):
                bottom.scatter(at_depth["params"], at_depth["val_nmse"].clip(lower=FLOOR), s=10,
                               color=color, marker=DEPTH_MARKERS.get(int(depth), "x"),
                               label=f"S = {samples:.2g}" if depth == at["depth"].min() else None)
            if fitted:
                bottom.plot(n_range, nmse(row, n_range, samples), color=color, lw=1)
        if fitted:
            bottom.plot(n_range, nmse(row, n_range, np.inf), color="black", ls="--", lw=1,
                        label="S → ∞")
        for ax in (top, bottom):
            ax.axhline(MAX_NMSE, color="grey", lw=0.5, ls="--")  # fitted below it only
        for threshold, color in threshold_colors.items():
            for ax in (top, bottom):
                ax.axhline(threshold, color=color, lw=0.6, ls=":")
            bottom.axvline(yarotsky_params(dimension, threshold, 2, multiply), color=color, lw=0.8,
                           ls="-.", label=f"d·ln(1/ε) units, ε={threshold:g}")
        note = "" if fitted else ("\n" + (row["note"] if row is not None else "not fitted"))[:60]
        exponents = (f"\nα={row['alpha']:.2f} β={row['beta']:.2f}"
                     + (f" δ={row['delta']:.2f}" if row["delta"] else "")) if fitted else ""
        top.set_title(f"d = {dimension}{exponents}{note}", fontsize=8)
        top.set(xscale="log", yscale="log", xlabel="training samples S")
        if fitted and row["depth_factors"]:
            top.text(0.02, 0.02, "markers: depth 2 ● 4 ■ 1 ▲ (dotted: × factor)\nfactors "
                     + row["depth_factors"], transform=top.transAxes, fontsize=5)
        bottom.set(xscale="log", yscale="log", xlabel="parameters N")
        if j == 0:
            top.set_ylabel("held-out NMSE (tuned lr, median)\nlines: the law at each N")
            bottom.set_ylabel("held-out NMSE\nlines: the law at each S")
            _legend(bottom, loc="lower left")
    _summary_panels(axes[0][-1], axes[1][-1], fit, predictions, multiply, thresholds,
                    threshold_colors)
    flag = "on (a*b fed)" if multiply else "off"
    fig.suptitle(f"Scaling fit, flag {flag}: NMSE ≈ f/(1+f), f = A·N^-α + B·N^-δ·S^-β + E "
                 "(δ = 0 where the additive law suffices); dotted: thresholds; fitted below the dashed "
                 f"line (NMSE {MAX_NMSE:g})", fontsize=9)
    return fig


def _summary_panels(needed, exponents, fit, predictions, multiply, thresholds, colors):
    if predictions is not None and len(predictions):
        pred = predictions[(predictions["multiply"] == multiply)
                           & predictions["determined"].astype(bool)]
        for threshold in thresholds:
            rows = pred[pred["threshold"] == threshold].sort_values("dimension")
            finite = rows[np.isfinite(rows["params_min"])]
            if len(finite):
                lower = finite["params_min"] - finite["params_min_lo"].clip(upper=finite["params_min"])
                upper = (finite["params_min_hi"].replace(np.inf, np.nan) - finite["params_min"]) \
                    .fillna(0).clip(lower=0)
                needed.errorbar(finite["dimension"], finite["params_min"], yerr=[lower, upper],
                                marker="o", color=colors[threshold], capsize=2,
                                label=f"fit, ε = {threshold:g} (S → ∞)")
            dims = np.array(sorted(set(fit["dimension"]))) if len(fit) else np.array([])
            if len(dims):
                needed.plot(dims, yarotsky_params(dims, threshold, 2, multiply), ls="-.",
                            color=colors[threshold], label=f"d·ln(1/ε) units as 2 × w, ε = {threshold:g}")
    fitted = fit.dropna(subset=["alpha"])
    fitted = fitted[fitted["determined"].fillna(False).astype(bool)]
    if len(fitted):
        needed.plot(fitted["dimension"], fitted["max_params"], color="grey", lw=0.8, ls="--",
                    label="largest net fitted")
    needed.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="parameters",
               title="parameters needed (determined fits)")
    _dimension_ticks(needed, fit)
    _legend(needed)
    for name, marker in (("alpha", "o"), ("beta", "s"), ("delta", "^")):
        if not len(fitted) or not fitted[name].abs().gt(0).any():
            continue
        low = (fitted[name] - fitted[f"{name}_lo"]).clip(lower=0).fillna(0)
        high = (fitted[f"{name}_hi"] - fitted[name]).clip(lower=0).fillna(0)
        label = {"alpha": "α (N)", "beta": "β (S)", "delta": "δ (N in the S term)"}[name]
        exponents.errorbar(fitted["dimension"], fitted[name], yerr=[low, high], marker=marker,
                           capsize=2, label=label)
    exponents.set(xscale="log", xlabel="dimension d", ylabel="exponent (95 % bootstrap)",
                  title="the law's exponents")
    _dimension_ticks(exponents, fit)
    _legend(exponents)


def _legend(ax, **kwargs) -> None:
    if ax.get_legend_handles_labels()[0]:  # a panel with nothing fitted has nothing to name
        ax.legend(fontsize=6, **kwargs)


def _dimension_ticks(ax, fit) -> None:
    dims = sorted(int(d) for d in fit["dimension"].unique()) if len(fit) else []
    if dims:
        ax.set_xticks(dims)
        ax.set_xticklabels([str(d) for d in dims])
        ax.minorticks_off()
