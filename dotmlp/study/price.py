"""The price of learning: SGD's smallest net ÷ the hand-built net, per (d, ε, depth), from
results/answer.csv (the frontier search's decided rows), as a table and a figure against d.

The price is params(SGD's smallest width that reached ε) ÷ params(the construction with the
smallest k that reaches ε, one hidden layer of 2dk units). The search brackets that width: the
width below it failed, so SGD's true smallest size lies in (failed, reached], and the price in
(`price_lo`, `price`]. Its growth: per (ε, depth) with prices at GROWTH_MIN_POINTS dimensions or
more, the least-squares slope of ln price against ln d (price ∝ d^slope), with the slopes through
the bracket's lower ends beside it; few dimensions, so a slope is a description, not a law.
Written by `python -m dotmlp.study.law_across` (price.csv, price.png).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dotmlp.study import answer_figure
from dotmlp.study.answer_figure import DPI, WIDTH_INCHES

GROWTH_MIN_POINTS = 3
COLUMNS = ["dimension", "threshold", "depth", "width", "params", "failed_width", "failed_params",
           "samples", "lr_bracketed", "construction_k", "construction_params", "price", "price_lo",
           "growth_slope", "growth_slope_lo", "growth_points"]
COLOURS = answer_figure.COLOURS


def price_table(answer: pd.DataFrame) -> pd.DataFrame:
    """One row per reached, searched (flag off) row of answer.csv, with its price bracket and its
    (ε, depth)'s growth slope in ln d."""
    rows = answer[(answer["multiply"].astype(str) == "False") & (answer["reached"].astype(str) == "True")
                  & (answer["status"] == "decided")].copy()
    rows["price"] = rows["params"] / rows["construction_params"]
    rows["price_lo"] = rows["failed_params"] / rows["construction_params"]
    for (_, _), group in rows.groupby(["threshold", "depth"]):
        rows.loc[group.index, "growth_points"] = len(group)
        if len(group) >= GROWTH_MIN_POINTS:
            ln_d = np.log(group["dimension"].astype(float))
            price = np.log(group["price"].astype(float))
            rows.loc[group.index, "growth_slope"] = np.polyfit(ln_d, price, 1)[0]
            low = group["price_lo"].astype(float)
            if low.notna().all():
                rows.loc[group.index, "growth_slope_lo"] = np.polyfit(ln_d, np.log(low), 1)[0]
    table = rows.reindex(columns=COLUMNS)
    for column in ("dimension", "depth", "width", "params", "failed_width", "failed_params", "samples",
                   "construction_k", "construction_params", "growth_points"):
        table[column] = pd.to_numeric(table[column]).round().astype("Int64")
    return table.sort_values(["threshold", "depth", "dimension"], ascending=[False, True, True],
                             ignore_index=True)


def draw(table: pd.DataFrame, out: Path) -> Path:
    """Price against d (log-log), one line per (ε, depth), the bar down to the failed width's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axis = plt.subplots(figsize=(WIDTH_INCHES, 4.6), dpi=DPI)
    for (eps, depth), group in table.groupby(["threshold", "depth"], sort=False):
        group = group.sort_values("dimension")
        price = group["price"].astype(float)
        low = (price - group["price_lo"].astype(float)).fillna(0.0)
        shift = 1.04 if depth == 2 else 1 / 1.04  # side by side where they share a d
        slope = group["growth_slope"].iloc[0]
        label = f"ε = {eps:g}, depth {depth}" + (f": ∝ d^{slope:.2f}" if pd.notna(slope) else "")
        axis.errorbar(group["dimension"].astype(float) * shift, price, yerr=[low, 0 * low],
                      fmt="o-" if depth == 1 else "s--", color=COLOURS.get(eps, "tab:gray"), capsize=3,
                      label=label)
    axis.axhline(1.0, color="black", lw=1, ls=":", label="the hand-built net (price 1)")
    dims = sorted(table["dimension"].dropna().astype(int).unique())
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    if dims:
        axis.set_xticks(dims, [str(d) for d in dims])
        axis.set_xlim(dims[0] / 1.4, dims[-1] * 1.4)
    axis.set_xlabel("dimension d")
    axis.set_ylabel("SGD's smallest params ÷ hand-built params")
    axis.set_title("The price of learning (bar: down to the width that failed)", fontsize=11)
    axis.grid(True, which="both", alpha=0.3)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axis.yaxis.set_major_formatter(plain)
    axis.yaxis.set_minor_formatter(plain)
    axis.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return answer_figure.save(fig, out)
