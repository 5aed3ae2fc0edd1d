"""What ASHA saves: the same sampled trials with ASHA and with every trial run to the full budget.

`python benchmarks/asha_savings.py [--json] [--num-samples 40] [--asha-table CSV] [--full-table CSV]
[SWEEP ARGS]`

Both sweeps use one sweep seed, so they train the same configurations (the stratified points). Compute
is counted two ways: seconds inside training steps, and samples × parameters (proportional to
FLOPs, independent of the machine). The best held-out NMSE is compared per task (dimension, flag)
and over the whole sweep. `--asha-table results/sweep/trials.csv` takes the ASHA side from a
sweep already run with the same settings and seed (the default sweep: 200 trials) and runs only
the full-budget side; `--full-table` likewise takes the full-budget side from a `--no-asha` sweep
(the ASHA settings can change without re-running it). The configurations are checked to be the
same.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sweep_efficiency import run_sweep  # noqa: E402


def compute(table) -> dict:
    return {"train_seconds": float(table["train_seconds"].sum()),
            "samples_x_params": float((table["samples"] * table["params"]).sum())}


def best_trials(table: pd.DataFrame) -> pd.DataFrame:
    """Per task (dimension, flag), the trial with the lowest median over seeds."""
    ranked = table.dropna(subset=["val_nmse"]).sort_values("val_nmse", kind="stable")
    return ranked.groupby(["dimension", "multiply"]).head(1).set_index(["dimension", "multiply"])


def compare(asha: pd.DataFrame, full: pd.DataFrame) -> dict:
    """ASHA's trials against the same trials at the full budget: compute ratios and best NMSE,
    per task and overall (tables with samples, params, train_seconds, val_nmse per trial; with
    seeds, val_nmse_max too). ASHA's best "matches" a task when its median is no worse than the
    worst seed of the full-budget best: within the seeds' range, or better."""
    best = {name: best_trials(table) for name, table in (("asha", asha), ("full", full))}
    per_task = (best["asha"]["val_nmse"] / best["full"]["val_nmse"]).rename("asha_best_over_full_best")
    seeds_range = {}
    if "val_nmse_max" in full:
        upper = best["full"]["val_nmse_max"].fillna(best["full"]["val_nmse"])
        # .le aligns the tasks (each side lists them in its own order of best NMSE).
        seeds_range = {"tasks_within_seeds_range": int(best["asha"]["val_nmse"].le(upper).sum())}
    return {
        "compute_ratio_seconds": compute(asha)["train_seconds"] / compute(full)["train_seconds"],
        "compute_ratio_flops": compute(asha)["samples_x_params"] / compute(full)["samples_x_params"],
        "best_val_nmse": {"asha": float(asha["val_nmse"].min()), "full": float(full["val_nmse"].min())},
        "best_ratio_overall": float(asha["val_nmse"].min() / full["val_nmse"].min()),
        "best_ratio_per_task": {f"d={d},flag={'on' if m else 'off'}": float(v)
                                for (d, m), v in per_task.items()},
        "best_ratio_per_task_worst": float(per_task.max()),
        "tasks_within_10_percent": int((per_task <= 1.10).sum()),
        **seeds_range,
        "tasks": int(len(per_task)),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--num-samples", type=int, default=40)
    parser.add_argument("--asha-table", type=Path, default=None,
                        help="trials.csv of an ASHA sweep already run with these settings")
    parser.add_argument("--full-table", type=Path, default=None,
                        help="trials.csv of a --no-asha sweep already run with these settings")
    args, sweep_args = parser.parse_known_args(argv)
    for table in (args.asha_table, args.full_table):
        if table is not None and not table.is_file():
            parser.error(f"{table} is not a file")
    common = ["--num-samples", str(args.num_samples), "--no-figures", *sweep_args]
    with tempfile.TemporaryDirectory() as folder:
        if args.asha_table is None:
            asha, _, asha_wall = run_sweep(common, Path(folder), "asha")
        else:
            asha, asha_wall = pd.read_csv(args.asha_table), None
        if args.full_table is None:
            full, _, full_wall = run_sweep([*common, "--no-asha"], Path(folder), "full")
        else:
            full, full_wall = pd.read_csv(args.full_table), None
    key = ["dimension", "multiply", "depth", "width", "lr"]
    if len(asha) != len(full) or not (asha[key].round(12).values == full[key].round(12).values).all():
        sys.exit("asha_savings.py: the two sweeps trained different trials (other settings or seed)")
    result = {"trials": len(asha), "wall_seconds": {"asha": asha_wall, "full": full_wall},
              **compare(asha, full)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
