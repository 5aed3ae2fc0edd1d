"""Samples per second of one of Rendle et al.'s points: sweep/rendle.py's training path against a
bare PyTorch loop of the same model on the same pools.

`python benchmarks/rendle_throughput.py [--users 128000] [--dimension 64] [--m 1] [--seeds 5]
[--steps 2000] [--threads 1] [--repeats 1] [--device cpu] [--json]`

Both sides train the same K-replica DotMLP (the paper's [2md, md, md/2], init glorot unless told),
with the same Adam, batch (256) and thread count, on K pools drawn as sweep/rendle.py draws them
(sampling reference unless told), their batches from data.PoolBatches (each replica its own
shuffles). The trainable side is dotmlp.rendle_grid.train_point (Lightning, DotProductModule,
data.Chunks), as run by `sweep/rendle.py`; the bare side is a for loop: batch, forward, summed
replica MSE, backward, Adam step. Each side's clock covers its optimiser steps after the first
Lightning step's worth (steps_per_batch of them: warm-up), not the pools' drawing nor the final
evaluation, so the ratio trainable ÷ bare is what a long point pays per step for the framework
(the issue's target: ≥ 0.9). Sides alternate (bare, trainable, bare, …) with --repeats; the ratio
is the median of the pairs' ratios.

The sweep runs two points at once on two cores (--workers 2 --threads 1): run this with
--threads 1 for a point's speed there, and once per core (two at once) to see both used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dotmlp import data, rendle_grid  # noqa: E402
from dotmlp.cli import quiet_lightning  # noqa: E402
from dotmlp.config import TrialConfig  # noqa: E402
from dotmlp.model import DotMLP  # noqa: E402
from dotmlp.train import rendle_hidden  # noqa: E402


def sync(device: str) -> None:
    if device != "cpu":
        torch.cuda.synchronize()


class StepClock(pl.Callback):
    """Wall time from the start of the second Lightning step to the end of the last."""

    def __init__(self, device: str):
        self.device = device
        self.started = self.ended = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 1:
            sync(self.device)
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        sync(self.device)
        self.ended = time.perf_counter()


def config_for(args) -> TrialConfig:
    hidden = rendle_hidden(args.m, args.dimension)
    return TrialConfig(dimension=args.dimension, hidden=hidden, depth=len(hidden), data="pool",
                       users=args.users, steps=args.steps, eval_every=args.steps, batch_size=256,
                       lr=1e-3, seed=0, seeds=args.seeds, init=args.init)


def trainable(config: TrialConfig, sampling: str, device: str) -> float:
    """Replica-samples per second of sweep/rendle.py's path over its timed steps."""
    clock = StepClock(device)
    rendle_grid.train_point(config, sampling, "cpu" if device == "cpu" else "gpu", [clock],
                            evaluate=False)
    timed = config.steps - config.steps_per_batch
    return timed * config.batch_size * config.seeds / (clock.ended - clock.started)


def bare(config: TrialConfig, sampling: str, device: str) -> float:
    """The same steps with nothing but PyTorch and the project's data classes."""
    seeds = [config.seed + k for k in range(config.seeds)]
    pools = [data.Pool(config.dimension, config.users, seed, device, sampling=sampling) for seed in seeds]
    model = DotMLP(config.dimension, config.hidden_sizes, config.multiply, config.seeds, config.seed,
                   init="glorot" if config.init == "glorot" else "default").to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generators = [data.make_generator(data.training_seed(seed, 0), device) for seed in seeds]
    batches = iter(data.StackedBatches([data.PoolBatches(pool, config.batch_size, generator)
                                        for pool, generator in zip(pools, generators, strict=True)]))
    warm_up = config.steps_per_batch
    started = None
    for step in range(config.steps):
        if step == warm_up:
            sync(device)
            started = time.perf_counter()
        a, b, y = next(batches)
        loss = (model(a, b) - y).square().mean(dim=-1).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(device)
    return (config.steps - warm_up) * config.batch_size * config.seeds / (time.perf_counter() - started)


def measure(args) -> dict:
    torch.set_num_threads(args.threads)
    quiet_lightning()
    config = config_for(args)
    pairs = []
    for _ in range(args.repeats):
        bare_side = bare(config, args.sampling, args.device)
        pairs.append((bare_side, trainable(config, args.sampling, args.device)))
        print(f"bare {pairs[-1][0]:,.0f}/s  trainable {pairs[-1][1]:,.0f}/s  "
              f"ratio {pairs[-1][1] / pairs[-1][0]:.3f}", file=sys.stderr, flush=True)
    ratio = statistics.median(t / b for b, t in pairs)
    return {"users": args.users, "dimension": args.dimension, "m": args.m, "seeds": args.seeds,
            "steps": args.steps, "timed_steps": args.steps - config.steps_per_batch,
            "threads": args.threads, "init": args.init, "sampling": args.sampling,
            "bare_replica_samples_per_s": max(b for b, _ in pairs),
            "trainable_replica_samples_per_s": max(t for _, t in pairs), "ratio": ratio,
            "cpu": rendle_grid.cpu_name(),
            "device": torch.cuda.get_device_name() if args.device != "cpu" else "cpu"}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=128_000)
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--m", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=rendle_grid.PAPER_REPEATS)
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps per side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="back-to-back pairs")
    parser.add_argument("--init", choices=("glorot", "default"), default=rendle_grid.REFERENCE_INIT)
    parser.add_argument("--sampling", choices=("reference", "uniform"),
                        default=rendle_grid.REFERENCE_SAMPLING)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if min(args.users - 9, args.dimension, args.m, args.seeds, args.threads, args.repeats) < 1:
        parser.error("--users must be >= 10; --dimension, --m, --seeds, --threads, --repeats >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device visible to torch here")
    per_step = config_for(args).steps_per_batch
    if args.steps < 2 * per_step:
        parser.error(f"--steps must be at least two Lightning steps ({per_step} optimiser steps each)")
    result = measure(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.users} users, d = {args.dimension}, m = {args.m}, {args.seeds} seeds: trainable "
              f"{result['trainable_replica_samples_per_s']:,.0f}/s, bare "
              f"{result['bare_replica_samples_per_s']:,.0f}/s, ratio {result['ratio']:.3f}")
    return result


if __name__ == "__main__":
    main()
