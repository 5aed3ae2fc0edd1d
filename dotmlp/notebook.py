"""The results notebook: open it in JupyterLab on a sweep's results, or execute it in place.

    python -m dotmlp.notebook lab [--results-dir DIR] [--name NAME] [JupyterLab options]
    python -m dotmlp.notebook execute [--notebook PATH]

Run from the repository root (`make notebook`, `make results-notebook` do). The notebook reads the
sweep named by DOTMLP_RESULTS_DIR and DOTMLP_SWEEP; without them, the committed reference sweep.
"""

from __future__ import annotations

import copy
import os
import struct
import sys
from pathlib import Path

from dotmlp.cli import ArgumentParser, fail

NOTEBOOK = Path("results") / "heatmaps.ipynb"
REFERENCE = (Path("results"), "sweep")  # the committed sweep the notebook's outputs show
RUNS = Path("runs")  # where `make sweep` writes a user's sweeps
TABLE_FILE = "trials.csv"  # dotmlp.analysis.TABLE_FILE, without importing pandas to open a server
ENV_RESULTS, ENV_SWEEP = "DOTMLP_RESULTS_DIR", "DOTMLP_SWEEP"


# ---------------------------------------------------------------------------- which sweep
def latest_sweep(results_dir: Path) -> str | None:
    """The name of the sweep under results_dir whose table was written last; None if none has one.
    A sweep still running has no table yet, so it is never picked."""
    tables = sorted(results_dir.glob(f"*/{TABLE_FILE}"), key=lambda p: (p.stat().st_mtime, p.parent.name))
    return tables[-1].parent.name if tables else None


def choose_sweep(results_dir: str | None, name: str | None) -> tuple[Path, str, str]:
    """(results dir, sweep name, why) for `lab`. Nothing given: the user's latest sweep under runs/,
    else the committed reference. A sweep that was named but has no table is a usage error."""
    if results_dir is None and name is None:
        found = latest_sweep(RUNS)
        if found:
            return RUNS, found, f"your latest sweep under {RUNS}/ (RESULTS=… SWEEP=… for another)"
        return (*REFERENCE, f"the committed reference sweep (no sweep of yours under {RUNS}/ yet)")
    folder = Path(results_dir) if results_dir is not None else RUNS
    if name is None:
        name = latest_sweep(folder)
        if name is None:
            raise ValueError(f"results-dir {str(folder)!r} holds no finished sweep (no */{TABLE_FILE})")
    if not (folder / name / TABLE_FILE).is_file():
        raise ValueError(f"no finished sweep {name!r} in {str(folder)!r} (no {folder / name / TABLE_FILE})")
    return folder, name, "the sweep you named"


def lab_command(notebook: Path, extra: list[str]) -> list[str]:
    # root_dir = the repository, so the notebook's path in the server is results/heatmaps.ipynb and
    # the file browser shows the whole project.
    return [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path.cwd()}", str(notebook), *extra]


# ---------------------------------------------------------------------------- executing
def execute(path: Path, results_dir: Path | None = None, name: str | None = None, timeout: int = 600):
    """Run every cell of the notebook at path, in its own folder as JupyterLab would; return it.

    results_dir/name: the sweep it reads; by default its own default (the committed reference),
    whatever DOTMLP_* this process has. Stops at the first cell that raises.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in (ENV_RESULTS, ENV_SWEEP)}
    if results_dir is not None:
        env[ENV_RESULTS] = str(Path(results_dir).resolve())
    if name is not None:
        env[ENV_SWEEP] = name
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).resolve().parent)}},
                            record_timing=False, store_widget_state=False)
    client.execute(env=env)
    return clean(notebook)


def clean(notebook):
    """Drop what changes from one run or machine to the next and says nothing about the results,
    so re-executing an unchanged notebook gives an unchanged file."""
    for cell in notebook.cells:
        for key in ("execution", "collapsed", "scrolled", "widgets"):
            cell.metadata.pop(key, None)
    notebook.metadata.pop("widgets", None)
    notebook.metadata.get("language_info", {}).pop("version", None)  # the Python patch release
    return notebook


def write(notebook, path: Path) -> None:
    import nbformat

    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(notebook, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- comparing
def png_size(data: str) -> tuple[int, int]:
    """(width, height) of a base64 PNG, from its IHDR chunk."""
    import base64

    head = base64.b64decode(data[:64])
    return struct.unpack(">II", head[16:24])


def comparable(notebook) -> list[list[dict]]:
    """Per code cell, what its outputs say, in a form two runs of the same notebook on the same
    table agree on: text and HTML exactly; an image by its presence and pixel size (its bytes
    change with the matplotlib and font build). Execution counts and metadata are left out."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "stream":
                outputs.append({"stream": output["name"], "text": output["text"]})
            elif kind == "error":
                outputs.append({"error": output["ename"], "value": output["evalue"]})
            else:
                data = copy.deepcopy(dict(output.get("data", {})))
                if "image/png" in data:
                    data["image/png"] = png_size(data["image/png"])
                outputs.append(data)
        cells.append(outputs)
    return cells


def differences(committed, fresh, tolerance: float = 0.03) -> list[str]:
    """What differs between two comparable() lists: one line per difference. Image sizes may differ
    by `tolerance` (text extents move a pixel or two between font builds)."""
    found = []
    if len(committed) != len(fresh):
        return [f"{len(committed)} code cells committed, {len(fresh)} now"]
    for number, (old, new) in enumerate(zip(committed, fresh, strict=True), 1):
        if len(old) != len(new):
            found.append(f"code cell {number}: {len(old)} outputs committed, {len(new)} now")
            continue
        for o, n in zip(old, new, strict=True):
            if o.keys() != n.keys():
                found.append(f"code cell {number}: output kinds {sorted(o)} committed, {sorted(n)} now")
                continue
            for key in o:
                if key == "image/png":
                    if any(abs(a - b) > tolerance * a for a, b in zip(o[key], n[key], strict=True)):
                        found.append(f"code cell {number}: image {o[key]} px committed, {n[key]} now")
                elif o[key] != n[key]:
                    found.append(f"code cell {number}: {key} differs")
    return found


# ---------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m dotmlp.notebook", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    lab = commands.add_parser("lab", help="open the notebook in JupyterLab; other options go to JupyterLab")
    lab.add_argument("--results-dir", default=None, help=f"a sweep's --results-dir (default {RUNS})")
    lab.add_argument("--name", default=None, help="a sweep's --name (default: the latest there)")
    run = commands.add_parser("execute", help="execute the notebook in place on the committed sweep")
    run.add_argument("--notebook", type=Path, default=NOTEBOOK)
    args, extra = parser.parse_known_args(argv)
    if args.command == "execute":
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if not args.notebook.is_file():
            fail(parser.prog, f"notebook {str(args.notebook)!r} not found (run from the repository root)")
        write(execute(args.notebook), args.notebook)
        print(f"Executed {args.notebook} on {REFERENCE[0] / REFERENCE[1]}; outputs saved in it.")
        return
    if not NOTEBOOK.is_file():
        fail(parser.prog, f"{NOTEBOOK} not found: run from the repository root")
    try:
        results_dir, name, why = choose_sweep(args.results_dir, args.name)
    except ValueError as error:
        fail(parser.prog, str(error))
    print(f"The notebook shows {results_dir / name}: {why}.", file=sys.stderr, flush=True)
    if (results_dir, name) != REFERENCE:
        print(f"Its saved outputs are the reference sweep's: to keep them, don't save it over "
              f"{NOTEBOOK} (git checkout {NOTEBOOK} undoes it).", file=sys.stderr, flush=True)
    env = {**os.environ, ENV_RESULTS: str(results_dir.resolve()), ENV_SWEEP: name}
    command = lab_command(NOTEBOOK, extra)
    os.execvpe(command[0], command, env)  # the server is this process: Ctrl-C and signals reach it


if __name__ == "__main__":
    main()
