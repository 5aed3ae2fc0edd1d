"""A decayed schedule against the constant rate, at equal samples, on cells of the committed study.

The grid studies (results/study-cpu*, sweeps at a constant learning rate) read a net's NMSE off a
run whose rate never came down: what they call a net's floor may be the optimiser's noise. Here
each chosen cell is trained again with the same seeds and samples, with Adam's rate decayed to zero
by a cosine over the budget (what the frontier search trains), at the study's learning rates; for
each schedule whose best rate is the highest tried, one rate √10 higher is trained too (the
constant one as well, here), so that each schedule's best is bracketed or said not to be.

`python -m dotmlp.study.schedules` writes results/schedules.csv: one row per (cell, schedule,
learning rate), the committed study's constant-rate trials among them (source "study"). Rows
already in the file are not trained again.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from dotmlp.cli import ArgumentParser, quiet_lightning
from dotmlp.config import TrialConfig
from dotmlp.record import write_atomically

# (study, dimension, depth, width): cells whose constant-rate trials ran their whole budget at two or
# more learning rates, from three sizes and three dimensions: a small deep net at d = 4 trained long
# (33.5M samples), a mid-size one at d = 16 (33.5M) and a wide shallow one at d = 32 (4.2M).
CELLS = (("study-cpu-capacity", 4, 2, 18), ("study-cpu-long", 16, 2, 74), ("study-cpu", 32, 1, 970))
OUT = Path("results/schedules.csv")
KEY = ["study", "dimension", "depth", "width", "schedule", "lr"]


def study_runs(results: Path, study: str, dimension: int, depth: int, width: int) -> pd.DataFrame:
    """The committed constant-rate trials of a cell that ran their whole budget."""
    trials = pd.read_csv(results / study / "trials.csv")
    cell = trials[(trials["dimension"] == dimension) & (trials["depth"] == depth)
                  & (trials["width"] == width) & (trials["multiply"].astype(str) == "False")
                  & (trials["status"] == "completed")]
    return pd.DataFrame({"study": study, "dimension": dimension, "depth": depth, "width": width,
                         "params": cell["params"], "steps": cell["steps"].astype(int),
                         "samples": cell["samples"].astype(int), "seeds": cell["seeds"].astype(int),
                         "schedule": "constant", "lr": cell["lr"], "nmse_median": cell["val_nmse"],
                         "nmse_min": cell["val_nmse_min"], "nmse_max": cell["val_nmse_max"],
                         "source": "study"})


def train_row(template: dict, schedule: str, lr: float) -> dict:
    from dotmlp.train import train

    config = TrialConfig(dimension=template["dimension"], depth=template["depth"],
                         width=template["width"], lr=lr, steps=template["steps"], seeds=template["seeds"],
                         schedule=schedule, reports=1)
    run = train(config, accelerator="cpu")
    print(f"{template['study']} d={template['dimension']} {template['depth']}x{template['width']} "
          f"{schedule} lr={lr:.3g}: {run['val_nmse']:.3g}", flush=True)
    return {**template, "schedule": schedule, "lr": lr, "nmse_median": run["val_nmse"],
            "nmse_min": run["val_nmse_min"], "nmse_max": run["val_nmse_max"], "source": "trained",
            "seconds": round(run["seconds"], 1)}


def compare(results: Path, done: pd.DataFrame, out: Path, cells=CELLS) -> pd.DataFrame:
    table = done
    for study, dimension, depth, width in cells:
        constant = study_runs(results, study, dimension, depth, width)
        template = constant.iloc[0].to_dict()
        wanted = [("cosine", lr) for lr in constant["lr"]]
        table = add(table, constant)
        for schedule, lr in wanted:
            table = ensure(table, template, schedule, lr, out)
        for schedule in ("constant", "cosine"):  # a best at the top of the range: one rate higher
            mine = cell_rows(table, study, dimension, depth, width, schedule)
            best = mine.loc[mine["nmse_median"].idxmin(), "lr"]
            if best == mine["lr"].max():
                for each in ("constant", "cosine"):
                    table = ensure(table, template, each, best * math.sqrt(10), out)
    return table


def cell_rows(table, study, dimension, depth, width, schedule) -> pd.DataFrame:
    return table[(table["study"] == study) & (table["dimension"] == dimension) & (table["depth"] == depth)
                 & (table["width"] == width) & (table["schedule"] == schedule)]


def add(table: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    merged = pd.concat([table, rows], ignore_index=True)
    merged["lr_key"] = merged["lr"].map(lambda lr: f"{lr:.6g}")
    merged = merged.drop_duplicates([*KEY[:-1], "lr_key"], keep="first")
    return merged.drop(columns="lr_key").reset_index(drop=True)


def ensure(table: pd.DataFrame, template: dict, schedule: str, lr: float, out: Path) -> pd.DataFrame:
    mine = cell_rows(table, template["study"], template["dimension"], template["depth"], template["width"],
                     schedule)
    if any(math.isclose(lr, other, rel_tol=1e-6) for other in mine["lr"]):
        return table
    table = add(table, pd.DataFrame([train_row(template, schedule, lr)]))
    write_atomically(out, table.to_csv(index=False))  # each run kept as it finishes
    return table


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ArgumentParser(prog="python -m dotmlp.study.schedules", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results", help="where the studies' tables are")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    quiet_lightning()
    out = Path(args.out)
    done = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=[*KEY, "nmse_median"])
    table = compare(Path(args.results_dir), done, out)
    write_atomically(out, table.to_csv(index=False))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
