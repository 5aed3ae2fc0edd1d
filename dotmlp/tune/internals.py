"""The private parts of Ray Tune the sweep relies on, checked before a sweep starts.

Where Tune has a public interface the sweep uses it: reports and checkpoints go through
`tune.report` from a plain Lightning callback (trainable.ReportToTune, not Ray's
TuneReportCheckpointCallback with its `_get_report_dict` and `_get_checkpoint` overridden), and
ASHA per task is one `ASHAScheduler` per task driven through the scheduler interface
(scheduler.PerTaskASHA, not ASHA's `_brackets` and `_trial_info` swapped per trial). Where Tune
has none, the sweep reaches into it, and a later Ray that renamed what it reaches would make each
reach a silent no-op (errored trials left PENDING in the experiment's state, pruned ones run again
on resume) or a crash mid-sweep; `check()` fails first, in one error that names what is missing
and the Ray version this code was written for:

- `TuneController._mark_trial_to_checkpoint`: a trial's status reaches the next snapshot of the
  experiment's state only while Tune holds an actor for it; one that errors before its actor
  starts, or is stopped while paused at a rung, would stay PENDING or PAUSED there
  (scheduler.save_state). Schedulers get the controller behind Tune's `TrialRunnerWrapper`,
  which logs "You are trying to access _mark_trial_to_checkpoint interface of TrialRunner in
  TrialScheduler, which is being restricted" on the first access through it; the sweep takes
  the controller from the wrapper's `_tune_controller` instead (controller()), so that warning
  is not printed.
- `Tuner._local_tuner`: a restored sweep's callbacks come back from its pickle and
  `Tuner.restore` takes no new ones, so the MLflow callback is pointed at the store from there
  (run_config_callbacks; checked when a sweep is resumed: under Ray Client, a `ray://` address,
  a Tuner has none).

`Trial.set_status` (public) pauses a restored trial in PerTaskHalving.on_trial_add; that relies on
Tune reading the status after the hook, which PerTaskHalving checks as trials report.
"""

from __future__ import annotations

RAY_VERSION = "2.60"


class RayInternalsError(RuntimeError):
    """The installed Ray lacks a private part of Tune this code relies on."""


def message(missing: list[str]) -> str:
    import ray

    return (f"dotmlp's sweep was written for Ray {RAY_VERSION}, and Ray {ray.__version__} lacks "
            + "; ".join(missing)
            + f": install ray[tune]=={RAY_VERSION}.* (the pin in pyproject.toml), or port "
            "dotmlp/tune/internals.py to this Ray")


def missing_hooks() -> list[str]:
    """What of Tune's internals the sweep uses is not there, each named with what it is for."""
    from ray.tune.execution.tune_controller import TrialRunnerWrapper, TuneController

    missing = []
    if not callable(getattr(TuneController, "_mark_trial_to_checkpoint", None)):
        missing.append("TuneController._mark_trial_to_checkpoint (an ended trial's status "
                       "saved with the experiment's state: scheduler.save_state)")
    # Set by the wrapper's __init__: made here around nothing, as Tune makes it around its
    # controller for every scheduler call.
    wrapper = TrialRunnerWrapper(None, trial_executor=None)
    if "_tune_controller" not in vars(wrapper):
        missing.append("TrialRunnerWrapper._tune_controller (the controller behind what Tune "
                       "hands a scheduler: scheduler.save_state)")
    return missing


def check() -> None:
    """Raise RayInternalsError, naming every missing part, before a sweep starts."""
    missing = missing_hooks()
    if missing:
        raise RayInternalsError(message(missing))


def controller(tune_controller):
    """Tune's controller itself, from the wrapper Tune hands schedulers (or the controller, or
    None where a test drives a scheduler without one)."""
    return vars(tune_controller).get("_tune_controller", tune_controller) if tune_controller else None


def run_config_callbacks(tuner) -> list:
    """The callbacks of a restored Tuner's run config (the experiment's own, unpickled)."""
    local = getattr(tuner, "_local_tuner", None)
    if local is None or not callable(getattr(local, "get_run_config", None)):
        raise RayInternalsError(message([
            "Tuner._local_tuner.get_run_config (a restored sweep's callbacks, to write its MLflow "
            "runs to the store it lives with now: --resume); under Ray Client (a ray:// address) "
            "a Tuner has none: resume from a node of the cluster, e.g. with `ray job submit`"]))
    return local.get_run_config().callbacks
