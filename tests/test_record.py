"""A sweep's record tells the truth: resume keeps its settings, statuses mean what they say, an old
sweep's runs stay out, and a results dir can be moved. Real sweeps on a local Ray runtime with a
real SQLite store, at tiny budgets: the CLI's main() in this process on the tests' shared runtime
(conftest.SharedRay), and the CLI in its own process where a signal must reach its driver."""

import json
import os
import shutil
import signal
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from dotmlp import analysis, tracking
from dotmlp.analysis.__main__ import main as analysis_main
from sweep.run import main
from tests.conftest import disturbed, finished_runs, start, wait_for
from tests.test_sweep import few_second_trials, sweep_runs

pytestmark = pytest.mark.slow
PROG = "python sweep/run.py"
# Two tasks, a linear model and a small MLP each, two learning rates: 8 trials of a few seconds,
# all to the full budget (no ASHA), so every status is known: completed.
SMALL = ["--num-samples", "8", "--max-steps", "64", "--reports", "3", "--dimensions", "2,3",
         "--depths", "0,1", "--widths", "8", "--multiply", "off", "--lrs-per-cell", "2",
         "--seeds", "2", "--no-asha"]


def sweep(results, name, *extra) -> dict:
    """The SMALL sweep, run to its end by the CLI's main() (a failure raises SystemExit)."""
    return main([*SMALL, *extra, "--results-dir", str(results), "--name", name])


def refused(capsys, *argv: str, cli=main) -> str:
    """The CLI's main(argv) ends in a usage error: exit 2 and one line on stderr, returned."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        cli(list(argv))
    assert ended.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    return line


@pytest.fixture(scope="module")
def finished(tmp_path_factory, ray_runtime):
    """One finished small sweep, shared by the tests that only read it or refuse to change it."""

    results = tmp_path_factory.mktemp("record")
    sweep(results, "done")
    return results


def read(results, name):
    return pd.read_csv(results / name / analysis.TABLE_FILE)


def test_resume_refuses_settings_that_differ_from_the_record(finished, capsys):
    record_before = (finished / "done" / "sweep.json").read_text()
    line = refused(capsys, "--resume", "--results-dir", str(finished), "--name", "done",
                   "--max-steps", "2048", "--reports", "6")
    assert "max_steps 2048 (sweep: 64)" in line and "reports 6 (sweep: 3)" in line
    assert (finished / "done" / "sweep.json").read_text() == record_before  # nothing written


def test_an_mlflow_run_without_its_tune_trial_is_not_called_diverged(finished, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    record = json.loads((copy / "done" / "sweep.json").read_text())
    client = MlflowClient(tracking_uri=tracking.default_uri(copy))
    experiment = client.get_experiment_by_name("done")
    orphan = client.create_run(experiment.experiment_id, tags={
        tracking.SWEEP_ID_TAG: record["sweep_id"], tracking.TRIAL_TAG: "lost_00099",
        tracking.STATUS_TAG: "completed"})
    client.log_metric(orphan.info.run_id, "val_nmse", 0.125, step=64)
    table = analysis.build(copy, "done", figures=False)
    row = table.set_index("trial_id").loc["lost_00099"]
    assert row["missing"] == "tune trial"
    assert row["status"] == "completed" and row["val_nmse"] == 0.125


def test_a_moved_sweep_is_read_from_where_it_is_now_and_its_resume_runs_nothing(
        finished, tmp_path, capsys):
    record = json.loads((finished / "done" / "sweep.json").read_text())
    assert str(finished) not in json.dumps(record)  # no absolute path in the record
    moved = tmp_path / "moved"
    shutil.copytree(finished, moved)
    original_runs = mlflow_run_count(finished, "done")
    analysis_main(["--results-dir", str(moved), "--name", "done"])  # python -m dotmlp.analysis
    before = read(finished, "done")
    pd.testing.assert_frame_equal(read(moved, "done").drop(columns=["node_id"]),
                                  before.drop(columns=["node_id"]))
    # The README's resume line: a setting repeated at the sweep's own value is fine. The sweep
    # has finished: nothing runs, its statuses and its record stay, the original's store too.
    capsys.readouterr()
    main(["--resume", "--results-dir", str(moved), "--name", "done", "--num-samples", "8"])
    out = capsys.readouterr().out
    assert "Nothing left to run" in out and "Resuming" not in out
    after = read(moved, "done")
    assert (after["status"] == "completed").all()
    pd.testing.assert_series_equal(after["status"], before["status"])
    pd.testing.assert_series_equal(after["val_nmse"], before["val_nmse"])
    record_after = json.loads((moved / "done" / "sweep.json").read_text())
    assert record_after["settings"] == record["settings"]
    assert record_after["sweep_id"] == record["sweep_id"]
    assert mlflow_run_count(finished, "done") == original_runs


def test_a_results_dir_without_its_tune_experiment_redraws_its_figures(finished, tmp_path, capsys):
    committed = tmp_path / "committed" / "done"
    committed.mkdir(parents=True)
    for name in ("sweep.json", "trials.csv", "cells.csv", "curves.csv"):
        shutil.copy(finished / "done" / name, committed / name)
    analysis_main(["--results-dir", str(committed.parent), "--name", "done"])  # python -m dotmlp.analysis
    assert {"heatmap_multiply_off.png", "frontier.png", "learning_curves.png"} <= {
        p.name for p in committed.iterdir()}
    (committed / "trials.csv").unlink()
    line = refused(capsys, "--results-dir", str(committed.parent), "--name", "done", cli=analysis_main)
    assert "neither the Tune experiment nor trials.csv" in line


def mlflow_run_count(results, experiment):
    mlflow.set_tracking_uri(tracking.default_uri(results))
    return len(mlflow.search_runs(experiment_names=[experiment]))


def test_a_sweep_name_used_again_never_adopts_the_old_sweeps_runs(finished, tmp_path, capsys):
    shutil.copytree(finished, tmp_path, dirs_exist_ok=True)
    shutil.rmtree(tmp_path / "done")  # the Tune experiment gone, its MLflow runs still there
    capsys.readouterr()
    sweep(tmp_path, "done")
    assert "missing a side" not in capsys.readouterr().out
    table = read(tmp_path, "done")
    assert len(table) == 8 and (table["missing"].fillna("") == "").all()
    assert (table["status"] == "completed").all()
    assert mlflow_run_count(tmp_path, "done") == 16  # both sweeps' runs kept, never mixed


def test_an_interrupted_sweep_says_so_exits_130_and_resumes_even_after_a_sigkill_or_a_dead_worker(
        tmp_path, ray_runtime, capsys):
    # One sweep disturbed every way, trained once: Ctrl-C; its resume SIGKILLed with all it started
    # (no clean-up at all); resumed again from a copy, where a trial's worker dies (no retries: an
    # error); resumed once more, to the end. Its drivers are the CLI in its own process (a signal
    # reaches it there); the last resume is main() here.
    args = [*few_second_trials(tmp_path, "stop"), "--max-failures", "0"]
    code, err = disturbed(args, tmp_path.parent / f"{tmp_path.name}-driver",
                           ready=lambda driver: finished_runs(tmp_path, "stop") >= 1,
                           disturb=lambda driver: driver.send_signal(signal.SIGINT))  # Ctrl-C
    assert code == 130, err[-3000:]
    last = err.splitlines()[-1]
    assert last.startswith(f"{PROG}: error: interrupted:") and "--resume" in last
    table = read(tmp_path, "stop")
    assert "pruned" not in set(table["status"])  # no ASHA here: nothing was pruned
    assert (table["status"] == "unfinished").any() and (table["status"] == "completed").any()

    # The README's resume: no settings repeated; the sweep's own (768 steps) are used.
    done = finished_runs(tmp_path, "stop")
    resumed = start(["sweep/run.py", "--resume", "--results-dir", str(tmp_path), "--name", "stop"],
                    tmp_path.parent / f"{tmp_path.name}-resumed", start_new_session=True)
    try:
        # A generous ceiling: Ray's start and the workers' imports take minutes on a loaded machine.
        assert wait_for(lambda: finished_runs(tmp_path, "stop") > done, timeout=480), "nothing resumed"
    finally:
        os.killpg(resumed.pid, signal.SIGKILL)  # the driver and everything it started
        resumed.wait()
    assert finished_runs(tmp_path, "stop") < 6, "the resumed sweep ended before it could be killed"

    # Resumed from a copy: the copy's own store gets the rest, the original's is left alone. A
    # training worker killed there, as the kernel's OOM killer would: its trial errors (the sweep
    # was started with no retries, and a resume keeps them: its message says so from the record).
    copy = tmp_path.parent / f"{tmp_path.name}-copy"
    shutil.copytree(tmp_path, copy)
    original = metric_points(tmp_path, "stop")
    def training(driver):
        return [pid for pid, command in descendants(driver.pid).items()
                if command.startswith("ray::ImplicitFunc.train")]

    log = tmp_path.parent / f"{tmp_path.name}-copy-driver"
    code, err = disturbed(["sweep/run.py", "--resume", "--results-dir", str(copy),
                           "--name", "stop"], log, ready=training,
                          disturb=lambda driver: os.kill(training(driver)[0], signal.SIGKILL), interval=0.2)
    assert code == 1, err[-3000:]
    assert "Resuming stop:" in log.with_suffix(".out").read_text()
    last = err.splitlines()[-1]
    assert last.startswith(f"{PROG}: error: 1 of 6 trials errored, 0 retries each: ") and "--resume" in last
    assert (read(copy, "stop")["status"] == "errored").sum() == 1

    capsys.readouterr()
    main(["--resume", "--results-dir", str(copy), "--name", "stop"])
    assert "Resuming stop: 1 trials left to run" in capsys.readouterr().out
    table = read(copy, "stop")
    assert len(table) == 6 and table["trial_id"].is_unique
    assert (table["status"] == "completed").all() and (table["steps"] == 768).all()
    assert (table["missing"].fillna("") == "").all()
    _, runs = sweep_runs(copy, "stop")
    assert len(runs) == 6 and {r.data.tags[tracking.TRIAL_TAG] for r in runs} == set(table["trial_id"])
    assert all(r.info.status == "FINISHED" for r in runs)  # none duplicated, none left running
    assert metric_points(tmp_path, "stop") == original
    assert metric_points(copy, "stop") > original


def descendants(pid: int) -> dict[int, str]:
    """The processes under pid, with their command lines, from /proc (Ray's workers are children of
    the raylet the driver started)."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            commands[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().decode(
                errors="replace").replace("\0", " ")
        except (OSError, IndexError):
            continue  # ended while we looked
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = commands.get(child, "")
            todo.append(child)
    return found


def metric_points(results, experiment):
    """How many val_nmse points a sweep's store holds, over all its runs."""
    client = MlflowClient(tracking_uri=tracking.default_uri(results))
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return sum(len(client.get_metric_history(r.info.run_id, "val_nmse")) for r in runs)


def test_a_deleted_mlflow_experiment_is_one_line_and_nothing_is_written(tmp_path, capsys):
    client = MlflowClient(tracking_uri=tracking.default_uri(tmp_path))
    client.delete_experiment(client.create_experiment("gone"))
    line = refused(capsys, *SMALL, "--results-dir", str(tmp_path), "--name", "gone")
    assert "'gone' was deleted" in line and "mlflow experiments restore" in line
    assert not (tmp_path / "gone").exists()


def test_more_cpus_per_trial_than_the_machine_has_is_a_usage_error(ray_runtime, tmp_path, capsys):
    # The shared runtime is a local one, as the CLI's own: it sees this machine's CPUs.
    line = refused(capsys, *SMALL, "--cpus-per-trial", str((os.cpu_count() or 1) * 64),
                   "--results-dir", str(tmp_path), "--name", "big")
    assert "CPUs visible to Ray: trials would wait forever" in line
    assert not (tmp_path / "big").exists()
