"""The scaling law (dotmlp.study.law, fit, predictions): parameter counts, the fit on tables drawn
from a known law, and predictions."""

import math

import numpy as np
import pandas as pd
import pytest

from dotmlp.sizes import params_of, width_for_params
from dotmlp.study.approximation import approximation_paragraph
from dotmlp.study.fit import FIT_COLUMNS, MAX_NMSE, fit_scaling, residuals, tuned_points
from dotmlp.study.fit_figure import fit_figure
from dotmlp.study.law import constants, nmse, yarotsky_params
from dotmlp.study.predictions import _samples_needed, predict, prediction_table
from tests.study_data import law_nmse, sweep_tables

ADDITIVE = {"A": 30.0, "alpha": 0.8, "B": 30.0, "beta": 0.7}
INTERACTION = {"A": 30.0, "alpha": 0.8, "B": 3e3, "beta": 0.7, "delta": 0.4}


@pytest.mark.parametrize("dimension,depth,width,multiply", [
    (1, 0, 5, False), (2, 0, 16, True), (2, 1, 16, False), (2, 1, 16, True), (4, 2, 64, False),
    (16, 4, 33, True), (64, 3, 7, False)])
def test_params_of_counts_the_model_s_parameters(dimension, depth, width, multiply):
    from dotmlp.model import DotMLP

    model = DotMLP(dimension, (width,) * depth, multiply)
    assert params_of(dimension, depth, width, multiply) == sum(p.numel() for p in model.parameters())


def test_width_for_params_inverts_params_of():
    for dimension in (1, 3, 8, 64):
        for depth in (1, 2, 4):
            for multiply in (False, True):
                for width in (1, 2, 7, 64, 300, 1024):
                    params = params_of(dimension, depth, width, multiply)
                    assert width_for_params(params, dimension, depth, multiply) == width


@pytest.fixture(scope="module")
def additive_fit():
    trials, curves = sweep_tables(ADDITIVE, seed=1)
    return fit_scaling(trials, curves, resamples=200, seed=0)


def test_fit_recovers_an_additive_law_within_its_intervals(additive_fit):
    fit, draws = additive_fit
    row = fit.iloc[0]
    assert list(fit.columns[:len(FIT_COLUMNS)]) == FIT_COLUMNS
    assert row["form"] == "additive" and row["delta"] == 0 and row["determined"]
    assert row["resamples"] == 200 and len(draws) == 200
    assert row["alpha_lo"] <= ADDITIVE["alpha"] <= row["alpha_hi"], row.to_dict()
    assert row["beta_lo"] <= ADDITIVE["beta"] <= row["beta_hi"], row.to_dict()
    assert row["alpha_lo"] <= row["alpha"] <= row["alpha_hi"]
    assert row["rmse_log"] < 0.1  # the seeds' noise, σ = 0.1 per seed, median of 3
    assert row["points"] == 6 * 7 and row["cells"] == 6 and row["depths"] == "2"


def test_fit_finds_the_interaction_when_larger_nets_learn_faster():
    trials, curves = sweep_tables(INTERACTION, seed=2)
    fit, _ = fit_scaling(trials, curves, resamples=200, seed=0)
    row = fit.iloc[0]
    assert row["form"] == "interaction"
    assert row["rmse_log_interaction"] < row["rmse_log_additive"] / 2
    for name in ("alpha", "beta", "delta"):
        assert row[f"{name}_lo"] <= INTERACTION[name] <= row[f"{name}_hi"], (name, row.to_dict())


def test_bootstrap_is_seeded():
    trials, curves = sweep_tables(ADDITIVE, widths=(8, 32, 128), seed=3)
    first, _ = fit_scaling(trials, curves, resamples=20, seed=5)
    again, _ = fit_scaling(trials, curves, resamples=20, seed=5)
    pd.testing.assert_frame_equal(first, again)


def test_predictions_invert_the_law_also_beyond_the_trained_sizes(additive_fit):
    fit, _ = additive_fit
    row = fit.iloc[0]
    for threshold in (1e-2, 1e-3, 1e-4):
        p = predict(row, threshold)
        assert p["reachable"]
        assert nmse(row, p["params_min"], np.inf) == pytest.approx(threshold, rel=1e-6)
        assert nmse(row, np.inf, p["samples_min"]) == pytest.approx(threshold, rel=1e-6)
        assert nmse(row, p["params"], p["samples"]) <= threshold * (1 + 1e-6)
        assert p["params"] > p["params_min"] and p["samples"] > p["samples_min"]
        # least compute: a little more or less N on the threshold line costs more N·S
        for factor in (0.9, 1.1):
            params = p["params"] * factor
            if p["params_min"] < params <= p["max_params"]:
                target = threshold / (1 - threshold)
                samples = _samples_needed(constants(row), params, target)
                assert params * samples >= p["compute"] * (1 - 1e-3)
    beyond = predict(row, 1e-4)
    assert beyond["params_min"] > row["max_params"]  # extrapolated beyond the trained nets
    # and the law the data were drawn from agrees with the fit's prediction within 2×
    truth = law_nmse(ADDITIVE, beyond["params"], beyond["samples"])
    assert 0.5 < truth / 1e-4 < 2


def test_interaction_gives_samples_at_the_cap():
    row = {**INTERACTION, "E": 0.0, "max_params": 1e5, "min_samples": 3e4}
    p = predict(row, 1e-2)
    assert p["samples_min_params"] == 1e7  # EXTRAPOLATION × the largest net
    assert nmse(row, 1e7, p["samples_min"]) == pytest.approx(1e-2, rel=1e-6)
    assert p["params"] <= 1e7 and p["samples"] >= 3e4


def test_a_threshold_below_the_floor_is_unreachable():
    row = {**ADDITIVE, "E": 1e-3, "delta": 0.0, "max_params": 1e5, "min_samples": 3e4}
    p = predict(row, 5e-4)
    assert not p["reachable"] and p["params_min"] == math.inf and math.isnan(p["params"])
    assert predict(row, 1e-2)["reachable"]


def test_prediction_table_has_intervals_around_its_estimates(additive_fit):
    fit, draws = additive_fit
    table = prediction_table(fit, draws, thresholds=(1e-2, 1e-3))
    assert len(table) == 2
    for row in table.itertuples():
        assert row.params_min_lo <= row.params_min <= row.params_min_hi
        assert row.samples_min_lo <= row.samples_min <= row.samples_min_hi
        assert row.depth == 2 and row.architecture == f"2x{row.width}"
        assert abs(row.architecture_params / row.params - 1) < 0.1
        assert row.steps == math.ceil(row.samples / 1024)
        assert row.yarotsky_params == params_of(4, 2, math.ceil(4 * math.log(1 / row.threshold) / 2))


def test_degenerate_tasks_are_reported_not_fitted():
    exact, exact_curves = sweep_tables({"A": 1e-14, "alpha": 0.0, "B": 1e-14, "beta": 0.0},
                                       multiply=(True,), widths=(8, 16, 32), seed=4)
    few, few_curves = sweep_tables(ADDITIVE, dimensions=(8,), widths=(8,), ladder=(32768, 65536),
                                   lrs=(3e-3,), prefix="f")
    fit, draws = fit_scaling(pd.concat([exact, few]), pd.concat([exact_curves, few_curves]),
                             resamples=10)
    notes = fit.set_index("dimension")["note"]
    assert "exact" in notes[4] and "not fitted" in notes[4]
    assert "fewer than" in notes[8]
    assert fit["alpha"].isna().all() and draws.empty
    assert prediction_table(fit, draws).empty


def test_linear_models_and_diverged_trials_are_not_fitted():
    trials, curves = sweep_tables(ADDITIVE, widths=(8, 32, 128), depths=(0, 2), seed=6)
    trials.loc[trials["depth"] == 2, "status"] = np.where(
        trials.loc[trials["depth"] == 2, "lr"] == 1e-2, "diverged", "completed")
    points = tuned_points(trials, curves)
    assert (points["depth"] == 2).all() and (points["lr"] != 1e-2).all()
    assert set(points["lrs"]) == {2}


def test_yarotsky_reference_grows_with_d_and_precision():
    assert yarotsky_params(8, 1e-3) > yarotsky_params(8, 1e-2) > yarotsky_params(4, 1e-2)
    units = 16 * math.log(100)
    assert yarotsky_params(16, 1e-2) == params_of(16, 2, math.ceil(units / 2))


def test_fit_figure_and_paragraph_are_made(additive_fit):
    fit, draws = additive_fit
    trials, curves = sweep_tables(ADDITIVE, seed=1)
    predictions = prediction_table(fit, draws)
    fig = fit_figure(tuned_points(trials, curves), fit, predictions)
    assert len(fig.axes) == 4  # one dimension (two panels) and the summary column
    text = approximation_paragraph(fit, predictions)
    assert "d·ln(1/ε)" in text and "| 4 | 0.01 |" in text


def test_other_depths_get_a_factor_and_depth_one_is_left_out():
    trials, curves = sweep_tables(ADDITIVE, depths=(1, 2, 4), widths=(8, 16, 32, 64, 128),
                                  depth_factors={1: 5.0, 4: 0.5}, seed=10)
    fit, draws = fit_scaling(trials, curves, resamples=200, seed=0)
    row = fit.iloc[0]
    assert row["depths"] == "2,4" and row["reference_depth"] == 2 and row["cells"] == 10
    factor, interval = row["depth_factors"].removeprefix("4: ").split(" ", 1)
    low, high = (float(v) for v in interval.strip("[]").split(", "))
    assert low <= 0.5 <= high and abs(float(factor) - 0.5) < 0.1
    assert row["alpha_lo"] <= ADDITIVE["alpha"] <= row["alpha_hi"]
    assert "factor_4" in draws.columns
    # the law is the reference depth's: predictions are depth-2 architectures
    assert (prediction_table(fit, draws)["depth"] == 2).all()
    every, _ = fit_scaling(trials, curves, depths=(1, 2, 4), resamples=0)
    assert every.iloc[0]["depths"] == "1,2,4" and every.iloc[0]["depth_factors"].startswith("1: ")


def test_points_above_max_nmse_are_left_out():
    trials, curves = sweep_tables({"A": 3e3, "alpha": 0.8, "B": 30.0, "beta": 0.7}, seed=11)
    fit, _ = fit_scaling(trials, curves, resamples=0)
    row = fit.iloc[0]
    assert row["early_points"] > 0 and row["points"] + row["early_points"] == 6 * 7
    assert (tuned_points(trials, curves)["val_nmse"] > MAX_NMSE).sum() == \
        row["early_points"]


def test_two_sizes_are_not_fitted_and_undetermined_fits_stay_out_of_the_comparison(additive_fit):
    trials, curves = sweep_tables(ADDITIVE, widths=(16, 64), seed=12)
    fit, _ = fit_scaling(trials, curves, resamples=0)
    assert fit.iloc[0]["note"] == "not fitted: 2 network sizes (fewer than 3)"
    good, draws = additive_fit
    loose = good.assign(dimension=8, determined=False)
    both = pd.concat([good, loose], ignore_index=True)
    predictions = prediction_table(both, draws)
    assert set(predictions.loc[~predictions["determined"], "dimension"]) == {8}
    text = approximation_paragraph(both, predictions)
    assert "(fit not determined)" in text and "d = 8 are not determined" in text


def test_residuals_show_no_trend_under_the_right_form_and_one_under_the_wrong(additive_fit):
    fit, _ = additive_fit
    row = fit.iloc[0]
    assert abs(row["residual_slope_params"]) < 0.02 and abs(row["residual_slope_samples"]) < 0.02
    trials, curves = sweep_tables(INTERACTION, seed=2)
    wrong, _ = fit_scaling(trials, curves, form="additive", resamples=0)
    table = residuals(tuned_points(trials, curves), wrong)
    assert len(table) == wrong.iloc[0]["points"]
    # the additive law cannot make large nets learn faster: the residual trend in S depends on N
    by_cell = table.groupby("params")["residual_log"].agg(lambda r: np.polyfit(
        np.log(table.loc[r.index, "samples"]), r, 1)[0])
    assert abs(by_cell.iloc[-1] - by_cell.iloc[0]) > 0.1
