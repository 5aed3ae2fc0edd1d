"""The study that answers the question: which cells a study sweep trains, on which machine.

`python sweep/run.py --preset study-cpu` (or `study-gpu`) runs one sweep whose cells are chosen
here, not the product of a few widths and depths:

- **Size at equal parameters across depths.** For each dimension without the flag, three
  parameter budgets P, each at depth 1, 2 and 4 with widths chosen so the three networks have
  P parameters within 10 %: the size axis of the scaling fit (N = P) and the deep-against-shallow
  comparison come from the same trials. The budgets grow with d (the problem gets harder fast),
  so compute goes where each dimension's thresholds are crossed, not to cells already settled
  (a width-16k net at d = 1) or hopeless at this budget.
- **The data axis comes free**: every trial is evaluated on a ×2 ladder of budgets, so each is a
  learning curve; ASHA (per task) stops the losers early and spends the long budgets on the
  best learning rates of each task.
- **The flag half needs little**: with a*b as an input a linear model is exact, so a linear model
  and one small MLP per dimension are enough to show it.
"""

from __future__ import annotations

from dotmlp.config import SweepSettings

DIMENSIONS = (1, 2, 4, 8, 16, 32, 64)
DEPTHS = (1, 2, 4)


def iso_parameter_cells(dimension: int, budgets: tuple[int, ...], depths=DEPTHS) -> list[tuple]:
    """(dimension, False, depth, width) cells: every budget at every depth, widths matched."""
    from dotmlp.scaling import width_for_params  # numpy: only when a preset is asked for

    return [(dimension, False, depth, width_for_params(target, dimension, depth))
            for target in budgets for depth in depths]


def cpu_budgets(dimension: int) -> tuple[int, ...]:
    # Four times apart, from the size where the small-d nets already pass 1e-3 (the reference
    # sweep: 2 x 64 at d = 1, 4k parameters) to the largest this CPU trains in the study's hour.
    base = 2_000 if dimension <= 2 else 4_000 if dimension <= 8 else 8_000
    return (base, 4 * base, 16 * base)


def gpu_budgets(dimension: int) -> tuple[int, ...]:
    base = 16_000 if dimension <= 8 else 64_000
    return tuple(base * 4**k for k in range(4))  # up to 256 x base: widths of several thousand


def flag_cells(dimensions=DIMENSIONS) -> list[tuple]:
    # A linear model has no hidden width; 1 is what TrialConfig accepts (and ignores).
    return [cell for d in dimensions for cell in ((d, True, 0, 1), (d, True, 1, 16))]


def study_cpu() -> dict:
    """About an hour on two free CPU cores (more on a shared machine): 4.2M samples at most."""
    cells = [c for d in DIMENSIONS for c in iso_parameter_cells(d, cpu_budgets(d))]
    cells += flag_cells()
    return dict(cells=tuple(cells), max_steps=4096, reports=7, lr_min=3e-4, lr_max=1e-2,
                lrs_per_cell=3, seeds=3, num_samples=3 * len(cells))


def study_gpu() -> dict:
    """The sizes d = 32 and 64 need: widths of several thousand, 10^8 samples (needs a GPU)."""
    cells = [c for d in DIMENSIONS for c in iso_parameter_cells(d, gpu_budgets(d))]
    cells += flag_cells()
    return dict(cells=tuple(cells), max_steps=131072, reports=12, lr_min=1e-4, lr_max=3e-3,
                lrs_per_cell=3, seeds=3, num_samples=3 * len(cells), batch_size=1024)


PRESETS = {"study-cpu": study_cpu, "study-gpu": study_gpu}


def preset(name: str, **overrides) -> SweepSettings:
    return SweepSettings(**{**PRESETS[name](), **overrides})
