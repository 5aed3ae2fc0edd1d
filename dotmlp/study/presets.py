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

DIMENSIONS = (1, 2, 4, 8, 16, 32, 64)
DEPTHS = (1, 2, 4)


def iso_parameter_cells(dimension: int, budgets: tuple[int, ...], depths=DEPTHS) -> list[tuple]:
    """(dimension, False, depth, width) cells: every budget at every depth, widths matched."""
    from dotmlp.sizes import width_for_params

    return [(dimension, False, depth, width_for_params(target, dimension, depth))
            for target in budgets for depth in depths]


def cpu_budgets(dimension: int) -> tuple[int, ...]:
    # Four times apart, and where each dimension's thresholds are crossed (the quick look: 1e-2 at
    # 257 parameters for d = 1, 2,561 for d = 4, ~4k for d = 8; 1e-3 at 1k for d = 1, 16k for d = 4).
    # A wide one-layer net costs in proportion to its width (activations, not parameters, at a
    # batch of 1,024), so the small-d budgets stay small: d = 1 at 32k parameters is 1 x 8,000,
    # 21 minutes for 2,048 steps on this (shared) machine, for an answer settled at 1k. d >= 32
    # cannot reach 1e-2 at any size this CPU affords; its three sizes are for the fit.
    return {1: (250, 1_000, 4_000), 2: (500, 2_000, 8_000), 4: (1_000, 4_000, 16_000),
            8: (4_000, 16_000, 64_000), 16: (8_000, 32_000, 128_000)}.get(
                dimension, (4_000, 16_000, 64_000))


def gpu_budgets(dimension: int) -> tuple[int, ...]:
    base = 16_000 if dimension <= 8 else 64_000
    return tuple(base * 4**k for k in range(4))  # up to 256 x base: widths of several thousand


def flag_cells(dimensions=DIMENSIONS) -> list[tuple]:
    # A linear model has no hidden width; 1 is what TrialConfig accepts (and ignores).
    return [cell for d in dimensions for cell in ((d, True, 0, 1), (d, True, 1, 16))]


def study_cpu() -> dict:
    """About an hour on two free CPU cores (more on a shared machine): 4.2M samples at most,
    widths up to 3,765 (1 x 3,765 at d = 16, 128k parameters)."""
    cells = [c for d in DIMENSIONS for c in iso_parameter_cells(d, cpu_budgets(d))]
    cells += flag_cells()
    return dict(cells=tuple(cells), max_steps=4096, reports=7, lr_min=3e-4, lr_max=1e-2,
                lrs_per_cell=3, seeds=3, num_samples=3 * len(cells), halving="asynchronous")


def study_cpu_long() -> dict:
    """The data axis to 3.4 x 10^7 samples (32,768 steps, 8x study-cpu's), where the answer is
    still open on this CPU: d = 8 at 1e-3 (1.4e-3 and still improving at 4.2M samples) and d = 16,
    whose fit had no capacity-limited point (every net was still data-limited). study-cpu's cells
    at its two smaller budgets, so the two sweeps' curves continue each other: depth 2 (the
    fit's reference depth) and depth 1 (the answer's smallest nets), except 1 x 941 at d = 16,
    whose step costs six times 2 x 162's for an answer (1e-3) no CPU budget reaches. ASHA per
    cell: only a cell's learning rates compete, so each cell's best rate runs the whole budget; a
    small net trained long is the capacity point the fit needs, not a loser."""
    cells = [c for d in (8, 16) for c in iso_parameter_cells(d, cpu_budgets(d)[:2], depths=(1, 2))
             if c != (16, False, 1, 941)]
    return dict(cells=tuple(cells), max_steps=32768, reports=10, lr_min=1e-3, lr_max=1e-2,
                lrs_per_cell=3, seeds=3, num_samples=3 * len(cells), halving="asynchronous", asha_per="cell")


def study_cpu_capacity() -> dict:
    """The fit's missing capacity points: depth-2 nets below study-cpu's smallest budget, trained
    to 3.4 x 10^7 samples (32,768 steps) at d = 1, 2, 4, 8 and 16, so that they flatten at what
    their size can represent. Without them the capacity term A·N^-α of d >= 8 was fitted on nets that
    were all still data-limited (α at its bound, "not determined"), and the law's pick for 1e-2 at
    d = 8, 2 x 22 trained on 7.6M samples, measured 4.4x its prediction: a net that small had
    never been trained long. Budgets ×2 apart below study-cpu's smallest for each dimension
    (250, 500, 1,000, 4,000, 8,000 parameters there); the nets are small, so the whole preset costs
    about 20 minutes on two free cores for d = 4 to 16, 6 for d = 1 and 2 (added later and run as a
    sweep of their own, `--dimensions 1,2`: the first sweep's record stays what it ran). ASHA per
    cell, as study-cpu-long: a small net trained long is the point, not a loser."""
    budgets = {1: (62, 125), 2: (125, 250), 4: (250, 500), 8: (500, 1_000, 2_000),
               16: (1_000, 2_000, 4_000)}
    cells = [c for d, sizes in budgets.items() for c in iso_parameter_cells(d, sizes, depths=(2,))]
    return dict(cells=tuple(cells), max_steps=32768, reports=10, lr_min=1e-3, lr_max=1e-2,
                lrs_per_cell=3, seeds=3, num_samples=3 * len(cells), halving="asynchronous", asha_per="cell")


def study_gpu() -> dict:
    """The sizes d = 32 and 64 need: widths of several thousand, 10^8 samples (needs a GPU)."""
    cells = [c for d in DIMENSIONS for c in iso_parameter_cells(d, gpu_budgets(d))]
    cells += flag_cells()
    return dict(cells=tuple(cells), max_steps=131072, reports=12, lr_min=1e-4, lr_max=3e-3,
                lrs_per_cell=3, seeds=3, num_samples=3 * len(cells), halving="asynchronous", batch_size=1024)


PRESETS = {"study-cpu": study_cpu, "study-cpu-long": study_cpu_long,
           "study-cpu-capacity": study_cpu_capacity, "study-gpu": study_gpu}
