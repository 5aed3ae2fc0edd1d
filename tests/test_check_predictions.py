"""sweep/check_predictions.py and dotmlp.study.checks: the plan it makes from a fit, its budget
guard, its usage errors, and one tiny real check."""

import json

import pandas as pd
import pytest

from dotmlp.sizes import params_of
from dotmlp.study import scaling
from dotmlp.study.checks import COLUMNS, PREDICTIONS_FILE, mark_current
from dotmlp.study.predictions import law_for_dimension, samples_needed
from sweep.check_predictions import main
from tests.study_data import sweep_tables

LAW = {"A": 30.0, "alpha": 0.8, "B": 300.0, "beta": 0.7}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A sweep folder at d = 2 and 4 (flag off) drawn from LAW, with its fit written."""
    root = tmp_path_factory.mktemp("check")
    folder = root / "s"
    folder.mkdir()
    trials, curves = sweep_tables(LAW, dimensions=(2, 4), depths=(1, 2),
                                  widths=(8, 16, 32, 64, 128), seed=9)
    trials.to_csv(folder / "trials.csv", index=False)
    curves.to_csv(folder / "curves.csv", index=False)
    (folder / "sweep.json").write_text(json.dumps(
        {"settings": {"batch_size": 1024, "schedule": "constant", "target": "dot"}}))
    scaling.write_fit(root, "s", resamples=30, figures=False)
    return root


def test_dry_run_plans_depth_two_architectures_and_writes_nothing(results, capsys):
    table = main(["--results-dir", str(results), "--name", "s", "--dimensions", "2,4,16",
                  "--threshold", "0.1", "--dry-run", "--json"])
    assert list(table.columns) == COLUMNS
    planned = table[table["status"] == "dry run"]
    assert list(planned["dimension"]) == [2, 4, 16]
    assert list(planned["law_from"]) == ["fit", "fit", "interpolated"]
    for row in planned.itertuples():
        assert row.architecture.startswith("2x") and row.steps % 25 == 0
        assert row.samples == row.steps * 1024 >= row.predicted_samples
        assert row.params == params_of(row.dimension, 2, int(row.architecture[2:]))
        assert row.predicted_nmse <= 0.1 * 1.01  # more samples than predicted: no worse
        assert row.lr == 3e-3  # the tuned learning rate of the law's tables
        assert row.estimated_seconds > 0
    assert not (results / "s" / PREDICTIONS_FILE).exists()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]["dimension"] == 2
    flag_on = main(["--results-dir", str(results), "--name", "s", "--dimensions", "2",
                    "--multiply", "--dry-run"])
    assert flag_on.iloc[0]["status"] == "no fit: no fit for this task"


def test_over_budget_configurations_are_refused(results, capsys):
    table = main(["--results-dir", str(results), "--name", "s", "--dimensions", "2",
                  "--threshold", "0.01", "--max-seconds", "0.001"])
    assert list(table["status"]) == ["over budget"]
    assert table["measured_nmse_median"].isna().all()
    assert "over --max-seconds" in capsys.readouterr().err
    written = pd.read_csv(results / "s" / PREDICTIONS_FILE)
    assert list(written["status"]) == ["over budget"]


@pytest.mark.parametrize("argv,message", [
    (["--dimensions", "2", "--threshold", "2"], "threshold must be"),
    (["--dimensions", "2,,4"], "dimensions must be"),
    (["--dimensions", "2", "--seeds", "0"], "seeds must be"),
    (["--dimensions", "2", "--fit", "/nonexistent/fit.csv"], "does not exist"),
])
def test_usage_errors_exit_2(results, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--results-dir", str(results), "--name", "s", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_check_trains_and_compares(results):
    table = main(["--results-dir", str(results), "--name", "s", "--dimensions", "2",
                  "--threshold", "0.2", "--seeds", "2", "--threads", "1"])
    row = table.iloc[0]
    assert row["status"] == "measured" and row["seeds"] == 2 and row["seed"] == 1000
    assert row["measured_nmse_min"] <= row["measured_nmse_median"] <= row["measured_nmse_max"]
    assert row["ratio"] == pytest.approx(row["measured_nmse_median"] / row["predicted_nmse"])
    assert row["within_2x"] == (0.5 <= row["ratio"] <= 2)
    written = pd.read_csv(results / "s" / PREDICTIONS_FILE)
    assert (written["threshold"] == 0.2).sum() == 1 and (written["threshold"] == 0.01).sum() == 1


def test_a_given_width_gets_the_law_s_samples_and_an_untrained_dimension_an_interpolated_law(results):
    table = main(["--results-dir", str(results), "--name", "s", "--dimensions", "2,3",
                  "--threshold", "0.1", "--width", "48", "--dry-run"])
    rows = table.set_index("dimension")
    assert (table["architecture"] == "2x48").all()
    fit = pd.read_csv(results / "s" / scaling.FIT_FILE)
    law = fit[fit["dimension"] == 2].iloc[0]
    needed = samples_needed(law, rows.loc[2, "params"], 0.1)
    assert rows.loc[2, "predicted_samples"] == pytest.approx(needed)
    assert rows.loc[2, "law_from"] == "fit" and rows.loc[3, "law_from"] == "interpolated"
    assert "at d=" in rows.loc[3, "lr_from"]  # the nearest trained dimension's learning rate
    exact = main(["--results-dir", str(results), "--name", "s", "--dimensions", "4",
                  "--width", "48", "--steps", "100", "--dry-run"])
    assert exact.iloc[0]["steps"] == 100 and exact.iloc[0]["samples"] == 102400


def test_law_for_dimension_interpolates_between_fits():
    law = {"A": 30.0, "alpha": 0.8, "B": 30.0, "beta": 0.7}
    row = {"multiply": False, "delta": 0.0, "E": 1e-10, "determined": True, "max_params": 1e5,
           "min_samples": 3e4, "max_samples": 2e6}
    fit = pd.DataFrame([{**row, **law, "dimension": 2}, {**row, **law, "A": 120.0, "dimension": 8}])
    middle = law_for_dimension(fit, 4)
    assert middle["interpolated"] and middle["alpha"] == pytest.approx(0.8)
    assert middle["A"] == pytest.approx(60.0) and middle["B"] == pytest.approx(30.0)
    assert "interpolated" in middle["note"] and "extrapolated" in law_for_dimension(fit, 16)["note"]
    assert law_for_dimension(fit, 2)["interpolated"] is False
    assert law_for_dimension(fit.iloc[:1], 4) is None


def test_checks_of_the_current_fit_are_told_from_those_of_earlier_fits(tmp_path):
    # The law asks 3,072,000 samples of 2 x 46 at 1e-2 (3,000 steps of 1,024).
    pd.DataFrame({"dimension": [8, 8], "multiply": [False, False], "threshold": [0.01, 0.01],
                  "architecture": ["2x46", None], "samples": [3_071_000.0, None]}).to_csv(
        tmp_path / "predicted.csv", index=False)
    checks = pd.DataFrame({"dimension": [8, 8, 8, 8], "multiply": [False, False, True, False],
                           "threshold": [0.01, 0.01, 0.01, 0.01],
                           "architecture": ["2x46", "2x22", "2x46", "2x46"],
                           "steps": [3000, 7425, 3000, 3025]})
    marked = mark_current(checks, tmp_path / "predicted.csv", batch_size=1024)
    # Earlier fits' picks: another net; the same net for the other flag; the same net, other steps.
    assert list(marked["current_fit"]) == [True, False, False, False]
    assert mark_current(checks, tmp_path / "missing.csv", 1024)["current_fit"].isna().all()
