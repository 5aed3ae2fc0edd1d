"""The results notebook as a reader meets it: committed executed, its outputs current, exported to
HTML with its figures, served by JupyterLab as `make notebook` starts it, pointed at other results.

Real kernels, a real nbconvert and a real JupyterLab server; nothing of Jupyter is mocked.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from dotmlp import notebook as nb
from tests.conftest import ROOT

NOTEBOOK = ROOT / nb.NOTEBOOK
JUPYTER = Path(sys.executable).parent / "jupyter"
STALE = "the committed notebook's outputs are not those of results/: run `make results-notebook`"


@pytest.fixture(scope="module")
def committed():
    return nbformat.read(NOTEBOOK, as_version=4)


def outputs(notebook):
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def images(notebook) -> list[str]:
    return [o["data"]["image/png"] for o in outputs(notebook) if "image/png" in o.get("data", {})]


def last_code(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"][-1]


# ---------------------------------------------------------------------------- the committed file
def test_committed_notebook_is_executed_top_to_bottom(committed):
    code = [cell for cell in committed.cells if cell.cell_type == "code"]
    # counted 1, 2, … in order: every cell ran, in one session, top to bottom
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), STALE
    assert not [o for o in outputs(committed) if o.output_type == "error"]
    assert not [o for o in outputs(committed) if o.output_type == "stream" and o.name == "stderr"]
    assert len(images(committed)) >= 3  # two heatmaps and the frontier
    assert sum("text/html" in o.get("data", {}) for o in outputs(committed)) >= 3  # the tables


def test_committed_notebook_is_small_and_names_no_machine(committed):
    assert NOTEBOOK.stat().st_size < 1_000_000
    for image in images(committed):
        width, height = nb.png_size(image)
        assert width <= 1600 and height <= 1600, (width, height)  # 80 dpi, not a print-size figure
    text = json.dumps([{k: v for k, v in o.get("data", {}).items() if not k.startswith("image/")}
                       | {"text": o.get("text", "")} for o in outputs(committed)])
    for machine in (str(ROOT), str(Path.home()), "site-packages", "/tmp/", "/home/", "/Users/"):
        assert machine not in text, f"{machine!r} in the saved outputs"
    assert "200 trials in results/sweep" in text  # the path it reads, relative to the repository


def test_committed_notebook_has_no_volatile_metadata(committed):
    assert "widgets" not in committed.metadata
    assert "version" not in committed.metadata.get("language_info", {})
    for cell in committed.cells:
        assert not {"execution", "collapsed", "scrolled", "widgets"} & set(cell.metadata), cell.metadata


def test_differences_finds_a_changed_table_an_added_output_and_a_resized_figure(committed):
    assert nb.differences(nb.comparable(committed), nb.comparable(committed)) == []
    changed = nbformat.from_dict(json.loads(json.dumps(committed)))
    table = next(o for o in outputs(changed) if "text/html" in o.get("data", {}))
    table["data"]["text/html"] = table["data"]["text/html"].replace("<td>", "<td>9", 1)
    found = nb.differences(nb.comparable(committed), nb.comparable(changed))
    assert found == ["code cell 2: text/html differs"]  # the answer's table, after its figure
    added = nbformat.from_dict(json.loads(json.dumps(committed)))
    last_code(added).outputs.append(nbformat.v4.new_output("stream", name="stdout", text="more\n"))
    assert nb.differences(nb.comparable(committed), nb.comparable(added))
    old = nb.comparable(committed)
    new = nb.comparable(committed)
    cell, index = next((c, i) for c, cell in enumerate(new) for i, o in enumerate(cell) if "image/png" in o)
    width, height = new[cell][index]["image/png"]
    new[cell][index]["image/png"] = (width + 1, height)  # a pixel: text extents differ between builds
    assert nb.differences(old, new) == []
    new[cell][index]["image/png"] = (2 * width, height)
    assert len(nb.differences(old, new)) == 1


# ---------------------------------------------------------------------------- re-executed
@pytest.fixture(scope="module")
def fresh():
    """The notebook executed again, here, on the committed results: what `make results-notebook`
    would save (the file itself is left alone)."""
    return nb.execute(NOTEBOOK)


@pytest.mark.slow
def test_committed_outputs_are_current(committed, fresh):
    found = nb.differences(nb.comparable(committed), nb.comparable(fresh))
    assert not found, f"{STALE}:\n" + "\n".join(found)


@pytest.mark.slow
def test_notebook_reads_the_sweep_the_environment_names(tmp_path, committed):
    """DOTMLP_RESULTS_DIR and DOTMLP_SWEEP (what `make notebook RESULTS=… SWEEP=…` sets) point it at
    another sweep: here the committed table cut to d <= 4, with trials that diverged and errored
    (none did in the committed sweep; the analysis records them with no NMSE), saved elsewhere."""
    table = pd.read_csv(ROOT / "results" / "sweep" / nb.TABLE_FILE)
    table = table[table["dimension"] <= 4].reset_index(drop=True)
    table.loc[[0, 5, 9], "status"] = "diverged"
    table.loc[[11], "status"] = "errored"
    table.loc[[0, 5, 9, 11], "val_nmse"] = float("nan")
    mine = tmp_path / "elsewhere" / "mine"
    mine.mkdir(parents=True)
    table.to_csv(mine / nb.TABLE_FILE, index=False)
    for name in ("sweep.json", "curves.csv"):  # its record and learning curves, as a sweep has
        shutil.copy(ROOT / "results" / "sweep" / name, mine / name)
    executed = nb.execute(NOTEBOOK, results_dir=mine.parent, name="mine")
    printed = "".join(o.text for o in outputs(executed) if o.output_type == "stream")
    assert f"{len(table)} trials in {mine.resolve()}" in printed
    shown = "".join(o["data"].get("text/plain", "") for o in outputs(executed) if "data" in o)
    assert "diverged" in shown and "errored" in shown  # the status tables count them
    # The project's answer (results/answer.png, whichever sweep it reads) and the sweep's five
    # figures (two heatmaps, learning rates, learning curves, frontier); the grid study's
    # deep-against-shallow figure and the pool sweep's need those sweeps beside it, and there are
    # none here.
    assert len(images(executed)) == 6 == len(images(committed)) - 2
    assert "no study beside mine" in printed
    assert nb.differences(nb.comparable(committed), nb.comparable(executed))  # not the committed outputs


# ---------------------------------------------------------------------------- HTML export
def html_problems(html: str, expected_images: int) -> list[str]:
    problems = []
    embedded = re.findall(r'<img[^>]+src="data:image/png;base64,', html)
    if len(embedded) != expected_images:
        problems.append(f"{len(embedded)} embedded PNG images, {expected_images} expected")
    # nbconvert marks an error's traceback and a stderr stream alike (its CSS names the same type in
    # single quotes, so the attribute's double quotes matter).
    if 'data-mime-type="application/vnd.jupyter.stderr"' in html:
        problems.append("error or stderr output")
    return problems


def export_html(path: Path, out: Path) -> str:
    proc = subprocess.run([str(JUPYTER), "nbconvert", "--to", "html", "--output-dir", str(out), str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (out / f"{path.stem}.html").read_text()


@pytest.mark.slow
def test_static_html_export_shows_every_figure_and_no_error(tmp_path, committed):
    html = export_html(NOTEBOOK, tmp_path)
    assert html_problems(html, len(images(committed))) == []
    assert "The frontier: best NMSE reachable" in html and "<table" in html
    # and the check sees an error when there is one
    broken = nbformat.from_dict(json.loads(json.dumps(committed)))
    last_code(broken).outputs.append(nbformat.v4.new_output(
        "error", ename="KeyError", evalue="'val_nmse'", traceback=["\x1b[31mKeyError\x1b[39m: 'val_nmse'"]))
    nbformat.write(broken, tmp_path / "broken.ipynb")
    assert html_problems(export_html(tmp_path / "broken.ipynb", tmp_path), len(images(committed))) == [
        "error or stderr output"]


# ---------------------------------------------------------------------------- JupyterLab
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.skipif(not JUPYTER.exists(), reason="JupyterLab is installed by `make install`")
def test_jupyterlab_serves_the_notebook_on_the_chosen_sweep(tmp_path):
    """`make notebook RESULTS=… SWEEP=…` runs `python -m dotmlp.notebook lab …`: started here the
    same way, headless, at a free port with a token; the notebook is fetched through the contents
    API and the server sees the chosen sweep; then it is stopped."""
    sweep = tmp_path / "runs" / "mine"
    sweep.mkdir(parents=True)
    shutil.copy(ROOT / "results" / "sweep" / nb.TABLE_FILE, sweep / nb.TABLE_FILE)
    port, token = free_port(), "dotmlp-test-token"
    # Jupyter's runtime and data files (connection files, cookie secret, signing key) in tmp_path.
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # refused otherwise
    server = subprocess.Popen(
        [sys.executable, "-m", "dotmlp.notebook", "lab", "--results-dir", str(sweep.parent), "--name", "mine",
         "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         *root], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/api/contents/{nb.NOTEBOOK.as_posix()}"
    try:
        deadline, status = time.monotonic() + 60, None
        while status is None and server.poll() is None and time.monotonic() < deadline:
            try:
                status, body = get(url, token)
            except OSError:  # not listening yet
                time.sleep(0.2)
        assert status == 200, f"no answer; server exit code {server.poll()}" if status is None else body[:500]
        model = json.loads(body)
        assert model["type"] == "notebook" and model["path"] == nb.NOTEBOOK.as_posix()
        served = nbformat.from_dict(model["content"])
        assert [c.source for c in served.cells] == [c.source for c in nbformat.read(NOTEBOOK, 4).cells]
        assert get(url, "a-wrong-token")[0] == 403
        if Path(f"/proc/{server.pid}/environ").exists():  # the server is the process started
            environ = dict(item.split("=", 1) for item in
                           Path(f"/proc/{server.pid}/environ").read_text().split("\0") if "=" in item)
            assert environ[nb.ENV_RESULTS] == str(sweep.parent.resolve()) and environ[nb.ENV_SWEEP] == "mine"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            log, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            log, _ = server.communicate()
    assert f"The notebook shows {sweep.parent}/mine" in log, log[-3000:]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_notebook_starts_what_the_test_above_starts():
    out = subprocess.run(["make", "-n", "notebook", "VENV=.venv-unused", "RESULTS=runs", "SWEEP=mine",
                          "JUPYTER_ARGS=--no-browser", "TORCH_CPU_INDEX=http://127.0.0.1:9"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")})
    lab = ".venv-unused/bin/python -m dotmlp.notebook lab --results-dir runs --name mine --no-browser"
    assert lab in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------------------- which sweep
def table_at(folder: Path, age: float = 0) -> None:
    folder.mkdir(parents=True)
    (folder / nb.TABLE_FILE).write_text("trial_id\n")
    then = time.time() - age
    os.utime(folder / nb.TABLE_FILE, (then, then))


def test_the_notebook_opens_on_the_latest_sweep_else_the_committed_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert nb.choose_sweep(None, None)[:2] == (Path("results"), "sweep")
    table_at(tmp_path / "runs" / "sweep-20261126-101500", age=60)
    table_at(tmp_path / "runs" / "sweep-20261126-101000", age=0)  # its table written last
    (tmp_path / "runs" / "sweep-running").mkdir()  # no table yet
    assert nb.choose_sweep(None, None)[:2] == (Path("runs"), "sweep-20261126-101000")
    assert nb.choose_sweep(None, "sweep-20261126-101500")[:2] == (Path("runs"), "sweep-20261126-101500")
    table_at(tmp_path / "elsewhere" / "a")
    assert nb.choose_sweep("elsewhere", None)[:2] == (Path("elsewhere"), "a")
    for results_dir, name in ((None, "sweep-running"), ("nowhere", None), ("elsewhere", "b")):
        with pytest.raises(ValueError, match="no finished sweep"):
            nb.choose_sweep(results_dir, name)


def test_lab_names_a_missing_sweep_in_one_line(run_cli):
    proc = run_cli("-m", "dotmlp.notebook", "lab", "--results-dir", "runs", "--name", "no-such-sweep")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "python -m dotmlp.notebook: error: no finished sweep 'no-such-sweep' in 'runs' "
        "(no runs/no-such-sweep/trials.csv)"]


def test_png_size_reads_the_header():
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0))
    assert nb.png_size(base64.b64encode(png).decode()) == (640, 480)
