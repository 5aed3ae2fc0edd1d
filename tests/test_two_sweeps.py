"""Two sweeps at once into one results dir: one SQLite MLflow store, two writers, both starting on
an empty folder (creating a store from several processes at once is what corrupts SQLite stores)."""


import pandas as pd
import pytest

from dotmlp import analysis, record, tracking
from tests.conftest import start

pytestmark = pytest.mark.slow

SAMPLES = 4


def sweep_command(results, name):
    return ["sweep/run.py", "--num-samples", str(SAMPLES), "--max-steps", "64",
            "--reports", "4", "--dimensions", "2,4", "--depths", "1", "--widths", "16",
            "--multiply", "off", "--no-figures", "--cpus-per-trial", "1",
            "--results-dir", str(results), "--name", name]


def test_two_sweeps_share_one_results_dir(tmp_path):
    results = tmp_path / "results"
    names = ("first", "second")
    logs = [tmp_path / name for name in names]
    procs = [start(sweep_command(results, name), log) for name, log in zip(names, logs, strict=True)]
    try:
        for proc in procs:
            proc.wait(timeout=600)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    outputs = [log.with_suffix(".out").read_text() + log.with_suffix(".err").read_text() for log in logs]
    for name, proc, output in zip(names, procs, outputs, strict=True):
        assert proc.returncode == 0, f"{name}: {output[-3000:]}"
        assert "database is locked" not in output, name

    uri = tracking.default_uri(results)
    for name in names:
        table = pd.read_csv(results / name / analysis.TABLE_FILE)
        sweep_id = record.sweep_id(record.load(results, name))
        runs = tracking.experiment_runs(uri, name, sweep_id)
        print(f"{name}: {len(table)} trials, {len(runs)} MLflow runs")
        assert len(table) == SAMPLES and table["trial_id"].is_unique
        assert table["run_id"].notna().all() and table["run_id"].is_unique
        assert len(runs) == SAMPLES  # every trial once in MLflow, none of the other sweep's
        assert sorted(runs[f"tags.{tracking.TRIAL_TAG}"]) == sorted(table["trial_id"])
