"""The scaling law (dotmlp.study.law) fitted per task (dimension, flag) to the learning curves.

The points. Every (cell, budget) of the learning curves of completed, pruned (by ASHA: shorter
curves) and unfinished trials with a median NMSE ≤ MAX_NMSE (0.5: the curves of the reference
sweep fall from ≈ 1 in a fast escape, then follow a slower power law; the escape is left out);
diverged trials are left out. At each budget a cell counts with its
best learning rate there (the minimum over learning rates of the median over seeds): the law
describes tuned networks, and the prediction check trains at the best learning rate of the
nearest cell. By default the cells of depth ≥ 2 are fitted (depth 1 is the shallow net whose
scaling is a question of its own: dotmlp.study.depth), with one law for the reference depth 2 and a
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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dotmlp.study.law import FLOOR, FORMS, REFERENCE_DEPTH, nmse
from dotmlp.study.points import CELL_KEYS, measured_points

# The depths fitted (None: every depth ≥ MIN_FIT_DEPTH); each depth other than the law's
# reference depth gets a factor.
FIT_DEPTHS = None
MIN_FIT_DEPTH = 2
OFFSET_BOUND = 5.0
N0, S0 = 1e4, 1e6  # the scale of N and S inside the fit
RESAMPLES = 200
LEVEL = 0.95
BIC_MARGIN = 2.0
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
