"""What the fitted law (dotmlp.study.fit) says it takes to reach a threshold: per task, the
parameters needed with unlimited samples, the fewest samples, and the pair of least compute as an
architecture, with bootstrap intervals (predicted.csv).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dotmlp.analysis.tables import architecture_label
from dotmlp.sizes import params_of, width_for_params
from dotmlp.study.fit import LEVEL, N0, S0
from dotmlp.study.law import REFERENCE_DEPTH, constants, nmse, yarotsky_params

THRESHOLDS = (1e-2, 1e-3)
# Predictions reach at most this many times the largest network trained on the task.
EXTRAPOLATION = 100


def predict(fit_row, threshold: float, max_params: float | None = None,
            min_samples: float | None = None) -> dict:
    """What the law says it takes to reach `threshold`:

    - params_min: the smallest N that reaches it with unlimited samples (S → ∞);
    - samples_min: the fewest samples with unlimited parameters (N → ∞); under the interaction
      form (δ > 0) the data term vanishes as N grows, so that limit is 0: it is given at
      N = max_params instead (`samples_min_params`);
    - params, samples: a concrete pair, the one of least compute N·S on the law's threshold line,
      with N ≤ max_params (default: EXTRAPOLATION × the largest network fitted) and S ≥
      min_samples (default: the smallest budget fitted: below it the law is not measured).
    Everything is +inf (and reachable False) where the threshold is at or below the floor E."""
    row = constants(fit_row)
    a, alpha, b, beta, e, delta = (row[k] for k in ("A", "alpha", "B", "beta", "E", "delta"))
    if max_params is None:
        max_params = EXTRAPOLATION * row["max_params"] if np.isfinite(row.get("max_params", np.nan)) \
            else np.inf
    if min_samples is None:
        min_samples = row.get("min_samples", 1.0)
        min_samples = min_samples if np.isfinite(min_samples) else 1.0
    target = threshold / (1 - threshold)  # f at NMSE = threshold
    out = {"threshold": threshold, "reachable": False, "params_min": np.inf, "samples_min": np.inf,
           "samples_min_params": np.nan, "params": np.nan, "samples": np.nan, "nmse": np.nan,
           "compute": np.nan, "at_cap": False, "max_params": float(max_params)}
    if not all(np.isfinite(v) for v in (a, alpha, b, beta, e)) or target <= e:
        return out
    room = target - e
    with np.errstate(over="ignore"):  # beyond float range: inf, i.e. out of reach
        params_min = (np.power(np.float64(a / room), 1 / alpha) if alpha > 0
                      else (0.0 if a < room else np.inf))
    params_min = max(float(params_min), 1.0)  # an exponent near 0 in a bootstrap draw
    out.update(reachable=bool(np.isfinite(params_min)), params_min=params_min)
    if delta == 0:
        with np.errstate(over="ignore"):
            out["samples_min"] = float(np.power(np.float64(b / room), 1 / beta)) if beta > 0 \
                else np.inf
    elif max_params > params_min:
        out["samples_min_params"] = float(max_params)
        out["samples_min"] = float(_samples_needed(row, max_params, target))
    if not (out["reachable"] and max_params > params_min):
        return out
    grid = np.geomspace(params_min * (1 + 1e-6), max_params, 4000)
    samples = np.maximum(_samples_needed(row, grid, target), min_samples)
    with np.errstate(over="ignore"):
        compute = grid * samples
    if not np.isfinite(compute).any():
        return out
    best = int(np.nanargmin(compute))
    out.update(params=float(grid[best]), samples=float(samples[best]),
               compute=float(compute[best]), at_cap=bool(best == len(grid) - 1),
               nmse=float(nmse(row, grid[best], samples[best])))
    return out


def samples_needed(fit_row, params, threshold: float):
    """The samples at which the law reaches `threshold` with N = params (inf where N alone
    cannot, whatever the samples)."""
    return _samples_needed(constants(fit_row), params, threshold / (1 - threshold))


def _samples_needed(row: dict, params, target: float):
    """S at which the law reaches f = target with N params (inf where N alone cannot)."""
    params = np.asarray(params, dtype=float)
    room = target - row["E"] - row["A"] * params ** -row["alpha"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        needed = (row["B"] * params ** -row["delta"] / room) ** (1 / row["beta"])
    return np.where(room > 0, needed, np.inf)


def law_for_dimension(fit: pd.DataFrame, dimension: int, multiply: bool = False) -> dict | None:
    """The law of a task: its own fit row where it was fitted; for a dimension without one, the
    constants interpolated (or extrapolated) linearly in log d from the determined fits of the
    same flag — the capacity and data terms' values at N0, S0, the exponents and ln E — marked
    `interpolated` and never `determined`. None where fewer than two determined fits exist."""
    task = fit[fit["multiply"].astype(bool) == bool(multiply)]
    own = task[(task["dimension"] == dimension) & task["alpha"].notna()]
    if len(own):
        return {**own.iloc[0].to_dict(), "interpolated": False}
    usable = task[task["alpha"].notna()]
    if "determined" in usable:
        usable = usable[usable["determined"].astype(str).str.lower() == "true"]
    if usable["dimension"].nunique() < 2:
        return None
    x = np.log(usable["dimension"].to_numpy(float))
    delta = usable["delta"].fillna(0).to_numpy(float)
    at_n0 = np.log(usable["A"]) - usable["alpha"] * math.log(N0)
    at_n0_s0 = np.log(usable["B"]) - delta * math.log(N0) - usable["beta"] * math.log(S0)

    def line(values) -> float:
        return float(np.polyval(np.polyfit(x, np.asarray(values, float), 1), math.log(dimension)))

    alpha, beta = max(line(usable["alpha"]), 0.0), max(line(usable["beta"]), 0.0)
    delta_d = max(line(delta), 0.0)
    nearest = usable.iloc[int(np.argmin(np.abs(x - math.log(dimension))))]
    dims = ", ".join(str(int(d)) for d in sorted(usable["dimension"]))
    how = "interpolated" if x.min() < math.log(dimension) < x.max() else "extrapolated"
    return {"dimension": dimension, "multiply": bool(multiply),
            "A": math.exp(line(at_n0) + alpha * math.log(N0)), "alpha": alpha,
            "B": math.exp(line(at_n0_s0) + delta_d * math.log(N0) + beta * math.log(S0)),
            "beta": beta, "delta": delta_d, "E": math.exp(line(np.log(usable["E"]))),
            "form": "interaction" if delta_d > 0 else "additive", "determined": False,
            "reference_depth": REFERENCE_DEPTH, "max_params": nearest["max_params"],
            "min_samples": nearest["min_samples"], "max_samples": nearest["max_samples"],
            "interpolated": True,
            "note": f"constants {how} linearly in log d from the fits at d = {dims}"}


def architecture_for(params: float, dimension: int, multiply: bool = False, depth: int = 2) -> dict:
    """A depth-`depth` architecture with about `params` parameters."""
    width = width_for_params(params, dimension, depth, multiply)
    return {"depth": depth, "width": width, "architecture": architecture_label(depth, width),
            "architecture_params": params_of(dimension, depth, width, multiply)}


def prediction_table(fit: pd.DataFrame, draws: pd.DataFrame | None = None,
                     thresholds: Sequence[float] = THRESHOLDS, depth: int | None = None,
                     level: float = LEVEL) -> pd.DataFrame:
    """Per task and threshold: the law's predictions (see predict) with bootstrap intervals, the
    recommended pair as an architecture of `depth` (default: the law's reference depth, 2) and
    its steps at batch 1024, whether it lies beyond the largest network or budget trained, and
    the approximation-theory reference (at depth 2)."""
    tail = (1 - level) / 2 * 100
    rows = []
    for _, row in fit.iterrows():
        if row["alpha"] is None or not np.isfinite(row["alpha"]):
            continue  # not fitted (see its note)
        task_draws = (draws[(draws["dimension"] == row["dimension"])
                            & (draws["multiply"] == row["multiply"])] if draws is not None and len(draws)
                      else pd.DataFrame())
        for threshold in thresholds:
            point = predict(row, threshold)
            out = {"dimension": int(row["dimension"]), "multiply": bool(row["multiply"]),
                   "threshold": threshold, "form": row["form"],
                   "determined": bool(row.get("determined", False)), **point}
            cap, floor = point["max_params"], row["min_samples"]
            spread = [predict({**row.to_dict(), **draw.to_dict()}, threshold, cap, floor)
                      for _, draw in task_draws.iterrows()]
            for key in ("params_min", "samples_min", "params", "samples"):
                values = np.array([s[key] for s in spread], dtype=float)
                values = np.where(np.isnan(values), np.inf, values)  # not reachable in that draw
                out[f"{key}_lo"] = (float(np.percentile(values, tail, method="lower"))
                                    if len(values) else np.nan)
                out[f"{key}_hi"] = (float(np.percentile(values, 100 - tail, method="higher"))
                                    if len(values) else np.nan)
            if np.isfinite(point["params"]):
                at = depth or int(row.get("reference_depth") or REFERENCE_DEPTH)
                out.update(architecture_for(point["params"], out["dimension"], out["multiply"], at))
                out["steps"] = math.ceil(point["samples"] / 1024)
            out["beyond_trained_params"] = bool(point["params_min"] > row["max_params"])
            out["beyond_trained_samples"] = bool(np.isfinite(point["samples"])
                                                 and point["samples"] > row["max_samples"])
            out["yarotsky_params"] = int(yarotsky_params(out["dimension"], threshold, 2,
                                                         out["multiply"]))
            rows.append(out)
    columns = ["dimension", "multiply", "threshold", "reachable", "determined", "form",
               "params_min", "params_min_lo", "params_min_hi",
               "samples_min", "samples_min_lo", "samples_min_hi", "samples_min_params",
               "params", "params_lo", "params_hi", "samples", "samples_lo", "samples_hi",
               "nmse", "compute", "at_cap", "max_params", "depth", "width", "architecture",
               "architecture_params", "steps", "beyond_trained_params", "beyond_trained_samples",
               "yarotsky_params"]
    return pd.DataFrame(rows).reindex(columns=columns)
