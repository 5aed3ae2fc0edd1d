"""How many parameters a DotMLP of a given depth and width has, and its inverse: the one count the
frontier search, the hand-built net and the study's fit all use. numpy only (no torch): entry points
import it before they validate their arguments."""

from __future__ import annotations

import math

import numpy as np


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
