"""Fractional GPUs: the same sweep with a quarter of a GPU per trial and with a whole one.

`python benchmarks/gpu_sharing.py [--json] [--shares 0.25,1] [--num-samples 16] [SWEEP ARGS]`

Needs a machine whose Ray runtime sees a GPU. Each share runs the same seeded configurations to
their full budget (no ASHA, so both sweeps do the same work) and reports trials per minute of
the sweep's fit, how many trials ran at once on average, and the samples per second of a
trial. The figure of merit is trials per minute at each share over that at the largest share:
with four trials to a GPU, small MLPs leave most of the card idle, so the target is >= 3x.
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


def share_figures(table: pd.DataFrame, summary: dict) -> dict:
    fit = summary["wall_seconds"]
    return {
        "trials": len(table),
        "fit_seconds": fit,
        "trials_per_minute": 60 * len(table) / fit,
        # Time-weighted: trial-seconds per second of the fit (Tune's report timestamps are whole
        # seconds, too coarse to find the peak from trials a few seconds long).
        "mean_concurrent_trials": float(table["trial_seconds"].sum() / fit),
        "median_trial_samples_per_s": float((table["samples"] / table["trial_seconds"]).median()),
        "errored": int((table["status"] == "errored").sum()),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--shares", default="0.25,1", help="GPU fractions per trial to compare")
    args, sweep_args = parser.parse_known_args(argv)
    try:
        shares = sorted({float(s) for s in args.shares.split(",")})
    except ValueError:
        parser.error(f"--shares must be comma-separated numbers, got {args.shares!r}")
    if not shares or min(shares) <= 0 or max(shares) > 1:
        parser.error(f"--shares must lie in (0, 1], got {args.shares!r}")

    import torch

    if not torch.cuda.is_available():
        parser.error("no CUDA device visible: this benchmark compares GPU shares")
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        for share in shares:
            name = f"share_{share:g}".replace(".", "_")
            common = ["--num-samples", str(args.num_samples), "--no-asha", "--no-figures",
                      "--gpus-per-trial", f"{share:g}", *sweep_args]
            table, summary, _ = run_sweep(common, Path(folder), name)
            figures[f"{share:g}"] = share_figures(table, summary)
    whole = figures[f"{max(shares):g}"]["trials_per_minute"]
    result = {
        "device": torch.cuda.get_device_name(),
        "shares": figures,
        "speedup_over_largest_share": {k: v["trials_per_minute"] / whole for k, v in figures.items()},
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
