"""The hand-built ReLU net that represents a·b (dotmlp/construction.py): real torch, no mocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.stats import norm

from dotmlp import construction
from dotmlp.data import held_out_set
from dotmlp.model import DotMLP, parameter_count


@pytest.mark.parametrize("dimension, k", [(4, 4), (4, 8), (32, 4), (32, 8)])
def test_loaded_net_scores_the_exact_nmse_on_the_held_out_set(dimension, k):
    """The construction written into the DotMLP the trials train scores, on the trials' held-out
    set, (1) what the construction's own float64 numpy forward scores on the same pairs, to 1e-4
    relative (float32 rounding only: any wrong sign, knot or scale would be off by O(1)), and (2) the
    exact NMSE Var(e)/2, to within sampling noise.

    (2) cannot be a fixed 2 %: on 16,384 pairs the estimate's relative standard error is 2-3.5 %
    at these d and k (larger at small d and large k, where e(t)² is heavy-tailed: 15 % at d = 1,
    k = 8). So the tolerance is 4 standard errors of this ratio estimate, estimated from the same
    pairs by the delta method (the set is fixed, so the test is deterministic; a correct
    construction lands outside 4 SE with probability < 1e-4), and the standard error itself must
    be under 5 %, so the band cannot grow vacuous."""
    nmse = construction.held_out_nmse(dimension, k)
    fit = construction.fit_square(k)

    a, b, y = held_out_set(dimension, construction.HELD_OUT_PAIRS, "cpu")
    a, b, y = a.double().numpy(), b.double().numpy(), y.double().numpy()
    u, v = (a + b) / math.sqrt(2), (a - b) / math.sqrt(2)
    own = ((fit.evaluate(u) - fit.evaluate(v)) / 2).sum(axis=1)
    centred = (y - y.mean()) ** 2
    squared_error = (own - y) ** 2
    own_nmse = squared_error.mean() / centred.mean()
    assert nmse == pytest.approx(own_nmse, rel=1e-4)

    # Delta method for the ratio mean(squared_error) / mean(centred).
    standard_error = np.sqrt(np.var(squared_error - own_nmse * centred) / len(y)) / centred.mean()
    assert standard_error < 0.05 * fit.nmse
    assert abs(nmse - fit.nmse) <= 4 * standard_error, (nmse, fit.nmse, standard_error)


def test_nmse_is_the_integral_and_falls_with_k():
    """The grid's Var(e)/2 is the integral under N(0, 1) (checked by adaptive quadrature between
    the knots, where e is smooth), it falls strictly with k, and smallest_k agrees with it."""
    values = [construction.construction_nmse(k) for k in (2, 4, 6, 8)]
    assert all(later < earlier for earlier, later in zip(values, values[1:], strict=False))
    assert 5.0e-3 < values[1] < 6.5e-3 and 5.5e-4 < values[3] < 7.5e-4  # design.md's magnitudes

    fit = construction.fit_square(4)
    edges = [-9.0, *(-np.array(fit.knots[::-1])), *fit.knots, 9.0]

    def moment(power: int) -> float:
        def integrand(t: float) -> float:
            return (fit.evaluate(np.array(t)) - t * t) ** power * norm.pdf(t)

        return sum(quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-12)[0]
                   for lo, hi in zip(edges, edges[1:], strict=False))

    variance = moment(2) - moment(1) ** 2
    assert fit.nmse == pytest.approx(variance / 2, rel=1e-5)

    for epsilon in (1e-2, 1e-3):
        k = construction.smallest_k(epsilon)
        assert k % 2 == 0 and construction.construction_nmse(k) <= epsilon
        assert k == 2 or construction.construction_nmse(k - 2) > epsilon
    assert construction.smallest_k(1e-2) == 4 and construction.smallest_k(1e-3) == 8
    with pytest.raises(ValueError, match="raise k_max"):
        construction.smallest_k(1e-9, k_max=4)


def test_parameter_count_matches_the_built_model():
    assert construction.hidden_units(32, 4) == 256
    assert construction.params(32, 4) == 16_897
    model = construction.build_model(32, 4)
    assert parameter_count(model) == 16_897
    assert parameter_count(construction.build_model(3, 6)) == construction.params(3, 6)


def test_load_into_refuses_a_model_of_the_wrong_shape():
    d, k = 4, 4
    width = construction.hidden_units(d, k)
    for wrong in (
        DotMLP(d, hidden=(width + 2,), multiply=False),
        DotMLP(d, hidden=(width, width), multiply=False),
        DotMLP(d, hidden=(), multiply=False),
        DotMLP(d, hidden=(width,), multiply=True),
    ):
        with pytest.raises(ValueError):
            construction.load_into(wrong, k)
    for bad_k in (0, 3, -2):
        with pytest.raises(ValueError):
            construction.load_into(DotMLP(d, hidden=(width,)), bad_k)

    # Several replicas: each holds the construction, and computes what one replica does.
    model = DotMLP(d, hidden=(width,), replicas=2)
    construction.load_into(model, k)
    a, b, _ = held_out_set(d, 64, "cpu")
    with torch.no_grad():
        both = model(a, b)
        single = construction.build_model(d, k)(a, b)
    torch.testing.assert_close(both[0], single)
    torch.testing.assert_close(both[1], single)


def test_cli_refuses_bad_input_in_one_line(capsys):
    for argv in (["--k", "3"], ["--dimensions", "0"], ["--k", "4,,8"]):
        with pytest.raises(SystemExit) as stop:
            construction.main(argv)
        assert stop.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
