"""A one-hidden-layer ReLU net built by hand to represent y = a·b: an upper bound on the size a
net needs to reach a given NMSE, apart from whether SGD finds it (design.md, "The science").

a·b = Σ_i (u_i² − v_i²)/2 with u = (a + b)/√2 and v = (a − b)/√2. For a, b ~ N(0, I_d)
independent, (u, v) is an orthogonal transform of (a, b), so the u_i and v_i are 2d independent
N(0, 1) variables. Each square t² is replaced by a symmetric ReLU fit

    g(t) = c0 + Σ_j c_j · (relu(t − τ_j) + relu(−t − τ_j)),    k/2 knots τ_j, k ReLU units,

whose knots and weights are fitted by least squares under t ~ N(0, 1), the distribution the net
sees. Each unit relu(±u_i − τ_j) is a hidden unit of a net on [a, b] (u_i and v_i are linear in
a_i, b_i), so the whole approximation Σ_i (g(u_i) − g(v_i))/2 is a DotMLP with one hidden layer of
2·d·k units (d coordinates × 2 squares × k units) and output bias 0 (c0 cancels between the
squares of u_i and v_i).

Why its NMSE is Var(e)/2 at every d: with e(t) = g(t) − t², the net's error is
    f − y = Σ_i (e(u_i) − e(v_i)) / 2,
a sum of 2d independent terms (c0 cancels, and so does E[e], the same for u_i and v_i), with mean 0
and variance d · (Var(e) + Var(e)) / 4 = d · Var(e)/2. So MSE = d · Var(e)/2 and, since
Var(y) = Σ_i Var(a_i b_i) = d, NMSE = MSE / Var(y) = Var(e)/2, independent of d. The net's size
grows like d·k but its accuracy depends on k alone: size is not what makes large d hard to learn.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize
from scipy.stats import norm

from dotmlp.cli import ArgumentParser, fail, int_list
from dotmlp.config import ConfigError
from dotmlp.data import held_out_set
from dotmlp.model import DotMLP
from dotmlp.sizes import params_of

# The fit's quadrature: E[h(t)] for t ~ N(0, 1) as Σ w·h on a fine grid, w ∝ the normal density
# (normalised to sum 1). Deterministic, and the tail beyond ±9 (mass 2e-19) is negligible even for
# e(t)², which grows like t⁴ outside the last knot. Also what "exact" NMSE means below: this
# quadrature of Var(e), not a sample.
GRID = np.linspace(-9.0, 9.0, 40_001)
GRID_WEIGHTS = norm.pdf(GRID) / norm.pdf(GRID).sum()
HELD_OUT_PAIRS = 16_384


@dataclass(frozen=True)
class SquareFit:
    """g(t) = c0 + Σ_j weights[j] · (relu(t − knots[j]) + relu(−t − knots[j])) ≈ t², t ~ N(0, 1).

    k: ReLU units per square (two per knot, one each side); nmse: Var(g(t) − t²)/2, the NMSE of
    the dense net built from it at every dimension (see the module's docstring)."""

    k: int
    knots: tuple[float, ...]
    weights: tuple[float, ...]
    c0: float
    nmse: float

    def evaluate(self, t: np.ndarray) -> np.ndarray:
        """g(t), elementwise, in numpy: the construction's own forward, to check a loaded net."""
        t = np.asarray(t, dtype=np.float64)
        total = np.full(t.shape, self.c0)
        for knot, weight in zip(self.knots, self.weights, strict=True):
            total += weight * (np.maximum(t - knot, 0.0) + np.maximum(-t - knot, 0.0))
        return total


def _basis(knots: np.ndarray) -> np.ndarray:
    """The grid's design matrix: a constant, then one symmetric pair of ReLUs per knot."""
    pairs = np.maximum(GRID[:, None] - knots, 0.0) + np.maximum(-GRID[:, None] - knots, 0.0)
    return np.column_stack([np.ones_like(GRID), pairs])


def _solve(knots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For fixed knots the weights are a weighted linear least-squares problem: its coefficients
    (c0, c_1, ...) and the residual e = g − t² on the grid."""
    basis = _basis(knots)
    root = np.sqrt(GRID_WEIGHTS)
    coefficients, *_ = np.linalg.lstsq(basis * root[:, None], root * GRID**2, rcond=None)
    return coefficients, basis @ coefficients - GRID**2


def _objective(knots: np.ndarray) -> tuple[float, np.ndarray]:
    """Variable projection: E[e²] with the weights optimal for these knots, and its gradient.
    The residual is orthogonal to the basis, so the weights' own change drops out of the
    derivative (Golub and Pereyra): d/dτ_j E[e²] = 2 E[e · c_j · ∂basis_j/∂τ_j], and the knot
    pair's derivative is −1 where |t| > τ_j (τ_j ≥ 0), 0 elsewhere."""
    coefficients, residual = _solve(knots)
    weighted = GRID_WEIGHTS * residual
    beyond = np.abs(GRID)[:, None] > knots
    gradient = -2.0 * coefficients[1:] * (weighted @ beyond)
    return float(weighted @ residual), gradient


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2 or k % 2:
        raise ValueError(f"k (ReLU units per square) must be an even integer >= 2, got {k!r}")


@functools.cache  # an unbounded functools.lru_cache
def fit_square(k: int) -> SquareFit:
    """The least-squares fit of t² by k symmetric ReLU units (k/2 knots) under t ~ N(0, 1).

    Knots by L-BFGS-B on the variable-projection objective (weights solved exactly for each
    candidate), started at the quantiles (j + ½)/(k/2) of |t|, where a fit under the normal puts
    its resolution; knots are kept ≥ 0 (a negative knot is a positive one plus a constant).
    Deterministic: no random numbers. Cached, since every caller of a given k wants the same fit
    (k = 64 takes tens of seconds)."""
    _check_k(k)
    count = k // 2
    start = norm.ppf((1 + (np.arange(count) + 0.5) / count) / 2)  # quantiles of |t|
    result = minimize(_objective, start, jac=True, method="L-BFGS-B",
                      bounds=[(0.0, float(GRID[-1]))] * count,
                      options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5_000})
    knots = np.sort(result.x)
    coefficients, residual = _solve(knots)
    mean = GRID_WEIGHTS @ residual  # 0 up to rounding: the constant is in the basis
    variance = GRID_WEIGHTS @ (residual - mean) ** 2
    return SquareFit(k=k, knots=tuple(knots.tolist()), weights=tuple(coefficients[1:].tolist()),
                     c0=float(coefficients[0]), nmse=float(variance / 2))


def construction_nmse(k: int) -> float:
    """The dense construction's NMSE, Var(e)/2: the same at every dimension."""
    return fit_square(k).nmse


def hidden_units(dimension: int, k: int) -> int:
    """2·d·k: d coordinates, two squares each (u_i and v_i), k ReLU units a square."""
    _check_k(k)
    return 2 * dimension * k


def params(dimension: int, k: int) -> int:
    """Dense parameters of the one-hidden-layer net on [a, b]: H·(2d + 1) in the hidden layer
    (weights and biases) and H + 1 in the head, H = 2·d·k. Counted as the sweep counts its nets
    (dense), though only 2 of each unit's 2d input weights are nonzero."""
    return params_of(dimension, 1, hidden_units(dimension, k))


def smallest_k(epsilon: float, k_max: int = 64) -> int:
    """The smallest even k whose construction reaches NMSE ≤ epsilon: with it, 2·d·k hidden
    units suffice to represent a·b to epsilon at dimension d (an upper bound on the size needed)."""
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
    _check_k(k_max)
    for k in range(2, k_max + 1, 2):
        if construction_nmse(k) <= epsilon:
            return k
    raise ValueError(f"no even k <= {k_max} reaches NMSE {epsilon:g} "
                     f"(k = {k_max} gives {construction_nmse(k_max):.3g}); raise k_max")


def _dense_weights(dimension: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hidden layer's weight (2d, H) and bias (H,), and the head's weight (H,).

    Unit order: coordinate i, then the square (u_i, then v_i), then the knot, then the side s;
    unit relu(s·w·x − τ_j) with w·x = u_i or v_i, output weight ±c_j/2 (+ for u, − for v)."""
    fit = fit_square(k)
    count = k // 2
    root_half = 1 / math.sqrt(2)
    square_sign = np.array([1.0, -1.0])  # u_i = (a_i + b_i)/√2 adds, v_i = (a_i − b_i)/√2 subtracts
    side = np.array([1.0, -1.0])  # relu(t − τ) and relu(−t − τ)
    shape = (dimension, 2, count, 2)
    # Input weights on a_i: s/√2; on b_i: s·(±1)/√2. Each unit reads coordinate i only.
    on_a = np.broadcast_to(side * root_half, shape)
    on_b = np.broadcast_to(square_sign[:, None, None] * side * root_half, shape)
    owner = np.broadcast_to(np.arange(dimension)[:, None, None, None], shape).reshape(-1)
    units = owner.size
    hidden = np.zeros((2 * dimension, units))
    hidden[owner, np.arange(units)] = on_a.reshape(-1)
    hidden[dimension + owner, np.arange(units)] = on_b.reshape(-1)
    bias = np.broadcast_to(-np.asarray(fit.knots)[:, None], shape).reshape(-1)
    head = np.broadcast_to(square_sign[:, None, None] * np.asarray(fit.weights)[:, None] / 2, shape)
    return hidden, bias.copy(), head.reshape(-1).copy()


def load_into(model: DotMLP, k: int) -> None:
    """Write the construction into `model`, a DotMLP(d, hidden=(2·d·k,), multiply=False) (every
    replica, if it has several): the net the trials train, so it is scored by the same code."""
    _check_k(k)
    if not isinstance(model, DotMLP):
        raise ValueError(f"a DotMLP expected, got {type(model).__name__}")
    dimension = model.dimension
    width = hidden_units(dimension, k)
    widths = [layer.fan_out for layer in model.layers[:-1]]
    if model.multiply or widths != [width]:
        raise ValueError(
            f"the construction for d = {dimension}, k = {k} needs DotMLP({dimension}, "
            f"hidden=({width},), multiply=False); got hidden={tuple(widths)}, multiply={model.multiply}")
    hidden, bias, head = _dense_weights(dimension, k)
    first, last = model.layers
    with torch.no_grad():  # StackedLinear stores weight (K, in, out) and bias (K, 1, out)
        first.weight.copy_(torch.from_numpy(hidden).expand_as(first.weight))
        first.bias.copy_(torch.from_numpy(bias).view(1, 1, -1).expand_as(first.bias))
        last.weight.copy_(torch.from_numpy(head).view(1, -1, 1).expand_as(last.weight))
        last.bias.zero_()


def build_model(dimension: int, k: int) -> DotMLP:
    """A one-replica DotMLP holding the construction."""
    model = DotMLP(dimension, hidden=(hidden_units(dimension, k),), multiply=False, replicas=1)
    load_into(model, k)
    return model


@torch.no_grad()
def held_out_nmse(dimension: int, k: int, n: int = HELD_OUT_PAIRS) -> float:
    """The built net's NMSE on the held-out pairs the trials are scored on (the first n of them:
    dotmlp.data.held_out_set), as the training module computes it: MSE / y.var(unbiased=False).
    The net runs in float32 as trained nets do; the means are taken in float64."""
    a, b, y = held_out_set(dimension, n, "cpu")
    prediction = build_model(dimension, k).eval()(a, b).double()
    y = y.double()
    return float((prediction - y).square().mean() / y.var(unbiased=False))


def reference_table(dimensions: Iterable[int], epsilons: Iterable[float]) -> pd.DataFrame:
    """For each dimension and target NMSE ε, the smallest construction reaching ε: its k, hidden
    units, dense parameters, exact NMSE and held-out NMSE. One row per (dimension, ε)."""
    epsilons = list(epsilons)
    rows = []
    for dimension in dimensions:
        for epsilon in epsilons:
            k = smallest_k(epsilon)
            rows.append({
                "dimension": dimension, "epsilon": epsilon, "k": k,
                "hidden_units": hidden_units(dimension, k), "params": params(dimension, k),
                "nmse_exact": construction_nmse(k), "nmse_held_out": held_out_nmse(dimension, k),
            })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ArgumentParser(prog="python -m dotmlp.construction", description=__doc__.splitlines()[0])
    parser.add_argument("--dimensions", default="1,16,32,64", help="comma-separated, e.g. 1,16,32,64")
    parser.add_argument("--k", default="2,4,6,8", help="ReLU units per square, even, e.g. 2,4,6,8")
    parser.add_argument("--n", type=int, default=HELD_OUT_PAIRS, help="held-out pairs scored")
    args = parser.parse_args(argv)
    try:
        dimensions = int_list("--dimensions", args.dimensions)
        ks = int_list("--k", args.k, minimum=2)
        if any(k % 2 for k in ks):
            raise ConfigError(f"--k must be even (one unit each side of every knot), got {args.k!r}")
        if args.n < 2:
            raise ConfigError(f"--n must be >= 2, got {args.n}")
    except ConfigError as error:
        fail(parser.prog, str(error))
    rows = []
    for k in ks:
        row = {"k": k, "nmse_exact": construction_nmse(k)}
        row.update({f"held_out_d{d}": held_out_nmse(d, k, args.n) for d in dimensions})
        rows.append(row)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
