"""One MLflow run per Tune trial, written from the driver by a Tune callback."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from ray.tune import Callback

from dotmlp import tracking
from dotmlp.tune.status import trial_status

# MLflow is written from the driver only: trial workers import dotmlp.tune.trainable, and
# importing MLflow there cost each worker ~0.9 s of start-up here, 1.8 s on a GPU machine.
if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# Metrics sent to MLflow at every report (step = optimiser steps, the budget's unit).
# val_nmse is the median over the trial's replicas; each replica's own curve is val_nmse_seed<S>.
LOGGED_METRICS = ("val_nmse", "val_nmse_min", "val_nmse_max", "val_mse", "val_rmse", "val_r2",
                  "train_mse", "samples", "diverged", "diverged_replicas",
                  # a pool trial's: Rendle et al.'s RMSEs (against noisy ratings), the seeds' range
                  # of the MLP's, the exact dot product's and the naive predictor's, and its epochs
                  *(f"{split}_rmse{stat}" for split in ("train", "test", "fresh")
                    for stat in ("", "_min", "_max")),
                  "fresh_nmse", "dot_test_rmse", "dot_fresh_rmse", "naive_test_rmse",
                  "naive_fresh_rmse", "epochs_done")
REPLICA_METRIC_PREFIX = "val_nmse_seed"


class MLflowTrialRuns(Callback):
    """One MLflow run per Tune trial, written from the driver.

    One writer, so concurrent trials cannot contend for the SQLite store, and trials need no
    route to MLflow on a cluster. Runs are found again by (sweep id, trial id) tags, so a restored
    sweep (whose callbacks start with no memory) reuses its runs instead of duplicating them, and
    a new sweep under an old name never adopts the old one's runs.

    The store's URI is not pickled with the experiment: a resumed sweep sets it (`uri`) to the
    store it is told about, so a copied or moved sweep never writes into the original's store.
    """

    def __init__(self, uri: str, experiment: str, sweep_id: str, shared_params: dict,
                 max_t: float, asha: bool = True, time_attr: str = "steps"):
        self.uri = uri
        self.experiment = experiment
        self.sweep_id = sweep_id
        self.shared_params = shared_params
        self.max_t = max_t
        self.asha = asha
        self.time_attr = time_attr
        self._client = None
        self._experiment_id = None
        self._runs: dict[str, str] = {}
        self._devices: dict[str, str] = {}  # the device each trial's run is tagged with

    def __getstate__(self):  # Tune pickles callbacks into the experiment state
        state = self.__dict__.copy()
        state.update(uri=None, _client=None, _experiment_id=None, _runs={}, _devices={})
        return state

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            if self.uri is None:
                raise RuntimeError("MLflowTrialRuns.uri must be set again after a restore")
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
                f"tags.`{tracking.SWEEP_ID_TAG}` = '{self.sweep_id}' and "
                f"tags.`{tracking.TRIAL_TAG}` = '{trial.trial_id}'"
            ),
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
        else:
            tags = {tracking.SWEEP_TAG: self.experiment, tracking.SWEEP_ID_TAG: self.sweep_id,
                    tracking.TRIAL_TAG: trial.trial_id}
            run = client.create_run(self._experiment_id, run_name=run_name(trial.config),
                                    tags=tags)
            run_id = run.info.run_id
            params = {**self.shared_params, **trial.config}
            if params.get("depth") == 0:
                params.pop("width", None)  # a linear model has no hidden width
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
        keys = (*LOGGED_METRICS, *(k for k in result if k.startswith(REPLICA_METRIC_PREFIX)))
        metrics = [
            Metric(key, float(result[key]), now, step)
            for key in keys
            if key in result
            and math.isfinite(float(result[key]))
            and not (diverged and key.startswith("val_"))  # the sentinel is not a measurement
        ]
        run_id = self.run_id(trial)
        self.client.log_batch(run_id, metrics=metrics)
        # A sweep restored from before devices were tagged has no _devices.
        devices = self.__dict__.setdefault("_devices", {})
        device = result.get("device")
        if device and devices.get(trial.trial_id) != device:
            self.client.set_tag(run_id, tracking.DEVICE_TAG, device)
            devices[trial.trial_id] = device

    def on_trial_complete(self, iteration, trials, trial, **info):
        # Sweeps pickled before pool sweeps kept max_steps, and steps as their only time axis.
        max_t = getattr(self, "max_t", getattr(self, "max_steps", None))
        time_attr = getattr(self, "time_attr", "steps")
        # A trial may carry its own budget (the frontier search's runs differ in steps).
        max_t = trial.config.get(time_attr, max_t)
        status = trial_status(trial.last_result, max_t, "TERMINATED", self.asha, time_attr)
        self._finish(trial, status, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "errored", "FAILED")

    def _finish(self, trial, status: str, run_status: str) -> None:
        run_id = self.run_id(trial)
        self.client.set_tag(run_id, tracking.STATUS_TAG, status)
        self.client.set_terminated(run_id, run_status)


def run_name(config: dict) -> str:
    """What a user scanning the MLflow UI wants to see: 'd16 off 2x256 lr3.2e-03' (and a pool's
    size: 'd16 U4000 off 2x256 lr1.0e-03')."""
    flag = "on" if config.get("multiply") else "off"
    depth = config.get("depth")
    architecture = "linear" if depth == 0 else f"{depth}x{config.get('width')}"
    users = f" U{config['users']}" if config.get("users") else ""
    return f"d{config.get('dimension')}{users} {flag} {architecture} lr{config.get('lr', 0):.1e}"
