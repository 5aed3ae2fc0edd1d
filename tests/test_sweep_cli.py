"""Bad input to `sweep/run.py`: one line on stderr, exit 2, nothing written."""

import http.server
import os
import shutil
import threading
import time

import pytest
import ray

PROG = "python sweep/run.py"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--num-samples", "0"], "num_samples must be an integer >= 1"),
        (["--gpus-per-trial", "-1"], "gpus-per-trial must be a number >= 0"),
        (["--gpus-per-trial", "1.5"], "fraction in [0, 1] or a whole number"),
        (["--gpus-per-trial", "many"], "--gpus-per-trial: invalid float value"),
        (["--max-steps", "0"], "max_steps must be an integer >= 32"),  # 6 reports x2 apart
        (["--dimensions", "0,4"], "dimensions must be comma-separated integers >= 1"),
        (["--depths", "-1"], "depths must be comma-separated integers >= 0"),
        (["--widths", "a"], "widths must be comma-separated integers >= 1"),
        (["--widths", "64,,256"], "widths must be comma-separated integers >= 1"),
        (["--seeds", "0"], "seeds must be an integer >= 1"),
        (["--preset", "study-cpu", "--widths", "64"], "do not apply to a preset"),
        (["--preset", "study-cpu", "--dimensions", "3"], "has no cells with these"),
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
    assert proc.stderr.strip().endswith(f"no sweep named 'none' to resume in {tmp_path}")
    assert list(tmp_path.iterdir()) == []


def test_unreachable_address(run_cli, tmp_path):
    out = tmp_path / "results"
    proc = run_cli("sweep/run.py", "--results-dir", str(out), "--address", "127.0.0.1:9",
                   timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "address '127.0.0.1:9' cannot be reached" in proc.stderr.strip().splitlines()[-1]
    assert not out.exists()


@pytest.fixture
def web_server():
    """A plain HTTP server on a free local port: what answers at the dashboard's 8265."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_address_where_a_web_server_answers(run_cli, tmp_path, web_server):
    # ray.init retried such an address for minutes, printing C++ warnings.
    out = tmp_path / "results"
    started = time.monotonic()
    proc = run_cli("sweep/run.py", "--results-dir", str(out), "--address", web_server, timeout=120)
    elapsed = time.monotonic() - started
    print(f"time to the error: {elapsed:.1f} s; {proc.stderr.strip()}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"address '{web_server}' answers HTTP, not as Ray's GCS does" in proc.stderr
    assert "6379" in proc.stderr and "ray job submit" in proc.stderr  # what to use instead
    assert elapsed < 30
    assert not out.exists()


def test_the_probe_tells_a_web_server_from_rays_gcs(web_server, ray_runtime):
    from dotmlp import sweep

    started = time.monotonic()
    with pytest.raises(sweep.UsageError, match="answers HTTP"):
        sweep.probe(web_server)
    with pytest.raises(sweep.UsageError, match="is an HTTP URL"):
        sweep.probe(f"http://{web_server}")
    assert time.monotonic() - started < 10
    sweep.probe(ray.get_runtime_context().gcs_address)  # a real GCS passes (the tests' shared one)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="Ray would see a GPU here")
def test_gpus_on_a_machine_without_one_is_one_line(ray_runtime, tmp_path, capfd):
    # In pytest's process on the shared runtime (no GPU), not a subprocess starting its own: the
    # check is the same, and Ray's start-up notices, which once came before the error, are
    # test_rays_startup_chatter_is_held_back_but_not_its_errors's.
    from sweep.run import main

    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit:
        main(["--results-dir", str(out), "--gpus-per-trial", "0.25", "--num-samples", "1"])
    assert exit.value.code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{PROG}: error: gpus-per-trial 0.25 "), lines
    assert not out.exists()


def test_rays_startup_chatter_is_held_back_but_not_its_errors(capfd):
    from dotmlp import sweep

    warning = "2026-11-26 10:37:13,076\tWARNING authentication_token_setup.py:85 -- Token authentication\n"
    error = "2026-11-26 10:37:13,080\tERROR services.py:1327 -- Ray dashboard failed\n"
    cpp_error = "[2026-11-26 10:42:00,185 E 9246 9246] gcs_client.cc:210: Failed\n"
    cpp_warning = "[2026-11-26 10:42:00,185 W 9246 9246] gcs_client.cc:210: Failed to connect\n"
    with sweep._ray_startup_quiet():
        for line in (warning, error, cpp_warning, cpp_error):
            os.write(2, line.encode())
    assert capfd.readouterr().err == error + cpp_error
    with pytest.raises(KeyError), sweep._ray_startup_quiet():  # not the user's fault: all of it
        os.write(2, warning.encode())
        raise KeyError("bug")
    assert capfd.readouterr().err == warning
