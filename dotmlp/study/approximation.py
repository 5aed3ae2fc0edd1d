"""The scaling fit against approximation theory, in prose (approximation.md).

Approximation theory, for comparison (design.md): a ReLU network approximates x·y to error ε with
depth O(log 1/ε) and O(log 1/ε) units (Yarotsky 2017), so a d-dimensional dot product needs on the
order of d·log(1/ε) units. `yarotsky_params` turns that into parameters of a depth-2 net with the
units split evenly over its two layers (an assumption: the construction itself is deeper, and its
constant is unknown, taken as 1); `approximation_paragraph` says, with the fit's numbers, how the
data compare. Two things to keep in mind when reading it: the theory counts units needed to
represent, not to learn from samples with Adam; and at a fixed depth ReLU nets cannot reach the
logarithmic rate (the units needed then grow as a power of 1/ε), which is what α measures here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def approximation_comparison(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per task and threshold: the parameters the law needs with unlimited samples (and its
    interval) against d·ln(1/ε) units as a depth-2 net, and their ratio."""
    table = predictions[["dimension", "multiply", "threshold", "params_min", "params_min_lo",
                         "params_min_hi", "yarotsky_params"]].copy()
    table["ratio"] = table["params_min"] / table["yarotsky_params"]
    return table


def _slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2 or np.unique(x[keep]).size < 2:
        return np.nan
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def approximation_paragraph(fit: pd.DataFrame, predictions: pd.DataFrame) -> str:
    """One paragraph (markdown), with the numbers of this fit, on what the data show against the
    approximation-theory scaling (d·ln(1/ε) units, as a depth-2 net)."""
    lines = ["## The fit against approximation theory", ""]
    off = predictions[~predictions["multiply"].astype(bool)]
    if not len(off):
        return "\n".join([*lines, "No task without the flag was fitted: nothing to compare.", ""])
    lines += ["| d | ε | params needed, S → ∞ (fit, 95 % interval) | d·ln(1/ε) units as 2 × w | ratio |",
              "|---|---|---|---|---|"]
    for row in off.sort_values(["dimension", "threshold"], ascending=[True, False]).itertuples():
        mark = "" if row.determined else " (fit not determined)"
        lines.append(f"| {row.dimension} | {row.threshold:g} | {_count(row.params_min)} "
                     f"[{_count(row.params_min_lo)}, {_count(row.params_min_hi)}]{mark} | "
                     f"{_count(row.yarotsky_params)} | {_ratio(row.params_min, row.yarotsky_params)} |")
    lines.append("")
    text = []
    loose = sorted(int(d) for d in off.loc[~off["determined"].astype(bool), "dimension"].unique())
    if loose:
        text.append(f"The fits at d = {', '.join(map(str, loose))} are not determined by their "
                    "data (see the notes in fit.csv) and are left out of what follows.")
    off = off[off["determined"].astype(bool)]
    fit = fit[fit["determined"].fillna(False).astype(bool)]
    if not len(off):
        return "\n".join([*lines, " ".join([*text, "No determined fit: nothing to compare."]), ""])
    for threshold in sorted(off["threshold"].unique(), reverse=True):
        rows = off[off["threshold"] == threshold]
        finite = rows[np.isfinite(rows["params_min"])]
        data_slope = _slope(finite["dimension"], finite["params_min"])
        theory_slope = _slope(finite["dimension"], finite["yarotsky_params"])
        ratios = finite["params_min"] / finite["yarotsky_params"]
        if len(finite) >= 2 and np.isfinite(data_slope):
            text.append(
                f"At ε = {threshold:g} the fitted size grows as d^{data_slope:.2f} over d = "
                f"{_dims(finite)} (the theory's units as a depth-2 net: d^{theory_slope:.2f}, "
                f"the width² term making params grow faster than units) and is "
                f"{ratios.min():.2g}–{ratios.max():.2g}× the theory's count.")
        unreachable = rows[~np.isfinite(rows["params_min"])]
        if len(unreachable):
            text.append(f"At ε = {threshold:g} the law's floor E is above the threshold for d = "
                        f"{_dims(unreachable)}: no size reaches it in the fit (a fit of the measured "
                        "range, not a proof).")
    both = off.pivot_table(index="dimension", columns="threshold", values="params_min")
    if both.shape[1] >= 2:
        high, low = max(both.columns), min(both.columns)
        growth = (both[low] / both[high]).replace([np.inf, -np.inf], np.nan).dropna()
        theory = float(np.log(1 / low) / np.log(1 / high))
        fitted = fit[~fit["multiply"].astype(bool)]["alpha"].dropna()
        if len(growth):
            text.append(
                f"From ε = {high:g} to {low:g} the fit asks for {growth.min():.2g}–{growth.max():.2g}× "
                f"the parameters (α = {fitted.min():.2f}–{fitted.max():.2f}: 10× less error costs "
                f"10^(1/α) times the size), where d·ln(1/ε) asks for {theory:.2f}× the units "
                f"(at most {theory**2:.2f}× the parameters at depth 2): the learned nets follow a "
                "power law in 1/ε, not the logarithm of the deep construction.")
    text.append("Caveats: the construction's constant is unknown (taken as 1) and its depth grows "
                "with log(1/ε), while the fit is of depth-2 nets trained with Adam on fresh samples; "
                "at a fixed depth no ReLU net attains the logarithmic rate. The comparison is of "
                "growth rates, not of levels.")
    return "\n".join([*lines, " ".join(text), ""])


def _count(value) -> str:
    if value is None or not np.isfinite(value):
        return "∞" if value is not None and value == np.inf else "–"
    return f"{value:.2g}" if value >= 1e4 else f"{value:.0f}"


def _ratio(a, b) -> str:
    return f"{a / b:.2g}×" if np.isfinite(a) and b else "–"


def _dims(rows: pd.DataFrame) -> str:
    return ", ".join(str(int(d)) for d in sorted(rows["dimension"].unique()))
