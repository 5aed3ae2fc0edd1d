"""The sweep's pieces that need no running cluster: search space, ASHA per task, statuses."""

import math
from collections import Counter

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from dotmlp import tune as dtune
from dotmlp.config import ConfigError, SweepSettings


def test_stratified_points_fill_every_cell_before_repeating_one():
    settings = SweepSettings(num_samples=200)
    cells = dtune.architecture_grid(settings)
    assert len(cells) == 7 * 2 * (1 + 4 * 3)  # depth 0 has no width: one cell
    points = dtune.stratified_points(settings)
    assert len(points) == 200
    key = lambda p: (p["dimension"], p["multiply"], p["depth"], p["width"])  # noqa: E731
    counts = Counter(key(p) for p in points)
    assert set(counts) == {key(c) for c in cells} and max(counts.values()) == 2
    assert all(settings.lr_min <= p["lr"] <= settings.lr_max for p in points)
    assert dtune.stratified_points(settings) == points  # seeded
    assert dtune.stratified_points(SweepSettings(num_samples=200, seed=1)) != points


def test_learning_rates_are_log_uniform():
    points = dtune.stratified_points(SweepSettings(num_samples=2000, lr_min=1e-4, lr_max=1e-2))
    logs = [math.log10(p["lr"]) for p in points]
    below_geometric_mean = sum(x < -3 for x in logs) / len(logs)
    assert 0.45 < below_geometric_mean < 0.55


def _trial(dimension, multiply=False):
    return Trial("dotmlp_test", config={"dimension": dimension, "multiply": multiply}, stub=True)


def _feed(scheduler, trials, step, values):
    return [scheduler.on_trial_result(None, t, {"steps": step, "val_nmse": v})
            for t, v in zip(trials, values, strict=True)]


@pytest.mark.parametrize("per_task", [True, False])
def test_asha_compares_a_trial_only_with_its_own_task(per_task):
    kwargs = dict(time_attr="steps", metric="val_nmse", mode="min", max_t=160, grace_period=10,
                  reduction_factor=4)
    scheduler = dtune.PerTaskASHA(**kwargs) if per_task else ASHAScheduler(**kwargs)
    easy = [_trial(1) for _ in range(4)]
    hard = _trial(64)
    for trial in [*easy, hard]:
        scheduler.on_trial_add(None, trial)
    _feed(scheduler, easy, 10, [1e-4, 2e-4, 3e-4, 4e-4])
    [decision] = _feed(scheduler, [hard], 10, [0.5])
    # d = 64 is far harder than d = 1: one shared set of rungs prunes it on sight.
    expected = TrialScheduler.CONTINUE if per_task else TrialScheduler.STOP
    assert decision == expected


def test_per_task_asha_still_prunes_within_a_task():
    scheduler = dtune.PerTaskASHA(time_attr="steps", metric="val_nmse", mode="min", max_t=160,
                                  grace_period=10, reduction_factor=4)
    trials = [_trial(8) for _ in range(5)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    decisions = _feed(scheduler, trials, 10, [1e-3, 2e-3, 3e-3, 4e-3, 9e-1])
    assert decisions[-1] == TrialScheduler.STOP


def test_per_task_asha_lets_linear_models_run_and_keeps_them_out_of_the_rungs():
    scheduler = dtune.PerTaskASHA(time_attr="steps", metric="val_nmse", mode="min", max_t=160,
                                  grace_period=10, reduction_factor=4)
    mlps = [_trial(8) for _ in range(4)]
    linear = Trial("dotmlp_test", config={"dimension": 8, "multiply": False, "depth": 0}, stub=True)
    late = _trial(8)
    for trial in [*mlps, linear, late]:
        scheduler.on_trial_add(None, trial)
    _feed(scheduler, mlps, 10, [1e-3, 2e-3, 3e-3, 4e-3])
    # Far behind at the first rung, where an MLP this bad is stopped (see the test above) ...
    assert _feed(scheduler, [linear], 10, [0.8]) == [TrialScheduler.CONTINUE]
    assert _feed(scheduler, [linear], 40, [0.5]) == [TrialScheduler.CONTINUE]
    # ... and its values do not count: 0.8 in the rung would lower the cutoff to 2e-3 and let
    # this one through; against the MLPs alone the cutoff is 1.75e-3.
    assert _feed(scheduler, [late], 10, [1.8e-3]) == [TrialScheduler.STOP]
    scheduler.on_trial_complete(None, linear, {"steps": 160, "val_nmse": 1e-14})


def test_rung_milestones_are_asha_own():
    settings = SweepSettings()
    assert (settings.max_steps, settings.eval_every, settings.grace_period) == (2000, 125, 250)
    milestones = dtune.rung_milestones(settings)
    assert milestones == [250, 1000]
    bracket = dtune.make_scheduler(settings)._brackets[0]
    assert sorted(m for m, _ in bracket._rungs if m < settings.max_steps) == milestones


@pytest.mark.parametrize(
    "result, errored, status",
    [
        ({"steps": 2000, "diverged": 0.0}, False, "completed"),
        ({"steps": 500, "diverged": 0.0}, False, "pruned"),
        ({"steps": 30, "diverged": 1.0}, False, "diverged"),
        ({"steps": 125}, True, "errored"),
        (None, False, "pruned"),
    ],
)
def test_trial_status(result, errored, status):
    assert dtune.trial_status(result, 2000, errored) == status


def test_gpu_share_defaults_to_zero_without_gpus():
    assert dtune.resources(SweepSettings(), cluster_gpus=0) == {"cpu": 1.0, "gpu": 0.0}
    assert dtune.resources(SweepSettings(), cluster_gpus=1) == {"cpu": 1.0, "gpu": 0.25}
    assert dtune.resources(SweepSettings(gpus_per_trial=0.5), cluster_gpus=0)["gpu"] == 0.5


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"num_samples": 0}, "num_samples must be an integer >= 1"),
        ({"gpus_per_trial": -0.5}, "gpus-per-trial must be a number >= 0"),
        ({"gpus_per_trial": 1.5}, "fraction in \\[0, 1\\] or a whole number"),
        ({"cpus_per_trial": 0}, "cpus-per-trial must be a number > 0"),
        ({"dimensions": (0, 4)}, "dimensions must be an integer >= 1"),
        ({"lr_min": 1e-1, "lr_max": 1e-3}, "min <= max"),
        ({"lr_min": 0.0}, "lr must be a finite number > 0"),
    ],
)
def test_sweep_settings_are_validated(changes, words):
    with pytest.raises(ConfigError, match=words):
        SweepSettings(**changes)


def test_a_checkpoint_goes_with_every_fourth_evaluation_of_the_budget():
    import pytorch_lightning as pl

    from dotmlp.config import TrialConfig
    from dotmlp.train import train

    class Record(pl.Callback):
        def __init__(self):
            self.due = []

        def on_validation_end(self, trainer, pl_module):
            self.due.append((pl_module.global_step, dtune.checkpoint_due(pl_module)))

    record = Record()
    train(TrialConfig(dimension=2, depth=1, width=8, steps=80, eval_every=10), [record], accelerator="cpu")
    assert record.due == [(10 * i, i % dtune.CHECKPOINT_EVERY == 0) for i in range(1, 9)]
