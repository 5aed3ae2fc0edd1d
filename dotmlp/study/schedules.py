"""A decayed schedule against the constant rate, at equal samples, on cells of the committed study.

The grid studies (results/study-cpu*, sweeps at a constant learning rate) read a net's NMSE off a
run whose rate never came down: what they call a net's floor may be the optimiser's noise. Here
each chosen cell is trained again with the same seeds, samples and learning rates, with Adam's rate
decayed to zero by a cosine over the budget (what the frontier search trains), and the two are set
side by side: `python -m dotmlp.study.schedules` writes results/schedules.csv.
"""

from __future__ import annotations

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


def constant_runs(results: Path, study: str, dimension: int, depth: int, width: int) -> pd.DataFrame:
    trials = pd.read_csv(results / study / "trials.csv")
    cell = trials[(trials["dimension"] == dimension) & (trials["depth"] == depth)
                  & (trials["width"] == width) & (trials["multiply"].astype(str) == "False")
                  & (trials["status"] == "completed")]
    return cell.sort_values("lr")


def decayed(dimension: int, depth: int, width: int, lr: float, steps: int, seeds: int) -> dict:
    from dotmlp.train import train

    config = TrialConfig(dimension=dimension, depth=depth, width=width, lr=lr, steps=steps,
                         seeds=seeds, schedule="cosine", reports=1)
    return train(config)


def compare(results: Path, cells=CELLS) -> pd.DataFrame:
    rows = []
    for study, dimension, depth, width in cells:
        for _, trial in constant_runs(results, study, dimension, depth, width).iterrows():
            steps, seeds = int(trial["steps"]), int(trial["seeds"])
            run = decayed(dimension, depth, width, float(trial["lr"]), steps, seeds)
            rows.append({"study": study, "dimension": dimension, "depth": depth, "width": width,
                         "params": int(trial["params"]), "lr": float(trial["lr"]), "steps": steps,
                         "samples": int(trial["samples"]), "seeds": seeds,
                         "constant_median": trial["val_nmse"], "constant_min": trial["val_nmse_min"],
                         "constant_max": trial["val_nmse_max"], "cosine_median": run["val_nmse"],
                         "cosine_min": run["val_nmse_min"], "cosine_max": run["val_nmse_max"],
                         "ratio": run["val_nmse"] / trial["val_nmse"], "cosine_seconds": run["seconds"]})
            print(f"{study} d={dimension} {depth}x{width} lr={trial['lr']:.3g}: constant "
                  f"{trial['val_nmse']:.3g}, cosine {run['val_nmse']:.3g}", flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ArgumentParser(prog="python -m dotmlp.study.schedules", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results", help="where the studies' tables are")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    quiet_lightning()
    table = compare(Path(args.results_dir))
    write_atomically(Path(args.out), table.to_csv(index=False))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
