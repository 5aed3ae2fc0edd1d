"""Bad input to `sweep/run.py`: one line on stderr, exit 2, nothing written."""

import pytest

PROG = "python sweep/run.py"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--num-samples", "0"], "num_samples must be an integer >= 1"),
        (["--gpus-per-trial", "-1"], "gpus-per-trial must be a number >= 0"),
        (["--gpus-per-trial", "1.5"], "fraction in [0, 1] or a whole number"),
        (["--gpus-per-trial", "many"], "--gpus-per-trial: invalid float value"),
        (["--max-steps", "0"], "max_steps must be an integer >= 16"),
        (["--dimensions", "0,4"], "dimensions must be an integer >= 1"),
        (["--depths", "-1"], "depths must be an integer >= 0"),
        (["--widths", "a"], "expected comma-separated integers"),
        (["--lr-range", "0,1e-3"], "lr must be a finite number > 0"),
        (["--lr-range", "nan,1e-3"], "lr must be a finite number > 0"),
        (["--name", "../escape"], "name must be letters, digits"),
        (["--mlflow-uri", "file:///tmp/mlruns"], "MLflow 3 refuses the plain file store"),
        (["--mlflow-uri", "sqlite:////nonexistent/dir/m.db"], "does not exist or is not writable"),
        (["--mlflow-uri", "http://127.0.0.1:9/"], "cannot be reached"),
    ],
)
def test_usage_errors(run_cli, tmp_path, args, words):
    out = tmp_path / "results"
    proc = run_cli("sweep/run.py", "--results-dir", str(out), *args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr
    assert not out.exists()  # validated before anything was written


def test_results_dir_that_cannot_be_created(run_cli, tmp_path):
    # Under a plain file: cannot be created even by root (CI runs as root, so permissions would not do).
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "results"
    proc = run_cli("sweep/run.py", "--results-dir", str(out), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == f"{PROG}: error: results-dir '{out}' cannot be written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_resume_with_nothing_to_resume(run_cli, tmp_path):
    proc = run_cli("sweep/run.py", "--results-dir", str(tmp_path), "--name", "none", "--resume",
                   timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(f"no experiment named 'none' to resume in {tmp_path}")
    assert list(tmp_path.iterdir()) == []


def test_unreachable_address(run_cli, tmp_path):
    out = tmp_path / "results"
    proc = run_cli("sweep/run.py", "--results-dir", str(out), "--address", "127.0.0.1:9",
                   timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "address '127.0.0.1:9' cannot be reached" in proc.stderr.strip().splitlines()[-1]
    assert not out.exists()
