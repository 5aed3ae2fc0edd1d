"""The answer table on hand-built sweep tables: who reached what, with how much, and the bounds."""

import json

import pandas as pd
import pytest

from dotmlp.study import answer
from dotmlp.study.answer import ANSWER_COLUMNS, answer_table
from dotmlp.study.points import load_tables, measured_points
from tests.study_data import curve, sweep_tables, trial

LADDER = (32768, 65536, 131072, 262144, 524288)


def write_sweep(root, name, trials, curves, settings=None):
    """A sweep's folder as the analysis reads it: its tables, and its record's settings if given."""
    folder = root / name
    folder.mkdir()
    trials.to_csv(folder / "trials.csv", index=False)
    curves.to_csv(folder / "curves.csv", index=False)
    if settings is not None:
        (folder / "sweep.json").write_text(json.dumps({"settings": settings}))
    return folder


def task_tables():
    """d = 4, flag off: a small net that reaches 1e-2 late, a big one that reaches it early and
    1e-3 at the end, a 1-seed net that 'reaches' 1e-3 early (not counted), a diverged one, a
    linear model. d = 8, flag off: nothing below 2e-2 (the best still improving)."""
    specs = [  # trial_id, d, depth, width, lr, seeds, status, {samples: median}, budget_limited
        ("small", 4, 2, 16, 3e-3, 3, "completed",
         dict(zip(LADDER, (0.5, 0.2, 0.05, 0.012, 0.008), strict=True)), False),
        ("small_lr", 4, 2, 16, 1e-2, 3, "pruned", {32768: 0.6, 65536: 0.3}, False),
        ("big", 4, 2, 256, 1e-3, 3, "completed",
         dict(zip(LADDER, (0.2, 0.009, 0.004, 0.002, 0.0009), strict=True)), True),
        ("lucky", 4, 1, 16, 1e-3, 1, "completed", {32768: 0.3, 65536: 0.0005}, False),
        ("boom", 4, 2, 8, 1e-2, 3, "diverged", {32768: 0.001}, False),
        ("linear", 4, 0, 64, 1e-3, 3, "completed", dict(zip(LADDER, (1.0,) * 5, strict=True)), False),
        ("wide8", 8, 4, 512, 1e-3, 3, "completed",
         dict(zip(LADDER, (0.9, 0.3, 0.1, 0.04, 0.02), strict=True)), True),
    ]
    trials, curves = [], []
    for trial_id, d, depth, width, lr, seeds, status, points, limited in specs:
        rows = curve(trial_id, points)
        curves += rows
        trials.append(trial(trial_id, d, False, depth, width, lr, seeds, rows[-1], status=status,
                            budget_limited=limited))
    return pd.DataFrame(trials), pd.DataFrame(curves)


@pytest.fixture(scope="module")
def table():
    return answer_table(*task_tables())


def row_of(table, dimension, multiply, threshold):
    rows = table[(table["dimension"] == dimension) & (table["multiply"] == multiply)
                 & (table["threshold"] == threshold)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_schema_and_one_row_per_dimension_flag_threshold(table):
    assert list(table.columns[:len(ANSWER_COLUMNS)]) == ANSWER_COLUMNS
    assert len(table) == 7 * 2 * 2
    assert set(table["dimension"]) == {1, 2, 4, 8, 16, 32, 64}
    assert not table.duplicated(["dimension", "multiply", "threshold"]).any()


def check_reached_agrees_with_the_median(table):
    for row in table.itertuples():
        if row.reached:
            assert row.nmse_median <= row.threshold, row
            assert row.seeds >= answer.MIN_SEEDS
            assert not pd.isna(row.params) and not pd.isna(row.samples)
            assert pd.isna(row.bound) or row.bound == ""  # read back from CSV: NaN
        else:
            assert pd.isna(row.nmse_median) or row.nmse_median > row.threshold, row
            assert pd.isna(row.params) and pd.isna(row.samples)
            assert row.bound, row


def test_reached_agrees_with_nmse_median_on_every_row(table):
    check_reached_agrees_with_the_median(table)


def test_smallest_model_and_fewest_samples_can_come_from_different_nets(table):
    row = row_of(table, 4, False, 1e-2)
    assert row["reached"]
    # the small net reached 1e-2 only at 524,288 samples; the big one at 65,536
    assert row["params"] == measured_points(*task_tables()).query("trial_id == 'small'")["params"].iloc[0]
    assert row["architecture"] == "2x16" and row["lr"] == 3e-3 and row["seeds"] == 3
    assert row["nmse_median"] == 0.008 and row["architecture_samples"] == 524288
    assert row["nmse_min"] == pytest.approx(0.008 / 1.5) and row["nmse_max"] == pytest.approx(0.012)
    assert row["samples"] == 65536 and row["fastest_architecture"] == "2x256"
    assert row["max_width_tried"] == 256 and row["max_samples_tried"] == 524288


def test_fewer_than_three_seeds_and_diverged_trials_do_not_count(table):
    row = row_of(table, 4, False, 1e-3)
    # 'lucky' (1 seed) reached 5e-4 at 65,536 and 'boom' (diverged) 1e-3 at 32,768: neither counts
    assert row["reached"] and row["architecture"] == "2x256" and row["samples"] == 524288
    assert row["few_seed_reaching"] == 1 and "fewer than 3 seeds" in row["note"]


def test_not_reached_rows_give_the_best_and_a_bound(table):
    row = row_of(table, 8, False, 1e-2)
    assert not row["reached"] and pd.isna(row["params"]) and pd.isna(row["samples"])
    assert row["nmse_median"] == 0.02 and row["architecture"] == "4x512"
    assert row["max_width_tried"] == 512 and row["max_samples_tried"] == 524288
    assert row["bound"] == "not reached by width ≤ 512 with ≤ 524,288 samples"
    assert row["still_improving"] and "still improving" in row["note"]
    missing = row_of(table, 16, True, 1e-3)
    assert not missing["reached"] and missing["bound"] == "not run" and missing["trials"] == 0


def test_a_task_with_only_linear_models_says_so():
    trials, curves = task_tables()
    trials = trials[trials["trial_id"] == "linear"]
    table = answer_table(trials, curves, dimensions=[4], multiply=[False])
    assert len(table) == 2
    assert set(table["bound"]) == {"not reached by the linear model with ≤ 524,288 samples"}
    assert (table["max_width_tried"] == 0).all()


def test_only_few_seed_trials_is_not_a_measurement():
    trials, curves = task_tables()
    table = answer_table(trials[trials["trial_id"] == "lucky"], curves, dimensions=[4],
                         multiply=[False])
    check_reached_agrees_with_the_median(table)
    assert not table["reached"].any() and table["nmse_median"].isna().all()
    assert table["bound"].str.startswith("not measured with ≥ 3 seeds").all()


def test_reached_agrees_on_a_law_drawn_study():
    law = {"A": 30.0, "alpha": 0.8, "B": 30.0, "beta": 0.7}
    trials, curves = sweep_tables(law, dimensions=(2, 8), multiply=(False, True), depths=(1, 2),
                                  widths=(16, 64, 256), seed=7)
    table = answer_table(trials, curves, thresholds=(1e-1, 1e-2, 1e-3))
    check_reached_agrees_with_the_median(table)
    assert table["reached"].any() and not table["reached"].all()
    reached = table[table["reached"]]
    assert (reached["samples"] <= reached["architecture_samples"]).all()


def test_several_sweeps_are_one_study(tmp_path):
    trials, curves = task_tables()
    for name, machine_trials in (("cpu-sweep", trials), ("gpu-sweep", trials.assign(lr=2e-3))):
        write_sweep(tmp_path, name, machine_trials, curves)
    both, both_curves = load_tables(tmp_path, ["cpu-sweep", "gpu-sweep"], ["cpu", "gpu"])
    # the same trial ids in both sweeps stay two trials
    assert len(measured_points(both, both_curves)) == 2 * len(measured_points(trials, curves))
    table = answer_table(both, both_curves)
    assert "machine" in table.columns and set(table["machine"].dropna()) <= {"cpu", "gpu"}
    check_reached_agrees_with_the_median(table)
    written = answer.write_answer(tmp_path, ["cpu-sweep", "gpu-sweep"], ["cpu", "gpu"],
                                  out=tmp_path / "study")
    read = pd.read_csv(tmp_path / "study" / answer.ANSWER_FILE)
    assert list(read.columns[:len(ANSWER_COLUMNS)]) == ANSWER_COLUMNS and len(read) == len(written)
    assert not list((tmp_path / "study").glob(".*tmp"))


def test_write_answer_lists_the_record_s_dimensions(tmp_path):
    trials, curves = task_tables()
    folder = write_sweep(tmp_path, "s", trials, curves, {"dimensions": [4, 8, 128]})
    table = answer.write_answer(tmp_path, "s")
    assert set(table["dimension"]) == {1, 2, 4, 8, 16, 32, 64, 128}
    read = pd.read_csv(folder / answer.ANSWER_FILE)
    assert len(read) == 8 * 2 * 2
    assert read.loc[read["dimension"] == 128, "bound"].eq("not run").all()
    check_reached_agrees_with_the_median(read)


def test_cli_writes_everything_and_refuses_bad_input(tmp_path, capsys):
    law = {"A": 30.0, "alpha": 0.8, "B": 30.0, "beta": 0.7}
    trials, curves = sweep_tables(law, dimensions=(2,), depths=(1, 2), widths=(16, 32, 64, 128),
                                  lrs=(1e-3, 3e-3), ladder=(32768, 65536, 131072, 262144), seed=8)
    folder = write_sweep(tmp_path, "s", trials, curves)
    tables = answer.main(["--results-dir", str(tmp_path), "--name", "s"])
    for name in ("answer.csv", "approximation.md", "deep_vs_shallow.csv", "deep_vs_shallow.md"):
        assert (folder / name).exists(), name
    written = pd.read_csv(folder / "answer.csv")
    assert list(written.columns) == list(tables["answer"].columns)  # the retired law's law_* are gone
    assert list(written.columns[:len(ANSWER_COLUMNS)]) == ANSWER_COLUMNS
    assert len(written) == len(tables["answer"])
    check_reached_agrees_with_the_median(written)
    prose = (folder / "approximation.md").read_text()
    for row in written[(written["dimension"] == 2) & ~written["multiply"]].itertuples():
        said = f"{int(row.params)} (" if row.reached else "not reached |"
        assert f"| 2 | {row.threshold:g} | {said}" in prose  # approximation.md, from this answer
    assert "Answer" in capsys.readouterr().out
    for argv, message in ((["--name", "a", "--name", "b"], "--out is required"),
                          (["--name", "s", "--machine", "cpu", "--machine", "gpu"], "--machine"),
                          (["--name", "nothing-here"], "does not exist")):
        with pytest.raises(SystemExit) as exit_info:
            answer.main(["--results-dir", str(tmp_path), *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_a_cosine_sweep_counts_final_results_only(tmp_path):
    trials, curves = task_tables()
    write_sweep(tmp_path, "cos", trials, curves, {"schedule": "cosine"})
    with pytest.warns(UserWarning, match="cosine"):
        loaded, loaded_curves = load_tables(tmp_path, "cos")
    assert loaded_curves.empty
    row = row_of(answer_table(loaded, loaded_curves), 4, False, 1e-2)
    # the big net's final 9e-4 at 524,288 samples, not its curve's 9e-3 at 65,536
    assert row["reached"] and row["samples"] == 524288


def test_no_trials_and_runs_without_a_configuration():
    trials, curves = task_tables()
    empty = answer_table(trials.iloc[0:0], curves.iloc[0:0])
    assert len(empty) == 28 and (empty["bound"] == "not run").all()
    orphan = pd.DataFrame([{"trial_id": "x", "status": "unfinished", "val_nmse": 0.0001}])
    table = answer_table(pd.concat([trials, orphan], ignore_index=True), curves)
    pd.testing.assert_frame_equal(table, answer_table(trials, curves))
