"""The Tune trainable: one Lightning run per trial, reporting to Tune at every evaluation."""

from __future__ import annotations

import os
import tempfile

import pytorch_lightning as pl
import ray
from ray import tune

from dotmlp.config import SweepSettings, TrialConfig
from dotmlp.tune.scheduler import rung_milestones

METRIC = "val_nmse"
# ASHA stops nothing whose metric is NaN (NaN < cutoff is false): a diverged trial reports this
# finite, worst-possible value instead, with diverged = 1, and ends itself.
DIVERGED_NMSE = 1e6
CHECKPOINT_FILE = "trial.ckpt"
# A checkpoint costs ~30 ms in the trial plus Tune's copy to storage. One every 4 reports (every
# quarter of the budget by default) bounds what a retried or resumed trial repeats, and the
# trials ASHA stops at the first rung (most of them) never write one.
CHECKPOINT_EVERY = 4


class ReportToTune(pl.Callback):
    """Report every evaluation to Tune at its validation end, as Ray's
    TuneReportCheckpointCallback does, through Tune's public interface only (tune.report,
    tune.Checkpoint; overriding that callback's private hooks would break silently if Ray
    renamed them: dotmlp.tune.internals): the module's own metrics, with the divergence
    sentinel in place of a NaN, and a checkpoint with every CHECKPOINT_EVERY-th report only, and
    at the steps in pause_at: the rungs where synchronous halving pauses a trial, to resume it
    from there."""

    def __init__(self, filename: str = CHECKPOINT_FILE, pause_at=()):
        self._filename = filename
        self._pause_at = frozenset(pause_at)

    def on_validation_end(self, trainer, pl_module) -> None:
        report = self.report(trainer, pl_module)
        if report is None:
            return
        if not (checkpoint_due(pl_module) or pl_module.global_step in self._pause_at):
            tune.report(report)
            return
        with tempfile.TemporaryDirectory() as folder:
            trainer.save_checkpoint(os.path.join(folder, self._filename))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))

    def report(self, trainer, pl_module) -> dict | None:
        """What this evaluation reports; None where nothing was scored."""
        if trainer.sanity_checking or pl_module.last_metrics.get("steps") != trainer.global_step:
            return None  # nothing scored at this step (between two rungs of the ladder)
        # The node id, not the IP: nodes of a test cluster on one machine share an address.
        node_id = ray.get_runtime_context().get_node_id()
        # The device kind it trains on (cpu, cuda), for trials.csv and the MLflow run's tag.
        report = {**pl_module.last_metrics, "params": pl_module.params, "node_id": node_id,
                  "device": pl_module.device.type}
        if pl_module.diverged:
            report[METRIC] = DIVERGED_NMSE
        return report


def checkpoint_due(module) -> bool:
    """Whether this evaluation writes a checkpoint. Counted from the step, not from the reports a
    callback has seen, so a resumed trial keeps the same cadence. On a ladder of evaluations, the
    ones from a quarter of the budget on (the last three: a resumed trial repeats at most half
    of its work, and trials pruned at the first rungs never write one); at a fixed interval, every
    CHECKPOINT_EVERY-th one."""
    config, step = module.config, module.global_step
    if config.reports:
        return config.evaluates_at(step) and 4 * step >= config.steps
    return (step // config.eval_interval) % CHECKPOINT_EVERY == 0


def accelerator_for(granted: dict, cuda_available: bool = True) -> str:
    """The device kind a trial trains on, from the resources Ray granted it (its placement
    group's, e.g. {"CPU": 1.0, "GPU": 0.25}): a GPU share > 0 trains on that GPU, none on the CPU.
    Not Lightning's "auto": Ray 2.60 no longer hides the GPUs from a worker granted none, so a
    --gpus-per-trial 0 sweep on a GPU cluster would train on the GPUs while its record says 0.
    A GPU share where torch sees no GPU (Ray's fake multi-node GPUs in the autoscaler test, a CPU
    build of torch on a GPU node) trains on the CPU, and the trial records "cpu"."""
    return "gpu" if granted.get("GPU", 0) > 0 and cuda_available else "cpu"


def granted_accelerator() -> str:
    """accelerator_for the resources of the trial running here (inside a Tune trial only)."""
    import torch

    return accelerator_for(tune.get_context().get_trial_resources().required_resources,
                           torch.cuda.is_available())


def train_trial(config: dict, settings: dict) -> None:
    """The Tune trainable: one Lightning run on the device Tune gave this trial."""
    import torch

    from dotmlp.cli import quiet_lightning
    from dotmlp.train import train

    torch.set_num_threads(settings["threads"])
    quiet_lightning()
    trial = TrialConfig.from_dict({**settings, **config})
    callback = ReportToTune(filename=CHECKPOINT_FILE, pause_at=settings.get("pause_at", ()))
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        train(trial, [callback], accelerator=granted_accelerator())
        return
    with checkpoint.as_directory() as folder:  # resumed: after a node loss or --resume
        train(trial, [callback], ckpt_path=os.path.join(folder, CHECKPOINT_FILE),
              accelerator=granted_accelerator())


def shared_settings(settings: SweepSettings) -> dict:
    """What train_trial gets besides its sampled config: the settings every trial shares, and
    its torch threads (one per CPU of the trial), and the steps where it may be paused."""
    pause_at = rung_milestones(settings) if settings.halves_synchronously else []
    return {**settings.trial_settings(), "threads": max(1, int(settings.cpus_per_trial)),
            "pause_at": pause_at}


def make_trainable(settings: SweepSettings, trial_resources: dict):
    trainable = tune.with_parameters(train_trial, settings=shared_settings(settings))
    return tune.with_resources(trainable, trial_resources)
