"""Two sweeps at once into one results dir: one SQLite MLflow store, two writers, both starting on
an empty folder (creating a store from several processes at once is what corrupts SQLite stores).
The sweeps are conftest's two_sweeps, the second of them the benchmarks' full-budget sweep."""


import pandas as pd
import pytest

from dotmlp import analysis, record, tracking

pytestmark = pytest.mark.slow

SAMPLES = 4


def test_two_sweeps_share_one_results_dir(two_sweeps):
    results = two_sweeps["results"]
    for name, (code, output) in two_sweeps["ended"].items():
        assert code == 0, f"{name}: {output[-3000:]}"
        assert "database is locked" not in output, name

    uri = tracking.default_uri(results)
    assert set(two_sweeps["ended"]) == {"first", "full"}
    for name in two_sweeps["ended"]:
        table = pd.read_csv(results / name / analysis.TABLE_FILE)
        sweep_id = record.sweep_id(record.load(results, name))
        runs = tracking.experiment_runs(uri, name, sweep_id)
        print(f"{name}: {len(table)} trials, {len(runs)} MLflow runs")
        assert len(table) == SAMPLES and table["trial_id"].is_unique
        assert table["run_id"].notna().all() and table["run_id"].is_unique
        assert len(runs) == SAMPLES  # every trial once in MLflow, none of the other sweep's
        assert sorted(runs[f"tags.{tracking.TRIAL_TAG}"]) == sorted(table["trial_id"])
