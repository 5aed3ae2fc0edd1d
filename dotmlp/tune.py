"""Everything Ray Tune: the trainable, the search space, ASHA per task, MLflow runs per trial, the sweep."""

from __future__ import annotations

import copy
import itertools
import math
import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import ray
from ray import tune
from ray.tune import Callback, CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner
from ray.tune.integration.pytorch_lightning import TuneReportCheckpointCallback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from dotmlp import tracking
from dotmlp.config import SweepSettings, TrialConfig

# MLflow is written from the driver only: trial workers import this module for train_trial, and
# importing MLflow there cost each worker ~0.9 s of start-up here, 1.8 s on a GPU machine.
if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

METRIC = "val_nmse"
# ASHA stops nothing whose metric is NaN (NaN < cutoff is false): a diverged trial reports this
# finite, worst-possible value instead, with diverged = 1, and ends itself.
DIVERGED_NMSE = 1e6
CHECKPOINT_FILE = "trial.ckpt"
# A checkpoint costs ~30 ms in the trial plus Tune's copy to storage. One every 4 reports (every
# quarter of the budget by default) bounds what a retried or resumed trial repeats, and the
# trials ASHA stops at the first rung (most of them) never write one.
CHECKPOINT_EVERY = 4
# Metrics sent to MLflow at every report (step = optimiser steps, the budget's unit).
LOGGED_METRICS = ("val_nmse", "val_mse", "val_rmse", "val_r2", "train_mse", "samples", "diverged")
STATUSES = ("completed", "pruned", "diverged", "errored")


# ---------------------------------------------------------------------------- inside a trial
class ReportToTune(TuneReportCheckpointCallback):
    """Ray's Lightning callback (report + checkpoint at each validation end), reporting the
    module's own metrics with the divergence sentinel in place of a NaN, and a checkpoint with
    every CHECKPOINT_EVERY-th report only."""

    @contextmanager
    def _get_checkpoint(self, trainer):
        if not checkpoint_due(trainer.lightning_module):
            yield None
            return
        with super()._get_checkpoint(trainer) as checkpoint:
            yield checkpoint

    def _get_report_dict(self, trainer, pl_module):
        pl_module = trainer.lightning_module  # Ray's hook wrapper passes None here
        if trainer.sanity_checking or not pl_module.last_metrics:
            return None
        # The node id, not the IP: nodes of a test cluster on one machine share an address.
        node_id = ray.get_runtime_context().get_node_id()
        report = {**pl_module.last_metrics, "params": pl_module.params, "node_id": node_id}
        if pl_module.diverged:
            report[METRIC] = DIVERGED_NMSE
        return report


def checkpoint_due(module) -> bool:
    """Whether this evaluation is a CHECKPOINT_EVERY-th one of the budget. Counted from the step,
    not from the reports a callback has seen, so a resumed trial keeps the same cadence."""
    return (module.global_step // module.config.eval_interval) % CHECKPOINT_EVERY == 0


def train_trial(config: dict, settings: dict) -> None:
    """The Tune trainable: one Lightning run on the device Tune gave this trial."""
    import torch

    from dotmlp.cli import quiet_lightning
    from dotmlp.train import train

    torch.set_num_threads(settings["threads"])
    quiet_lightning()
    trial = TrialConfig.from_dict({**settings, **config})
    callback = ReportToTune(filename=CHECKPOINT_FILE)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        train(trial, [callback])
        return
    with checkpoint.as_directory() as folder:  # resumed: after a node loss or --resume
        train(trial, [callback], ckpt_path=os.path.join(folder, CHECKPOINT_FILE))


# ---------------------------------------------------------------------------- search space
def search_space(settings: SweepSettings) -> dict:
    return {
        "dimension": tune.choice(list(settings.dimensions)),
        "depth": tune.choice(list(settings.depths)),
        "width": tune.choice(list(settings.widths)),
        "multiply": tune.choice(list(settings.multiply)),
        "lr": tune.loguniform(settings.lr_min, settings.lr_max),
    }


def architecture_grid(settings: SweepSettings) -> list[dict]:
    """Every (dimension, flag, depth, width) cell once; depth 0 has no width, so it is one cell."""
    cells = []
    for dimension, multiply, depth in itertools.product(
        settings.dimensions, settings.multiply, settings.depths
    ):
        for width in settings.widths[:1] if depth == 0 else settings.widths:
            cells.append(
                {"dimension": dimension, "multiply": multiply, "depth": depth, "width": width}
            )
    return cells


def stratified_points(settings: SweepSettings) -> list[dict]:
    """num_samples configurations that visit every architecture cell before repeating one.

    Drawing each trial independently would leave about a third of the cells of the default
    grid (182 cells, 200 trials) empty; the heatmaps need them filled. The learning rate is
    still drawn log-uniformly for every trial.
    """
    rng = random.Random(settings.seed)
    cells = architecture_grid(settings)
    points = []
    while len(points) < settings.num_samples:
        rng.shuffle(cells)
        points.extend(cells[: settings.num_samples - len(points)])
    log_lo, log_hi = math.log(settings.lr_min), math.log(settings.lr_max)
    return [{**cell, "lr": math.exp(rng.uniform(log_lo, log_hi))} for cell in points]


# ---------------------------------------------------------------------------- scheduler
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


def make_scheduler(settings: SweepSettings) -> PerTaskASHA | None:
    if not settings.asha:
        return None  # Tune's FIFO scheduler: every trial runs its full budget
    return PerTaskASHA(
        time_attr="steps",
        max_t=settings.max_steps,
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
    )


def rung_milestones(settings: SweepSettings) -> list[int]:
    """The budgets (steps) at which ASHA decides, lowest first, as ASHA's bracket computes them."""
    milestones, budget = [], settings.grace_period
    while budget < settings.max_steps:
        milestones.append(int(budget))
        budget *= settings.reduction_factor
    return milestones


def trial_status(result: dict | None, max_steps: int, errored: bool = False) -> str:
    if errored:
        return "errored"
    if result and result.get("diverged"):
        return "diverged"
    if result and result.get("steps", 0) >= max_steps:
        return "completed"
    return "pruned"


# ---------------------------------------------------------------------------- MLflow
class MLflowTrialRuns(Callback):
    """One MLflow run per Tune trial, written from the driver.

    One writer, so concurrent trials cannot contend for the SQLite store, and trials need no
    route to MLflow on a cluster. Runs are found again by (sweep, trial id) tags, so a restored
    sweep (whose callbacks start with no memory) reuses its runs instead of duplicating them.
    """

    def __init__(self, uri: str, experiment: str, sweep: str, shared_params: dict, max_steps: int):
        self.uri = uri
        self.experiment = experiment
        self.sweep = sweep
        self.shared_params = shared_params
        self.max_steps = max_steps
        self._client = None
        self._experiment_id = None
        self._runs: dict[str, str] = {}

    def __getstate__(self):  # Tune pickles callbacks into the experiment state
        state = self.__dict__.copy()
        state.update(_client=None, _experiment_id=None, _runs={})
        return state

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
            self._experiment_id = tracking.ensure_experiment(self.uri, self.experiment)
        return self._client

    def run_id(self, trial) -> str:
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        client = self.client
        found = client.search_runs(
            [self._experiment_id],
            filter_string=(
                f"tags.`{tracking.SWEEP_TAG}` = '{self.sweep}' and "
                f"tags.`{tracking.TRIAL_TAG}` = '{trial.trial_id}'"
            ),
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
        else:
            tags = {tracking.SWEEP_TAG: self.sweep, tracking.TRIAL_TAG: trial.trial_id}
            run = client.create_run(self._experiment_id, run_name=str(trial), tags=tags)
            run_id = run.info.run_id
            params = {**self.shared_params, **trial.config}
            from mlflow.entities import Param

            client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(params.items())])
        self._runs[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run_id(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        from mlflow.entities import Metric

        step, now = int(result.get("steps", 0)), int(time.time() * 1000)
        diverged = bool(result.get("diverged"))
        metrics = [
            Metric(key, float(result[key]), now, step)
            for key in LOGGED_METRICS
            if key in result
            and math.isfinite(float(result[key]))
            and not (diverged and key.startswith("val_"))  # the sentinel is not a measurement
        ]
        self.client.log_batch(self.run_id(trial), metrics=metrics)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, trial_status(trial.last_result, self.max_steps), "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "errored", "FAILED")

    def _finish(self, trial, status: str, run_status: str) -> None:
        run_id = self.run_id(trial)
        self.client.set_tag(run_id, tracking.STATUS_TAG, status)
        self.client.set_terminated(run_id, run_status)


# ---------------------------------------------------------------------------- the sweep
def resources(settings: SweepSettings, cluster_gpus: float) -> dict:
    gpus = settings.gpus_per_trial
    if gpus is None:
        # A GPU share on a cluster with no GPU leaves trials PENDING forever: default to 0 there.
        gpus = 0.25 if cluster_gpus > 0 else 0.0
    return {"cpu": settings.cpus_per_trial, "gpu": gpus}


def experiment_path(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}" if "://" in storage else str(Path(storage) / name)


def shared_settings(settings: SweepSettings) -> dict:
    """What train_trial gets besides its sampled config: the settings every trial shares, and
    its torch threads (one per CPU of the trial)."""
    return {**settings.trial_settings(), "threads": max(1, int(settings.cpus_per_trial))}


def make_trainable(settings: SweepSettings, trial_resources: dict):
    trainable = tune.with_parameters(train_trial, settings=shared_settings(settings))
    return tune.with_resources(trainable, trial_resources)


def make_tuner(
    settings: SweepSettings,
    name: str,
    storage: str,
    mlflow_uri: str,
    trial_resources: dict,
    max_failures: int = 2,
    verbose: int = 1,
) -> Tuner:
    runs = MLflowTrialRuns(
        mlflow_uri, name, name, settings.trial_settings(), settings.max_steps
    )
    reporter = tune.CLIReporter(
        parameter_columns=["dimension", "multiply", "depth", "width", "lr"],
        metric_columns=["steps", METRIC, "diverged"],
        max_report_frequency=30,
    )
    return Tuner(
        make_trainable(settings, trial_resources),
        param_space=search_space(settings),
        tune_config=TuneConfig(
            metric=METRIC,
            mode="min",
            scheduler=make_scheduler(settings),
            search_alg=BasicVariantGenerator(
                points_to_evaluate=stratified_points(settings), random_state=settings.seed
            ),
            num_samples=settings.num_samples,
            reuse_actors=True,
        ),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            callbacks=[runs],
            # Keeping 1 would force an experiment-state snapshot at every report; 4 lets Tune batch them.
            checkpoint_config=CheckpointConfig(num_to_keep=4),
            failure_config=FailureConfig(max_failures=max_failures),
            progress_reporter=reporter,
            verbose=verbose,
        ),
    )


def can_resume(storage: str, name: str) -> bool:
    return Tuner.can_restore(experiment_path(storage, name))


def restore_tuner(settings: SweepSettings, storage: str, name: str, trial_resources: dict) -> Tuner:
    # ASHA's rung records are not restored (ray-project/ray#30838): resumed trials are judged
    # only against results reported after the restart.
    return Tuner.restore(
        experiment_path(storage, name),
        trainable=make_trainable(settings, trial_resources),
        resume_unfinished=True,
        resume_errored=True,
    )
