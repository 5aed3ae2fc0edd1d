"""Samples per second: a bare PyTorch loop against the trainable path the sweep runs, side by side.

`python benchmarks/throughput.py [--json] [--steps N] [--repeats R]`

Both sides train the same DotMLP with the same Adam, batch, thread count (one, as a sweep trial)
and on-device data, and evaluate the same held-out set at the sweep's cadence (16 times per
budget). The trainable side is `dotmlp.train.train` with the sweep's Trainer and a Lightning
checkpoint written at every evaluation, as Ray's report callback does in a trial; only the
`tune.report` call itself (about 1.4 ms, 16 times per trial) is absent. Runs alternate (a, b, a,
b, …) so drift in a shared machine's speed hits both; each side keeps its best repeat.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dotmlp import data  # noqa: E402
from dotmlp.cli import quiet_lightning  # noqa: E402
from dotmlp.config import TrialConfig  # noqa: E402
from dotmlp.model import DotMLP  # noqa: E402
from dotmlp.train import train  # noqa: E402

CONFIGS = [
    {"dimension": d, "width": w, "depth": L}
    for d, w, L in itertools.product((1, 16, 64), (64, 256), (2, 4))
]
REPORTS = 16


def bare_loop(config: TrialConfig) -> float:
    """The same work with nothing but PyTorch: samples per second."""
    torch.manual_seed(config.seed)
    model = DotMLP(config.dimension, config.hidden_sizes, config.multiply)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = data.make_generator(data.training_seed(config.seed, 0), "cpu")
    held_out = data.held_out_set(config.dimension, config.val_samples, "cpu")
    started = time.perf_counter()
    for step in range(1, config.steps + 1):
        a, b, y = data.sample_pairs(config.batch_size, config.dimension, generator)
        loss = F.mse_loss(model(a, b), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % config.eval_interval == 0:
            with torch.no_grad():
                F.mse_loss(model(*held_out[:2]), held_out[2]).item()
    return config.steps * config.batch_size / (time.perf_counter() - started)


class CheckpointEachEvaluation(pl.Callback):
    """What Ray's TuneReportCheckpointCallback does in a trial, less the report itself."""

    def __init__(self, folder: str):
        self.path = os.path.join(folder, "trial.ckpt")

    def on_validation_end(self, trainer, pl_module):
        trainer.save_checkpoint(self.path)


def trainable_path(config: TrialConfig) -> float:
    with tempfile.TemporaryDirectory() as folder:
        result = train(config, [CheckpointEachEvaluation(folder)], accelerator="cpu")
    return result["samples_per_second"]


def measure(steps: int, repeats: int) -> dict:
    torch.set_num_threads(1)
    quiet_lightning()
    rows = []
    for values in CONFIGS:
        config = TrialConfig(**values, lr=1e-3, steps=steps, eval_every=steps // REPORTS)
        bare, lightning = [], []
        for _ in range(repeats):
            bare.append(bare_loop(config))
            lightning.append(trainable_path(config))
        rows.append({**values, "bare_samples_per_s": max(bare),
                     "trainable_samples_per_s": max(lightning),
                     "ratio": max(lightning) / max(bare)})
        print(f"d={values['dimension']:>2} width={values['width']:>3} depth={values['depth']}: "
              f"bare {max(bare):>9.0f}/s  trainable {max(lightning):>9.0f}/s  "
              f"ratio {rows[-1]['ratio']:.3f}", file=sys.stderr, flush=True)
    return {"configs": rows, "min_ratio": min(r["ratio"] for r in rows),
            "steps": steps, "repeats": repeats, "threads": 1, "batch_size": 1024}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=320, help="steps per run (multiple of 16)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < REPORTS or args.repeats < 1:
        parser.error(f"--steps must be >= {REPORTS} and --repeats >= 1")
    result = measure(args.steps, args.repeats)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"min ratio (trainable / bare): {result['min_ratio']:.3f}")
    return result


if __name__ == "__main__":
    main()
