"""One trial's settings: a single dataclass, validated once, with errors that name the argument."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

TARGETS = ("dot", "cosine")
DATA_REGIMES = ("fresh", "fixed")
SCHEDULES = ("constant", "cosine")
# Lightning costs ~0.6 ms per training step on this CPU, most of a step of the sweep's smallest
# nets; grouping up to 25 optimiser steps per Lightning step pays it once per group (25 divides the
# default evaluation interval, 125 steps; 8 would give 5).
MAX_STEPS_PER_BATCH = 25


class ConfigError(ValueError):
    """A setting outside its accepted range; the message names the argument and the range."""


@dataclass(frozen=True)
class TrialConfig:
    dimension: int
    """d: length of each of the two input vectors a and b (y = a·b)."""
    depth: int = 2
    """Number of hidden layers; 0 is a linear model on the inputs."""
    width: int = 64
    """Units per hidden layer (ignored when depth is 0 or hidden is given)."""
    lr: float = 1e-3
    """Adam's learning rate (the peak rate when a schedule is used)."""
    steps: int = 1000
    """Training budget in optimiser steps; samples = steps × batch_size."""
    batch_size: int = 1024
    """Samples per optimiser step."""
    multiply: bool = False
    """Feed a*b as an extra input: the dot product becomes linear in the inputs."""
    target: str = "dot"
    """dot: y = a·b (Var = d); cosine: y = a·b / (|a||b|) (Var ≈ 1/d)."""
    data: str = "fresh"
    """fresh: new samples every step; fixed: train_samples pairs reused every epoch."""
    train_samples: int = 1024
    """Size of the training set in the fixed regime."""
    val_samples: int = 16384
    """Size of the held-out set every metric is computed on."""
    eval_every: int = 0
    """Steps between held-out evaluations; 0 picks steps // 10 (at least 1)."""
    schedule: str = "constant"
    """Learning-rate schedule: constant, or cosine decay to zero over the budget."""
    hidden: tuple[int, ...] | None = None
    """Explicit hidden layer sizes (e.g. the notebook's [16, 8, 4, 2]); overrides depth and width."""
    seed: int = 0
    """Seeds the model's initialisation and the training data (the held-out set has its own seed)."""

    def __post_init__(self) -> None:
        if self.hidden is not None:
            object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        self.validate()

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        if self.hidden is not None:
            return self.hidden
        return (self.width,) * self.depth

    @property
    def eval_interval(self) -> int:
        return self.eval_every or max(1, self.steps // 10)

    @property
    def steps_per_batch(self) -> int:
        """Optimiser steps per Lightning training step (see data.Chunks): the largest k ≤ 25 that
        divides both the budget and the evaluation interval, so that evaluations and the end of
        the budget fall between two Lightning steps."""
        common = math.gcd(self.steps, self.eval_interval)
        return max(k for k in range(1, MAX_STEPS_PER_BATCH + 1) if common % k == 0)

    def validate(self) -> None:
        _int_at_least("dimension", self.dimension, 1)
        _int_at_least("depth", self.depth, 0)
        _int_at_least("width", self.width, 1)
        _int_at_least("steps", self.steps, 1)
        _int_at_least("batch_size", self.batch_size, 1)
        _int_at_least("train_samples", self.train_samples, 1)
        _int_at_least("val_samples", self.val_samples, 2)
        _int_at_least("eval_every", self.eval_every, 0)
        _int_at_least("seed", self.seed, 0)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)):
            raise ConfigError(f"lr must be a number > 0, got {self.lr!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr!r}")
        _one_of("target", self.target, TARGETS)
        _one_of("data", self.data, DATA_REGIMES)
        _one_of("schedule", self.schedule, SCHEDULES)
        if self.hidden is not None:
            for size in self.hidden:
                _int_at_least("hidden layer size", size, 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> TrialConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict) -> TrialConfig:
        """Build from a dict that may hold extra keys (a Tune config, say); unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _int_at_least(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value}")


def _one_of(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class SweepSettings:
    """What `sweep/run.py` runs: the search space, the budget, resources and where results go."""

    num_samples: int = 200
    """Trials in the sweep."""
    max_steps: int = 2000
    """Full budget of one trial in optimiser steps (ASHA's max_t)."""
    batch_size: int = 1024
    """Samples per step, the same for every trial so budgets compare."""
    reports: int = 16
    """Held-out evaluations (and reports to ASHA) over the full budget."""
    grace_fraction: float = 1 / 8
    """ASHA's first rung as a fraction of the full budget. 1/8 rather than 1/16: replayed on the
    full-budget curves of the default sweep, it kept the best trial (within 10 %) in 12 of 14
    tasks instead of 11 for +1 % of the compute (benchmarks/README.md)."""
    reduction_factor: int = 4
    """ASHA keeps the best 1/reduction_factor of trials at each rung."""
    asha: bool = True
    """Prune with ASHA; False runs every trial to the full budget (to measure what ASHA saves)."""
    dimensions: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    depths: tuple[int, ...] = (0, 1, 2, 4, 8)
    widths: tuple[int, ...] = (16, 64, 256)
    lr_min: float = 3e-4
    lr_max: float = 1e-2
    multiply: tuple[bool, ...] = (False, True)
    target: str = "dot"
    schedule: str = "constant"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None
    """GPU share per trial; None: 0.25 where Ray sees a GPU, else 0."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dimensions", "depths", "widths", "multiply"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    @property
    def eval_every(self) -> int:
        return self.max_steps // self.reports

    @property
    def grace_period(self) -> int:
        # A whole number of evaluations, so the first rung is decided at a report, not after it.
        return self.eval_every * max(1, round(self.max_steps * self.grace_fraction / self.eval_every))

    def validate(self) -> None:
        _int_at_least("num_samples", self.num_samples, 1)
        _int_at_least("reports", self.reports, 1)
        _int_at_least("max_steps", self.max_steps, self.reports)
        _int_at_least("batch_size", self.batch_size, 1)
        _int_at_least("reduction_factor", self.reduction_factor, 2)
        _int_at_least("seed", self.seed, 0)
        if not 0 < self.grace_fraction <= 1:
            raise ConfigError(f"grace_fraction must be in (0, 1], got {self.grace_fraction}")
        for name, minimum in (("dimensions", 1), ("depths", 0), ("widths", 1)):
            values = getattr(self, name)
            if not values:
                raise ConfigError(f"{name} must list at least one integer >= {minimum}")
            for value in values:
                _int_at_least(name, value, minimum)
        if not self.multiply or any(not isinstance(m, bool) for m in self.multiply):
            raise ConfigError(f"multiply must be a non-empty list of booleans, got {self.multiply!r}")
        for name in ("lr_min", "lr_max"):
            TrialConfig(dimension=1, lr=getattr(self, name))  # same rule as a trial's lr
        if self.lr_min > self.lr_max:
            raise ConfigError(f"lr range must have min <= max, got {self.lr_min} > {self.lr_max}")
        _one_of("target", self.target, TARGETS)
        _one_of("schedule", self.schedule, SCHEDULES)
        if not (isinstance(self.cpus_per_trial, (int, float)) and self.cpus_per_trial > 0):
            raise ConfigError(f"cpus-per-trial must be a number > 0, got {self.cpus_per_trial!r}")
        gpus = self.gpus_per_trial
        if gpus is not None:
            if not (isinstance(gpus, (int, float)) and math.isfinite(gpus) and gpus >= 0):
                raise ConfigError(f"gpus-per-trial must be a number >= 0, got {gpus!r}")
            if gpus > 1 and gpus != int(gpus):
                raise ConfigError(
                    f"gpus-per-trial must be a fraction in [0, 1] or a whole number, got {gpus}"
                )

    def trial_settings(self) -> dict:
        """The settings every trial shares; Tune samples the rest."""
        return {
            "steps": self.max_steps,
            "batch_size": self.batch_size,
            "eval_every": self.eval_every,
            "target": self.target,
            "schedule": self.schedule,
            "seed": self.seed,
        }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
