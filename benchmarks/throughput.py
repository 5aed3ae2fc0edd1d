"""Samples per second: a bare PyTorch loop against the trainable path the sweep runs, side by side.

`python benchmarks/throughput.py [--json] [--seeds 3] [--steps 512] [--eval-every 128] [--repeats 3]
[--device cuda]`

With --seeds K (the sweep's default, 3) the trainable trains K replicas in one model, and
the bare side is K single-seed bare loops run one after the other: the ratio is replica-samples
per second of the trainable ÷ those of the K bare loops (above 1: the K replicas in one model beat
training the seeds one by one). With --seeds 1 it is the plain per-trial overhead.

Both sides train the same DotMLP with the same Adam, batch, thread count (one, as a sweep trial)
and on-device data, and evaluate the same held-out set at the sweep's cadence (every 125 steps:
16 times in the default 2,000-step budget). The trainable side is `dotmlp.train.train` with the
sweep's Trainer and module, and a Lightning checkpoint at every 4th evaluation as the sweep's
report callback writes; only the `tune.report` call itself (about 1.4 ms per report) is absent.
The default 500 steps is a short trial: most trials stop at ASHA's first rung (250 steps), the
rest run 1,000 or 2,000; the shorter the run, the more its fixed costs weigh. Runs alternate
(a, b, a, b, …) so drift in a shared machine's speed hits both; the ratio of a configuration is
the median of its pairs' ratios, the speeds shown are each side's best run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
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
from dotmlp.config import SweepSettings, TrialConfig  # noqa: E402
from dotmlp.model import DotMLP  # noqa: E402
from dotmlp.train import train  # noqa: E402
from dotmlp.tune.trainable import CHECKPOINT_FILE, checkpoint_due  # noqa: E402

CONFIGS = [
    {"dimension": d, "width": w, "depth": L}
    for d, w, L in itertools.product((1, 16, 64), (64, 256), (2, 4))
]


def bare_loops(config: TrialConfig, device: str = "cpu") -> float:
    """config.seeds single-seed bare loops one after the other: their replica-samples per second."""
    seconds = sum(config.steps * config.batch_size / bare_loop(config.replace(seed=config.seed + k,
                                                                               seeds=1), device)
                  for k in range(config.seeds))
    return config.seeds * config.steps * config.batch_size / seconds


def bare_loop(config: TrialConfig, device: str = "cpu") -> float:
    """The same work with nothing but PyTorch: samples per second."""
    torch.manual_seed(config.seed)
    model = DotMLP(config.dimension, config.hidden_sizes, config.multiply).to(device)
    # Clocked from where the trainable's clock starts (Trainer.fit), which makes the optimiser,
    # the data and the held-out set after it.
    started = time.perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = data.make_generator(data.training_seed(config.seed, 0), device)
    held_out = data.held_out_set(config.dimension, config.val_samples, device)
    for step in range(1, config.steps + 1):
        a, b, y = data.sample_pairs(config.batch_size, config.dimension, generator)
        loss = F.mse_loss(model(a, b), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % config.eval_interval == 0:
            with torch.no_grad():
                F.mse_loss(model(*held_out[:2]), held_out[2]).item()
    if device != "cpu":
        torch.cuda.synchronize()  # count the queued kernels too, not just their launches
    return config.steps * config.batch_size / (time.perf_counter() - started)


class CheckpointLikeATrial(pl.Callback):
    """What the sweep's report callback (dotmlp.tune.trainable.ReportToTune) does in a trial, less the
    report itself: a Lightning checkpoint where dotmlp.tune.trainable.checkpoint_due says so."""

    def __init__(self, folder: str):
        self.path = os.path.join(folder, CHECKPOINT_FILE)

    def on_validation_end(self, trainer, pl_module):
        if checkpoint_due(pl_module):
            trainer.save_checkpoint(self.path)


def trainable_path(config: TrialConfig, device: str = "cpu") -> float:
    # train() reads the last held-out loss with .item(), which waits for the device's queue.
    accelerator = "cpu" if device == "cpu" else "gpu"
    with tempfile.TemporaryDirectory() as folder:
        result = train(config, [CheckpointLikeATrial(folder)], accelerator=accelerator)
    return result["replica_samples_per_second"]


def measure(steps: int, eval_every: int, repeats: int, configs: int, device: str = "cpu",
            seeds: int = 3) -> dict:
    torch.set_num_threads(1)
    quiet_lightning()
    # The first Lightning fit in a process pays one-off imports and set-up: not a trial's cost
    # in a sweep, where workers are reused.
    warm_up = TrialConfig(**CONFIGS[0], lr=1e-3, steps=eval_every, eval_every=eval_every, seeds=seeds)
    bare_loops(warm_up, device), trainable_path(warm_up, device)
    rows = []
    for values in CONFIGS[:configs]:
        config = TrialConfig(**values, lr=1e-3, steps=steps, eval_every=eval_every, seeds=seeds)
        pairs = [(bare_loops(config, device), trainable_path(config, device)) for _ in range(repeats)]
        # Each pair ran back to back: its ratio is immune to the machine's slow drift; the median
        # over pairs drops the pair that a burst of load hit.
        ratio = statistics.median(trainable / bare for bare, trainable in pairs)
        bare, trainable = (max(column) for column in zip(*pairs, strict=True))
        rows.append({**values, "bare_samples_per_s": bare, "trainable_samples_per_s": trainable,
                     "ratio": ratio})
        print(f"d={values['dimension']:>2} width={values['width']:>3} depth={values['depth']}: "
              f"bare {bare:>9.0f}/s  trainable {trainable:>9.0f}/s  ratio {ratio:.3f}",
              file=sys.stderr, flush=True)
    return {"configs": rows, "min_ratio": min(r["ratio"] for r in rows), "seeds": seeds,
            "min_ratio_width_64": min(r["ratio"] for r in rows if r["width"] == 64),
            "steps": steps, "eval_every": eval_every, "repeats": repeats, "threads": 1,
            "batch_size": 1024, "device": torch.cuda.get_device_name() if device != "cpu" else "cpu"}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=512, help="steps per run")
    parser.add_argument("--eval-every", type=int, default=128, help="steps between held-out evaluations")
    parser.add_argument("--seeds", type=int, default=SweepSettings().seeds,
                        help="replicas per trial (default: the sweep's); the bare side runs that many loops")
    parser.add_argument("--repeats", type=int, default=3, help="back-to-back pairs per configuration")
    parser.add_argument("--configs", type=int, default=len(CONFIGS), help="the first N configurations")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    counts = (args.steps, args.eval_every, args.repeats, args.configs, args.seeds)
    if min(counts) < 1 or args.eval_every > args.steps:
        parser.error("--steps, --eval-every, --repeats, --configs and --seeds must be >= 1, "
                     "eval-every <= steps")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device visible to torch here")
    result = measure(args.steps, args.eval_every, args.repeats, args.configs, args.device, args.seeds)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"min ratio (trainable / bare, {args.seeds} seeds): {result['min_ratio']:.3f}; "
              f"at width 64: {result['min_ratio_width_64']:.3f}")
    return result


if __name__ == "__main__":
    main()
