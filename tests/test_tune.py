"""The sweep's pieces that need no running cluster: search space, ASHA per task, statuses."""

import math
from collections import Counter

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from dotmlp.config import ConfigError, SweepSettings
from dotmlp.tune import scheduler as dscheduler
from dotmlp.tune import space, trainable, tuner
from dotmlp.tune.status import trial_status


def test_every_cell_gets_every_learning_rate_of_the_grid_before_any_repeats():
    settings = SweepSettings(num_samples=210)
    cells = space.architecture_grid(settings)
    assert len(cells) == 7 * 2 * (1 + 2 * 2)  # depth 0 has no width: one cell
    points = space.stratified_points(settings)
    assert len(points) == 210 == len(cells) * len(settings.learning_rates)
    key = lambda p: (p["dimension"], p["multiply"], p["depth"], p["width"])  # noqa: E731
    lrs = {}
    for p in points:
        lrs.setdefault(key(p), []).append(p["lr"])
    assert set(lrs) == {key(c) for c in cells}
    assert all(sorted(v) == sorted(settings.learning_rates) for v in lrs.values())
    assert space.stratified_points(settings) == points  # seeded
    assert space.stratified_points(SweepSettings(num_samples=210, seed=1)) != points


def test_a_sweep_smaller_than_the_grid_still_visits_every_cell():
    settings = SweepSettings(num_samples=200)  # 70 cells x 3 learning rates = 210
    counts = Counter((p["dimension"], p["multiply"], p["depth"], p["width"])
                     for p in space.stratified_points(settings))
    assert len(counts) == 70 and sorted(Counter(counts.values()).items()) == [(2, 10), (3, 60)]


def test_the_learning_rate_grid_is_log_spaced_and_rounds_after_it_draw_in_its_range():
    settings = SweepSettings(num_samples=2000, lr_min=1e-4, lr_max=1e-2, lrs_per_cell=3)
    assert settings.learning_rates == pytest.approx([1e-4, 1e-3, 1e-2])
    extra = space.stratified_points(settings)[3 * 70:]  # the rounds after the grid's
    logs = [math.log10(p["lr"]) for p in extra]
    assert all(-4 <= x <= -2 for x in logs)
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
    scheduler = dscheduler.PerTaskASHA(**kwargs) if per_task else ASHAScheduler(**kwargs)
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
    scheduler = dscheduler.PerTaskASHA(time_attr="steps", metric="val_nmse", mode="min", max_t=160,
                                  grace_period=10, reduction_factor=4)
    trials = [_trial(8) for _ in range(5)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    decisions = _feed(scheduler, trials, 10, [1e-3, 2e-3, 3e-3, 4e-3, 9e-1])
    assert decisions[-1] == TrialScheduler.STOP


def test_per_task_asha_lets_linear_models_run_and_keeps_them_out_of_the_rungs():
    scheduler = dscheduler.PerTaskASHA(time_attr="steps", metric="val_nmse", mode="min", max_t=160,
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


@pytest.mark.parametrize("asha_per, small_net", [("task", TrialScheduler.STOP),
                                                 ("cell", TrialScheduler.CONTINUE)])
def test_asha_per_cell_compares_a_cell_only_with_its_own_learning_rates(asha_per, small_net):
    settings = SweepSettings(max_steps=160, reports=5, grace_fraction=1 / 16, asha_per=asha_per,
                             halving="asynchronous")
    scheduler = dscheduler.make_scheduler(settings)
    scheduler.set_search_properties("val_nmse", "min")
    def net(width):
        return Trial("dotmlp_test", config={"dimension": 16, "multiply": False, "depth": 1,
                                            "width": width}, stub=True)
    wide, small = [net(941) for _ in range(4)], net(235)
    for trial in [*wide, small]:
        scheduler.on_trial_add(None, trial)
    _feed(scheduler, wide, 10, [1e-2, 2e-2, 3e-2, 4e-2])
    # The small net is worse than every wide one at the first rung: per task it is stopped, per
    # cell it is the first of its own learning rates there and runs on.
    assert _feed(scheduler, [small], 10, [0.2]) == [small_net]


def test_asha_per_must_be_task_or_cell():
    with pytest.raises(ConfigError, match="asha_per must be one of task, cell"):
        SweepSettings(asha_per="node")


def _halving(cohort):
    scheduler = dscheduler.PerTaskHalving({(8, False): cohort}, milestones=[10, 40],
                                          reduction_factor=4)
    scheduler.set_search_properties("val_nmse", "min")
    return scheduler


def test_synchronous_halving_waits_for_the_whole_rung_then_keeps_its_best_quarter():
    scheduler = _halving(cohort=5)
    trials = [_trial(8) for _ in range(5)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    # The first four wait, whatever their value: under ASHA the first would go on unopposed.
    assert _feed(scheduler, trials[:4], 10, [3e-3, 1e-3, 4e-3, 5e-3]) == [TrialScheduler.PAUSE] * 4
    # The fifth fills the rung: ceil(5 / 4) = 2 go on, the best two (trials 1 and 4).
    assert _feed(scheduler, trials[4:], 10, [2e-3]) == [TrialScheduler.CONTINUE]
    assert scheduler._promoted == {trials[1].trial_id}  # paused: to be resumed
    assert scheduler._expected[(8, False)][1] == 2
    # Between rungs a trial runs on; at the second rung it waits for the other survivor.
    assert _feed(scheduler, [trials[4]], 20, [1e-3]) == [TrialScheduler.CONTINUE]
    assert _feed(scheduler, [trials[4]], 40, [9e-4]) == [TrialScheduler.PAUSE]
    assert _feed(scheduler, [trials[1]], 40, [5e-4]) == [TrialScheduler.CONTINUE]
    assert scheduler._promoted == set()  # ceil(2 / 4) = 1: trial 4 is stopped where it waits


def test_synchronous_halving_does_not_wait_for_a_trial_that_left_the_race():
    scheduler = _halving(cohort=3)
    mlps = [_trial(8) for _ in range(3)]
    linear = Trial("dotmlp_test", config={"dimension": 8, "multiply": False, "depth": 0}, stub=True)
    for trial in [*mlps, linear]:
        scheduler.on_trial_add(None, trial)
    assert _feed(scheduler, [linear], 10, [0.8]) == [TrialScheduler.CONTINUE]  # exempt, uncounted
    assert _feed(scheduler, mlps[:2], 10, [2e-3, 1e-3]) == [TrialScheduler.PAUSE] * 2
    # The third diverges before the rung and ends itself: the rung is full without it.
    diverged = {"steps": 8, "val_nmse": 1e6, "diverged": 1.0}
    assert scheduler.on_trial_result(None, mlps[2], diverged) == TrialScheduler.CONTINUE
    scheduler.on_trial_complete(None, mlps[2], diverged)
    assert scheduler._promoted == {mlps[1].trial_id}  # ceil(2 / 4) = 1 of the two that reported


def test_synchronous_halving_s_rungs_come_back_with_the_experiment():
    # What HalvingState saves with Tune's experiment state, and what --resume gives back to a
    # fresh scheduler (tests/test_record.py resumes a real sweep from it).
    scheduler = _halving(cohort=3)
    trials = [_trial(8) for _ in range(3)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    assert _feed(scheduler, trials[:2], 10, [2e-3, 1e-3]) == [TrialScheduler.PAUSE] * 2
    state = dscheduler.HalvingState(scheduler).get_state()
    restored = _halving(cohort=3)
    dscheduler.HalvingState(restored).set_state(state)
    # Tune requeues unfinished trials as PENDING: the two waiting at the rung wait PAUSED again,
    # the one still to reach it is left to run.
    for trial in trials:
        trial.set_status(Trial.PENDING)
        restored.on_trial_add(None, trial)
    assert [t.status for t in trials] == [Trial.PAUSED, Trial.PAUSED, Trial.PENDING]
    assert _feed(restored, trials[2:], 10, [3e-3]) == [TrialScheduler.STOP]  # the rung is full
    assert restored._promoted == {trials[1].trial_id}


def test_synchronous_halving_is_the_default_of_a_fresh_data_sweep():
    assert SweepSettings().halving == "synchronous"
    assert SweepSettings(data="pool", users=(1000,)).halving == "asynchronous"  # time is epochs
    assert isinstance(dscheduler.make_scheduler(SweepSettings()), dscheduler.PerTaskHalving)
    assert SweepSettings(halving="asynchronous").halving == "asynchronous"
    with pytest.raises(ConfigError, match="halving must be one of asynchronous, synchronous"):
        SweepSettings(halving="hyperband")
    with pytest.raises(ConfigError, match="synchronous halving runs on steps"):
        SweepSettings(halving="synchronous", data="pool", users=(1000,))


def test_synchronous_halving_knows_every_task_s_mlps_before_the_first_trial():
    settings = SweepSettings(halving="synchronous")
    scheduler = dscheduler.make_scheduler(settings)
    assert isinstance(scheduler, dscheduler.PerTaskHalving)
    mlps = [p for p in space.stratified_points(settings) if p["depth"] > 0]
    assert sum(scheduler._expected[key][0] for key in scheduler._expected) == len(mlps)
    assert trainable.shared_settings(settings)["pause_at"] == [256, 1024]
    assert trainable.shared_settings(SweepSettings(halving="asynchronous"))["pause_at"] == []


def test_rung_milestones_are_asha_own_and_on_the_evaluation_ladder():
    settings = SweepSettings()
    assert settings.ladder == [64, 128, 256, 512, 1024, 2048]
    assert (settings.max_steps, settings.grace_period) == (2048, 256)
    milestones = dscheduler.rung_milestones(settings)
    assert milestones == [256, 1024] and set(milestones) <= set(settings.ladder)
    asha = dscheduler.make_scheduler(settings.replace(halving="asynchronous"))
    bracket = asha.task_scheduler((2, False))._brackets[0]  # a task's ASHA, as Tune made it
    assert sorted(m for m, _ in bracket._rungs if m < settings.max_steps) == milestones


@pytest.mark.parametrize(
    "result, tune_status, asha, status",
    [
        ({"steps": 2000, "diverged": 0.0}, "TERMINATED", True, "completed"),
        ({"steps": 500, "diverged": 0.0}, "TERMINATED", True, "pruned"),
        ({"steps": 500, "diverged": 0.0}, "TERMINATED", False, "unfinished"),  # no ASHA, no pruning
        ({"steps": 500, "diverged": 0.0}, "PENDING", True, "unfinished"),  # an interrupted sweep
        ({"steps": 500, "diverged": 0.0}, "RUNNING", True, "unfinished"),
        ({"steps": 30, "diverged": 1.0}, "TERMINATED", True, "diverged"),
        ({"steps": 30, "diverged": float("nan")}, "TERMINATED", True, "pruned"),  # NaN is not True
        ({"steps": 125}, "ERROR", True, "errored"),
        (None, "PENDING", True, "unfinished"),
    ],
)
def test_trial_status(result, tune_status, asha, status):
    assert trial_status(result, 2000, tune_status, asha) == status


def test_gpu_share_defaults_to_zero_without_gpus():
    assert tuner.resources(SweepSettings(), cluster_gpus=0) == {"cpu": 1.0, "gpu": 0.0}
    assert tuner.resources(SweepSettings(), cluster_gpus=1) == {"cpu": 1.0, "gpu": 0.25}
    assert tuner.resources(SweepSettings(gpus_per_trial=0.5), cluster_gpus=0)["gpu"] == 0.5


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
        ({"lrs_per_cell": 0}, "lrs_per_cell must be an integer >= 1"),
        ({"seeds": 0}, "seeds must be an integer >= 1"),
        ({"max_steps": 1000, "reports": 6}, "max_steps must be a multiple of 2\\*\\*\\(reports-1\\) = 32"),
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
            self.due.append((pl_module.global_step, trainable.checkpoint_due(pl_module)))

    record = Record()
    train(TrialConfig(dimension=2, depth=1, width=8, steps=80, eval_every=10), [record], accelerator="cpu")
    assert record.due == [(10 * i, i % trainable.CHECKPOINT_EVERY == 0) for i in range(1, 9)]


def test_on_a_ladder_evaluations_double_and_the_last_three_checkpoint():
    import pytorch_lightning as pl

    from dotmlp.config import TrialConfig
    from dotmlp.train import train

    class Record(pl.Callback):
        def __init__(self):
            self.scored = []

        def on_validation_end(self, trainer, pl_module):
            if pl_module.last_metrics.get("steps") == trainer.global_step:
                self.scored.append((trainer.global_step, trainable.checkpoint_due(pl_module)))

    record = Record()
    result = train(TrialConfig(dimension=2, depth=1, width=8, steps=256, reports=5), [record],
                   accelerator="cpu")
    assert record.scored == [(16, False), (32, False), (64, True), (128, True), (256, True)]
    assert result["steps_previous"] == 128 and result["val_nmse_previous"] > 0


def test_a_trial_trains_on_the_device_kind_ray_granted_it():
    # What Ray granted, not what the worker sees: Ray 2.60 leaves GPUs visible to 0-GPU workers.
    assert trainable.accelerator_for({"CPU": 1.0}) == "cpu"
    assert trainable.accelerator_for({"CPU": 1.0, "GPU": 0.0}) == "cpu"
    assert trainable.accelerator_for({"CPU": 1.0, "GPU": 0.25}) == "gpu"
    # Granted a GPU that torch cannot see (Ray's fake GPUs, a CPU build of torch): the CPU.
    assert trainable.accelerator_for({"CPU": 1.0, "GPU": 0.25}, cuda_available=False) == "cpu"


def test_resume_keeps_every_trial_on_its_device_kind():
    from dotmlp import sweep

    on_cpu = {"name": "s", "resources": {"cpu": 1.0, "gpu": 0.0}}
    sweep.check_device_kind(on_cpu, {"cpu": 2.0, "gpu": 0.0})  # more CPUs: the same device
    with pytest.raises(sweep.UsageError, match=r"gpus-per-trial 0.25 .*CPU.*GPU"):
        sweep.check_device_kind(on_cpu, {"cpu": 1.0, "gpu": 0.25})
    on_gpu = {"name": "s", "resources": {"cpu": 1.0, "gpu": 0.25}}
    sweep.check_device_kind(on_gpu, {"cpu": 1.0, "gpu": 0.5})  # a larger share: still a GPU
    with pytest.raises(sweep.UsageError, match=r"gpus-per-trial 0 .*GPU.*CPU"):
        sweep.check_device_kind(on_gpu, {"cpu": 1.0, "gpu": 0.0})


def test_the_mlflow_run_is_tagged_with_the_trial_s_device(tmp_path):
    from mlflow.tracking import MlflowClient

    from dotmlp import tracking
    from dotmlp.tune.mlflow_runs import MLflowTrialRuns

    uri = tracking.default_uri(tmp_path)
    tracking.ensure_experiment(uri, "devices")
    runs = MLflowTrialRuns(uri, "devices", "sweep-1", {}, max_t=64)
    trial = _trial(4)
    runs.on_trial_result(0, [trial], trial, {"steps": 64, "val_nmse": 0.1, "device": "cpu"})
    assert MlflowClient(uri).get_run(runs.run_id(trial)).data.tags[tracking.DEVICE_TAG] == "cpu"


@pytest.mark.parametrize("value, decision", [(2e-3, TrialScheduler.CONTINUE),
                                             (3.5e-3, TrialScheduler.STOP)])
def test_a_trial_errored_before_its_first_rung_is_judged_there_when_resumed(value, decision):
    scheduler = _halving(cohort=5)
    trials = [_trial(8) for _ in range(5)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    errored = trials[4]
    scheduler.on_trial_error(None, errored)  # its retries spent before rung 0: the rung goes on
    assert _feed(scheduler, trials[:4], 10, [3e-3, 1e-3, 4e-3, 5e-3]) == [TrialScheduler.PAUSE] * 3 + [
        TrialScheduler.STOP]  # ceil(4 / 4) = 1 goes on: trial 1
    # --resume: the rungs come back (HalvingState) and Tune requeues the errored trial as PENDING.
    resumed = _halving(cohort=5)
    dscheduler.HalvingState(resumed).set_state(dscheduler.HalvingState(scheduler).get_state())
    errored.set_status(Trial.PENDING)
    resumed.on_trial_add(None, errored)
    # At rung 0 it meets its peers' rule: the best ceil(5 / 4) = 2 of the 5 that reported there.
    assert _feed(resumed, [errored], 10, [value]) == [decision]
    kept = decision == TrialScheduler.CONTINUE
    assert resumed._expected[(8, False)][1] == 1 + kept  # rung 1 waits for it too, if kept
    if kept:
        assert _feed(resumed, [trials[1]], 40, [5e-4]) == [TrialScheduler.PAUSE]
        # Rung 1 is full with it; ceil(2 / 4) = 1 goes on, the better of the two.
        assert _feed(resumed, [errored], 40, [4e-4]) == [TrialScheduler.CONTINUE]


def test_a_trial_errored_at_an_undecided_rung_races_there_when_resumed():
    scheduler = _halving(cohort=3)
    trials = [_trial(8) for _ in range(3)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    assert _feed(scheduler, trials[:1], 10, [2e-3]) == [TrialScheduler.PAUSE]
    scheduler.on_trial_error(None, trials[2])  # the sweep stops before trial 1 reaches the rung
    resumed = _halving(cohort=3)
    dscheduler.HalvingState(resumed).set_state(dscheduler.HalvingState(scheduler).get_state())
    for trial in trials[1:]:
        trial.set_status(Trial.PENDING)
        resumed.on_trial_add(None, trial)
    assert _feed(resumed, [trials[1]], 10, [3e-3]) == [TrialScheduler.PAUSE]  # waits for trial 2
    assert _feed(resumed, [trials[2]], 10, [1e-3]) == [TrialScheduler.CONTINUE]  # the best of 3
    assert resumed._promoted == set()  # ceil(3 / 4) = 1: the two waiting are stopped
