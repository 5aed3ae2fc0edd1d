"""A study's smallest nets against approximation theory, in prose (approximation.md).

The reference for the study's fixed-depth nets is a fixed-depth construction: the hand-built net of
dotmlp.construction, one hidden layer of 2·d·k ReLU units that represents a·b to ε at every d (k
from ε: 4 for 1e-2, 8 for 1e-3), an upper bound on the size ε needs. `approximation_paragraph`
sets the smallest net that reached each threshold in the study's answer table (flag off, any depth,
measured at the study's budgets) against it. Yarotsky's deep construction (design.md: x·y to ε with
depth and units O(log 1/ε), so about d·log(1/ε) units for a dot product) is shown beside it for its
growth only: its depth grows with log(1/ε) and its constant is unknown (taken as 1), so it bounds
neither a fixed-depth net nor anything at a level; `yarotsky_params` spreads its units evenly over
two layers to put it on the same axis. The answer counts what Adam learned from samples, the
constructions what a net can represent. The frontier search's version of this comparison, with
decayed schedules and bracketed learning rates, is the price of learning (dotmlp.study.price).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dotmlp.sizes import params_of

APPROXIMATION_FILE = "approximation.md"


def yarotsky_units(dimension, epsilon, constant: float = 1.0):
    """Units on the order of d·ln(1/ε) (Yarotsky 2017; constant unknown, 1 by default)."""
    return constant * np.asarray(dimension) * np.log(1 / np.asarray(epsilon))


def yarotsky_params(dimension, epsilon, depth: int = 2, multiply: bool = False,
                    constant: float = 1.0):
    """Those units as parameters of a depth-`depth` net, split evenly over its layers (an
    assumption: the construction is deeper; this puts it on the same axis as the measured nets)."""
    width = np.maximum(1, np.ceil(yarotsky_units(dimension, epsilon, constant) / depth))
    return params_of(dimension, depth, width.astype(np.int64), multiply)


def hand_built_params(dimension: int, threshold: float) -> int:
    """Dense parameters of the hand-built one-hidden-layer net that represents a·b to threshold."""
    from dotmlp import construction

    return construction.params(int(dimension), construction.smallest_k(threshold))


def approximation_comparison(answer: pd.DataFrame) -> pd.DataFrame:
    """Per dimension and threshold without the flag: the smallest net that reached it (`params`,
    empty where none did; `run`: whether the study trained that dimension), the hand-built net's
    parameters, their ratio, and d·ln(1/ε) units as a depth-2 net."""
    off = answer[~answer["multiply"].astype(str).str.lower().eq("true")]
    table = off[["dimension", "threshold", "reached", "params", "architecture"]].copy()
    table["reached"] = table["reached"].astype(str).str.lower().eq("true")
    table["run"] = off["bound"].ne("not run") if "bound" in off else True
    table["params"] = pd.to_numeric(table["params"]).where(table["reached"]).astype(float)
    table["architecture"] = table["architecture"].where(table["reached"])
    table["hand_built_params"] = [hand_built_params(d, eps) for d, eps
                                  in zip(table["dimension"], table["threshold"], strict=True)]
    table["ratio"] = table["params"] / table["hand_built_params"]
    table["yarotsky_params"] = [int(yarotsky_params(d, eps)) for d, eps
                                in zip(table["dimension"], table["threshold"], strict=True)]
    return table.sort_values(["dimension", "threshold"], ascending=[True, False], ignore_index=True)


def _slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2 or np.unique(x[keep]).size < 2:
        return np.nan
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def approximation_paragraph(answer: pd.DataFrame) -> str:
    """One paragraph (markdown), with the answer table's numbers, on its smallest nets against the
    hand-built net and the approximation-theory scaling (d·ln(1/ε) units, as a depth-2 net)."""
    lines = ["## The smallest nets against approximation theory", ""]
    table = approximation_comparison(answer)
    if not len(table):
        return "\n".join([*lines, "No task without the flag in the answer: nothing to compare.", ""])
    lines += ["| d | ε | smallest net that reached ε (params) | hand-built net, one layer | ratio "
              "| d·ln(1/ε) units as 2 × w |",
              "|---|---|---|---|---|---|"]
    for row in table.itertuples():
        reached = (f"{_count(row.params)} ({row.architecture})" if row.reached
                   else "not reached" if row.run else "not run")
        lines.append(f"| {row.dimension} | {row.threshold:g} | {reached} | "
                     f"{_count(row.hand_built_params)} | {_ratio(row.params, row.hand_built_params)} | "
                     f"{_count(row.yarotsky_params)} |")
    lines.append("")
    text = []
    reached = table[table["reached"]]
    for threshold in sorted(table["threshold"].unique(), reverse=True):
        rows = reached[reached["threshold"] == threshold]
        slope = _slope(rows["dimension"], rows["params"])
        if len(rows) >= 2 and np.isfinite(slope):
            text.append(
                f"At ε = {threshold:g} the smallest net that reached it is {_span(rows['ratio'])}× the "
                f"hand-built net's parameters over d = {_dims(rows)}, and grows as d^{slope:.2f} (the "
                f"hand-built net's parameters: d^{_slope(rows['dimension'], rows['hand_built_params']):.2f}, "
                "its units: d^1).")
    both = reached.pivot_table(index="dimension", columns="threshold", values="params")
    if both.shape[1] >= 2:
        high, low = max(both.columns), min(both.columns)
        growth = (both[low] / both[high]).dropna()
        built = table.pivot_table(index="dimension", columns="threshold", values="hand_built_params")
        if len(growth):
            text.append(f"From ε = {high:g} to {low:g} the smallest net grows {_span(growth)}× over "
                        f"d = {', '.join(str(int(d)) for d in growth.index)}, the hand-built net "
                        f"{_span(built[low] / built[high])}×.")
    missed = table[~table["reached"] & table["run"]]
    if len(missed):
        text.append(f"Not reached at d = {_dims(missed)} for some ε: a bound of the sizes and "
                    "samples tried (answer.csv's `bound`), not a size that cannot be learned.")
    text.append("The hand-built net is an upper bound on the size ε needs at one hidden layer, "
                "not something SGD was shown to find; the smallest net measured is what Adam learned "
                "from the samples trained, at any depth. The last column, d·ln(1/ε) units of "
                "Yarotsky's deep construction spread over two layers, is for its growth only: its "
                "depth grows with log(1/ε) and its constant is unknown (taken as 1), so it bounds no "
                "fixed-depth net.")
    return "\n".join([*lines, " ".join(text), ""])


def _count(value) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.2g}" if value >= 1e4 else f"{value:.0f}"


def _ratio(a, b) -> str:
    return f"{a / b:.2g}×" if np.isfinite(a) and b else "–"


def _span(values) -> str:
    low, high = f"{min(values):.2g}", f"{max(values):.2g}"
    return low if low == high else f"{low}–{high}"


def _dims(rows: pd.DataFrame) -> str:
    return ", ".join(str(int(d)) for d in sorted(rows["dimension"].unique()))
