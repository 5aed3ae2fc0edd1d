"""ASHA per task (dimension, multiplication flag), with linear models exempt."""

from __future__ import annotations

import copy

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from dotmlp.config import SweepSettings


class PerTaskASHA(ASHAScheduler):
    """ASHA with one set of rungs per task (dimension, multiplication flag), which never stops
    a linear model (depth 0).

    NMSE is comparable across dimensions, but the tasks differ in difficulty by orders of
    magnitude: one shared set of rungs would prune every d = 64 trial (and every trial without
    the flag) against easy ones, leaving the hard half of the heatmaps empty.

    Linear models are the heatmaps' baseline, and with the flag they are exact, but they start
    slowest (Adam moves a weight by about lr per step: NMSE ~0.8 at the first rung, 1e-14 at
    the full budget), and plain ASHA stopped every one of them. They cost ~1/1000 of an MLP's
    compute: they run their whole budget and take no part in the rungs.
    """

    def __init__(self, group_by=("dimension", "multiply"), exempt_depths=(0,), **kwargs):
        super().__init__(**kwargs)
        self._group_by = tuple(group_by)
        self._exempt_depths = tuple(exempt_depths)
        self._template = self._brackets
        self._groups: dict[tuple, list] = {}

    def _exempt(self, trial) -> bool:
        return trial.config.get("depth") in self._exempt_depths

    def on_trial_result(self, tune_controller, trial, result):
        if self._exempt(trial):
            return TrialScheduler.CONTINUE  # the trainable ends itself at its budget
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        if self._exempt(trial):
            self._trial_info.pop(trial.trial_id, None)
            return
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_add(self, tune_controller, trial):
        key = tuple(trial.config.get(name) for name in self._group_by)
        if key not in self._groups:
            self._groups[key] = copy.deepcopy(self._template)
        self._brackets = self._groups[key]  # the parent assigns the trial to one of these
        super().on_trial_add(tune_controller, trial)


GROUPS = {"task": ("dimension", "multiply"), "cell": ("dimension", "multiply", "depth", "width")}


def make_scheduler(settings: SweepSettings) -> PerTaskASHA | None:
    if not settings.asha:
        return None  # Tune's FIFO scheduler: every trial runs its full budget
    # A pool's size is part of the task: a larger pool is easier to generalise from (and its
    # trials take more steps per epoch); its trials compete only with trials of the same pool.
    users = ("users",) if settings.data == "pool" else ()
    return PerTaskASHA(
        group_by=GROUPS[settings.asha_per] + users,
        time_attr=settings.time_attr,
        max_t=settings.max_t,
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
    )


def rung_milestones(settings: SweepSettings) -> list[float]:
    """The budgets (time_attr: steps, or epochs for a pool) at which ASHA decides, lowest first, as
    ASHA's bracket computes them."""
    milestones, budget = [], settings.grace_period
    while budget < settings.max_t:
        milestones.append(budget if settings.data == "pool" else int(budget))
        budget *= settings.reduction_factor
    return milestones
