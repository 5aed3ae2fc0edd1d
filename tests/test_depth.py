"""Deep against shallow at equal parameters: iso-parameter widths and the grouped comparison."""

import pandas as pd
import pytest

from dotmlp.sizes import params_of
from dotmlp.study.depth import (
    deep_vs_shallow_figure,
    deep_vs_shallow_summary,
    iso_grid,
    iso_parameter_pairs,
    iso_widths,
)
from tests.study_data import curve, trial


@pytest.mark.parametrize("dimension", [1, 4, 16, 64])
@pytest.mark.parametrize("target", [2_000, 20_000, 300_000])
@pytest.mark.parametrize("multiply", [False, True])
def test_iso_widths_are_within_ten_percent(dimension, target, multiply):
    widths = iso_widths(dimension, target, (1, 2, 4), multiply)
    assert set(widths) == {1, 2, 4}
    for depth, width in widths.items():
        if width is not None:
            assert abs(params_of(dimension, depth, width, multiply) / target - 1) <= 0.10
    assert widths[1] is not None  # depth 1 reaches any size above its smallest


def test_iso_widths_says_none_where_no_width_fits():
    # d = 64 at depth 4: width 1 already has 136 parameters, width 2 has 279
    assert iso_widths(64, 200, depths=(4,)) == {4: None}
    grid = iso_grid(16, [10_000, 100_000])
    assert (grid["off"].abs() <= 0.10).all() and set(grid["depth"]) == {1, 2, 4}


def tables():
    """d = 8: 1 × W1, 2 × W2, 4 × W4 at ≈ 20k parameters, and 2 × 64 (≈ 5.3k) alone at its size;
    the 4-deep net was pruned at 131,072 samples; 2 × W2 has two learning rates."""
    widths = iso_widths(8, 20_000)
    specs = [("one", 1, widths[1], 1e-3, {32768: 0.3, 65536: 0.2, 131072: 0.15, 262144: 0.1}),
             ("two", 2, widths[2], 1e-3, {32768: 0.2, 65536: 0.1, 131072: 0.06, 262144: 0.03}),
             ("two_lr", 2, widths[2], 3e-3, {32768: 0.1, 65536: 0.08, 131072: 0.07, 262144: 0.05}),
             ("four", 4, widths[4], 1e-3, {32768: 0.25, 65536: 0.09, 131072: 0.04}),
             ("alone", 2, 64, 1e-3, {32768: 0.3, 65536: 0.2})]
    trials, curves = [], []
    for trial_id, depth, width, lr, points in specs:
        rows = curve(trial_id, points)
        curves += rows
        trials.append(trial(trial_id, 8, False, depth, width, lr, 3, rows[-1],
                            status="completed" if trial_id != "four" else "pruned"))
    return pd.DataFrame(trials), pd.DataFrame(curves)


def test_groups_compare_equal_params_at_a_common_budget_and_tuned_lr():
    pairs = iso_parameter_pairs(*tables())
    assert set(pairs["group"]) == {1} and sorted(pairs["depth"]) == [1, 2, 4]
    assert (pairs["samples"] == 131072).all()  # the pruned 4-deep net's last budget
    assert pairs["params"].max() / pairs["params"].min() <= 1.10
    two = pairs[pairs["depth"] == 2].iloc[0]
    assert two["lr"] == 1e-3 and two["nmse_median"] == 0.06 and two["lrs"] == 2
    four = pairs[pairs["depth"] == 4].iloc[0]
    assert four["nmse_median"] == 0.04 and four["ratio_to_best"] == 1
    assert four["nmse_min"] == pytest.approx(0.04 / 1.5) and four["nmse_max"] == pytest.approx(0.06)
    assert pairs.set_index("depth")["ratio_to_best"][1] == pytest.approx(0.15 / 0.04)


def test_summary_and_figure():
    pairs = iso_parameter_pairs(*tables())
    text = deep_vs_shallow_summary(pairs)
    assert "| 1 vs 2 | 1 | 1 |" in text and "| 2 vs 4 | 1 | 1 |" in text
    fig = deep_vs_shallow_figure(pairs)
    assert len(fig.axes) == 1
    assert "No group" in deep_vs_shallow_summary(pairs.iloc[0:0])
