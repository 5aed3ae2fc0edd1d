"""Train one configuration: `python -m dotmlp.train --dimension 1 --depth 2 --width 64 --steps 3000`."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dotmlp.cli import ArgumentParser, fail, int_list, quiet_lightning
from dotmlp.config import DATA_REGIMES, INITS, PRECISIONS, SCHEDULES, TARGETS, ConfigError, TrialConfig

# torch and Lightning take seconds to import: the CLI validates its arguments before paying that.
if TYPE_CHECKING:
    import pytorch_lightning as pl

    from dotmlp.module import DotProductModule


def make_trainer(
    config: TrialConfig, callbacks: Iterable[pl.Callback] = (), accelerator: str = "auto"
) -> pl.Trainer:
    """A Trainer that only trains and evaluates: no logger, progress bar or checkpoints of its own
    (each costs time per step; the sweep adds what it needs as callbacks)."""
    import pytorch_lightning as pl

    return pl.Trainer(
        max_steps=config.steps,
        max_epochs=-1,
        val_check_interval=config.eval_interval // config.steps_per_batch,  # in Lightning steps
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        limit_val_batches=1,
        accelerator=accelerator,
        devices=1,
        precision="32-true",  # DotProductModule.training_step calls loss.backward() itself
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )


def train(
    config: TrialConfig,
    callbacks: Iterable[pl.Callback] = (),
    ckpt_path: str | None = None,
    accelerator: str = "auto",
) -> dict:
    """Train one model to its budget (or until it diverges) and return its held-out metrics."""
    import pytorch_lightning as pl

    from dotmlp.module import DotProductModule

    pl.seed_everything(config.seed, verbose=False)
    module = DotProductModule(config.to_dict())
    trainer = make_trainer(config, callbacks, accelerator)
    started = time.perf_counter()
    trainer.fit(module, ckpt_path=ckpt_path)
    seconds = time.perf_counter() - started
    if module.last_metrics.get("steps") != trainer.global_step and not module.diverged:
        trainer.validate(module, verbose=False)  # the budget ended between two evaluations
    # The device it trained on: Lightning moves the module back to the CPU when fit ends.
    return summarize(module, trainer.global_step, seconds, str(trainer.strategy.root_device))


def summarize(module: DotProductModule, steps: int, seconds: float, device: str) -> dict:
    samples = steps * module.config.samples_per_step
    return {
        **module.last_metrics,
        "diverged": module.diverged,
        "params": module.params,
        "steps": steps,
        "samples": samples,
        "seconds": seconds,
        "samples_per_second": samples / seconds if seconds > 0 else float("nan"),
        # Replicas train side by side: the work done is samples × seeds.
        "replica_samples_per_second": samples * module.config.seeds / seconds if seconds > 0
        else float("nan"),
        "val_nmse_seeds": [module.last_metrics.get(f"val_nmse_seed{module.config.seed + k}")
                           for k in range(module.config.seeds)],
        "device": device,
        "config": module.config.to_dict(),
    }


def finite_or_none(values: dict) -> dict:
    """Strict JSON has no NaN: a diverged run's metrics become null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()
    }


# What the pool regime adds to the JSON: Rendle et al.'s table (RMSE against the noisy labels).
POOL_KEYS = (
    "train_rmse", "test_rmse", "fresh_rmse", "dot_test_rmse", "dot_fresh_rmse", "naive_fresh_rmse"
)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m dotmlp.train", description=__doc__)
    parser.add_argument("--dimension", type=int, required=True, help="d, the vectors' length (>= 1)")
    parser.add_argument("--depth", type=int, default=2, help="hidden layers (>= 0; 0 = linear)")
    parser.add_argument("--width", type=int, default=64, help="units per hidden layer (>= 1)")
    parser.add_argument(
        "--layers", default=None, help="explicit hidden sizes, e.g. 16,8,4,2 (overrides depth, width)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (> 0)")
    parser.add_argument(
        "--rendle-m", type=int, default=None,
        help="Rendle et al.'s MLP: hidden 2md, md, md/2 (m >= 1; overrides depth and width)",
    )
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (>= 1)")
    parser.add_argument(
        "--epochs", type=int, default=None,
        help="pool regime: passes over the training pairs, instead of --steps (>= 1)",
    )
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--multiply", action="store_true", help="feed a*b as an extra input")
    parser.add_argument("--target", choices=TARGETS, default="dot")
    parser.add_argument("--data", choices=DATA_REGIMES, default="fresh")
    parser.add_argument("--train-samples", type=int, default=1024, help="fixed regime: training pairs")
    parser.add_argument(
        "--users", type=int, default=None, help="pool regime: users, and as many items (>= 10)"
    )
    parser.add_argument("--val-samples", type=int, default=16384, help="held-out pairs")
    parser.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: steps/10)")
    parser.add_argument("--schedule", choices=SCHEDULES, default="constant")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16: the training step's products under bfloat16 autocast (evaluations fp32)")
    parser.add_argument("--init", choices=INITS, default="default",
                        help="construction: start from the hand-built net (depth 1, width 2·d·k, k even)")
    parser.add_argument("--init-noise", type=float, default=0.0,
                        help="with --init construction: noise, in units of the default init's std")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1,
                        help="replicas with seeds seed … seed+K-1; val_nmse is their median")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", action="store_true", help="last stdout line: the results as JSON")
    return parser


def rendle_hidden(m: int, dimension: int) -> tuple[int, ...]:
    """The MLP of Rendle et al.'s Figure 3: hidden ReLU layers of 2·m·d, m·d and m·d/2 units
    (google-research dot_vs_learned_similarity/approx_dot.py, TrainMLP: first_layer_mult = m)."""
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ConfigError(f"rendle-m must be an integer >= 1, got {m!r}")
    if dimension >= 1 and m * dimension < 2:  # a bad dimension is TrialConfig's to report
        raise ConfigError(f"rendle-m × dimension must be >= 2 (its last layer has m·d/2 units), "
                          f"got {m} × {dimension}")
    return (2 * m * dimension, m * dimension, m * dimension // 2)


def parse_config(args) -> TrialConfig:
    if (args.steps is None) == (args.epochs is None):
        raise ConfigError("give the budget as --steps (>= 1) or --epochs (>= 1, data pool), "
                          "one of the two")
    hidden = None
    if args.rendle_m is not None:
        if args.layers is not None:
            raise ConfigError("rendle-m and layers both set the hidden layers: give one")
        hidden = rendle_hidden(args.rendle_m, args.dimension)
    elif args.layers is not None:
        hidden = int_list("layers", args.layers)
    return TrialConfig(
        dimension=args.dimension,
        depth=len(hidden) if hidden is not None else args.depth,
        width=args.width,
        hidden=hidden,
        lr=args.lr,
        steps=args.steps if args.steps is not None else 1,  # derived from epochs otherwise
        epochs=args.epochs,
        users=args.users,
        batch_size=args.batch_size,
        multiply=args.multiply,
        target=args.target,
        data=args.data,
        train_samples=args.train_samples,
        val_samples=args.val_samples,
        eval_every=args.eval_every,
        schedule=args.schedule,
        precision=args.precision,
        init=args.init,
        init_noise=args.init_noise,
        seed=args.seed,
        seeds=args.seeds,
    )


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = parse_config(args)
    except ConfigError as error:
        fail(parser.prog, str(error))
    if args.threads < 0:
        fail(parser.prog, f"threads must be an integer >= 0, got {args.threads}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    quiet_lightning()
    print(f"config: {json.dumps(config.to_dict())}", flush=True)
    result = train(config)
    if args.json:
        print(json.dumps(finite_or_none(result), allow_nan=False))
    else:
        status = "DIVERGED" if result["diverged"] else "done"
        print(
            f"{status}: val_nmse={result['val_nmse']:.3g} val_mse={result['val_mse']:.3g} "
            f"train_mse={result['train_mse']:.3g} params={result['params']} steps={result['steps']} "
            f"samples/s={result['samples_per_second']:.0f}"
        )
        if config.data == "pool":
            print(
                "rmse: "
                + " ".join(f"{k}={result[k]:.4f}" for k in POOL_KEYS if k in result)
            )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
