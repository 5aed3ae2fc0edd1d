"""The private parts of Ray Tune the sweep relies on: checked at start-up, one clear error if any is
gone; and the public interfaces used where Tune has one."""

import pytest
from ray.tune.execution.tune_controller import TrialRunnerWrapper, TuneController
from ray.tune.integration.pytorch_lightning import TuneReportCheckpointCallback
from ray.tune.schedulers import ASHAScheduler

from dotmlp.config import SweepSettings
from dotmlp.tune import internals, scheduler, trainable, tuner


def test_the_installed_ray_has_every_private_hook_the_sweep_uses():
    internals.check()


def _without_the_wrapped_controller(monkeypatch):
    original = TrialRunnerWrapper.__init__

    def renamed(self, tune_controller, *args, **kwargs):
        original(self, tune_controller, *args, **kwargs)
        self._controller = vars(self).pop("_tune_controller")

    monkeypatch.setattr(TrialRunnerWrapper, "__init__", renamed)


@pytest.mark.parametrize("hook", ["TuneController._mark_trial_to_checkpoint",
                                  "TrialRunnerWrapper._tune_controller"])
def test_a_private_hook_gone_is_one_clear_error_before_the_sweep_starts(monkeypatch, hook, tmp_path):
    # As a later Ray that renamed it would have it.
    if hook.startswith("TuneController"):
        monkeypatch.delattr(TuneController, "_mark_trial_to_checkpoint")
    else:
        _without_the_wrapped_controller(monkeypatch)
    with pytest.raises(internals.RayInternalsError, match=rf"written for Ray 2\.60.*{hook}"):
        internals.check()
    # make_tuner checks before it builds anything.
    with pytest.raises(internals.RayInternalsError, match=hook):
        tuner.make_tuner(SweepSettings(num_samples=1), "checked", str(tmp_path),
                         f"sqlite:///{tmp_path}/mlflow.db", {"cpu": 1, "gpu": 0}, "sweep-id")
    assert not (tmp_path / "checked").exists()


def test_a_restored_sweep_s_callbacks_need_tune_s_local_tuner(tmp_path):
    from ray import tune

    callback = tune.Callback()
    restored = tune.Tuner(lambda config: None, run_config=tune.RunConfig(
        name="restored", storage_path=str(tmp_path), callbacks=[callback]))
    assert internals.run_config_callbacks(restored) == [callback]
    restored._local_tuner = None  # what a Tuner is under Ray Client (a ray:// address)
    with pytest.raises(internals.RayInternalsError, match=r"Tuner\._local_tuner.*Ray Client"):
        internals.run_config_callbacks(restored)


def test_the_report_callback_and_asha_per_task_use_tune_s_public_interfaces():
    # A plain Lightning callback around tune.report, not Ray's callback with its private hooks
    # (_get_report_dict, _get_checkpoint) overridden.
    assert not issubclass(trainable.ReportToTune, TuneReportCheckpointCallback)
    # One ASHAScheduler per task, driven through the scheduler interface only (no _brackets,
    # _trial_info of ASHA's).
    asha = scheduler.make_scheduler(SweepSettings(halving="asynchronous"))
    asha.set_search_properties("val_nmse", "min")
    one, again = asha.task_scheduler((8, False)), asha.task_scheduler((8, False))
    assert isinstance(one, ASHAScheduler) and one is again
    assert asha.task_scheduler((16, False)) is not one


@pytest.mark.slow
def test_saving_a_trial_s_state_reaches_tune_without_its_restricted_access_warning(tmp_path):
    import logging

    import ray
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
    from ray.util.debug import reset_log_once

    saved = []

    class SavesAtEveryResult(FIFOScheduler):
        def on_trial_result(self, tune_controller, trial, result):
            scheduler.save_state(tune_controller, trial)
            saved.append(trial in internals.controller(tune_controller)._trials_to_cache)
            return TrialScheduler.CONTINUE

    def report_twice(config):
        tune.report({"steps": 1})
        tune.report({"steps": 2})

    class Kept(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    kept = Kept()
    logging.getLogger("ray.tune.execution.tune_controller").addHandler(kept)
    reset_log_once("restrict_accessing_tune_controller")
    # "local": a bare ray.init() joins the cluster another pytest process may have running
    # (ray start and cluster_utils leave its address in /tmp/ray/ray_current_cluster).
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        grid = tune.Tuner(report_twice, tune_config=tune.TuneConfig(scheduler=SavesAtEveryResult()),
                          run_config=tune.RunConfig(name="saved", storage_path=str(tmp_path),
                                                    verbose=0)).fit()
    finally:
        ray.shutdown()
        logging.getLogger("ray.tune.execution.tune_controller").removeHandler(kept)
    assert grid[0].metrics["steps"] == 2 and not grid.errors
    assert saved == [True, True]  # marked for the next snapshot of the experiment's state
    assert not [line for line in kept.lines if "is being restricted" in line], kept.lines


def test_a_trial_held_at_an_undecided_rung_that_runs_anyway_is_a_clear_error():
    from ray.tune.experiment import Trial

    def halving():
        made = scheduler.PerTaskHalving({(8, False): 2}, milestones=[10, 40], reduction_factor=4)
        made.set_search_properties("val_nmse", "min")
        return made

    before = halving()
    trials = [Trial("held", config={"dimension": 8, "multiply": False}, stub=True) for _ in range(2)]
    for trial in trials:
        before.on_trial_add(None, trial)
    before.on_trial_result(None, trials[0], {"steps": 10, "val_nmse": 1e-3})  # waits at rung 0
    after = halving()  # --resume: the rungs back, the waiting trial requeued PENDING
    after.set_state(before.get_state())
    trials[0].set_status(Trial.PENDING)
    after.on_trial_add(None, trials[0])
    assert trials[0].status == Trial.PAUSED
    # Were a later Tune to start it all the same, its next report says so, before it is counted.
    with pytest.raises(internals.RayInternalsError, match=r"Ray 2\.60.*add_trial"):
        after.on_trial_result(None, trials[0], {"steps": 20, "val_nmse": 1e-3})
