"""The scaling fit against approximation theory, in prose (approximation.md).

The reference for the fit's fixed-depth nets is a fixed-depth construction: the hand-built net of
dotmlp.construction, one hidden layer of 2·d·k ReLU units that represents a·b to ε at every d (k
from ε: 4 for 1e-2, 8 for 1e-3), an upper bound on the size ε needs. `approximation_paragraph`
sets the fit's parameters (depth 2, S → ∞) against it, with the fit's numbers. Yarotsky's deep
construction (design.md: x·y to ε with depth and units O(log 1/ε), so about d·log(1/ε) units for a
dot product) is shown beside it for its growth only: its depth grows with log(1/ε) and its constant
is unknown (taken as 1), so it bounds neither a depth-2 net nor anything at a level;
`yarotsky_params` spreads its units evenly over two layers to put it on the same axis. The fit
counts what Adam learned from samples, the constructions what a net can represent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def hand_built_params(dimension: int, threshold: float) -> int:
    """Dense parameters of the hand-built one-hidden-layer net that represents a·b to threshold."""
    from dotmlp import construction

    return construction.params(int(dimension), construction.smallest_k(threshold))


def approximation_comparison(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per task and threshold: the parameters the law needs with unlimited samples (and its
    interval) against the hand-built net's (flag off) and their ratio, and d·ln(1/ε) units as a
    depth-2 net."""
    table = predictions[["dimension", "multiply", "threshold", "params_min", "params_min_lo",
                         "params_min_hi", "yarotsky_params"]].copy()
    table["hand_built_params"] = [np.nan if multiply else hand_built_params(d, eps) for d, multiply, eps
                                  in zip(table["dimension"], table["multiply"].astype(bool),
                                         table["threshold"], strict=True)]
    table["ratio"] = table["params_min"] / table["hand_built_params"]
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
    lines += ["| d | ε | params needed, S → ∞ (fit, 95 % interval) | hand-built net, one layer | ratio "
              "| d·ln(1/ε) units as 2 × w |",
              "|---|---|---|---|---|---|"]
    off = off.assign(hand_built=[hand_built_params(d, eps)
                                 for d, eps in zip(off["dimension"], off["threshold"], strict=True)])
    for row in off.sort_values(["dimension", "threshold"], ascending=[True, False]).itertuples():
        mark = "" if row.determined else " (fit not determined)"
        lines.append(f"| {row.dimension} | {row.threshold:g} | {_count(row.params_min)} "
                     f"[{_count(row.params_min_lo)}, {_count(row.params_min_hi)}]{mark} | "
                     f"{_count(row.hand_built)} | {_ratio(row.params_min, row.hand_built)} | "
                     f"{_count(row.yarotsky_params)} |")
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
        built_slope = _slope(finite["dimension"], finite["hand_built"])
        ratios = finite["params_min"] / finite["hand_built"]
        if len(finite) >= 2 and np.isfinite(data_slope):
            text.append(
                f"At ε = {threshold:g} the fitted size is {_span(ratios)}× the "
                f"hand-built net's over d = {_dims(finite)}, and grows as d^{data_slope:.2f} (the "
                f"hand-built net's parameters: d^{built_slope:.2f}, its units: d^1).")
        unreachable = rows[~np.isfinite(rows["params_min"])]
        if len(unreachable):
            text.append(f"At ε = {threshold:g} the law's floor E is above the threshold for d = "
                        f"{_dims(unreachable)}: no size reaches it in the fit (a fit of the measured "
                        "range, not a proof).")
    both = off.pivot_table(index="dimension", columns="threshold", values="params_min")
    if both.shape[1] >= 2:
        high, low = max(both.columns), min(both.columns)
        growth = (both[low] / both[high]).replace([np.inf, -np.inf], np.nan).dropna()
        built = off.pivot_table(index="dimension", columns="threshold", values="hand_built")
        built_growth = (built[low] / built[high]).loc[growth.index]
        fitted = fit[~fit["multiply"].astype(bool)]["alpha"].dropna()
        if len(growth):
            text.append(
                f"From ε = {high:g} to {low:g} the fit asks for {growth.min():.2g}–{growth.max():.2g}× "
                f"the parameters (α = {fitted.min():.2f}–{fitted.max():.2f}: 10× less error costs "
                f"10^(1/α) times the size), the hand-built net {_span(built_growth)}×: at a fixed "
                "depth both grow as a power of 1/ε.")
    text.append("The hand-built net is an upper bound on the size ε needs at one hidden layer, "
                "not something SGD was shown to find; a fit above it measures what Adam at a constant "
                "learning rate learned from the samples trained, extrapolated to S → ∞. The last "
                "column, d·ln(1/ε) units of Yarotsky's deep construction spread over two layers, is "
                "for its growth only: its depth grows with log(1/ε) and its constant is unknown "
                "(taken as 1), so it bounds no depth-2 net.")
    return "\n".join([*lines, " ".join(text), ""])


def _count(value) -> str:
    if value is None or not np.isfinite(value):
        return "∞" if value is not None and value == np.inf else "–"
    return f"{value:.2g}" if value >= 1e4 else f"{value:.0f}"


def _ratio(a, b) -> str:
    return f"{a / b:.2g}×" if np.isfinite(a) and b else "–"


def _span(values) -> str:
    low, high = f"{min(values):.2g}", f"{max(values):.2g}"
    return low if low == high else f"{low}–{high}"


def _dims(rows: pd.DataFrame) -> str:
    return ", ".join(str(int(d)) for d in sorted(rows["dimension"].unique()))
