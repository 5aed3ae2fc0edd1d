"""Sweep efficiency: time in training steps ÷ (wall time × trial slots), and where the rest goes.

`python benchmarks/sweep_efficiency.py [--json] [--num-samples 40] [--max-steps 2000] [SWEEP ARGS]`

Runs a real sweep (the default search space, local Ray runtime, SQLite MLflow store) in a
temporary folder and splits the slots' time into: training steps (drawing the batch, forward,
backward, optimiser; the module's train_seconds), the rest inside trials (Trainer set-up, held-out
evaluation, checkpoints, reports), outside trials (worker start-up, scheduling, MLflow logging on
the driver, idle slots), Ray's start, and the analysis at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dotmlp import analysis  # noqa: E402
from sweep.run import main as sweep_main  # noqa: E402


def run_sweep(sweep_args: list[str], results: Path, name: str) -> tuple[pd.DataFrame, dict, float]:
    started = time.perf_counter()
    summary = sweep_main([*sweep_args, "--results-dir", str(results), "--name", name])
    wall = time.perf_counter() - started
    return pd.read_csv(results / name / analysis.TABLE_FILE), summary, wall


def efficiency(table: pd.DataFrame, summary: dict, wall: float, slots: int) -> dict:
    training = table["train_seconds"].sum()
    in_trials = table["trial_seconds"].sum()
    fit = summary["wall_seconds"]
    return {
        "efficiency": training / (wall * slots),
        "efficiency_of_fit": training / (fit * slots),
        "wall_seconds": wall,
        "fit_seconds": fit,
        "slots": slots,
        "trials": len(table),
        "split_of_slot_seconds": {
            "training_steps": training,
            "in_trial_other": in_trials - training,
            "outside_trials": fit * slots - in_trials,
            "ray_start": summary["ray_start_seconds"] * slots,
            "analysis_and_rest": (wall - fit - summary["ray_start_seconds"]) * slots,
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--num-samples", type=int, default=40)
    parser.add_argument("--slots", type=int, default=2, help="trial slots (CPUs / cpus-per-trial)")
    args, sweep_args = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        table, summary, wall = run_sweep(
            ["--num-samples", str(args.num_samples), *sweep_args], Path(folder), "efficiency"
        )
    result = efficiency(table, summary, wall, args.slots)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
