"""One trial's settings: a single dataclass, validated once, with errors that name the argument."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

TARGETS = ("dot", "cosine")
DATA_REGIMES = ("fresh", "fixed", "pool")
SCHEDULES = ("constant", "cosine")
PRECISIONS = ("fp32", "bf16")
INITS = ("default", "construction", "glorot")
ASHA_GROUPS = ("task", "cell")
HALVINGS = ("asynchronous", "synchronous")
# A sweep's regimes: the fixed regime's training-set size is not a sweep axis.
SWEEP_DATA_REGIMES = ("fresh", "pool")
# Lightning costs ~0.6 ms per training step on this CPU, most of a step of the sweep's smallest
# nets; grouping up to 25 optimiser steps per Lightning step pays it once per group (25 divides the
# default evaluation interval, 125 steps; 8 would give 5).
MAX_STEPS_PER_BATCH = 25

# Rendle et al.'s protocol (google-research/google-research, dot_vs_learned_similarity/approx_dot.py,
# main(): num_samples = num_users * 100, a 90/10 train/test split of the observed pairs).
POOL_ITEMS_PER_USER = 100
POOL_TEST_FRACTION = 0.1
POOL_MIN_USERS = 10


def pool_pairs(users: int, items_per_user: int = POOL_ITEMS_PER_USER) -> int:
    """Observed (user, item) pairs of a pool of `users` users and as many items: 100 per user on
    average, or every pair when the pool is smaller than that (users < 100)."""
    return users * min(items_per_user, users)


def pool_train_pairs(users: int, items_per_user: int = POOL_ITEMS_PER_USER) -> int:
    n = pool_pairs(users, items_per_user)
    return n - pool_test_pairs(users, items_per_user)


def pool_test_pairs(users: int, items_per_user: int = POOL_ITEMS_PER_USER) -> int:
    return int(pool_pairs(users, items_per_user) * POOL_TEST_FRACTION)


def epoch_steps(epochs: int, users: int, batch_size: int, reports: int = 0) -> int:
    """Optimiser steps of `epochs` passes over a pool's training pairs, rounded up to a multiple of
    2**(reports-1) so that every evaluation of a ×2 ladder falls on a whole step (and at or just
    past its fraction of the epochs: ASHA's rungs in epochs are then reached, never missed)."""
    steps = math.ceil(epochs * pool_train_pairs(users) / batch_size)
    unit = 1 << max(reports - 1, 0)
    return -(-steps // unit) * unit


# Rendle et al.'s budget and batch: what a pool sweep trains unless told otherwise.
POOL_EPOCHS = 32
POOL_BATCH_SIZE = 256


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
    """fresh: new samples every step; fixed: train_samples pairs reused every epoch; pool: Rendle
    et al.'s finite users and items with noisy labels (see data.Pool)."""
    users: int | None = None
    """Pool regime: users (and as many items) in the pool; 100 observed pairs per user."""
    epochs: int | None = None
    """Pool regime: the budget in passes over the training pairs instead of steps; steps is then
    derived, ceil(epochs × training pairs / batch_size)."""
    train_samples: int = 1024
    """Size of the training set in the fixed regime."""
    val_samples: int = 16384
    """Size of the held-out set every metric is computed on."""
    eval_every: int = 0
    """Steps between held-out evaluations; 0 picks steps // 10 (at least 1). Ignored with reports."""
    reports: int = 0
    """Held-out evaluations on a geometric ladder, ×2 apart and ending at the budget: at
    steps / 2**j for j < reports, so every trial's curve is a learning curve on a log axis
    (0: every eval_every steps instead)."""
    schedule: str = "constant"
    """Learning-rate schedule: constant, or cosine decay to zero over the budget."""
    precision: str = "fp32"
    """fp32; or bf16: the training step's matrix products under bfloat16 autocast (the loss, Adam's
    state and every evaluation stay float32)."""
    init: str = "default"
    """default: PyTorch's initialisation; construction: the hand-built net (dotmlp.construction;
    depth 1, width 2·d·k for an even k ≥ 2), plus init_noise; glorot: Keras's Dense defaults
    (Glorot-uniform weights, zero biases), Rendle et al.'s code's (model.StackedLinear)."""
    init_noise: float = 0.0
    """With init construction: Gaussian noise added to every weight and bias, in units of the
    default initialisation's standard deviation for that layer (1: as large as a fresh init)."""
    hidden: tuple[int, ...] | None = None
    """Explicit hidden layer sizes (e.g. the notebook's [16, 8, 4, 2]); overrides depth and width."""
    seed: int = 0
    """Seeds the model's initialisation and the training data (the held-out set has its own seed)."""
    seeds: int = 1
    """Replicas trained side by side, with seeds seed … seed + seeds − 1 (own initialisation, own
    data); the reported NMSE is their median."""

    def __post_init__(self) -> None:
        if self.hidden is not None:
            object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.epochs is not None:
            # Derived once, here, so that everything downstream (Trainer, the ladder, the JSON)
            # counts the budget in the same unit as every other trial: optimiser steps.
            _int_at_least("batch_size", self.batch_size, 1)
            _int_at_least("reports", self.reports, 0)
            self._validate_pool()
            steps = epoch_steps(self.epochs, self.users, self.batch_size, self.reports)
            object.__setattr__(self, "steps", steps)
        self.validate()

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        if self.hidden is not None:
            return self.hidden
        return (self.width,) * self.depth

    @property
    def samples_per_step(self) -> int:
        """Training samples one optimiser step uses (per replica): a fixed set smaller than the
        batch is one whole batch."""
        return min(self.batch_size, self.train_samples) if self.data == "fixed" else self.batch_size

    @property
    def eval_interval(self) -> int:
        """Steps between two chances to evaluate (on a ladder: its first rung; see on_ladder)."""
        if self.reports:
            return self.steps >> (self.reports - 1)
        return self.eval_every or max(1, self.steps // 10)

    def evaluates_at(self, step: int) -> bool:
        """Whether the held-out set is scored at this step: on the ladder, or every interval, and
        always at the end of the budget (where train() scores a budget that ends between two)."""
        if step == self.steps:
            return True
        if step <= 0 or step % self.eval_interval:
            return False
        multiple = step // self.eval_interval
        return not self.reports or multiple & (multiple - 1) == 0  # a power of two

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
        _int_at_least("seeds", self.seeds, 1)
        _int_at_least("reports", self.reports, 0)
        _check_ladder(self.steps, self.reports, "steps")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)):
            raise ConfigError(f"lr must be a number > 0, got {self.lr!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a finite number > 0, got {self.lr!r}")
        _one_of("target", self.target, TARGETS)
        _one_of("data", self.data, DATA_REGIMES)
        _one_of("schedule", self.schedule, SCHEDULES)
        _one_of("precision", self.precision, PRECISIONS)
        _one_of("init", self.init, INITS)
        if isinstance(self.init_noise, bool) or not isinstance(self.init_noise, (int, float)) or not (
                math.isfinite(self.init_noise) and self.init_noise >= 0):
            raise ConfigError(f"init_noise must be a finite number >= 0, got {self.init_noise!r}")
        if self.init == "construction":
            k, rest = divmod(self.width, 2 * self.dimension)
            if self.hidden_sizes != (self.width,) or self.multiply or rest or k < 2 or k % 2:
                raise ConfigError("init construction needs depth 1, no multiply and width 2·d·k with k "
                                  f"even >= 2 (d = {self.dimension}: width {4 * self.dimension}, "
                                  f"{8 * self.dimension}, …), got depth {self.depth} width {self.width}")
        if self.hidden is not None:
            for size in self.hidden:
                _int_at_least("hidden layer size", size, 1)
        self._validate_pool()

    def _validate_pool(self) -> None:
        if self.data != "pool":
            for name in ("users", "epochs"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{name} applies to data pool only, got data {self.data!r}")
            return
        if self.users is None:
            raise ConfigError(f"users must be an integer >= {POOL_MIN_USERS} with data pool, got none")
        # Ten users make 100 pairs, of which 10 test: a smaller pool has no test split to score.
        _int_at_least("users", self.users, POOL_MIN_USERS)
        if self.epochs is not None:
            _int_at_least("epochs", self.epochs, 1)
        if self.target != "dot":
            # The label noise (sd 0.85) is on the dot product's scale; a cosine target is not the
            # paper's protocol.
            raise ConfigError(f"data pool takes target dot only, got target {self.target!r}")

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


def _check_ladder(steps: int, reports: int, name: str) -> None:
    if reports > 1 and steps % (1 << (reports - 1)):
        raise ConfigError(
            f"{name} must be a multiple of 2**(reports-1) = {1 << (reports - 1)} for {reports} "
            f"evaluations ×2 apart, got {steps}"
        )


def _one_of(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class SweepSettings:
    """What `sweep/run.py` runs: the search space, the budget, resources and where results go."""

    num_samples: int = 200
    """Trials in the sweep. Every (cell, learning rate) of the grid is one trial: a sweep smaller
    than the grid leaves some cells with fewer learning rates (the summary counts them), a larger
    one draws further learning rates log-uniformly in the range."""
    max_steps: int = 2048
    """Full budget of one trial in optimiser steps (ASHA's max_t)."""
    batch_size: int = 1024
    """Samples per step, the same for every trial so budgets compare."""
    reports: int = 6
    """Held-out evaluations per full budget, ×2 apart (2048 steps: at 64, 128, …, 2048), so every
    curve is a learning curve on a log axis and ASHA's rungs fall on it."""
    grace_fraction: float = 1 / 8
    """ASHA's first rung as a fraction of the full budget, rounded to the ladder. 1/8: replayed on
    the full-budget curves of the default sweep, it kept the best trial (within 10 %) in 12 of 14
    tasks instead of 11 for +1 % of the compute (benchmarks/README.md)."""
    reduction_factor: int = 4
    """ASHA keeps the best 1/reduction_factor of trials at each rung."""
    asha: bool = True
    """Prune with ASHA; False runs every trial to the full budget (to measure what ASHA saves)."""
    asha_per: str = "task"
    """What ASHA's trials compete within: "task" (dimension, flag), or "cell" (also depth and
    width): only a cell's learning rates compete, so every cell's best rate runs the full budget
    (a study's long budgets, where small nets trained long are the point, not losers)."""
    halving: str | None = None
    """How the rungs decide: "synchronous" (successive halving: a task's MLPs wait, paused, until
    all of them have reached the rung, then its best 1/reduction_factor go on;
    dotmlp.tune.scheduler.PerTaskHalving), or "asynchronous" (Tune's ASHA: a trial goes on from a
    rung at once if it is in the best 1/reduction_factor of those that reached it so far). None:
    synchronous, which on the default sweep kept the best within the seeds' range in 12 of 14
    tasks for 0.36 of the full budget's compute, where ASHA kept 11 for 0.58 (benchmarks/README.md);
    a pool sweep's time is epochs, which only ASHA takes."""
    dimensions: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    depths: tuple[int, ...] = (0, 1, 2)
    widths: tuple[int, ...] = (64, 256)
    lr_min: float = 1e-3
    lr_max: float = 1e-2
    lrs_per_cell: int = 3
    """Learning rates tried on every cell: a grid, log-spaced from lr_min to lr_max. A cell
    reports its best learning rate's median over seeds."""
    multiply: tuple[bool, ...] = (False, True)
    cells: tuple[tuple[int, bool, int, int], ...] | None = None
    """Explicit architecture cells (dimension, multiply, depth, width) instead of the product of
    the four lists above: a study puts its compute where the answer is decided (dotmlp.study)."""
    target: str = "dot"
    schedule: str = "constant"
    data: str = "fresh"
    """fresh: new vectors every step (the question's regime); pool: Rendle et al.'s finite users
    and items with noisy ratings, the pool size (users) searched like any other axis."""
    users: tuple[int, ...] = ()
    """Pool sizes (users = items, 100 ratings per user) searched, with data pool."""
    epochs: int | None = None
    """A pool trial's budget in passes over its training pairs (POOL_EPOCHS, the paper's, when not
    given): its steps follow from its pool size, and ASHA's time axis is epochs, so trials of
    every pool size are judged at the same fraction of their budget."""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None
    """GPU share per trial; None: 0.25 where Ray sees a GPU, else 0."""
    seed: int = 0
    seeds: int = 3
    """Replicas per trial (seeds seed … seed + seeds − 1); Tune and ASHA see their median. Three:
    a median that one unlucky seed cannot move (the seed alone moves a run by a median 2×)."""

    def __post_init__(self) -> None:
        if self.cells is not None:
            cells = tuple((int(d), bool(m), int(depth), int(w)) for d, m, depth, w in self.cells)
            object.__setattr__(self, "cells", cells)
            # The lists follow the cells, so figures draw the whole (sparse) grid.
            for name, index in (("dimensions", 0), ("multiply", 1), ("depths", 2), ("widths", 3)):
                values = sorted({cell[index] for cell in cells if name != "widths" or cell[2] > 0})
                object.__setattr__(self, name, tuple(values))
        for name in ("dimensions", "depths", "widths", "multiply", "users"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.data == "pool" and self.epochs is None:
            object.__setattr__(self, "epochs", POOL_EPOCHS)
        if self.halving is None:
            object.__setattr__(self, "halving", "asynchronous" if self.data == "pool" else "synchronous")
        self.validate()

    @property
    def time_attr(self) -> str:
        """The result ASHA measures a trial's progress by: steps, or with data pool epochs (pool
        trials of different sizes take different steps for the same passes over their data)."""
        return "epochs_done" if self.data == "pool" else "steps"

    @property
    def halves_synchronously(self) -> bool:
        """Whether trials are pruned at rungs, and by synchronous halving (PerTaskHalving)."""
        return self.asha and self.halving == "synchronous"

    @property
    def max_t(self) -> int:
        """The full budget in time_attr's unit."""
        return self.epochs if self.data == "pool" else self.max_steps

    @property
    def ladder(self) -> list[float]:
        """The budgets (time_attr) at which every trial is evaluated, ×2 apart, lowest first."""
        if self.data == "pool":
            return [self.epochs / 2**j for j in reversed(range(self.reports))]
        return [self.max_steps >> j for j in reversed(range(self.reports))]

    @property
    def grace_period(self) -> float:
        # On the ladder, so the first rung is decided at a report, not after it.
        target = self.max_t * self.grace_fraction
        return min(self.ladder, key=lambda budget: abs(math.log(budget / target)))

    @property
    def learning_rates(self) -> list[float]:
        """The per-cell grid: lrs_per_cell values log-spaced from lr_min to lr_max."""
        if self.lrs_per_cell == 1:
            return [self.lr_max]
        ratio = (self.lr_max / self.lr_min) ** (1 / (self.lrs_per_cell - 1))
        # The last one is lr_max itself: ratio**(n-1) rounds a hair above it, outside Tune's range.
        return [self.lr_min * ratio**i for i in range(self.lrs_per_cell - 1)] + [self.lr_max]

    def validate(self) -> None:
        _int_at_least("num_samples", self.num_samples, 1)
        _int_at_least("reports", self.reports, 1)
        _int_at_least("max_steps", self.max_steps, 1 << (self.reports - 1))
        _check_ladder(self.max_steps, self.reports, "max_steps")
        _int_at_least("lrs_per_cell", self.lrs_per_cell, 1)
        _int_at_least("batch_size", self.batch_size, 1)
        _int_at_least("reduction_factor", self.reduction_factor, 2)
        _int_at_least("seed", self.seed, 0)
        _int_at_least("seeds", self.seeds, 1)
        if not 0 < self.grace_fraction <= 1:
            raise ConfigError(f"grace_fraction must be in (0, 1], got {self.grace_fraction}")
        if self.cells is not None and not self.cells:
            raise ConfigError("cells must list at least one (dimension, multiply, depth, width)")
        for name, minimum in (("dimensions", 1), ("depths", 0), ("widths", 1)):
            values = getattr(self, name)
            if not values and not (name == "widths" and self.cells):  # linear cells only
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
        _one_of("asha_per", self.asha_per, ASHA_GROUPS)
        _one_of("halving", self.halving, HALVINGS)
        if self.halving == "synchronous" and self.data == "pool":
            raise ConfigError("synchronous halving runs on steps: a pool sweep (data pool) "
                              "takes asynchronous ASHA only")
        self._validate_pool()
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

    def _validate_pool(self) -> None:
        _one_of("data", self.data, SWEEP_DATA_REGIMES)
        if self.data != "pool":
            if self.users or self.epochs is not None:
                raise ConfigError(f"users and epochs apply to data pool only, got data {self.data!r}")
            return
        if not self.users:
            raise ConfigError(f"users must list pool sizes >= {POOL_MIN_USERS} with data pool")
        for users in self.users:
            _int_at_least("users", users, POOL_MIN_USERS)
        _int_at_least("epochs", self.epochs, 1)
        if self.cells is not None:
            raise ConfigError("a preset's cells are for the fresh regime; data pool searches "
                              "--depths and --widths")
        if self.target != "dot":
            raise ConfigError(f"data pool takes target dot only, got target {self.target!r}")

    def trial_settings(self) -> dict:
        """The settings every trial shares; Tune samples the rest."""
        return {
            "steps": self.max_steps,
            "batch_size": self.batch_size,
            "reports": self.reports,
            "target": self.target,
            "schedule": self.schedule,
            "seed": self.seed,
            "seeds": self.seeds,
            # A pool trial's users are sampled; its steps follow from them and the epochs.
            **({"data": "pool", "epochs": self.epochs} if self.data == "pool" else {}),
        }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> SweepSettings:
        return dataclasses.replace(self, **changes)
