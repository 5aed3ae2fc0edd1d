"""One trial's settings: a single dataclass, validated once, with errors that name the argument."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

TARGETS = ("dot", "cosine")
DATA_REGIMES = ("fresh", "fixed")
SCHEDULES = ("constant", "cosine")


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
