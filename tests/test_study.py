"""The study preset at a tiny size, end to end: the real CLI's main(), Ray, Lightning and MLflow, and
the answer table it writes (issue: the study that answers the question)."""

import json

import pandas as pd
import pytest

from dotmlp.study import answer, presets

pytestmark = pytest.mark.slow


def test_study_preset_at_a_tiny_size_writes_the_answer_table(ray_runtime, tmp_path):
    # d = 1 and 2 only (--dimensions picks among the preset's cells), 64 steps, one lr per cell.
    # The CLI's main() in this process, on the tests' shared Ray runtime (conftest.SharedRay).
    from sweep.run import main

    main(["--preset", "study-cpu", "--dimensions", "1,2", "--max-steps", "64", "--reports", "3",
          "--lrs-per-cell", "1", "--no-figures", "--results-dir", str(tmp_path), "--name", "tiny"])

    cells = [c for c in presets.study_cpu()["cells"] if c[0] in (1, 2)]
    settings = json.loads((tmp_path / "tiny" / "sweep.json").read_text())["settings"]
    assert len(settings["cells"]) == len(cells) == settings["num_samples"]  # one trial a cell
    assert settings["seeds"] == 3 and settings["max_steps"] == 64

    table = pd.read_csv(tmp_path / "tiny" / "answer.csv")
    assert list(table.columns[:len(answer.ANSWER_COLUMNS)]) == answer.ANSWER_COLUMNS
    # Every (dimension, flag, threshold) of the question has its row, run or not.
    keys = set(zip(table["dimension"], table["multiply"], table["threshold"], strict=True))
    assert keys == {(d, m, t) for d in answer.STUDY_DIMENSIONS for m in (False, True)
                    for t in answer.THRESHOLDS}
    assert table["reached"].dtype == bool
    run = table[table["dimension"].isin([1, 2])]
    assert run["nmse_median"].notna().all()  # every run row is measured, reached or not
    assert (table["reached"] == (table["nmse_median"] <= table["threshold"])).all()
    reached, missed = run[run["reached"]], run[~run["reached"]]
    assert reached["params"].notna().all() and (reached["seeds"] >= 3).all()
    assert missed["params"].isna().all() and missed["samples"].isna().all()
    assert missed["bound"].str.startswith("not reached by").all()
    assert (run["max_samples_tried"] == 64 * settings["batch_size"]).all()
    assert (table.loc[~table["dimension"].isin([1, 2]), "bound"] == "not run").all()
