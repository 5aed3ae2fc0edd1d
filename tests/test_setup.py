"""The set-up as the README gives it: which PyTorch build `make install` picks and when it remakes the
environment, where `make sweep` writes, what `make test-fast` runs, what git ignores.

Dry runs (`make -n`) show what make would do without installing anything; one slow test runs a
real tiny `make sweep` twice.
"""

import hashlib
import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAKE = shutil.which("make")
GIT = shutil.which("git") is not None and (ROOT / ".git").exists()
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")
# Settings a user may export, and those an enclosing `make test` passes down: the dry runs below
# must see the Makefile's own defaults.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL", "VENV", "TORCH", "TORCH_BUILD",
                  "PIP_TORCH_FLAGS", "NVIDIA_SMI", "TORCH_CPU_INDEX", "RESULTS", "SWEEP", "SWEEP_ARGS")
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing answers, as PyTorch's index here


def make(*args, path: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    if not any(a.startswith("TORCH_CPU_INDEX=") for a in args):
        args = (*args, f"TORCH_CPU_INDEX={CLOSED}")  # no test waits on the network
    if path is not None:
        env["PATH"] = path
    proc = subprocess.run([MAKE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def install_lines(venv: Path, *args, path: str | None = None) -> tuple[str, str]:
    """(the build line make prints, the pip command that installs torch) of `make -n install`."""
    out = make("-n", "install", f"VENV={venv}", *args, path=path).stdout
    [build] = [line for line in out.splitlines() if line.startswith('echo "PyTorch:')]
    [torch] = [line for line in out.splitlines() if "pip install" in line and "torch==" in line]
    return build, torch


def stub(folder: Path, name: str, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


def bare_path(tmp_path: Path) -> str:
    """A PATH with only what the Makefile's recipes and probes call: no nvidia-smi, whatever this
    machine has."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("python3", "cat", "date", "sh"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    return str(bin_dir)


# ---------------------------------------------------------------------------- the PyTorch build
def test_no_nvidia_gpu_installs_the_cpu_build_as_here(tmp_path):
    """No nvidia-smi on PATH: the CPU build, and where PyTorch's CPU index does not answer (this
    machine, CI) the plain `pip install torch==…` that finds the CPU wheel locally."""
    build, torch = install_lines(tmp_path / "v", f"TORCH_CPU_INDEX={CLOSED}", path=bare_path(tmp_path))
    assert "cpu build (auto: no NVIDIA GPU" in build and "did not answer" in build
    assert shlex.split(torch)[-4:] == ["pip", "install", "-q", "torch==2.13.0"]


def test_a_failing_nvidia_smi_means_no_gpu(tmp_path):
    smi = stub(tmp_path / "bin", "nvidia-smi", "echo 'NVIDIA-SMI has failed because it could not "
               "communicate with the NVIDIA driver.'; exit 9")
    build, _ = install_lines(tmp_path / "v", f"NVIDIA_SMI={smi}", f"TORCH_CPU_INDEX={CLOSED}")
    assert "cpu build (auto: no NVIDIA GPU" in build


def test_a_gpu_installs_the_cuda_build_from_pypi(tmp_path, cpu_index):
    """nvidia-smi lists a GPU: PyPI's torch (the CUDA build), and no CPU index even where it answers."""
    stub_dir = tmp_path / "stub"
    stub(stub_dir, "nvidia-smi", "echo 'GPU 0: NVIDIA H200 (UUID: GPU-0)'")
    path = f"{stub_dir}{os.pathsep}{os.environ['PATH']}"
    build, torch = install_lines(tmp_path / "v", f"TORCH_CPU_INDEX={cpu_index}", path=path)
    assert "cuda build (auto: nvidia-smi lists a GPU)" in build
    assert "--extra-index-url" not in torch and "--index-url" not in torch


@pytest.fixture
def cpu_index(tmp_path):
    """A package index that answers, at a free port (a real HTTP server, PyTorch's index stands
    for): the Makefile only probes that it responds."""
    root = tmp_path / "index"
    (root / "torch").mkdir(parents=True)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(root))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_cpu_build_comes_from_pytorch_cpu_index_where_it_answers(tmp_path, cpu_index):
    build, torch = install_lines(tmp_path / "v", "TORCH_BUILD=cpu", f"TORCH_CPU_INDEX={cpu_index}")
    assert f"from PyTorch's CPU index {cpu_index}" in build
    assert f"--extra-index-url {cpu_index}" in torch


def test_explicit_pip_flags_replace_the_cpu_index(tmp_path, cpu_index):
    flags = "--index-url https://download.pytorch.org/whl/cu126"
    build, torch = install_lines(tmp_path / "v", "TORCH_BUILD=cuda", f"PIP_TORCH_FLAGS={flags}",
                                 f"TORCH_CPU_INDEX={cpu_index}")
    assert "cuda build (TORCH_BUILD=cuda)" in build
    assert flags in torch and "--extra-index-url" not in torch


def test_an_unknown_build_is_refused():
    proc = make("-n", "install", "TORCH_BUILD=gpu", check=False)
    assert proc.returncode != 0 and "TORCH_BUILD must be auto, cpu or cuda, not 'gpu'" in proc.stderr


def test_asking_for_another_build_remakes_an_existing_environment(tmp_path):
    """The stamp records the build it installed: the same request does nothing, another one
    (TORCH, TORCH_BUILD, PIP_TORCH_FLAGS) makes the environment again from scratch."""
    venv = tmp_path / "v"
    stub(venv / "bin", "python", "exit 0")
    stamp = venv / ".installed"
    stamp.write_text("cpu torch==2.13.0\n")
    now = time.time()
    os.utime(stamp, (now, now))  # newer than pyproject.toml, as after an install

    def dry_run(*args):
        return make("-n", "install", f"VENV={venv}", *args).stdout

    assert "pip install" not in dry_run("TORCH_BUILD=cpu")
    for other in (["TORCH_BUILD=cuda"], ["TORCH_BUILD=cpu", "TORCH=torch==2.12.0"],
                  ["TORCH_BUILD=cpu", "PIP_TORCH_FLAGS=--index-url http://x/cu126"]):
        out = dry_run(*other)
        assert f"-m venv --clear {venv}" in out and "pip install" in out, other
    # pyproject.toml newer than the stamp: installed again into the same environment
    os.utime(stamp, (now - 10 * 365 * 86400,) * 2)
    out = dry_run("TORCH_BUILD=cpu")
    assert "pip install" in out and "--clear" not in out


# ---------------------------------------------------------------------------- make sweep, test-fast
def test_make_sweep_writes_a_new_sweep_under_runs_each_time():
    names = []
    for _ in range(2):
        out = make("-n", "sweep", "VENV=.venv-unused").stdout
        [line] = [line for line in out.splitlines() if "sweep/run.py" in line]
        args = shlex.split(line)
        assert args[args.index("--results-dir") + 1] == "runs"  # not results/: the committed answer
        names.append(args[args.index("--name") + 1])
        assert args[-2:] == ["--num-samples", "200"]  # SWEEP_ARGS' default, last: it can override
        time.sleep(1.1)
    assert re.fullmatch(r"sweep-\d{8}-\d{6}", names[0]) and names[0] != names[1]
    out = make("-n", "sweep", "VENV=.venv-unused", "RESULTS=mine", "SWEEP=try1").stdout
    assert "--results-dir mine --name try1 --num-samples 200" in out


@pytest.mark.slow  # collecting the cluster tests imports Ray: about 15 s
def test_make_test_fast_runs_ruff_and_the_offline_cluster_tests():
    out = make("-n", "test-fast", "VENV=.venv-unused").stdout
    assert ".venv-unused/bin/ruff check ." in out
    [line] = [line for line in out.splitlines() if "-m pytest" in line]
    args = shlex.split(line)
    expression = args[args.index("-m", args.index("pytest")) + 1]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m",
         expression, "tests/test_cluster_config.py", "tests/test_distributed.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert ids and all(i.startswith("tests/test_cluster_config.py::") for i in ids), collected.stdout


def test_ci_runs_exactly_the_readme_test_command():
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci == ["make test"]
    readme = (ROOT / "README.md").read_text()
    assert "make test    #" in readme and "`make test` is exactly what CI runs" in readme


# ---------------------------------------------------------------------------- git
def git_ignored(paths: list[str]) -> set[str]:
    proc = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT, input="\n".join(paths),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return set(proc.stdout.split())


@pytest.mark.skipif(not GIT, reason="not a git checkout")
def test_gitignore_keeps_the_committed_results_and_hides_the_rest():
    committed = ["results/sweep/sweep.json", "results/sweep/trials.csv", "results/sweep/frontier.png",
                 "results/heatmaps.ipynb", "results/README.md"]
    local = ["results/mlflow.db", "results/sweep/experiment_state-2026-11-26_10-42-27.json",
             "results/sweep/basic-variant-state-2026-11-26_10-42-27.json", "results/sweep/tuner.pkl",
             "results/sweep/callback-states-2026-11-26_10-42-27.pkl",
             "results/sweep/train_trial_12bec_00000_0_2026-11-26_10-42-27/result.json",
             "results/sweep/.validate_storage_marker", "runs/mlflow.db",
             "runs/sweep-20261126-104141/trials.csv"]
    ignored = git_ignored(committed + local)
    assert not ignored & set(committed)
    assert ignored == set(local)


# ---------------------------------------------------------------------------- a real make sweep
def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.mark.slow
def test_make_sweep_twice_in_one_clone(tmp_path):
    """As the README says it: `make sweep`, and again. Each run is a new sweep; the committed
    results/sweep is untouched. (RESULTS= keeps this checkout's runs/ clean; the default is
    runs/, checked by the dry run above.)"""
    venv = Path(sys.prefix)
    env = {**os.environ, "VENV": str(venv)}  # an enclosing make's overrides (MAKEFLAGS) stay
    if subprocess.run([MAKE, "-q", "install"], cwd=ROOT, env=env).returncode != 0:
        pytest.skip(f"{venv} was not made by `make install` with these settings: "
                    "make sweep would install into it")
    before = digest(ROOT / "results" / "sweep")
    args = ["sweep", f"RESULTS={tmp_path}", "SWEEP_ARGS=--num-samples 1 --max-steps 16 --reports 1 "
            "--dimensions 2 --depths 0 --multiply off --no-figures"]
    for _ in range(2):
        proc = subprocess.run([MAKE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        assert f"make notebook RESULTS={tmp_path}" in proc.stdout
    sweeps = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert len(sweeps) == 2 and all((tmp_path / s / "trials.csv").is_file() for s in sweeps), sweeps
    assert digest(ROOT / "results" / "sweep") == before
    # What Tune writes at the top of a sweep, were it under results/: ignored, but for the record
    # and the tables.
    for sweep in sweeps if GIT else []:
        top = [f"results/{sweep}/{p.name}{'/x' if p.is_dir() else ''}" for p in (tmp_path / sweep).iterdir()]
        kept = {f"results/{sweep}/{name}" for name in
                ("sweep.json", "trials.csv", "cells.csv", "curves.csv", "answer.csv")}
        assert set(top) - git_ignored(top) == kept
