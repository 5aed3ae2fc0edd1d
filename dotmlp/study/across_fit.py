"""One law across dimensions for SGD's NMSE, fitted to the frontier search's learning curves and
tested by leaving one dimension out (its predictions: dotmlp.study.across_checks; the command that
writes both: dotmlp.study.law_across).

The variables, from the hand-built net (dotmlp.construction). A one-hidden-layer net of 2·d·k ReLUs
(k per square, a·b = Σ (u_i² − v_i²)/2) reaches NMSE ≈ c·k^−(3.1…3.5) at every d: what it
represents depends on the units per square k, not on d. So the law's size variable is
k = w₁ / (2d), w₁ = (N − 1)/(2d + 2) the one-hidden-layer width with the net's N parameters (a
depth-1 net's own width; a depth-2 net the depth-1 width of equal parameters, so both depths sit
on one axis). Its data variable is samples per parameter, r = S/N: a net's N weights are what the
fresh samples have to pin down. If k and r were all that mattered, one law would serve every d:

    NMSE ≈ f / (1 + f),   f = A·k^−α·d^γc·a₂  +  B·k^−δ·r^−β·d^γd·b₂

- A·k^−α: what a net of k units per square reaches with unlimited samples (the construction's
  term; its α is to be read against the construction's 3.1–3.5).
- B·k^−δ·r^−β: what the budget leaves; δ lets wider nets learn faster per sample per parameter.
- d^γc, d^γd: the test of "d matters beyond k and r". γ = 0 is the law without d; with γd free the
  choice of r (per parameter, per unit, per sample) is immaterial, since N ∝ d²k, so γd says
  how far samples per parameter is from the right currency.
- a₂, b₂: depth 2's own amplitudes (1 at depth 1); the exponents are shared, an assumption the
  held-out error tests (depth-2 points are predicted with the rest).
- f/(1+f): NMSE saturates at ≈ 1 (predicting 0); points above MAX_NMSE (the escape from that
  plateau) are left out, as in the retired per-dimension fit (in git history at de15c2e). No floor
  E: the smallest NMSE in the ledger (3e-4) is far above float32's, and a free floor is unidentified.

The points: per (d, depth, width, samples) of the ledger, the best learning rate's median over
seeds (each budget a separate run decayed to zero over it), flagged `bracketed` where that rate is
neither the lowest nor the highest tried there. Fitted in log space (scipy least_squares, several
starts, k, r, d scaled by K0, R0, D0 inside); intervals: percentile bootstrap (RESAMPLES, seeded)
over nets (one net's curve is one unit), resampled within each (d, depth) so every dimension stays.

The competitors, scored by the RMSE of log NMSE at a dimension left out of the fit:
- `across_d`: the law above, γc and γd free; `across_d_k_only`: γc = γd = 0;
- `per_d`: the same form with its own constants at each d (the old approach, retired for this law).
  It cannot speak at an unseen d by itself: its constants are put on a straight line in ln d over
  the dimensions fitted and read off there (`per_d`), or taken from the nearest d in ln d
  (`per_d_nearest`).
Which is kept (law.csv's `kept`, the one that makes the predictions): the one-standard-error
rule of cross-validation (Hastie, Tibshirani & Friedman, ESL §7.10): the simplest method
(SIMPLEST_FIRST) whose pooled held-out RMSE is within one standard error (the spread of the
held-out dimensions' RMSEs ÷ √folds) of the lowest. With 3–4 dimensions left out one at a time,
differences smaller than that are the luck of which dimension was held out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dotmlp.sizes import params_of

MAX_NMSE = 0.5
FLOOR = 1e-10
DEPTHS = (1, 2)
K0, R0, D0 = 4.0, 1e3, 8.0  # the scale of k, r and d inside the fit
RESAMPLES = 200
LEVEL = 0.90
NET_KEYS = ["dimension", "depth", "width"]
POINT_KEYS = [*NET_KEYS, "samples"]
# theta: [ln A, α, ln B, β, δ, γc, γd, ln a₂, ln b₂] in the scaled variables.
NAMES = ["A", "alpha", "B", "beta", "delta", "gamma_capacity", "gamma_data", "depth2_capacity",
         "depth2_data"]
LOWER = np.array([-30.0, 0.0, -30.0, 0.0, -4.0, -4.0, -4.0, -10.0, -10.0])
UPPER = np.array([30.0, 8.0, 30.0, 4.0, 8.0, 4.0, 4.0, 10.0, 10.0])
METHODS = ("across_d", "across_d_k_only", "per_d", "per_d_nearest")
SIMPLEST_FIRST = ("across_d_k_only", "across_d", "per_d_nearest", "per_d")
GAMMAS, DEPTH2 = [5, 6], [7, 8]

# ---------------------------------------------------------------------------- the points
def learning_curves(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per (d, depth, width, samples): the best learning rate's median NMSE over seeds, how many
    rates were tried there, whether the best is bracketed, and the law's variables k and r."""
    runs = ledger[np.isfinite(pd.to_numeric(ledger["nmse_median"], errors="coerce"))].copy()
    runs = runs[runs["depth"].isin(DEPTHS)]
    columns = [*POINT_KEYS, "params", "lr", "nmse_median", "nmse_min", "nmse_max", "lrs",
               "bracketed", "k", "samples_per_param"]
    if not len(runs):
        return pd.DataFrame(columns=columns)
    group = runs.groupby(POINT_KEYS)
    best = runs.loc[group["nmse_median"].idxmin()].set_index(POINT_KEYS)
    best["lrs"] = group["lr"].nunique()
    best["bracketed"] = (best["lr"] > group["lr"].min()) & (best["lr"] < group["lr"].max())
    best = best.reset_index()
    best["params"] = params_of(best["dimension"], best["depth"], best["width"])
    best["k"] = units_per_square(best["dimension"], best["params"])
    best["samples_per_param"] = best["samples"] / best["params"]
    return best.reindex(columns=columns).sort_values(POINT_KEYS, ignore_index=True)


def units_per_square(dimension, params):
    """k = w₁/(2d), w₁ the one-hidden-layer width with `params` parameters (continuous)."""
    dimension = np.asarray(dimension, dtype=float)
    return (np.asarray(params, dtype=float) - 1) / (2 * dimension + 2) / (2 * dimension)


def fitted_points(curves: pd.DataFrame) -> pd.DataFrame:
    return curves[curves["nmse_median"] <= MAX_NMSE].reset_index(drop=True)


# ---------------------------------------------------------------------------- the law
def design(dimension, depth, params, samples):
    dimension = np.asarray(dimension, dtype=float)
    params = np.asarray(params, dtype=float)
    x = np.log(units_per_square(dimension, params) / K0)
    z = np.log(np.asarray(samples, dtype=float) / params / R0)
    u = np.log(dimension / D0)
    g = (np.asarray(depth) >= 2).astype(float)
    return x, z, u, g


def terms(theta, x, z, u, g):
    log_a, alpha, log_b, beta, delta, gamma_c, gamma_d, depth2_c, depth2_d = theta
    capacity = log_a - alpha * x + gamma_c * u + depth2_c * g
    data = log_b - delta * x - beta * z + gamma_d * u + depth2_d * g
    return capacity, data


def _log_nmse(theta, x, z, u, g):
    log_f = np.logaddexp(*terms(theta, x, z, u, g))
    return log_f - np.logaddexp(0.0, log_f)


def law_nmse(theta, dimension, depth, width, samples):
    """The law's NMSE for nets of (d, depth, width) trained on `samples` (arrays broadcast)."""
    params = params_of(dimension, depth, width)
    return np.exp(_log_nmse(theta, *design(dimension, depth, params, samples)))


def to_raw(theta) -> dict:
    """The constants in raw units: A, B at k = r = d = 1; a₂, b₂ as factors."""
    log_a, alpha, log_b, beta, delta, gamma_c, gamma_d, depth2_c, depth2_d = (float(v) for v in theta)
    return {"A": math.exp(log_a) * K0**alpha * D0**-gamma_c, "alpha": alpha,
            "B": math.exp(log_b) * K0**delta * R0**beta * D0**-gamma_d, "beta": beta, "delta": delta,
            "gamma_capacity": gamma_c, "gamma_data": gamma_d,
            "depth2_capacity": math.exp(depth2_c), "depth2_data": math.exp(depth2_d)}


def _arrays(points: pd.DataFrame):
    x, z, u, g = design(points["dimension"], points["depth"], points["params"], points["samples"])
    y = np.log(np.clip(points["nmse_median"].to_numpy(float), FLOOR, None))
    return x, z, u, g, y


def _free(points: pd.DataFrame, gammas: bool) -> np.ndarray:
    free = np.ones(len(NAMES), dtype=bool)
    free[GAMMAS] = gammas and points["dimension"].nunique() >= 2
    free[DEPTH2] = points["depth"].nunique() >= 2
    return free


def _least_squares(arrays, free, starts) -> tuple[np.ndarray, float]:
    from scipy.optimize import least_squares

    x, z, u, g, y = arrays
    lower, upper = LOWER[free], UPPER[free]
    best, best_theta = None, None
    for start in starts:
        theta = np.array(start, dtype=float)
        theta[~free] = 0.0

        def residual(values, theta=theta):
            theta[free] = values
            return _log_nmse(theta, x, z, u, g) - y

        result = least_squares(residual, np.clip(theta[free], lower + 1e-9, upper - 1e-9),
                               bounds=(lower, upper), max_nfev=2000)
        if best is None or result.cost < best.cost:
            best, best_theta = result, theta.copy()
            best_theta[free] = result.x
    return best_theta, 2 * best.cost


def _starts(y) -> list[list[float]]:
    mid = float(np.median(y))
    return [[mid, alpha, mid, beta, delta, 0, 0, 0, 0]
            for alpha in (1.0, 3.0) for beta in (0.5, 1.0) for delta in (0.0, 1.5)]


@dataclass
class Fitted:
    """A fitted method: one theta for every d (across_d…), or one per fitted d (per_d…)."""

    method: str
    thetas: dict  # None → theta (across d); d → theta (per d)
    points: int = 0
    rss: float = 0.0
    free: int = 0
    depth2_dims: tuple = field(default_factory=tuple)  # per d: the dimensions with depth-2 nets

    def theta_at(self, dimension: int) -> np.ndarray:
        if None in self.thetas:
            return self.thetas[None]
        dims = np.array(sorted(self.thetas), dtype=float)
        table = np.array([self.thetas[d] for d in sorted(self.thetas)])
        if self.method == "per_d_nearest" or len(dims) == 1:
            nearest = dims[np.argmin(np.abs(np.log(dims) - math.log(dimension)))]
            theta = self.thetas[int(nearest)].copy()
            if int(nearest) not in self.depth2_dims:
                theta[DEPTH2] = self._line(dims, table, dimension, DEPTH2)
            return theta
        theta = self._line(dims, table, dimension, list(range(len(NAMES))))
        theta[DEPTH2] = self._line(dims, table, dimension, DEPTH2)
        return np.clip(theta, LOWER, UPPER)

    def _line(self, dims, table, dimension, columns) -> np.ndarray:
        """The constants on a straight line in ln d (least squares over the fitted dimensions; the
        depth-2 factors over those with depth-2 nets), read off at `dimension`."""
        rows = (np.isin(dims, self.depth2_dims) if columns == DEPTH2 else np.ones(len(dims), bool))
        if not rows.any():
            return np.zeros(len(columns))
        values = table[rows][:, columns]
        if rows.sum() == 1:
            return values[0]
        slope, intercept = np.polyfit(np.log(dims[rows]), values, 1)
        return intercept + slope * math.log(dimension)

    @property
    def rmse_log(self) -> float:
        return math.sqrt(self.rss / self.points) if self.points else float("nan")

    @property
    def bic(self) -> float:
        return self.points * math.log(max(self.rss, 1e-300) / self.points) + self.free * math.log(self.points)


def fit(points: pd.DataFrame, method: str = "across_d", starts=None) -> Fitted:
    """Fit `method` (METHODS) to fitted points (NMSE ≤ MAX_NMSE). per_d and per_d_nearest share
    their fits and differ only in how they speak at an unseen d."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method.startswith("across_d"):
        arrays = _arrays(points)
        free = _free(points, gammas=method == "across_d")
        theta, rss = _least_squares(arrays, free, starts or _starts(arrays[-1]))
        return Fitted(method, {None: theta}, len(points), rss, int(free.sum()))
    thetas, rss, free_total, depth2 = {}, 0.0, 0, []
    for dimension, group in points.groupby("dimension"):
        arrays = _arrays(group)
        free = _free(group, gammas=False)
        own = starts.get(int(dimension)) if isinstance(starts, dict) else None
        theta, part = _least_squares(arrays, free, [own] if own is not None else _starts(arrays[-1]))
        thetas[int(dimension)], rss, free_total = theta, rss + part, free_total + int(free.sum())
        if free[DEPTH2].all():
            depth2.append(int(dimension))
    return Fitted(method, thetas, len(points), rss, free_total, tuple(depth2))


def predict_log(fitted: Fitted, points: pd.DataFrame) -> np.ndarray:
    """log NMSE of `fitted` at every point (each point at its own d's constants)."""
    out = np.empty(len(points))
    for dimension, index in points.groupby("dimension").indices.items():
        arrays = _arrays(points.iloc[index])
        out[index] = _log_nmse(fitted.theta_at(int(dimension)), *arrays[:4])
    return out


def bootstrap(points: pd.DataFrame, fitted: Fitted, resamples: int, seed) -> list[Fitted]:
    """Refits of `fitted`'s method on resamples of the nets (each net's curve one unit, drawn with
    replacement within its (d, depth), so every dimension and depth keeps its count of nets),
    each started from the point estimate."""
    rng = np.random.default_rng(seed)
    nets = points.groupby(NET_KEYS).indices
    strata: dict = {}
    for key, index in nets.items():
        strata.setdefault(key[:2], []).append(index)
    starts = [fitted.thetas[None]] if None in fitted.thetas else fitted.thetas
    draws = []
    for _ in range(resamples):
        index = np.concatenate([members[j] for members in strata.values()
                                for j in rng.integers(0, len(members), len(members))])
        draws.append(fit(points.iloc[index].reset_index(drop=True), fitted.method, starts))
    return draws


# ---------------------------------------------------------------------------- leave one d out
def leave_one_out(points: pd.DataFrame, methods=METHODS) -> pd.DataFrame:
    """Per dimension with points: every method fitted on the other dimensions, scored by the RMSE
    of log NMSE at the held-out one's points (and the share of them predicted too low)."""
    rows = []
    for held in sorted(points["dimension"].unique()):
        train, test = points[points["dimension"] != held], points[points["dimension"] == held]
        row = {"held_out": int(held), "points": len(test), "nets": test.groupby(NET_KEYS).ngroups,
               "fitted_on": dims_text(train)}
        fits: dict = {}
        for method in methods:
            key = "per_d" if method.startswith("per_d") else method
            if key not in fits:
                fits[key] = fit(train, key)
            fitted = Fitted(method, fits[key].thetas, depth2_dims=fits[key].depth2_dims)
            error = predict_log(fitted, test) - np.log(np.clip(test["nmse_median"], FLOOR, None))
            row[f"rmse_log_{method}"] = float(np.sqrt(np.mean(error**2)))
            row[f"bias_log_{method}"] = float(np.mean(error))
        rows.append(row)
    return pd.DataFrame(rows)


def pooled_rmse(loo: pd.DataFrame, method: str) -> float:
    """The held-out RMSE over every held-out point (each dimension weighted by its points)."""
    return float(np.sqrt((loo[f"rmse_log_{method}"] ** 2 * loo["points"]).sum() / loo["points"].sum()))


def kept_method(loo: pd.DataFrame) -> str:
    """The simplest method within one standard error of the best held-out RMSE (module docstring)."""
    if not len(loo):
        return SIMPLEST_FIRST[0]
    scores = {method: pooled_rmse(loo, method) for method in SIMPLEST_FIRST}
    best = min(scores, key=scores.get)
    error = float(loo[f"rmse_log_{best}"].std(ddof=1)) / math.sqrt(len(loo)) if len(loo) > 1 else 0.0
    return next(method for method in SIMPLEST_FIRST if scores[method] <= scores[best] + error)


def dims_text(points: pd.DataFrame) -> str:
    return ",".join(str(int(d)) for d in sorted(points["dimension"].unique()))


class Fits:
    """Fits and their bootstraps, cached by (method, dimensions fitted), seeded by both: the same
    points give the same draws whichever table asks first."""

    def __init__(self, points: pd.DataFrame, resamples: int, seed: int):
        self.points, self.resamples, self.seed, self._cache = points, resamples, seed, {}

    def get(self, method: str, dims) -> tuple[Fitted, list[Fitted], pd.DataFrame]:
        dims = tuple(sorted(int(d) for d in dims))
        if (method, dims) not in self._cache:
            train = self.points[self.points["dimension"].isin(dims)].reset_index(drop=True)
            fitted = fit(train, method)
            draws = bootstrap(train, fitted, self.resamples, [self.seed, METHODS.index(method), *dims])
            self._cache[method, dims] = fitted, draws, train
        return self._cache[method, dims]


# ---------------------------------------------------------------------------- the law's table
LAW_COLUMNS = ["method", "kept", "fitted_on", "dimension", "parameter", "value", "lo", "hi",
               "points", "nets", "resamples", "rmse_log", "bic", "loo_rmse_log", "note"]


def law_table(fits: Fits, loo: pd.DataFrame, kept: str) -> pd.DataFrame:
    """The across-d laws' constants with bootstrap intervals (all dimensions with data), and the
    per-d fits' constants (no intervals), with each method's fit and held-out error."""
    points = fits.points
    dims = sorted(int(d) for d in points["dimension"].unique())
    tail = (1 - LEVEL) / 2 * 100
    rows = []
    nets = points.groupby(NET_KEYS).ngroups
    for method in ("across_d", "across_d_k_only"):
        fitted, draws, _ = fits.get(method, dims)
        raw = to_raw(fitted.theta_at(dims[0]))
        values = pd.DataFrame([to_raw(d.theta_at(dims[0])) for d in draws])
        common = {"method": method, "kept": method == kept, "fitted_on": ",".join(map(str, dims)),
                  "points": fitted.points, "nets": nets, "resamples": len(draws),
                  "rmse_log": fitted.rmse_log, "bic": fitted.bic,
                  "loo_rmse_log": pooled_rmse(loo, method) if len(loo) else np.nan}
        free = _free(points, gammas=method == "across_d")
        for j, name in enumerate(NAMES):
            row = {**common, "parameter": name, "value": raw[name]}
            if not free[j]:
                rows.append({**row, "note": "fixed" if name.startswith("gamma") else "no depth-2 nets"})
                continue
            if len(values):
                row["lo"], row["hi"] = np.percentile(values[name], [tail, 100 - tail])
            near = 1e-3 * (UPPER[j] - LOWER[j])
            if not LOWER[j] + near < fitted.theta_at(dims[0])[j] < UPPER[j] - near:
                row["note"] = "at the fit's bound"
            rows.append(row)
    per_d = fit(points, "per_d")
    for dimension, theta in per_d.thetas.items():
        group = points[points["dimension"] == dimension]
        raw = to_raw(theta)
        for j, name in enumerate(NAMES):
            if j in GAMMAS:
                continue
            rows.append({"method": "per_d", "kept": kept.startswith("per_d"),
                         "fitted_on": str(dimension), "dimension": dimension, "parameter": name,
                         "value": raw[name], "points": len(group), "nets": group.groupby(NET_KEYS).ngroups,
                         "rmse_log": per_d.rmse_log, "bic": per_d.bic,
                         "loo_rmse_log": pooled_rmse(loo, "per_d") if len(loo) else np.nan,
                         "note": "" if dimension in per_d.depth2_dims or j not in DEPTH2
                         else "no depth-2 nets"})
    table = pd.DataFrame(rows, columns=LAW_COLUMNS)
    table["dimension"] = table["dimension"].astype("Int64")
    return table
