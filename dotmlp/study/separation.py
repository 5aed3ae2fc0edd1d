"""What separates representation from learning: three experiments at the hand-built net's size.

At width 8d (k = 4 ReLUs per square) one hidden layer represents a·b to NMSE 5.7e-3 at every d
(dotmlp.construction), yet SGD from PyTorch's initialisation lands several times worse there. Each
experiment trains that one-hidden-layer net for the same samples (Adam, cosine to zero, 3 seeds):

- **baseline**: from the default initialisation, learning rates ×√10 apart (what the search sees);
- **at the construction**: started at the hand-built net: does SGD stay, improve or drift away?
- **construction + noise**: Gaussian noise of growing size (in units of a fresh initialisation's
  standard deviation) added first: how far from the construction does SGD stop finding it?
- **fixed pool**: from the default initialisation, on a fixed set of pairs reused every epoch
  instead of fresh ones: is it the data SGD lacks, or the steps?

`python -m dotmlp.study.separation [--dimensions 16,32] [--samples 8388608]` writes
results/separation.csv, one row per run, each row re-runnable with `python -m dotmlp.train`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from dotmlp import construction
from dotmlp.cli import ArgumentParser, int_list, quiet_lightning
from dotmlp.config import TrialConfig
from dotmlp.record import write_atomically

OUT = Path("results/separation.csv")
K = 4  # ReLUs per square: 8d hidden units, NMSE 5.7e-3 hand-built
BASELINE_LRS = (1e-3, 3.16e-3, 1e-2)
CONSTRUCTION_LRS = (1e-4, 1e-3, 1e-2)
# In units of the default init's std (1/√(3·fan_in): 0.1 for the first layer at d = 16), where the
# construction's first-layer weights are ±1/√2: noise 10 is about as large as the weights themselves.
NOISES = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
NOISE_LR = 1e-3
POOL_PAIRS = 2**19
KEY = ["experiment", "dimension", "lr", "init_noise", "samples"]


def experiments(dimension: int, steps: int) -> list[tuple[str, TrialConfig]]:
    width = construction.hidden_units(dimension, K)
    base = dict(dimension=dimension, depth=1, width=width, steps=steps, seeds=3, schedule="cosine",
                reports=1)
    runs = [("baseline", TrialConfig(**base, lr=lr)) for lr in BASELINE_LRS]
    runs += [("construction", TrialConfig(**base, lr=lr, init="construction")) for lr in CONSTRUCTION_LRS]
    runs += [("construction+noise", TrialConfig(**base, lr=NOISE_LR, init="construction", init_noise=noise))
             for noise in NOISES]
    runs += [("fixed pool", TrialConfig(**base, lr=lr, data="fixed", train_samples=POOL_PAIRS))
             for lr in BASELINE_LRS]
    return runs


def run_all(dimensions, samples: int, out: Path) -> pd.DataFrame:
    """Every experiment's runs, each written to `out` as it finishes; a run already there (same
    experiment, d, rate, noise, samples) is not trained again."""
    from dotmlp.train import train

    done = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=KEY)
    rows = done.to_dict("records")
    have = {tuple(row[k] for k in KEY) for row in rows}
    for dimension in dimensions:
        for experiment, config in experiments(dimension, samples // 1024):
            key = (experiment, dimension, config.lr, config.init_noise, config.steps * config.batch_size)
            if key in have:
                continue
            result = train(config, accelerator="cpu")
            rows.append({"experiment": experiment, "dimension": dimension, "width": config.width,
                         "params": result["params"], "lr": config.lr, "init_noise": config.init_noise,
                         "data": config.data, "train_pairs": config.train_samples if config.data == "fixed"
                         else None, "samples": result["samples"], "seeds": config.seeds,
                         "nmse_median": result["val_nmse"], "nmse_min": result["val_nmse_min"],
                         "nmse_max": result["val_nmse_max"],
                         "construction_nmse": construction.held_out_nmse(dimension, K),
                         "seconds": round(result["seconds"], 1)})
            write_atomically(out, pd.DataFrame(rows).to_csv(index=False))
            print(f"d={dimension} {experiment} lr={config.lr:g} noise={config.init_noise:g} "
                  f"data={config.data}: {result['val_nmse']:.3g}", flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ArgumentParser(prog="python -m dotmlp.study.separation", description=__doc__.splitlines()[0])
    parser.add_argument("--dimensions", default="16,32")
    parser.add_argument("--samples", type=int, default=2**23, help="training samples per run")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    quiet_lightning()
    return run_all(int_list("dimensions", args.dimensions), args.samples, Path(args.out))


if __name__ == "__main__":
    main(sys.argv[1:])
