"""The Tuner: a new sweep or a restored one, with its resources, scheduler, search and callbacks."""

from __future__ import annotations

from pathlib import Path

from ray import tune
from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner
from ray.tune.search.basic_variant import BasicVariantGenerator

from dotmlp.config import SweepSettings
from dotmlp.tune import internals
from dotmlp.tune.mlflow_runs import MLflowTrialRuns
from dotmlp.tune.scheduler import HalvingState, PerTaskHalving, make_scheduler
from dotmlp.tune.space import search_space, stratified_points
from dotmlp.tune.trainable import METRIC, make_trainable


def resources(settings: SweepSettings, cluster_gpus: float) -> dict:
    gpus = settings.gpus_per_trial
    if gpus is None:
        # A GPU share on a cluster with no GPU leaves trials PENDING forever: default to 0 there.
        gpus = 0.25 if cluster_gpus > 0 else 0.0
    return {"cpu": settings.cpus_per_trial, "gpu": gpus}


def experiment_path(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}" if "://" in storage else str(Path(storage) / name)


def make_tuner(
    settings: SweepSettings,
    name: str,
    storage: str,
    mlflow_uri: str,
    trial_resources: dict,
    sweep_id: str,
    max_failures: int = 2,
    verbose: int = 1,
) -> Tuner:
    internals.check()  # the private parts of Tune the sweep relies on, before anything starts
    runs = MLflowTrialRuns(mlflow_uri, name, sweep_id, settings.trial_settings(), settings.max_t,
                           settings.asha, settings.time_attr)
    users = ["users"] if settings.data == "pool" else []
    reporter = tune.CLIReporter(
        parameter_columns=["dimension", *users, "multiply", "depth", "width", "lr"],
        metric_columns=["steps", METRIC, "diverged"],
        max_report_frequency=30,
    )
    scheduler = make_scheduler(settings)
    callbacks = [runs]
    if isinstance(scheduler, PerTaskHalving):
        callbacks.append(HalvingState(scheduler))
    return Tuner(
        make_trainable(settings, trial_resources),
        param_space=search_space(settings),
        tune_config=TuneConfig(
            metric=METRIC,
            mode="min",
            scheduler=scheduler,
            search_alg=BasicVariantGenerator(
                points_to_evaluate=stratified_points(settings), random_state=settings.seed
            ),
            num_samples=settings.num_samples,
            reuse_actors=True,
        ),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            callbacks=callbacks,
            # Keeping 1 would force an experiment-state snapshot at every report; 4 lets Tune batch them.
            checkpoint_config=CheckpointConfig(num_to_keep=4),
            failure_config=FailureConfig(max_failures=max_failures),
            progress_reporter=reporter,
            verbose=verbose,
        ),
    )


def can_resume(storage: str, name: str) -> bool:
    return Tuner.can_restore(experiment_path(storage, name))


def restore_tuner(
    settings: SweepSettings, storage: str, name: str, trial_resources: dict, mlflow_uri: str
) -> Tuner:
    """The sweep as it was left, with its own settings (the caller reads them from its record)
    and its MLflow runs written to mlflow_uri: the store where this sweep now lives."""
    # ASHA's rung records are not restored (ray-project/ray#30838): resumed trials are judged
    # only against results reported after the restart. Synchronous halving's are (HalvingState).
    internals.check()
    restored = Tuner.restore(
        experiment_path(storage, name),
        trainable=make_trainable(settings, trial_resources),
        resume_unfinished=True,
        resume_errored=True,
    )
    # Callbacks come back from the experiment's pickle; Tuner.restore takes no new ones. A
    # private handle is the only way in: checked, with one clear error (internals).
    callbacks = internals.run_config_callbacks(restored)
    for callback in callbacks:
        if isinstance(callback, MLflowTrialRuns):
            callback.uri = mlflow_uri
    if settings.halves_synchronously and not any(
            isinstance(callback, HalvingState) for callback in callbacks):
        # Started before the rungs were saved: a new PerTaskHalving would hold its resumed trials
        # at rungs for trials that already ended there.
        raise ValueError(f"--resume: {name!r} was started by a version of dotmlp that did not "
                         "save synchronous halving's rungs; run it again under another --name")
    return restored


def make_frontier_tuner(searcher, shared: SweepSettings, name: str, experiment: str, storage: str,
                        mlflow_uri: str, trial_resources: dict, sweep_id: str, max_failures: int = 2,
                        verbose: int = 1) -> Tuner:
    """The frontier search's Tuner: its searcher decides every run (and when the search is
    done), every run trains its whole budget (no pruning: the searcher reads final NMSEs of
    decayed runs), and each is an MLflow run like a sweep's trials, in the MLflow experiment
    `experiment` whatever Tune experiment `name` this invocation is."""
    from dotmlp.tune.scheduler import FullBudget

    internals.check()
    runs = MLflowTrialRuns(mlflow_uri, experiment, sweep_id, shared.trial_settings(), shared.max_t,
                           asha=False)
    reporter = tune.CLIReporter(
        parameter_columns=["dimension", "depth", "width", "lr", "steps"],
        metric_columns=[METRIC, "diverged"], max_report_frequency=60)
    return Tuner(
        make_trainable(shared, trial_resources),
        tune_config=TuneConfig(metric=METRIC, mode="min", scheduler=FullBudget(),
                               search_alg=searcher, num_samples=-1, reuse_actors=True),
        run_config=RunConfig(name=name, storage_path=storage, callbacks=[runs],
                             checkpoint_config=CheckpointConfig(num_to_keep=2),
                             failure_config=FailureConfig(max_failures=max_failures),
                             progress_reporter=reporter, verbose=verbose),
    )
