"""bfloat16 against float32 on frontier candidates: does bf16 autocast reach the same NMSE?

bf16 multiplies 1.6–1.8× faster on this CPU at the search's widest sizes (benchmarks/precision.py),
but the search's thresholds are small numbers (1e-3) and a bfloat16 product keeps 8 bits of
mantissa. Here the runs that decided frontier rows (the smallest reaching width's best learning
rate: the runs nearest their threshold) are trained again with precision bf16, same seeds, rate and
samples, and set against the fp32 seeds' range.

`python -m dotmlp.study.precision [--runs 3]` writes results/precision.csv; a run already in it is
not trained again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from dotmlp import frontier
from dotmlp.cli import ArgumentParser, quiet_lightning
from dotmlp.config import TrialConfig
from dotmlp.record import write_atomically

OUT = Path("results/precision.csv")
LEDGER = Path("results/frontier/candidates.csv")


def candidates(ledger: dict, count: int) -> list[frontier.Run]:
    """The best runs of decided, reached rows, the largest (params × samples) first, one per key."""
    runs: dict[frontier.RunKey, frontier.Run] = {}
    for outcome in frontier.outcomes(frontier.FrontierSettings(), ledger):
        if isinstance(outcome, frontier.Task) or outcome.reached is None:
            continue
        runs[outcome.reached.best.key] = outcome.reached.best
    cost = lambda run: int(run.row["params"]) * run.key.samples  # noqa: E731
    return sorted(runs.values(), key=cost, reverse=True)[:count]


def bf16_row(run: frontier.Run) -> dict:
    from dotmlp.train import train

    key = run.key
    config = TrialConfig(dimension=key.dimension, depth=key.depth, width=key.width, lr=key.lr,
                         steps=key.samples // int(run.row["batch_size"]), seeds=int(run.row["seeds"]),
                         schedule="cosine", reports=1, precision="bf16")
    result = train(config, accelerator="cpu")
    fp32_seeds = json.loads(run.row["nmse_seeds"])
    row = {"dimension": key.dimension, "depth": key.depth, "width": key.width, "lr": key.lr,
           "samples": key.samples, "seeds": config.seeds, "fp32_median": run.nmse_median,
           "fp32_min": run.nmse_min, "fp32_max": run.nmse_max, "fp32_seconds": float(run.row["seconds"]),
           "bf16_median": result["val_nmse"], "bf16_min": result["val_nmse_min"],
           "bf16_max": result["val_nmse_max"], "bf16_seconds": round(result["seconds"], 1),
           "fp32_seeds": json.dumps(fp32_seeds), "bf16_seeds": json.dumps(result["val_nmse_seeds"])}
    row["within_fp32_range"] = run.nmse_min <= result["val_nmse"] <= run.nmse_max
    print(f"d={key.dimension} {key.depth}x{key.width} lr={key.lr:g} {key.samples:,} samples: fp32 "
          f"{run.nmse_median:.3g} [{run.nmse_min:.3g}, {run.nmse_max:.3g}], bf16 {result['val_nmse']:.3g}",
          flush=True)
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ArgumentParser(prog="python -m dotmlp.study.precision", description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", default=str(LEDGER))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    quiet_lightning()
    out = Path(args.out)
    table = pd.read_csv(out) if out.exists() else pd.DataFrame()
    done = {tuple(r) for r in table[["dimension", "depth", "width", "lr", "samples"]].itertuples(index=False)
            } if len(table) else set()
    for run in candidates(frontier.load_ledger(args.ledger), args.runs):
        key = run.key
        if (key.dimension, key.depth, key.width, key.lr, key.samples) in done:
            continue
        table = pd.concat([table, pd.DataFrame([bf16_row(run)])], ignore_index=True)
        write_atomically(out, table.to_csv(index=False))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
