"""The answer table: per dimension, flag and threshold, the smallest network and the fewest samples
that reached the threshold, or the bound that what was tried did not.

`answer_table(trials, curves)` reads a study's tables (one sweep or several concatenated, see
dotmlp.study.points; pass curves=None, or let load_tables drop them, where a learning-rate schedule
over the whole budget makes a curve's points something other than shorter runs) and gives one
row per (dimension, multiply, threshold):

- `reached`: some trial's median over seeds was ≤ threshold at some budget of its learning curve.
  Only trials with at least MIN_SEEDS seeds count (a median of fewer is one lucky seed away from
  a different answer); trials with fewer that reached are counted in `few_seed_reaching` and said
  in `note`, not used. Diverged and errored trials never count.
- `params`: the smallest network that reached it, at any budget; `architecture`, `lr`, `seeds`
  and `nmse_median/min/max` are that network's, at the first budget where it reached
  (`architecture_samples`, `architecture_steps`: the configuration to re-run to check the row).
- `samples`: the fewest samples any network needed (the first rung of the ladder at which a
  median was ≤ threshold, over every trial of the task); `fastest_architecture`, `fastest_params`,
  `fastest_lr` name the network that did it. The two minima may come from different networks.
- Not reached: `params` and `samples` are empty, `nmse_*` (and `architecture`, `lr`, `seeds`) are
  the best median measured, and `bound` says "not reached by width ≤ W with ≤ S samples" with
  W = `max_width_tried`, S = `max_samples_tried` over the counted trials — a lower bound on what it
  takes, never a proof that it cannot be done. `still_improving` marks a best network that was
  still improving at the end of its budget (more samples would lower it).
- Dimensions with no trial: reached False, `bound` "not run".

`python -m dotmlp.study.answer --results-dir DIR --name NAME` writes answer.csv, its smallest nets
against approximation theory (dotmlp.study.approximation: approximation.md) and the depth
comparison (dotmlp.study.depth: deep_vs_shallow.csv, .md, .png) next to the sweep's tables;
several `--name`s (with `--machine` each) are read as one study, written to `--out`.
`write_sweep` is what a sweep writes of these after its analysis (`python sweep/run.py`, or
`python -m dotmlp.study` for a sweep already run).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from dotmlp import record as sweep_record
from dotmlp.analysis.tables import write_csv
from dotmlp.cli import ArgumentParser, fail
from dotmlp.record import write_atomically
from dotmlp.study import depth
from dotmlp.study.approximation import APPROXIMATION_FILE, approximation_paragraph
from dotmlp.study.points import load_tables, measured_points, normalise, out_dir

ANSWER_FILE = "answer.csv"
THRESHOLDS = (1e-2, 1e-3)
# The dimensions the study answers for: every one gets its rows, run or not.
STUDY_DIMENSIONS = (1, 2, 4, 8, 16, 32, 64)
MIN_SEEDS = 3
ANSWER_COLUMNS = ["dimension", "multiply", "threshold", "reached", "params", "samples",
                  "architecture", "lr", "seeds", "nmse_median", "nmse_min", "nmse_max",
                  "max_width_tried", "max_samples_tried"]
EXTRA_COLUMNS = ["bound", "architecture_samples", "architecture_steps", "fastest_architecture",
                 "fastest_params", "fastest_lr", "best_samples", "still_improving",
                 "max_depth_tried", "trials", "few_seed_reaching", "machine", "note"]


def answer_table(trials: pd.DataFrame, curves: pd.DataFrame | None = None,
                 thresholds: Sequence[float] = THRESHOLDS,
                 dimensions: Sequence[int] | None = None,
                 multiply: Sequence[bool] = (False, True),
                 min_seeds: int = MIN_SEEDS) -> pd.DataFrame:
    """One row per (dimension, multiply, threshold): ANSWER_COLUMNS, then EXTRA_COLUMNS (see the
    module's docstring). dimensions: by default STUDY_DIMENSIONS and every dimension in the data."""
    points = measured_points(trials, curves)
    tried = normalise(trials) if len(trials) else trials
    if dimensions is None:
        present = set(int(d) for d in tried["dimension"]) if len(tried) else set()
        dimensions = sorted(set(STUDY_DIMENSIONS) | present)
    rows = []
    for dimension in dimensions:
        for flag in multiply:
            task = points[(points["dimension"] == dimension) & (points["multiply"] == flag)]
            for threshold in thresholds:
                rows.append(_answer_row(task, int(dimension), bool(flag), float(threshold),
                                        min_seeds))
    table = pd.DataFrame(rows, columns=ANSWER_COLUMNS + EXTRA_COLUMNS)
    for column in ("params", "samples", "seeds", "max_width_tried", "max_samples_tried",
                   "architecture_samples", "architecture_steps", "fastest_params", "best_samples",
                   "max_depth_tried"):
        table[column] = pd.array(table[column].astype("Float64").round(), dtype="Int64")
    table["reached"] = table["reached"].astype(bool)
    if "machine" not in points:
        table = table.drop(columns="machine")
    return table


def _answer_row(task: pd.DataFrame, dimension: int, multiply: bool, threshold: float,
                min_seeds: int) -> dict:
    row = {"dimension": dimension, "multiply": multiply, "threshold": threshold, "reached": False,
           "trials": int(task.groupby(_keys(task)).ngroups) if len(task) else 0, "note": ""}
    if not len(task):
        return {**row, "bound": "not run", "few_seed_reaching": 0}
    counted = task[task["seeds"] >= min_seeds]
    few = task[(task["seeds"] < min_seeds) & (task["val_nmse"] <= threshold)]
    row["few_seed_reaching"] = int(few.groupby(_keys(few)).ngroups) if len(few) else 0
    notes = []
    if row["few_seed_reaching"]:
        notes.append(f"{row['few_seed_reaching']} trials with fewer than {min_seeds} seeds reached "
                     "it too; not counted")
    if not len(counted):
        shown = task
        row.update(max_width_tried=int(shown["width"].max()), max_depth_tried=int(shown["depth"].max()),
                   max_samples_tried=int(shown["samples"].max()))
        row["bound"] = (f"not measured with ≥ {min_seeds} seeds (only trials with ≤ "
                        f"{int(task['seeds'].max())} run: width ≤ {row['max_width_tried']}, "
                        f"≤ {row['max_samples_tried']:,} samples)")
        row["note"] = "; ".join(notes)
        return row
    row.update(max_width_tried=int(counted["width"].max()), max_depth_tried=int(counted["depth"].max()),
               max_samples_tried=int(counted["samples"].max()))
    hits = counted[counted["val_nmse"] <= threshold]
    if len(hits):
        smallest = hits.sort_values(["params", "samples", "val_nmse"]).iloc[0]
        fastest = hits.sort_values(["samples", "params", "val_nmse"]).iloc[0]
        row.update(reached=True, params=int(smallest["params"]), samples=int(fastest["samples"]),
                   **_described(smallest),
                   architecture_samples=int(smallest["samples"]),
                   architecture_steps=smallest["steps"],
                   fastest_architecture=fastest["architecture"], fastest_params=int(fastest["params"]),
                   fastest_lr=float(fastest["lr"]), bound="")
    else:
        best = counted.sort_values(["val_nmse", "params"]).iloc[0]
        row.update(**_described(best), best_samples=int(best["samples"]),
                   still_improving=bool(best["budget_limited"] and best["final"]),
                   bound=_bound(row["max_width_tried"], row["max_samples_tried"]))
        if row["still_improving"]:
            notes.append("its best network was still improving at the end of its budget")
    row["note"] = "; ".join(notes)
    return row


def _described(point: pd.Series) -> dict:
    described = {"architecture": point["architecture"], "lr": float(point["lr"]),
                 "seeds": int(point["seeds"]), "nmse_median": float(point["val_nmse"]),
                 "nmse_min": float(point["val_nmse_min"]), "nmse_max": float(point["val_nmse_max"])}
    if "machine" in point:
        described["machine"] = point["machine"]
    return described


def _bound(width: int, samples: int) -> str:
    by = "the linear model" if width == 0 else f"width ≤ {width}"
    return f"not reached by {by} with ≤ {samples:,} samples"


def _keys(frame: pd.DataFrame) -> list[str]:
    return [key for key in ("sweep", "machine", "trial_id") if key in frame]


# ---------------------------------------------------------------------------- files
def write_answer(results_dir: str | os.PathLike, name: str | Sequence[str],
                 machines: Sequence[str] | None = None, out: str | os.PathLike | None = None,
                 thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """Write answer.csv (atomically) for one sweep (into its folder) or several (into `out`):
    rows for STUDY_DIMENSIONS and every dimension the sweeps' records list."""
    names = [name] if isinstance(name, str) else list(name)
    trials, curves = load_tables(results_dir, names, machines)
    listed = set()
    for each in names:
        if sweep_record.path(results_dir, each).exists():
            listed |= set(sweep_record.load(results_dir, each)["settings"].get("dimensions", ()))
    present = set(int(d) for d in pd.to_numeric(trials["dimension"], errors="coerce").dropna())
    dimensions = sorted(set(STUDY_DIMENSIONS) | listed | present)
    table = answer_table(trials, curves, thresholds, dimensions)
    out = out_dir(results_dir, names, out)
    write_csv(table, out / ANSWER_FILE)
    return table


def write_analysis(results_dir: str | os.PathLike, name: str | Sequence[str],
                   machines: Sequence[str] | None = None, out: str | os.PathLike | None = None, *,
                   figures: bool = True) -> dict:
    """Everything a study writes: the answer table, its smallest nets against approximation theory
    (approximation.md), and deep against shallow. Returns the tables by name."""
    names = [name] if isinstance(name, str) else list(name)
    answer = write_answer(results_dir, names, machines, out)
    folder = out_dir(results_dir, names, out)
    write_atomically(folder / APPROXIMATION_FILE, approximation_paragraph(answer))
    pairs = depth.write_deep_vs_shallow(results_dir, names, machines, out, figures=figures)
    return {"answer": answer, "deep_vs_shallow": pairs}


def write_sweep(results_dir: str | os.PathLike, name: str, figures: bool = True) -> None:
    """What one sweep writes of the study beside its analysis's tables, by its record: the answer
    table (answer.csv) for a sweep of a grid; for a study (explicit cells) also approximation.md
    and deep against shallow (write_analysis); nothing for a pool sweep."""
    settings = sweep_record.load(results_dir, name)["settings"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if settings.get("data") == "pool":
            return  # the answer is the fresh regime's question; a pool sweep's is its RMSE table
        if settings.get("cells"):
            write_analysis(results_dir, name, figures=figures)
        else:
            write_answer(results_dir, name)


def format_answer(table: pd.DataFrame) -> str:
    lines = ["Answer (median over seeds; only trials with >= 3 seeds count):"]
    for row in table.itertuples():
        flag = "on " if row.multiply else "off"
        head = f"  d={row.dimension:>3} flag={flag} nmse<={row.threshold:g}: "
        if row.reached:
            lines.append(head + f"params {row.params:,} ({row.architecture}, lr {row.lr:.1e}, "
                         f"{row.nmse_median:.1e} at {row.architecture_samples:,} samples); fewest "
                         f"samples {row.samples:,} ({row.fastest_architecture})")
        elif isinstance(row.nmse_median, float) and math.isfinite(row.nmse_median):
            lines.append(head + f"{row.bound} (best {row.nmse_median:.1e}, {row.architecture})")
        else:
            lines.append(head + str(row.bound))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(prog="python -m dotmlp.study.answer", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--name", action="append", default=None,
                        help="a sweep under the results dir (repeat for a study of several)")
    parser.add_argument("--machine", action="append", default=None,
                        help="the machine each --name ran on (e.g. cpu, gpu), in the same order")
    parser.add_argument("--out", default=None,
                        help="where to write (default: the sweep's folder; required for several)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    names = args.name or ["sweep"]
    if args.machine is not None and len(args.machine) != len(names):
        fail(parser.prog, f"--machine must be given once per --name ({len(names)}), "
             f"got {len(args.machine)}")
    if len(names) > 1 and args.out is None:
        fail(parser.prog, "--out is required with several --name")
    try:
        tables = write_analysis(args.results_dir, names, args.machine, args.out,
                                figures=not args.no_figures)
    except FileNotFoundError as error:
        fail(parser.prog, str(error))
    print(format_answer(tables["answer"]))
    out = Path(args.out) if args.out else Path(args.results_dir) / names[0]
    print(f"Written to {out}: {ANSWER_FILE}, {APPROXIMATION_FILE}, deep_vs_shallow.csv, "
          "deep_vs_shallow.md" + (" and deep_vs_shallow.png" if not args.no_figures else ""))
    return tables


if __name__ == "__main__":
    main(sys.argv[1:])
