"""How big, on how much data: a scaling law per task (dimension, flag), fitted to the learning curves.

The law. For a ReLU MLP of N parameters trained on S fresh samples (depth ≥ 1; tuned learning rate)

    NMSE ≈ f / (1 + f),   f = A·N^−α  +  B·N^−δ·S^−β  +  E

- A·N^−α is the capacity term: what the architecture reaches with unlimited data (S → ∞).
- B·N^−δ·S^−β is the data (optimisation) term. With δ = 0 it is the classic additive law
  A·N^−α + B·S^−β + E (Hoffmann et al. 2022's form); δ > 0 lets a larger network need fewer
  samples for the same error. Why that freedom: design.md's measurements at d = 16 (2 × 256: 1.5e-2
  after 3.1M samples, 3.6e-3 after 30.7M; 2 × 1024: 3.7e-3 after 3.1M) cannot be fitted by any
  additive law: ten times the samples takes 2 × 256 from 1.5e-2 to 3.6e-3, so its data term at 3.1M
  is at least 1.1e-2, yet 2 × 1024 reaches 3.7e-3 at the same 3.1M. In this problem the "data" are
  fresh samples, so S is also the optimisation time, and a wider net optimises faster per step.
- E is a floor (float32 arithmetic, the noise of Adam at a constant learning rate). It is only
  identified where curves flatten: elsewhere a free E drifts to any value below the data, and one
  above a threshold would predict that no network ever reaches it. So E is free only where the
  data ask for it, and otherwise fixed at FLOOR (none).
- Four variants (δ = 0 or free) × (E = FLOOR or free) are fitted to every task; the one with the
  lowest BIC is kept, except that a simpler one within BIC_MARGIN (2) of it is preferred (`form`,
  `floor` in fit.csv), and both forms' residuals are reported (`rmse_log_additive`,
  `rmse_log_interaction`), so the table says which form the data support. fit_residuals.csv has
  every point's residual, and `residual_slope_params` / `residual_slope_samples` their trend in
  ln N and ln S: near 0 where the form suits the data.
- f / (1 + f): NMSE cannot exceed ≈ 1 (predicting 0 scores 1): before a net starts to learn, its
  curve sits at 1, where no power law holds. This saturation lets those early points stay in the
  fit without bending it; below NMSE 0.1 it changes nothing (f/(1+f) = f to within 10 %).

The points. Every (cell, budget) of the learning curves of completed, pruned (by ASHA: shorter
curves) and unfinished trials with a median NMSE ≤ MAX_NMSE (0.5: the curves of the reference
sweep fall from ≈ 1 in a fast escape, then follow a slower power law; the escape is left out);
diverged trials are left out. At each budget a cell counts with its
best learning rate there (the minimum over learning rates of the median over seeds): the law
describes tuned networks, and the prediction check trains at the best learning rate of the
nearest cell. By default the cells of depth ≥ 2 are fitted (depth 1 is the shallow net whose
scaling is a question of its own: dotmlp.depth), with one law for the reference depth 2 and a
constant factor on it for each other depth (`depth_factors` in fit.csv, with intervals): equal
exponents across depths is an assumption the residuals test. A task with no cell of depth ≥ 2
falls back to every depth ≥ 1 (`depths` in fit.csv says which). Predictions are depth-2 nets.
Linear models (depth 0) are a different family (NMSE ≥ 1 without the flag, exact with it) and
are never fitted. NMSE below FLOOR (exact models with the flag, ~1e-14) is clipped to it before
taking logs.

The fit: least squares on log NMSE (scipy.optimize.least_squares, several starts; N and S scaled
by N0 and S0 inside so the amplitudes stay near 1; A and B reported in raw units). Intervals:
percentile bootstrap (default 200 resamples, seeded) over architecture cells — each cell's tuned
curve is one unit, resampled with replacement, and refitted.

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

import math
import os
import sys
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dotmlp.analysis import architecture_label, save_figure, write_csv
from dotmlp.points import CELL_KEYS, load_tables, measured_points, out_dir
from dotmlp.record import write_atomically

FIT_FILE = "fit.csv"
DRAWS_FILE = "fit_bootstrap.csv"
PREDICTIONS_FILE = "predicted.csv"
RESIDUALS_FILE = "fit_residuals.csv"
APPROXIMATION_FILE = "approximation.md"
THRESHOLDS = (1e-2, 1e-3)
FORMS = ("additive", "interaction")
# The depths fitted (None: every depth ≥ MIN_FIT_DEPTH) and the one the law describes (others
# get a factor); predictions are architectures of the reference depth.
FIT_DEPTHS = None
MIN_FIT_DEPTH = 2
REFERENCE_DEPTH = 2
OFFSET_BOUND = 5.0
DEPTH_MARKERS = {2: "o", 4: "s", 1: "^", 3: "D", 8: "P"}
FLOOR = 1e-10
N0, S0 = 1e4, 1e6  # the scale of N and S inside the fit
RESAMPLES = 200
LEVEL = 0.95
BIC_MARGIN = 2.0
# Predictions reach at most this many times the largest network trained on the task.
EXTRAPOLATION = 100
MIN_POINTS = 8
# A surface in N and S with two exponents each needs at least this many sizes and budgets.
MIN_SIZES = 3
# Points above this NMSE are left out of the fit: the escape from the NMSE ≈ 1 plateau at the
# start of training (fast, then slow) is not the power law that the approach to the limit follows,
# and it would steepen β. They are counted in `early_points` and drawn.
MAX_NMSE = 0.5
# Fewer points than this where a term of the law dominates, and its exponent is extrapolated.
MIN_DOMINANT_POINTS = 3
FIT_COLUMNS = ["dimension", "multiply", "A", "alpha", "alpha_lo", "alpha_hi", "B", "beta", "beta_lo",
               "beta_hi", "E", "points", "rmse_log"]
EXTRA_FIT_COLUMNS = ["determined", "delta", "delta_lo", "delta_hi", "form", "floor",
                     "reference_depth",
                     "depth_factors", "cells", "depths", "resamples",
                     "rmse_log_additive", "rmse_log_interaction", "bic_additive", "bic_interaction",
                     "residual_slope_params", "residual_slope_samples",
                     "min_params", "max_params", "min_samples", "max_samples", "capacity_points",
                     "early_points", "clipped", "note"]
LOWER = np.array([-30.0, 0.0, -30.0, 0.0, math.log(FLOOR) - 5, 0.0])
UPPER = np.array([30.0, 4.0, 30.0, 4.0, 0.0, 4.0])


# ---------------------------------------------------------------------------- parameters
def params_of(dimension, depth, width, multiply=False):
    """Parameters of a DotMLP: inputs 2d (3d with the flag), `depth` hidden layers of `width`, a
    linear head. Depth 0 is a linear model (2d + 1 or 3d + 1). Works on arrays too."""
    inputs = np.asarray(dimension) * np.where(np.asarray(multiply, dtype=bool), 3, 2)
    depth, width = np.asarray(depth), np.asarray(width)
    hidden = inputs * width + width + (depth - 1) * (width * width + width) + width + 1
    result = np.where(depth > 0, hidden, inputs + 1)
    return int(result) if result.ndim == 0 else result.astype(np.int64)


def width_for_params(params: float, dimension: int, depth: int, multiply: bool = False) -> int:
    """The width at which a depth-`depth` net has the number of parameters closest to `params`
    (in ratio): the inverse of params_of, (depth−1)·w² + (inputs + depth + 1)·w + 1 = N."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1 for a width, got {depth}")
    inputs = dimension * (3 if multiply else 2)
    a, b, c = depth - 1, inputs + depth + 1, 1 - params
    w = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, math.floor(w)), max(1, math.ceil(w))}
    return min(candidates, key=lambda k: (abs(math.log(params_of(dimension, depth, k, multiply)
                                                       / max(params, 1))), k))


def yarotsky_units(dimension, epsilon, constant: float = 1.0):
    """Units on the order of d·ln(1/ε) (Yarotsky 2017; constant unknown, 1 by default)."""
    return constant * np.asarray(dimension) * np.log(1 / np.asarray(epsilon))


def yarotsky_params(dimension, epsilon, depth: int = 2, multiply: bool = False,
                    constant: float = 1.0):
    """Those units as parameters of a depth-`depth` net, split evenly over its layers (an
    assumption: the construction is deeper; this puts it on the same axis as the fit)."""
    width = np.maximum(1, np.ceil(yarotsky_units(dimension, epsilon, constant) / depth))
    return params_of(dimension, depth, width.astype(np.int64), multiply)


# ---------------------------------------------------------------------------- the points
def tuned_points(trials: pd.DataFrame, curves: pd.DataFrame | None = None,
                 depths: Sequence[int] | None = FIT_DEPTHS) -> pd.DataFrame:
    """The points the law is fitted to: per (cell, budget) the best learning rate's median over
    seeds (`lrs`: how many learning rates were measured there). Depths: those listed, by default
    every depth ≥ MIN_FIT_DEPTH; a task with none of them keeps every depth ≥ 1."""
    points = measured_points(trials, curves)
    points = points[points["depth"] >= 1]
    if len(points):
        wanted = (points["depth"] >= MIN_FIT_DEPTH if depths is None
                  else points["depth"].isin(list(depths)))
        has = wanted.groupby([points["dimension"], points["multiply"]]).transform("any")
        points = points[wanted | ~has]
    if not len(points):
        return points.assign(lrs=pd.Series(dtype=int))
    group = points.groupby([*CELL_KEYS, "samples"])
    best = points.loc[group["val_nmse"].idxmin()]
    lrs = group["lr"].nunique().rename("lrs").reset_index()
    return best.merge(lrs, on=[*CELL_KEYS, "samples"]).sort_values(
        [*CELL_KEYS, "samples"], ignore_index=True)


# ---------------------------------------------------------------------------- the law
# A variant of the law: its form (δ free or 0) and whether it has a floor (E free, or FLOOR).
# theta is [ln A, α, ln B, β, ln E, δ, c_1 … c_m] (N, S scaled by N0, S0), c_j the log factor of
# the j-th depth other than the reference one; a variant frees a subset of the first six.
VARIANTS = [(form, floor) for form in FORMS for floor in (False, True)]
BASE = np.array([0.0, 0.0, 0.0, 0.0, math.log(FLOOR), 0.0])


def _free(form: str, floor: bool, offsets: int = 0) -> np.ndarray:
    return np.concatenate([[True, True, True, True, floor, form == "interaction"],
                           np.ones(offsets, dtype=bool)])


def _expand(free_values, form, floor, offsets=0) -> np.ndarray:
    theta = np.concatenate([BASE, np.zeros(offsets)])
    theta[_free(form, floor, offsets)] = free_values
    return theta


def _bounds(offsets: int):
    return (np.concatenate([LOWER, np.full(offsets, -OFFSET_BOUND)]),
            np.concatenate([UPPER, np.full(offsets, OFFSET_BOUND)]))


def _log_model(theta, x, z, g):
    """log NMSE at x = ln(N/N0), z = ln(S/S0), depth code g (0: the reference depth):
    log(f/(1+f)), f the law's sum times its depth's factor."""
    log_a, alpha, log_b, beta, log_e, delta = theta[:6]
    terms = np.stack([log_a - alpha * x, log_b - delta * x - beta * z, np.full_like(x, log_e)])
    top = terms.max(axis=0)
    log_f = top + np.log(np.exp(terms - top).sum(axis=0))
    if len(theta) > 6:
        log_f = log_f + np.concatenate([[0.0], theta[6:]])[g]
    return log_f - np.logaddexp(0.0, log_f)


def nmse(fit_row, params, samples, depth: int | None = None):
    """The law's NMSE at N params and S samples (arrays welcome; S = inf: the capacity limit),
    at its reference depth, or at `depth` with that depth's factor (`factor_<depth>`)."""
    row = _row(fit_row)
    params, samples = np.asarray(params, dtype=float), np.asarray(samples, dtype=float)
    factor = row.get(f"factor_{depth}", 1.0) if depth is not None else 1.0
    factor = 1.0 if factor is None or not np.isfinite(factor) else factor
    with np.errstate(divide="ignore", over="ignore"):
        f = factor * (row["A"] * params ** -row["alpha"]
                      + row["B"] * params ** -row["delta"] * samples ** -row["beta"] + row["E"])
    return f / (1 + f)


def _row(fit_row) -> dict:
    row = dict(fit_row)
    delta = row.get("delta", 0.0)
    row["delta"] = 0.0 if delta is None or not np.isfinite(delta) else float(delta)
    return row


def _to_raw(theta, other_depths=()) -> dict:
    log_a, alpha, log_b, beta, log_e, delta = (float(v) for v in theta[:6])
    return {"A": math.exp(log_a) * N0**alpha, "alpha": alpha,
            "B": math.exp(log_b) * N0**delta * S0**beta, "beta": beta,
            "E": math.exp(log_e), "delta": delta,
            **{f"factor_{depth}": math.exp(c) for depth, c in zip(other_depths, theta[6:],
                                                                   strict=True)}}


def _fit_once(x, z, y, g, form, floor, offsets, starts):
    """Least squares on log NMSE from each start (full thetas); the best theta and its RSS."""
    from scipy.optimize import least_squares

    free = _free(form, floor, offsets)
    lower, upper = (bound[free] for bound in _bounds(offsets))
    best = None
    # Starts differing only in constants this variant does not free are one start.
    unique = {tuple(np.clip(np.asarray(s, dtype=float)[free], lower + 1e-9, upper - 1e-9))
              for s in starts}
    for start in sorted(unique):
        result = least_squares(
            lambda v: _log_model(_expand(v, form, floor, offsets), x, z, g) - y, np.array(start),
            bounds=(lower, upper), max_nfev=3000)
        if best is None or result.cost < best.cost:
            best = result
    return _expand(best.x, form, floor, offsets), 2 * best.cost


def _starts(y, offsets: int):
    log_mid = float(np.median(y))
    log_e = max(float(y.min()) - 2.3, LOWER[4] + 1)
    return [[log_mid, alpha, log_mid, beta, log_e, delta, *([0.0] * offsets)]
            for alpha in (0.3, 1.0) for beta in (0.3, 1.0) for delta in (0.0, 0.5)]


def reference_depth(points: pd.DataFrame) -> int:
    """The depth the law describes (the others get a factor): REFERENCE_DEPTH where the task has
    it, else its depth with the most points."""
    depths = points["depth"].value_counts()
    return REFERENCE_DEPTH if REFERENCE_DEPTH in depths.index else int(depths.idxmax())


def _arrays(points: pd.DataFrame):
    x = np.log(points["params"].to_numpy(float) / N0)
    z = np.log(points["samples"].to_numpy(float) / S0)
    y = np.log(np.clip(points["val_nmse"].to_numpy(float), FLOOR, None))
    reference = reference_depth(points)
    others = sorted(int(d) for d in points["depth"].unique() if d != reference)
    codes = {reference: 0, **{depth: j + 1 for j, depth in enumerate(others)}}
    g = points["depth"].map(codes).to_numpy()
    return x, z, y, g, reference, others


def fit_task(points: pd.DataFrame, form: str = "auto", floor: bool | str = "auto") -> dict:
    """Fit one task's points (columns depth, params, samples, val_nmse).

    Every variant allowed by `form` (additive, interaction or auto: both) and `floor` (True: E
    free; False: E = FLOOR, i.e. none; auto: both) is fitted; the one kept has the lowest BIC,
    except that a simpler variant (fewer free constants) within BIC_MARGIN of it is preferred.
    A floor is only kept when the curves show one: E is otherwise unidentified, and a spurious
    floor above a threshold would predict that no network reaches it. Depths other than the
    reference one each get a factor on the whole law (`factor_<depth>`)."""
    x, z, y, g, reference, others = _arrays(points)
    n, offsets = len(y), len(others)
    fits = {}
    for variant in VARIANTS:
        if form != "auto" and variant[0] != form or floor != "auto" and variant[1] != bool(floor):
            continue
        theta, rss = _fit_once(x, z, y, g, *variant, offsets, _starts(y, offsets))
        k = int(_free(*variant, offsets).sum())
        fits[variant] = {"theta": theta, "rss": rss, "k": k, "rmse": math.sqrt(rss / n),
                         "bic": n * math.log(max(rss, 1e-300) / n) + k * math.log(n)}
    best_bic = min(f["bic"] for f in fits.values())
    chosen = min((v for v, f in fits.items() if f["bic"] <= best_bic + BIC_MARGIN),
                 key=lambda v: (fits[v]["k"], fits[v]["bic"]))
    by_form = {name: min((f for v, f in fits.items() if v[0] == name), key=lambda f: f["bic"],
                         default=None) for name in FORMS}
    return {**_to_raw(fits[chosen]["theta"], others), "form": chosen[0], "floor": chosen[1],
            "theta": fits[chosen]["theta"], "reference_depth": reference, "other_depths": others,
            "points": n, "rmse_log": fits[chosen]["rmse"],
            **{f"rmse_log_{name}": f["rmse"] if f else np.nan for name, f in by_form.items()},
            **{f"bic_{name}": f["bic"] if f else np.nan for name, f in by_form.items()}}


def _bootstrap(points: pd.DataFrame, fitted: dict, resamples: int, rng) -> pd.DataFrame:
    """Refit the chosen variant on `resamples` resamples of the task's cells (with replacement;
    each cell's tuned curve is one unit), starting from the point estimate. A resample with
    fewer than two network sizes or budgets says nothing about an exponent: it is drawn but not
    fitted (the `resamples` column counts the fitted ones)."""
    cell_ids = points.groupby(CELL_KEYS, sort=False).ngroup().to_numpy()
    members = [np.flatnonzero(cell_ids == c) for c in range(cell_ids.max() + 1)]
    x, z, y, g, _, others = _arrays(points)
    draws = []
    for b in range(resamples):
        index = np.concatenate([members[c] for c in rng.integers(0, len(members), len(members))])
        if np.unique(x[index]).size < 2 or np.unique(z[index]).size < 2:
            continue
        try:
            draw, _ = _fit_once(x[index], z[index], y[index], g[index], fitted["form"],
                                fitted["floor"], len(others), [fitted["theta"]])
        except (ValueError, np.linalg.LinAlgError):
            continue
        raw = _to_raw(draw, others)
        for depth in others:  # a depth absent from the resample has no factor there
            if not (g[index] == others.index(depth) + 1).any():
                raw[f"factor_{depth}"] = np.nan
        draws.append({"resample": b, **raw})
    return pd.DataFrame(draws)


def fit_scaling(trials: pd.DataFrame, curves: pd.DataFrame | None = None, *,
                depths: Sequence[int] | None = FIT_DEPTHS, form: str = "auto",
                floor: bool | str = "auto", resamples: int = RESAMPLES, seed: int = 0,
                level: float = LEVEL, max_nmse: float = MAX_NMSE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The law fitted per (dimension, flag): `fit` (one row per task, FIT_COLUMNS then
    EXTRA_FIT_COLUMNS) and `draws` (the bootstrap's constants, one row per task and resample).

    Tasks with too few points (< MIN_POINTS, or fewer than 2 distinct N or S), or exact at most
    points (NMSE ≤ FLOOR: the flag's easy tasks), get a row with empty constants and a note."""
    if form not in (*FORMS, "auto"):
        raise ValueError(f"form must be one of auto, {', '.join(FORMS)}, got {form!r}")
    points = tuned_points(trials, curves, depths)
    rng = np.random.default_rng(seed)
    rows, all_draws = [], []
    tail = (1 - level) / 2 * 100
    for (dimension, multiply), task in points.groupby(["dimension", "multiply"]):
        early = int((task["val_nmse"] > max_nmse).sum())
        task = task[task["val_nmse"] <= max_nmse].reset_index(drop=True)
        if not len(task):
            rows.append({"dimension": int(dimension), "multiply": bool(multiply), "points": 0,
                         "early_points": early, "resamples": 0,
                         "note": f"not fitted: no point below NMSE {max_nmse:g}"})
            continue
        clipped = int((task["val_nmse"] <= FLOOR).sum())
        row = {"dimension": int(dimension), "multiply": bool(multiply), "points": len(task),
               "cells": int(task.groupby(CELL_KEYS).ngroups),
               "depths": ",".join(str(d) for d in sorted(task["depth"].unique())),
               "min_params": int(task["params"].min()), "max_params": int(task["params"].max()),
               "min_samples": int(task["samples"].min()), "max_samples": int(task["samples"].max()),
               "clipped": clipped, "early_points": early, "resamples": 0, "note": ""}
        reason = _degenerate(task, clipped)
        if reason:
            rows.append({**row, "note": f"not fitted: {reason}"})
            continue
        fitted = fit_task(task, form, floor)
        draws = _bootstrap(task, fitted, resamples, rng) if row["cells"] >= 3 else pd.DataFrame()
        row.update({key: value for key, value in fitted.items() if key.startswith("factor_")})
        row.update({key: fitted[key] for key in ("A", "alpha", "B", "beta", "E", "delta", "form",
                                                 "floor", "rmse_log", "rmse_log_additive",
                                                 "rmse_log_interaction", "bic_additive",
                                                 "bic_interaction")})
        row["resamples"] = len(draws)
        for name in ("alpha", "beta", "delta"):
            values = draws[name].to_numpy() if len(draws) else np.array([])
            row[f"{name}_lo"] = float(np.percentile(values, tail)) if len(values) else np.nan
            row[f"{name}_hi"] = float(np.percentile(values, 100 - tail)) if len(values) else np.nan
        row["reference_depth"] = fitted["reference_depth"]
        factors = []
        for depth in fitted["other_depths"]:
            values = (draws[f"factor_{depth}"].dropna().to_numpy() if len(draws)
                      else np.array([]))
            interval = (f" [{np.percentile(values, tail):.2g}, {np.percentile(values, 100 - tail):.2g}]"
                        if len(values) else "")
            factors.append(f"{depth}: {fitted[f'factor_{depth}']:.2g}{interval}")
        row["depth_factors"] = "; ".join(factors)
        notes = []
        capacity = fitted["A"] * task["params"] ** -fitted["alpha"]
        data = (fitted["B"] * task["params"] ** -fitted["delta"]
                * task["samples"] ** -fitted["beta"])
        row["capacity_points"] = int((capacity > data).sum())
        if row["capacity_points"] < MIN_DOMINANT_POINTS:
            notes.append(f"the capacity term A·N^-α dominates at {row['capacity_points']} of "
                         f"{len(task)} points: α (and S → ∞ predictions) rest on extrapolation; "
                         "small nets trained longer would pin it")
        if len(task) - row["capacity_points"] < MIN_DOMINANT_POINTS:
            notes.append(f"the data term dominates at {len(task) - row['capacity_points']} points: "
                         "β is extrapolated")
        law_now = {**row, **{k: v for k, v in fitted.items() if k.startswith("factor_")}}
        own = residuals(task, pd.DataFrame([law_now]), max_nmse)
        row["residual_slope_params"] = _slope_of(np.log(own["params"]), own["residual_log"])
        row["residual_slope_samples"] = _slope_of(np.log(own["samples"]), own["residual_log"])
        determined = len(draws) > 0
        for name in ("alpha", "beta"):
            near = 1e-3 * (UPPER[1] - LOWER[1])
            at_bound = not LOWER[1] + near < row[name] < UPPER[1] - near
            interval_at_bound = len(draws) and (row[f"{name}_lo"] <= LOWER[1] + near
                                                or row[f"{name}_hi"] >= UPPER[1] - near)
            if at_bound or interval_at_bound:
                determined = False
                notes.append(f"{name}{' or its interval' if interval_at_bound else ''} at the "
                             f"fit's bound [0, {UPPER[1]:g}]: not determined by these data")
        row["determined"] = bool(determined)
        if row["cells"] < 8:
            notes.append(f"bootstrap over {row['cells']} cells: intervals are rough (a few "
                         "units resampled undercover)")
        if clipped:
            notes.append(f"{clipped} points below {FLOOR:g} clipped to it")
        if row["cells"] < 3:
            notes.append("fewer than 3 cells: no bootstrap")
        row["note"] = "; ".join(notes)
        rows.append(row)
        if len(draws):
            all_draws.append(draws.assign(dimension=int(dimension), multiply=bool(multiply)))
    factors = sorted({key for row in rows for key in row if key.startswith("factor_")},
                     key=lambda c: int(c.removeprefix("factor_")))
    fit = pd.DataFrame(rows, columns=FIT_COLUMNS + EXTRA_FIT_COLUMNS + factors)
    for column in ("capacity_points", "early_points", "cells", "min_params", "max_params",
                   "min_samples", "max_samples", "clipped"):
        fit[column] = pd.array(pd.to_numeric(fit[column]), dtype="Int64")
    columns = ["dimension", "multiply", "resample", "A", "alpha", "B", "beta", "E", "delta"]
    draws = (pd.concat(all_draws, ignore_index=True) if all_draws else pd.DataFrame(columns=columns))
    factors = sorted((c for c in draws.columns if c.startswith("factor_")),
                     key=lambda c: int(c.removeprefix("factor_")))
    return fit, draws[columns + factors]


def residuals(points: pd.DataFrame, fit: pd.DataFrame, max_nmse: float = MAX_NMSE) -> pd.DataFrame:
    """Every fitted point (tuned_points, NMSE ≤ max_nmse) with the law's NMSE there (its depth's
    factor included) and the residual ln(measured) − ln(law): the check of the law's form. A
    form that suits the data leaves residuals with no trend in N or S (fit.csv's
    residual_slope_params / residual_slope_samples: the residual's slope against ln N and ln S)."""
    rows = []
    for _, law in fit.dropna(subset=["alpha"]).iterrows():
        task = points[(points["dimension"] == law["dimension"])
                      & (points["multiply"] == law["multiply"])
                      & (points["val_nmse"] <= max_nmse)]
        depths = set(str(law["depths"]).split(","))
        task = task[task["depth"].astype(str).isin(depths)]
        for depth, group in task.groupby("depth"):
            predicted = nmse(law.to_dict(), group["params"], group["samples"], int(depth))
            rows.append(group[[*CELL_KEYS, "params", "samples", "lr", "val_nmse"]].assign(
                law_nmse=predicted,
                residual_log=np.log(np.clip(group["val_nmse"], FLOOR, None))
                - np.log(np.clip(predicted, FLOOR, None))))
    columns = [*CELL_KEYS, "params", "samples", "lr", "val_nmse", "law_nmse", "residual_log"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


def _slope_of(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(np.polyfit(x, y, 1)[0]) if len(x) > 2 and np.ptp(x) > 0 else np.nan


def _degenerate(task: pd.DataFrame, clipped: int) -> str:
    if len(task) < MIN_POINTS:
        return f"{len(task)} points (fewer than {MIN_POINTS})"
    if task["params"].nunique() < MIN_SIZES:
        return f"{task['params'].nunique()} network sizes (fewer than {MIN_SIZES})"
    if task["samples"].nunique() < MIN_SIZES:
        return f"{task['samples'].nunique()} budgets (fewer than {MIN_SIZES})"
    if clipped > len(task) / 2:
        return f"exact (NMSE <= {FLOOR:g}) at {clipped} of {len(task)} points: nothing to scale"
    return ""


# ---------------------------------------------------------------------------- predictions
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
    row = _row(fit_row)
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
    return _samples_needed(_row(fit_row), params, threshold / (1 - threshold))


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


# ---------------------------------------------------------------------------- approximation theory
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


# ---------------------------------------------------------------------------- figures
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


# ---------------------------------------------------------------------------- files
def write_fit(results_dir: str | os.PathLike, names: Sequence[str] | str,
              machines: Sequence[str] | None = None, out: str | os.PathLike | None = None, *,
              resamples: int = RESAMPLES, seed: int = 0, depths: Sequence[int] | None = FIT_DEPTHS,
              form: str = "auto", figures: bool = True,
              thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """Fit the sweeps' curves and write, atomically, into `out` (default: the one sweep's folder):
    fit.csv, fit_bootstrap.csv, fit_residuals.csv, predicted.csv (prediction_table),
    approximation.md and, with figures, fit.png (flag off) and fit_multiply_on.png."""
    trials, curves = load_tables(results_dir, names, machines)
    out = out_dir(results_dir, names, out)
    fit, draws = fit_scaling(trials, curves, depths=depths, form=form, resamples=resamples, seed=seed)
    predictions = prediction_table(fit, draws, thresholds)
    write_csv(fit, out / FIT_FILE)
    write_csv(draws, out / DRAWS_FILE)
    write_csv(predictions, out / PREDICTIONS_FILE)
    write_csv(residuals(tuned_points(trials, curves, depths), fit), out / RESIDUALS_FILE)
    write_atomically(out / APPROXIMATION_FILE, approximation_paragraph(fit, predictions))
    if figures:
        points = tuned_points(trials, curves, depths)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for multiply, stem in ((False, "fit"), (True, "fit_multiply_on")):
                if (points["multiply"] == multiply).any():
                    save_figure(fit_figure(points, fit, predictions, multiply, thresholds),
                                out / f"{stem}.png")
    return fit


if __name__ == "__main__":  # python -m dotmlp.scaling: the same as python -m dotmlp.answer
    from dotmlp.answer import main

    main(sys.argv[1:])
