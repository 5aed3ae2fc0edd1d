"""The search space: every architecture cell visited before any repeats, learning rates log-uniform."""

from __future__ import annotations

import itertools
import math
import random

from ray import tune

from dotmlp.config import SweepSettings


def search_space(settings: SweepSettings) -> dict:
    space = {
        "dimension": tune.choice(list(settings.dimensions)),
        "depth": tune.choice(list(settings.depths)),
        "width": tune.choice(list(settings.widths)),
        "multiply": tune.choice(list(settings.multiply)),
        "lr": tune.loguniform(settings.lr_min, settings.lr_max),
    }
    if settings.data == "pool":
        space["users"] = tune.choice(list(settings.users))
    return space


def architecture_grid(settings: SweepSettings) -> list[dict]:
    """Every (dimension, flag, depth, width) cell once, and with data pool every cell at every pool
    size (users); depth 0 has no width, so it is one cell. A sweep that lists its cells explicitly
    (a study) gets those."""
    if settings.cells is not None:
        return [{"dimension": d, "multiply": m, "depth": depth, "width": w}
                for d, m, depth, w in settings.cells]
    cells = []
    for dimension, multiply, depth in itertools.product(
        settings.dimensions, settings.multiply, settings.depths
    ):
        for width in settings.widths[:1] if depth == 0 else settings.widths:
            cells.append(
                {"dimension": dimension, "multiply": multiply, "depth": depth, "width": width}
            )
    if settings.data == "pool":
        return [{**cell, "users": users} for cell in cells for users in settings.users]
    return cells


def stratified_points(settings: SweepSettings) -> list[dict]:
    """num_samples configurations: every architecture cell at every learning rate of the grid.

    Rounds of the grid: in each round every cell appears once (shuffled), at a learning rate it
    has not had yet (each cell starts at a random place in the grid), so a sweep cut short of the
    whole grid still covers every cell, with fewer learning rates on some; the summary counts
    those. Rounds after the grid's draw further learning rates log-uniformly in its range.
    Independent draws of everything would leave about a third of the cells empty at 200 trials.
    """
    rng = random.Random(settings.seed)
    cells = architecture_grid(settings)
    grid = settings.learning_rates
    offsets = {id(cell): rng.randrange(len(grid)) for cell in cells}
    log_lo, log_hi = math.log(settings.lr_min), math.log(settings.lr_max)
    points, round_ = [], 0
    while len(points) < settings.num_samples:
        rng.shuffle(cells)
        for cell in cells[: settings.num_samples - len(points)]:
            if round_ < len(grid):
                lr = grid[(offsets[id(cell)] + round_) % len(grid)]
            else:
                lr = math.exp(rng.uniform(log_lo, log_hi))
            points.append({**cell, "lr": lr})
        round_ += 1
    return points
