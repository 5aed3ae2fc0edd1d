"""The law across dimensions (dotmlp.study.across_fit) asked for widths: the smallest width that
reaches ε within the search's sample cap, at dimensions it was not fitted on, against what the
frontier search found there (results/law_checks.csv), and the same question as a score of each
method, dimension by dimension left out (law_loo.csv's width columns).

A prediction is the smallest width whose law NMSE after the cap's samples (FrontierSettings.cap:
the budget the search trains up to) is ≤ ε; its samples are the budget at which the law puts that
width at ε; its interval the bootstrap's (fits of resampled nets) 5th and 95th percentiles of that
width. `found_width` is answer.csv's decided, reached row for (d, ε, depth); the search brackets
it from below by `found_failed_width`, so a prediction in (failed, found] is as right as the search
can tell.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dotmlp.frontier import FrontierSettings, Task, start_width
from dotmlp.sizes import params_of
from dotmlp.study.across_fit import DEPTHS, LEVEL, METHODS, R0, Fits, design, law_nmse, terms

MAX_WIDTH = 2**16  # the widest net a prediction considers
THRESHOLDS = (1e-2, 1e-3)
# (kind, dimensions predicted, which dimensions the fit may use)
CHECKS = (("held out", (24, 48), lambda d: d not in (24, 48)),
          ("from d <= 16", (32, 64), lambda d: d <= 16),
          # Not a check: the law on every dimension with data, the headline figure's dashed line.
          ("all data", (1, 2, 4, 8, 16, 24, 32, 48, 64), lambda d: True))
CHECK_COLUMNS = ["kind", "dimension", "threshold", "depth", "method", "fitted_on", "fitted_points",
                 "sample_cap", "predicted_width", "predicted_params", "predicted_samples",
                 "predicted_nmse_at_cap", "width_lo", "width_hi", "resamples", "found_width",
                 "found_failed_width", "found_params", "found_samples", "ratio", "within_1_5x",
                 "search_max_width", "status", "note"]


def smallest_width(theta, dimension: int, depth: int, threshold: float, cap: int,
                   max_width: int = MAX_WIDTH) -> int | None:
    """The smallest width whose law NMSE after `cap` samples is ≤ threshold (None: none up to
    max_width). Every width is scanned (widest last), since NMSE at a fixed cap need not fall
    with width: a wider net has fewer samples per parameter."""
    start = 1
    while start <= max_width:
        widths = np.arange(start, min(2 * start + 1023, max_width) + 1)
        hit = np.flatnonzero(law_nmse(theta, dimension, depth, widths, cap) <= threshold)
        if len(hit):
            return int(widths[hit[0]])
        start = int(widths[-1]) + 1
    return None


def samples_needed(theta, dimension: int, depth: int, width: int, threshold: float) -> float:
    """The budget at which the law puts a net of `width` at the threshold (inf: its capacity term
    alone is above it)."""
    params = params_of(dimension, depth, width)
    x, _, u, g = design(dimension, depth, params, R0 * params)  # z = 0: r = R0
    capacity, data = (float(t) for t in terms(theta, x, 0.0, u, g))
    room = threshold / (1 - threshold) - math.exp(capacity)
    if room <= 0:
        return math.inf
    beta = float(theta[3])
    if beta <= 1e-9:
        return 0.0 if data <= math.log(room) else math.inf
    return R0 * math.exp((data - math.log(room)) / beta) * params


def _found(answer: pd.DataFrame, dimension: int, threshold: float, depth: int) -> dict:
    rows = answer[(answer["multiply"].astype(str) == "False") & (answer["dimension"] == dimension)
                  & np.isclose(answer["threshold"], threshold) & (answer["depth"] == depth)
                  & (answer["status"] == "decided")]
    if not len(rows):
        return {"status": f"awaiting the frontier search at d = {dimension}"}
    row = rows.iloc[0]
    if str(row["reached"]) != "True":
        return {"status": f"checked: not reached by width <= {row['max_width_tried']} (a bound)"}
    return {"found_width": int(row["width"]), "found_params": int(row["params"]),
            "found_samples": int(row["samples"]),
            "found_failed_width": int(row["failed_width"]) if pd.notna(row["failed_width"]) else None,
            "status": "checked"}


def law_checks(fits: Fits, answer: pd.DataFrame, method: str,
               settings: FrontierSettings = FrontierSettings(),
               kinds=("held out", "from d <= 16", "leave-one-out", "all data")) -> pd.DataFrame:
    """One row per (check, d, ε, depth): the kept method's smallest width at the sample cap, its
    bootstrap interval, and what the frontier search found there. Besides the checks on new
    dimensions (CHECKS), each dimension with data is predicted from a fit without it
    ("leave-one-out"): the only checks with a found width until the search reaches d = 24…64."""
    dims = sorted(int(d) for d in fits.points["dimension"].unique())
    sets = [(kind, targets, [d for d in dims if keep(d)]) for kind, targets, keep in CHECKS]
    sets += [("leave-one-out", (d,), [e for e in dims if e != d]) for d in dims]
    sets = [entry for entry in sets if entry[0] in kinds]
    tail = (1 - LEVEL) / 2 * 100
    rows = []
    for kind, targets, fitted_dims in sets:
        enough = len(fitted_dims) >= 2
        fitted, draws, train = fits.get(method, fitted_dims) if enough else (None, [], None)
        for dimension in targets:
            cap = settings.cap(dimension)
            for threshold in THRESHOLDS:
                for depth in DEPTHS:
                    row = {"kind": kind, "dimension": dimension, "threshold": threshold,
                           "depth": depth, "method": method, "fitted_on": ",".join(map(str, fitted_dims)),
                           "fitted_points": len(train) if enough else 0, "sample_cap": cap,
                           "resamples": len(draws), **_found(answer, dimension, threshold, depth),
                           "search_max_width": settings.max_width_factor
                           * start_width(Task(dimension, depth, threshold))}
                    if not enough:
                        rows.append({**row, "status": f"not predicted: {len(fitted_dims)} dimension(s) "
                                                      "to fit; " + row["status"]})
                        continue
                    theta = fitted.theta_at(dimension)
                    width = smallest_width(theta, dimension, depth, threshold, cap)
                    spread = np.array([smallest_width(d.theta_at(dimension), dimension, depth,
                                                      threshold, cap) or np.inf for d in draws])
                    if len(spread):
                        lo, hi = np.percentile(spread, [tail, 100 - tail], method="lower")
                        row.update(width_lo=int(lo) if np.isfinite(lo) else None,
                                   width_hi=int(hi) if np.isfinite(hi) else None)
                    if width is None:
                        rows.append({**row, "status": f"law: not reached by width {MAX_WIDTH} at the "
                                                      "cap; " + row["status"]})
                        continue
                    row.update(predicted_width=width, predicted_params=params_of(dimension, depth, width),
                               predicted_samples=round(samples_needed(theta, dimension, depth, width,
                                                                      threshold)),
                               predicted_nmse_at_cap=float(law_nmse(theta, dimension, depth, width, cap)))
                    if width > row["search_max_width"]:
                        row["note"] = (f"beyond the search's widest ({row['search_max_width']}: "
                                       f"{settings.max_width_factor}x the hand-built net)")
                    if row.get("found_width"):
                        row["ratio"] = round(row["found_width"] / width, 3)
                        row["within_1_5x"] = bool(1 / 1.5 <= row["ratio"] <= 1.5)
                    rows.append(row)
    table = pd.DataFrame(rows, columns=CHECK_COLUMNS)
    for column in ("predicted_width", "predicted_params", "predicted_samples", "width_lo", "width_hi",
                   "found_width", "found_failed_width", "found_params", "found_samples",
                   "search_max_width"):
        table[column] = pd.to_numeric(table[column]).round().astype("Int64")
    return table


def width_scores(points: pd.DataFrame, answer: pd.DataFrame, methods=METHODS) -> pd.DataFrame:
    """Per dimension left out, per method: the RMS of ln(found ÷ predicted width) over that d's
    reached rows of answer.csv (`width_checks` of them), each method fitted without that d."""
    fits = Fits(points, 0, 0)
    tables = {method: law_checks(fits, answer, method, kinds=("leave-one-out",)) for method in methods}
    rows = []
    for held in sorted(int(d) for d in points["dimension"].unique()):
        row = {"held_out": held}
        for method, table in tables.items():
            checked = table[(table["dimension"] == held) & table["ratio"].notna()]
            row["width_checks"] = len(checked)
            ratio = np.log(checked["ratio"].astype(float))
            row[f"width_rms_log_{method}"] = float(np.sqrt(np.mean(ratio**2))) if len(checked) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
