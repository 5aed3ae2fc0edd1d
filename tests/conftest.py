import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every trial's log lines in a failing test's output, not "repeated 5x across cluster".
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


class SharedRay:
    """One local Ray runtime in pytest's own process, for the tests that run the library here
    (dotmlp.sweep.run, sweep/run.py's main()): started by the first of them and kept for the next,
    instead of a runtime per sweep (each start several seconds on this 2-core machine, far more
    when it is loaded). The library leaves a runtime it did not start running (sweep.connect);
    the CLI in a subprocess still starts its own, as a user's does. Stopped at the start of any
    module whose tests do not ask for it (a test that starts its own runtime in this process, with
    ray.init, never meets it) and at the session's end: tests stop what they start."""

    users: set[str] = set()  # the test modules that ask for it (their paths)
    up = False

    @classmethod
    def start(cls) -> None:
        if not cls.up:
            from dotmlp import sweep

            assert sweep.connect(None), "a Ray runtime was already running in pytest's process"
            cls.up = True

    @classmethod
    def stop(cls) -> None:
        if cls.up:
            import ray

            ray.shutdown()
            cls.up = False


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected what will not run
def pytest_collection_modifyitems(items):
    SharedRay.users = {str(item.path) for item in items if "ray_runtime" in item.fixturenames}


@pytest.fixture(scope="module")
def ray_runtime():
    """The shared local Ray runtime (SharedRay), running."""
    SharedRay.start()


@pytest.fixture(scope="module", autouse=True)
def _shared_ray_only_where_asked(request):
    if str(request.path) not in SharedRay.users:
        SharedRay.stop()


@pytest.fixture(scope="session", autouse=True)
def _shared_ray_stopped_at_the_end():
    yield
    SharedRay.stop()


@pytest.fixture(scope="session")
def run_cli():
    """Run one of the project's real entry points in a subprocess, as a user would."""

    def run(*args: str, timeout: float = 600, env: dict | None = None, cwd: Path = ROOT):
        return subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    return run


def start(args: list[str], log: Path, **popen) -> subprocess.Popen:
    """Start an entry point in the background, its stdout and stderr to log.out and log.err.
    Not pipes: a pipe nobody reads until the end fills (64 KB of Ray's log lines) and stalls it."""
    out, err = (open(log.with_suffix(suffix), "w") for suffix in (".out", ".err"))
    with out, err:  # the child holds its own copies
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out, stderr=err, **popen)


def disturbed(args, log, ready, disturb, interval: float = 1.0) -> tuple[int, str]:
    """Start a sweep in the background, wait (minutes, on a loaded machine) until ready(driver),
    disturb(driver), and return its exit code and its stderr."""
    driver = start(args, log)
    try:
        assert wait_for(lambda: ready(driver), timeout=480, interval=interval), "the sweep never got ready"
        disturb(driver)
        driver.wait(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    return driver.returncode, log.with_suffix(".err").read_text().strip()


# The benchmarks' tiny sweep settings (tests/test_benchmarks.py): one task, MLPs of width 8, 32 steps.
TINY_SWEEP = ["--max-steps", "32", "--reports", "4", "--dimensions", "2", "--depths", "1",
              "--widths", "8", "--multiply", "off"]
TIMELINE = "timeline.json"


@pytest.fixture(scope="session")
def two_sweeps(tmp_path_factory) -> dict:
    """Two sweeps started at once, each the CLI in its own process, into one results dir (one SQLite
    MLflow store, two writers, both starting on an empty folder: tests/test_two_sweeps.py): "first",
    and "full", the benchmarks' full-budget sweep (four alike MLPs of one task, no ASHA, its Ray
    timeline in TIMELINE), which tests/test_benchmarks.py replays. Returns the results dir and, per
    sweep, its exit code and its output."""
    tmp = tmp_path_factory.mktemp("two_sweeps")
    results = tmp / "results"
    commands = {
        "first": ["sweep/run.py", "--num-samples", "4", "--max-steps", "64", "--reports", "4",
                  "--dimensions", "2,4", "--depths", "1", "--widths", "16", "--multiply", "off",
                  "--no-figures", "--cpus-per-trial", "1", "--results-dir", str(results), "--name", "first"],
        "full": ["sweep/run.py", "--num-samples", "4", *TINY_SWEEP, "--no-asha", "--no-figures",
                 "--results-dir", str(results), "--name", "full", "--ray-timeline", str(results / TIMELINE)],
    }
    procs = {name: start(command, tmp / name) for name, command in commands.items()}
    try:
        for proc in procs.values():
            proc.wait(timeout=600)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    return {"results": results, "ended": {
        name: (proc.returncode, (tmp / f"{name}.out").read_text() + (tmp / f"{name}.err").read_text())
        for name, proc in procs.items()}}


def store_count(results_dir: Path, query: str, parameters: tuple) -> int:
    """A COUNT query on a sweep's SQLite MLflow store, read without opening it as MLflow would:
    MLflow creates the tables of a store it opens, and a second process doing so while the sweep
    creates them corrupts the store for good (the sweep's workers then log nothing). Read-only,
    this poll can never race the sweep."""
    db = results_dir / "mlflow.db"
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
            [(count,)] = con.execute(query, parameters).fetchall()
        return count
    except sqlite3.Error:  # the sweep has not made its tables yet, or holds the file
        return 0


def finished_runs(results_dir: Path, name: str) -> int:
    """How many of experiment name's MLflow runs have finished (store_count)."""
    return store_count(results_dir, "SELECT COUNT(*) FROM runs JOIN experiments USING (experiment_id)"
                       " WHERE experiments.name = ? AND runs.status = 'FINISHED'", (name,))


def wait_for(predicate, timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
