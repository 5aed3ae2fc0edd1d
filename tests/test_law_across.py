"""The law across dimensions (dotmlp.study.across_fit, across_checks, law_across) and the price of
learning (dotmlp.study.price), on synthetic learning curves drawn from a known law: the fit gets
its exponents back, leaving a dimension out picks the law the curves came from, a prediction is
the smallest width meeting ε at the cap, and the command refuses bad input in one line."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dotmlp.sizes import params_of
from dotmlp.study import across_checks, across_fit, law_across, price
from tests.conftest import ROOT

DIMS = (1, 2, 4, 8)
LRS = (1e-3, 2e-3, 4e-3)
# Scaled constants [ln A, α, ln B, β, δ, γc, γd, ln a₂, ln b₂] (across_fit.NAMES, in the fit's
# units): near what the frontier ledger gives, with d-exponents of its own.
TRUTH = np.array([-4.3, 3.0, -3.0, 0.6, 1.2, 0.4, -0.3, 0.8, 0.9])


def ledger(truth=TRUTH, noise=0.08, seed=0, dims=DIMS, per_d=None) -> pd.DataFrame:
    """A frontier ledger whose best rate's NMSE follows `truth` (or per_d(d) -> theta per
    dimension) times log-normal noise; the other two rates are worse, so the best is bracketed."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in dims:
        theta = per_d(d) if per_d else truth
        for depth, ks in ((1, (2, 3, 4, 6, 8, 12, 16)), (2, (3, 5, 8, 12))):
            for k in ks:
                width = 2 * d * k if depth == 1 else max(2, round(2 * d * k / 2.5))
                for samples in (2**19, 2**21, 2**23, 2**25):
                    nmse = float(across_fit.law_nmse(theta, d, depth, width, samples))
                    nmse *= float(np.exp(noise * rng.standard_normal()))
                    for lr, factor in zip(LRS, (1.6, 1.0, 1.9), strict=True):
                        rows.append({"dimension": d, "depth": depth, "width": width, "lr": lr,
                                     "samples": samples, "nmse_median": min(nmse * factor, 1.0)})
    return pd.DataFrame(rows)


def points_of(frame: pd.DataFrame) -> pd.DataFrame:
    return across_fit.fitted_points(across_fit.learning_curves(frame))


# ---------------------------------------------------------------------------- the points
def test_learning_curves_keep_each_budgets_best_rate_and_flag_the_edge():
    frame = pd.DataFrame({"dimension": 4, "depth": 1, "width": 32, "samples": [2**19] * 3 + [2**21] * 4,
                          "lr": [1e-3, 2e-3, 4e-3, 1e-3, 2e-3, 4e-3, 8e-3],
                          "nmse_median": [0.2, 0.1, 0.3, 0.08, 0.09, 0.1, np.inf]})
    curves = across_fit.learning_curves(frame)
    assert curves["nmse_median"].tolist() == [0.1, 0.08]
    assert curves["lr"].tolist() == [2e-3, 1e-3]
    assert curves["bracketed"].tolist() == [True, False]  # 1e-3 is the lowest rate tried
    assert curves["lrs"].tolist() == [3, 3]  # the diverged (inf) run is not a rate tried
    assert curves["k"].tolist() == [4.0, 4.0]  # width 32 at d = 4: 32 / (2·4) units per square
    depth2 = across_fit.units_per_square(4, params_of(4, 2, 20))
    assert depth2 == pytest.approx((params_of(4, 2, 20) - 1) / 10 / 8)


# ---------------------------------------------------------------------------- the fit
def test_the_fit_recovers_the_exponents_within_its_intervals():
    points = points_of(ledger())
    fitted = across_fit.fit(points, "across_d")
    draws = across_fit.bootstrap(points, fitted, 40, seed=1)
    values = np.array([draw.thetas[None] for draw in draws])
    lo, hi = np.percentile(values, [5, 95], axis=0)
    for j, name in enumerate(across_fit.NAMES):
        if name in ("alpha", "beta", "delta", "gamma_capacity", "gamma_data"):
            assert lo[j] <= TRUTH[j] <= hi[j], (name, lo[j], TRUTH[j], hi[j])
            assert hi[j] - lo[j] < 0.6, (name, lo[j], hi[j])  # an interval that says something
    assert fitted.rmse_log == pytest.approx(0.08, rel=0.3)  # the noise, not a misfit
    # Without the γ terms the same curves are fitted worse: d matters in them.
    assert across_fit.fit(points, "across_d_k_only").rmse_log > 1.5 * fitted.rmse_log


def test_raw_constants_give_the_same_law():
    raw = across_fit.to_raw(TRUTH)
    d, width, samples = 8, 100, 2**23
    n = params_of(d, 1, width)
    k, r = (n - 1) / (2 * d + 2) / (2 * d), samples / n
    f = raw["A"] * k ** -raw["alpha"] * d ** raw["gamma_capacity"] + \
        raw["B"] * k ** -raw["delta"] * r ** -raw["beta"] * d ** raw["gamma_data"]
    assert across_fit.law_nmse(TRUTH, d, 1, width, samples) == pytest.approx(f / (1 + f))


def test_leaving_a_dimension_out_prefers_the_law_across_d_when_the_curves_follow_one():
    truth = TRUTH.copy()
    truth[across_fit.GAMMAS] = 0.0  # no d beyond k and samples per parameter
    loo = across_fit.leave_one_out(points_of(ledger(truth, noise=0.1, seed=2)))
    assert list(loo["held_out"]) == list(DIMS)
    assert across_fit.kept_method(loo) == "across_d_k_only"
    scores = {method: across_fit.pooled_rmse(loo, method) for method in across_fit.METHODS}
    assert scores["across_d_k_only"] < min(scores["per_d"], scores["per_d_nearest"])
    assert scores["across_d_k_only"] < 0.13  # the noise (0.1), no more
    # Curves with d-exponents (TRUTH): the law with γ predicts a held-out d, the one without
    # and the nearest dimension's constants miss it.
    loo = across_fit.leave_one_out(points_of(ledger(TRUTH, noise=0.1, seed=2)))
    scores = {method: across_fit.pooled_rmse(loo, method) for method in across_fit.METHODS}
    assert scores["across_d"] < 0.13
    assert scores["across_d"] < 0.6 * min(scores["across_d_k_only"], scores["per_d_nearest"])
    assert across_fit.kept_method(loo) == "across_d"


def test_the_per_dimension_fit_wins_where_the_exponent_itself_moves_with_d():
    def per_d(d):  # α from 2 at d = 1 to 3.5 at d = 8: no single law in k has it
        theta = TRUTH.copy()
        theta[across_fit.GAMMAS] = 0.0
        theta[1] = 2.0 + 0.5 * np.log2(d)
        return theta

    points = points_of(ledger(per_d=per_d, noise=0.05, seed=3))
    loo = across_fit.leave_one_out(points)
    assert across_fit.pooled_rmse(loo, "per_d") < 0.7 * across_fit.pooled_rmse(loo, "across_d_k_only")
    assert across_fit.kept_method(loo).startswith("per_d") or across_fit.kept_method(loo) == "across_d"


# ---------------------------------------------------------------------------- predictions
def test_the_prediction_is_the_smallest_width_meeting_eps_at_the_cap():
    d, cap, eps = 8, 2**25, 1e-2
    width = across_checks.smallest_width(TRUTH, d, 1, eps, cap)
    assert across_fit.law_nmse(TRUTH, d, 1, width, cap) <= eps
    assert (across_fit.law_nmse(TRUTH, d, 1, np.arange(1, width), cap) > eps).all()
    # A smaller cap needs a wider net; the budget at which the law puts `width` at ε is ≤ the cap.
    assert across_checks.smallest_width(TRUTH, d, 1, eps, cap // 16) > width
    needed = across_checks.samples_needed(TRUTH, d, 1, width, eps)
    assert needed <= cap
    assert across_fit.law_nmse(TRUTH, d, 1, width, needed) == pytest.approx(eps, rel=1e-6)


def test_the_prediction_scans_past_a_width_that_fails_at_the_cap():
    # A data term that grows with width (δ < 0: wide nets starve at a fixed cap) and a capacity
    # term that falls: NMSE at the cap falls, rises, and the smallest width meeting ε comes first.
    theta = np.array([-4.0, 3.0, -5.0, 1.0, -1.5, 0, 0, 0, 0])
    cap = 2**21
    curve = across_fit.law_nmse(theta, 4, 1, np.arange(1, 2000), cap)
    eps = 1.5 * curve.min()
    width = across_checks.smallest_width(theta, 4, 1, eps, cap)
    assert width == int(np.flatnonzero(curve <= eps)[0]) + 1
    assert curve[-1] > eps  # the widest nets fail again: no bisection would do
    assert across_checks.smallest_width(theta, 4, 1, curve.min() / 2, cap) is None


def answer_rows() -> pd.DataFrame:
    """answer.csv's columns that the checks and the price read, for d = 1, 2, 4 at 1e-2 depth 1."""
    base = {"multiply": False, "threshold": 0.01, "depth": 1, "status": "decided", "reached": True,
            "max_width_tried": 64, "samples": 2**23}
    rows = [{**base, "dimension": d, "width": w, "params": params_of(d, 1, w), "failed_width": f,
             "failed_params": params_of(d, 1, f), "construction_params": params_of(d, 1, 8 * d),
             "construction_k": 4, "lr_bracketed": True}
            for d, w, f in ((1, 8, 7), (2, 32, 26), (4, 128, 100))]
    rows.append({**base, "dimension": 8, "status": "in progress", "reached": None})
    return pd.DataFrame(rows)


def test_the_checks_read_found_widths_and_say_what_awaits():
    points = points_of(ledger(dims=(1, 2, 4)))
    fits = across_fit.Fits(points, 5, seed=0)
    table = across_checks.law_checks(fits, answer_rows(), "across_d")
    row = table[(table["kind"] == "leave-one-out") & (table["dimension"] == 2)
                & (table["threshold"] == 0.01) & (table["depth"] == 1)].iloc[0]
    assert row["fitted_on"] == "1,4" and row["status"] == "checked" and row["found_width"] == 32
    assert row["ratio"] == pytest.approx(32 / row["predicted_width"], abs=1e-3)
    assert row["width_lo"] <= row["predicted_width"] <= row["width_hi"]
    unseen = table[table["dimension"] == 64]
    assert set(unseen["fitted_on"]) == {"1,2,4"}
    assert unseen["status"].str.startswith("awaiting the frontier search at d = 64").all()
    assert set(table[table["kind"] == "held out"]["dimension"]) == {24, 48}


# ---------------------------------------------------------------------------- the price
def test_the_price_and_its_growth_in_d():
    table = price.price_table(answer_rows())
    assert list(table["dimension"]) == [1, 2, 4]  # the unfinished d = 8 is not a price
    assert table["price"].tolist() == pytest.approx([params_of(d, 1, w) / params_of(d, 1, 8 * d)
                                                     for d, w in ((1, 8), (2, 32), (4, 128))])
    assert (table["price_lo"] < table["price"]).all()
    # Widths 8, 32, 128 against 8d: the price grows about like d (params ∝ d·w).
    assert table["growth_slope"].iloc[0] == pytest.approx(1.0, abs=0.15)
    assert table["growth_points"].iloc[0] == 3


# ---------------------------------------------------------------------------- the command
def test_the_command_writes_every_table_and_the_same_again(tmp_path):
    ledger(seed=4).to_csv(tmp_path / "candidates.csv", index=False)
    answer_rows().to_csv(tmp_path / "answer.csv", index=False)
    args = ["--ledger", str(tmp_path / "candidates.csv"), "--answer", str(tmp_path / "answer.csv"),
            "--out-dir", str(tmp_path / "out"), "--resamples", "3"]
    tables = law_across.main(args)
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert written == {"law.csv", "law_loo.csv", "law_checks.csv", "price.csv", "price.png"}
    assert tables["law"]["kept"].any()
    first = {name: (tmp_path / "out" / name).read_bytes() for name in written if name.endswith(".csv")}
    law_across.main([*args, "--no-figure"])
    assert first == {name: (tmp_path / "out" / name).read_bytes() for name in first}


@pytest.mark.parametrize("case", ["missing", "empty", "one dimension"])
def test_the_command_refuses_bad_input_in_one_line(tmp_path, case):
    path = tmp_path / "candidates.csv"
    if case == "empty":
        path.write_text("dimension,depth,width,lr,samples,nmse_median\n")
    elif case == "one dimension":
        ledger(dims=(4,)).to_csv(path, index=False)
    answer_rows().to_csv(tmp_path / "answer.csv", index=False)
    out = subprocess.run([sys.executable, "-m", "dotmlp.study.law_across", "--ledger", str(path),
                          "--answer", str(tmp_path / "answer.csv"), "--out-dir", str(tmp_path / "out")],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "--ledger" in out.stderr
    assert not (tmp_path / "out").exists()
