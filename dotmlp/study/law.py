"""The scaling law: its form, its NMSE at N parameters and S samples, and parameter counts.

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

Approximation theory's count of units (Yarotsky 2017: d·ln(1/ε)), put on the same axis as the law
by `yarotsky_params`, is here too: dotmlp.study.approximation sets the two side by side.
"""

from __future__ import annotations

import numpy as np

from dotmlp.sizes import params_of

FORMS = ("additive", "interaction")
# The depth the law describes (others get a factor); predictions are architectures of it.
REFERENCE_DEPTH = 2
FLOOR = 1e-10


def yarotsky_units(dimension, epsilon, constant: float = 1.0):
    """Units on the order of d·ln(1/ε) (Yarotsky 2017; constant unknown, 1 by default)."""
    return constant * np.asarray(dimension) * np.log(1 / np.asarray(epsilon))


def yarotsky_params(dimension, epsilon, depth: int = 2, multiply: bool = False,
                    constant: float = 1.0):
    """Those units as parameters of a depth-`depth` net, split evenly over its layers (an
    assumption: the construction is deeper; this puts it on the same axis as the fit)."""
    width = np.maximum(1, np.ceil(yarotsky_units(dimension, epsilon, constant) / depth))
    return params_of(dimension, depth, width.astype(np.int64), multiply)


def nmse(fit_row, params, samples, depth: int | None = None):
    """The law's NMSE at N params and S samples (arrays welcome; S = inf: the capacity limit),
    at its reference depth, or at `depth` with that depth's factor (`factor_<depth>`)."""
    row = constants(fit_row)
    params, samples = np.asarray(params, dtype=float), np.asarray(samples, dtype=float)
    factor = row.get(f"factor_{depth}", 1.0) if depth is not None else 1.0
    factor = 1.0 if factor is None or not np.isfinite(factor) else factor
    with np.errstate(divide="ignore", over="ignore"):
        f = factor * (row["A"] * params ** -row["alpha"]
                      + row["B"] * params ** -row["delta"] * samples ** -row["beta"] + row["E"])
    return f / (1 + f)


def constants(fit_row) -> dict:
    """The law's constants from a fit row (a dict or a Series): δ = 0 where it has none."""
    row = dict(fit_row)
    delta = row.get("delta", 0.0)
    row["delta"] = 0.0 if delta is None or not np.isfinite(delta) else float(delta)
    return row

