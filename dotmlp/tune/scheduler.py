"""ASHA per task (dimension, multiplication flag), with linear models exempt; or synchronous
successive halving on the same rungs and tasks."""

from __future__ import annotations

import collections
import copy
import math

from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from dotmlp.config import SweepSettings
from dotmlp.tune import internals
from dotmlp.tune.space import stratified_points
from dotmlp.tune.status import flag


def save_state(tune_controller, trial) -> None:
    """Have Tune write this trial's status into the next experiment snapshot.

    Ray 2.60 re-saves the state of trials it still holds an actor for only: a trial that errors
    before its actor is assigned (a reused actor killed as it starts the trial) stays PENDING in
    the snapshot, and a trial stopped while paused stays PAUSED, so the table read from it says
    unfinished. Tune has no public way in: the private one is checked before every sweep
    (internals.check), and taken on the controller itself, not through the wrapper Tune hands
    schedulers, which would log its "is being restricted" warning (internals)."""
    controller = internals.controller(tune_controller)
    if controller is not None:  # None: a scheduler driven without Tune (the unit tests)
        controller._mark_trial_to_checkpoint(trial)


class SavesErrors:
    """Scheduler mixin: an errored trial's ERROR reaches the experiment's state (save_state)."""

    def on_trial_error(self, tune_controller, trial):
        super().on_trial_error(tune_controller, trial)
        save_state(tune_controller, trial)


class FullBudget(SavesErrors, FIFOScheduler):
    """Tune's FIFO scheduler, errors saved: every trial runs its full budget (--no-asha)."""


def exempt(trial, depths: tuple[int, ...]) -> bool:
    """Whether a trial takes no part in the rungs (linear models: see PerTaskASHA)."""
    return trial.config.get("depth") in depths


class PerTaskASHA(SavesErrors, FIFOScheduler):
    """ASHA with one set of rungs per task (dimension, multiplication flag), which never stops
    a linear model (depth 0): one Tune ASHAScheduler per task, each given its task's trials
    through the scheduler interface.

    NMSE is comparable across dimensions, but the tasks differ in difficulty by orders of
    magnitude: one shared set of rungs would prune every d = 64 trial (and every trial without
    the flag) against easy ones, leaving the hard half of the heatmaps empty.

    Linear models are the heatmaps' baseline, and with the flag they are exact, but they start
    slowest (Adam moves a weight by about lr per step: NMSE ~0.8 at the first rung, 1e-14 at
    the full budget), and plain ASHA stopped every one of them. They cost ~1/1000 of an MLP's
    compute: they run their whole budget and take no part in the rungs.
    """

    def __init__(self, group_by=("dimension", "multiply"), exempt_depths=(0,), metric=None,
                 mode=None, **asha):
        super().__init__()
        self._group_by = tuple(group_by)
        self._exempt_depths = tuple(exempt_depths)
        self._metric, self._mode = metric, mode  # or, when None, the Tuner's
        self._asha = asha  # time_attr, max_t, grace_period, reduction_factor: each task's ASHA
        self._tasks: dict[tuple, ASHAScheduler] = {}
        self._num_stopped = 0

    def set_search_properties(self, metric, mode, **spec) -> bool:
        # As ASHA's: the Tuner's metric and mode, unless the scheduler was given its own.
        if (self._metric and metric) or (self._mode and mode):
            return False
        self._metric, self._mode = metric or self._metric, mode or self._mode
        for task in self._tasks.values():
            task.set_search_properties(metric, mode, **spec)
        return True

    def task_scheduler(self, key: tuple) -> ASHAScheduler:
        """The ASHA of one task (its group_by values), made when its first trial comes."""
        if key not in self._tasks:
            self._tasks[key] = ASHAScheduler(metric=self._metric, mode=self._mode, **self._asha)
        return self._tasks[key]

    def _task(self, trial) -> ASHAScheduler:
        return self.task_scheduler(tuple(trial.config.get(name) for name in self._group_by))

    def _exempt(self, trial) -> bool:
        return exempt(trial, self._exempt_depths)

    def on_trial_add(self, tune_controller, trial):
        if not self._exempt(trial):
            self._task(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        if self._exempt(trial):
            return TrialScheduler.CONTINUE  # the trainable ends itself at its budget
        action = self._task(trial).on_trial_result(tune_controller, trial, result)
        self._num_stopped += action == TrialScheduler.STOP
        return action

    def on_trial_complete(self, tune_controller, trial, result):
        if not self._exempt(trial):
            self._task(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        if not self._exempt(trial):
            self._task(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return (f"Using AsyncHyperBand per task ({len(self._tasks)} tasks): "
                f"num_stopped={self._num_stopped}")


class PerTaskHalving(FIFOScheduler):
    """Synchronous successive halving per task, on ASHA's rungs, with linear models exempt.

    At each rung a task's MLPs wait, paused from a checkpoint at the rung, until every one of
    them still in the race has reached it; then the best ceil(n / reduction_factor) go on and
    the others stop. Asynchronous ASHA lets a rung's first arrivals through unopposed, which with
    a dozen MLPs a task bounds what it saves and loses the slow learning rate that wins late; here
    a decision sees the whole rung, and it does not depend on the order results arrive in (on a
    laptop or a cluster, the same curves prune the same trials).

    cohorts: how many MLP trials each task (the group_by values) has in the sweep. Every trial of
    a sweep is one of its stratified points, so this is known before the first trial starts.
    """

    def __init__(self, cohorts: dict[tuple, int], milestones, reduction_factor: int,
                 group_by=("dimension", "multiply"), exempt_depths=(0,), time_attr="steps",
                 metric=None, mode=None):
        super().__init__()
        self._metric, self._mode = metric, mode  # or, when None, the Tuner's
        self._time_attr, self._milestones = time_attr, list(milestones)
        self._reduction, self._group_by = reduction_factor, tuple(group_by)
        self._exempt_depths = tuple(exempt_depths)
        # Per task: how many trials are still to be judged at each rung, and what each reported.
        self._expected = {key: {0: n} for key, n in cohorts.items()}
        self._recorded = {key: collections.defaultdict(dict) for key in cohorts}
        self._next_rung: dict[str, int] = {}  # the rung each racing trial is to reach next
        self._promoted: set[str] = set()  # paused trials that went on: to be resumed
        self._outside: set[str] = set()  # trials that left the race (pruned, ended, errored)
        # Errored trials, by the rung they were to reach next: --resume runs them again, and
        # they race from there like their peers (on_trial_add, _judge_late).
        self._errored: dict[str, int] = {}
        self._ended_unseen: list = []  # restored as ended but racing in the saved rungs
        self._held: set[str] = set()  # restored trials paused in on_trial_add, rung undecided
        self._num_stopped = 0

    # The rungs, saved and restored by HalvingState with the experiment's state.
    _STATE = ("_expected", "_recorded", "_next_rung", "_promoted", "_outside", "_errored",
              "_num_stopped")

    def get_state(self) -> dict:
        return copy.deepcopy({name: getattr(self, name) for name in self._STATE})

    def set_state(self, state: dict) -> None:
        for name in self._STATE:
            # A sweep saved before errored trials were kept (_errored) has none.
            setattr(self, name, state[name] if name in state else {})

    def set_search_properties(self, metric, mode, **spec) -> bool:
        # As ASHA's: the Tuner's metric and mode, unless the scheduler was given its own.
        if (self._metric and metric) or (self._mode and mode):
            return False
        self._metric, self._mode = metric or self._metric, mode or self._mode
        return True

    def _key(self, trial) -> tuple:
        return tuple(trial.config.get(name) for name in self._group_by)

    def on_trial_add(self, tune_controller, trial):
        if exempt(trial, self._exempt_depths):
            return
        if self._key(trial) not in self._expected:
            raise ValueError(f"trial {trial} is of no task this scheduler was given: "
                             f"{dict(zip(self._group_by, self._key(trial), strict=True))}")
        trial_id = trial.trial_id
        if trial_id in self._outside:
            if trial_id in self._errored and trial.status == Trial.PENDING:
                self._rejoin(trial)  # errored, and run again by --resume
            return
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            # Restored as ended, after the rungs were saved: they must stop waiting for it, once
            # every restored trial is back (choose_trial_to_run).
            if trial_id in self._next_rung:
                self._ended_unseen.append(trial)
            return
        rung = self._next_rung.setdefault(trial_id, 0)
        if rung > 0 and rung not in self._expected[self._key(trial)]:
            # Restored while it waited at its last rung: Tune requeues every unfinished trial as
            # PENDING, which would run it on past an undecided rung; it waits PAUSED, as it did.
            # Tune (2.60) files a trial by the status it has after this hook, and starts a
            # PAUSED one only when choose_trial_to_run returns it; on_trial_result checks that.
            trial.set_status(Trial.PAUSED)
            self._held.add(trial_id)

    def _rejoin(self, trial) -> None:
        """An errored trial run again (--resume, from its last checkpoint, before the rung it was
        to reach next): back in the race there. A rung not yet halved waits for it again; at one
        already halved it is judged on arrival against what its peers reported (_judge_late)."""
        trial_id, key = trial.trial_id, self._key(trial)
        rung = self._errored.pop(trial_id)
        self._outside.discard(trial_id)
        self._next_rung[trial_id] = rung
        if rung + 1 not in self._expected[key]:
            self._expected[key][rung] += 1

    def on_trial_result(self, tune_controller, trial, result):
        if trial.trial_id in self._held:
            raise internals.RayInternalsError(internals.message([
                "the order in which TuneController.add_trial reads a trial's status (a trial "
                "PerTaskHalving.on_trial_add paused at an undecided rung was run)"]))
        self._promoted.discard(trial.trial_id)  # it reports: it runs again
        rung = self._next_rung.get(trial.trial_id)
        if (rung is None or rung >= len(self._milestones) or flag(result.get("diverged"))
                or result.get(self._time_attr, 0) < self._milestones[rung]):
            return TrialScheduler.CONTINUE  # exempt, past the last rung, diverged, or between rungs
        key = self._key(trial)
        self._recorded[key][rung][trial.trial_id] = result[self._metric]
        self._next_rung[trial.trial_id] = rung + 1
        if rung + 1 in self._expected[key]:  # halved before it came (it errored, and resumed)
            return self._judge_late(key, rung, trial)
        return self._decide(tune_controller, key, rung, current=trial)

    def _judge_late(self, key: tuple, rung: int, trial) -> str:
        """A trial reaching a rung already halved: by its peers' rule there, it goes on if it is
        among the best ceil(n / reduction_factor) of the n that reported, itself included. Those
        kept before it stay kept; the next rung, if not yet halved, waits for it too."""
        recorded = self._recorded[key][rung]
        ranked = sorted(recorded, key=lambda t: (self._score(recorded[t]), t))
        if trial.trial_id in ranked[:math.ceil(len(ranked) / self._reduction)]:
            if rung + 1 < len(self._milestones) and rung + 2 not in self._expected[key]:
                self._expected[key][rung + 1] += 1
            return TrialScheduler.CONTINUE
        self._num_stopped += 1
        self._next_rung.pop(trial.trial_id, None)
        self._outside.add(trial.trial_id)
        return TrialScheduler.STOP

    def _decide(self, tune_controller, key: tuple, rung: int, current=None) -> str:
        """Halve rung `rung` of task `key` once every trial expected there has reported: the
        current trial's action, PAUSE while the rung is still filling."""
        recorded = self._recorded[key][rung]
        if len(recorded) < self._expected[key][rung]:
            return TrialScheduler.PAUSE
        ranked = sorted(recorded, key=lambda t: (self._score(recorded[t]), t))
        keep = math.ceil(len(ranked) / self._reduction)
        good = set(ranked[:keep])
        self._expected[key][rung + 1] = keep
        action = TrialScheduler.CONTINUE
        trials = {t.trial_id: t for t in tune_controller.get_trials()} if tune_controller else {}
        self._held.difference_update(ranked)  # decided: promoted, or stopped
        for trial_id in ranked:
            if trial_id in good:
                if current is None or trial_id != current.trial_id:
                    self._promoted.add(trial_id)
                continue
            self._num_stopped += 1
            self._next_rung.pop(trial_id, None)
            self._outside.add(trial_id)
            if current is not None and trial_id == current.trial_id:
                action = TrialScheduler.STOP
            elif trial_id in trials and (trials[trial_id].status == Trial.PAUSED
                                         or trials[trial_id].is_saving):  # still pausing
                tune_controller.stop_trial(trials[trial_id])
                save_state(tune_controller, trials[trial_id])
        return action

    def _score(self, value: float) -> float:
        if value is None or math.isnan(value):
            return math.inf
        if self._mode not in ("min", "max"):
            raise ValueError(f"{type(self).__name__} needs mode min or max, got {self._mode!r}")
        return value if self._mode == "min" else -value

    def _left_the_race(self, tune_controller, trial) -> None:
        """A trial that ended before its next rung (diverged, errored, or finished): its rung
        no longer waits for it."""
        rung = self._next_rung.pop(trial.trial_id, None)
        self._promoted.discard(trial.trial_id)
        self._outside.add(trial.trial_id)
        if rung is None or rung >= len(self._milestones):
            return
        key = self._key(trial)
        self._expected[key][rung] -= 1
        if rung + 1 not in self._expected[key]:  # not yet halved: it may now be full
            self._decide(tune_controller, key, rung)

    def on_trial_complete(self, tune_controller, trial, result):
        self._left_the_race(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial):
        rung = self._next_rung.get(trial.trial_id)
        if rung is not None and rung < len(self._milestones):
            self._errored[trial.trial_id] = rung  # where it races again if resumed
        self._left_the_race(tune_controller, trial)
        save_state(tune_controller, trial)

    def on_trial_remove(self, tune_controller, trial):
        self._left_the_race(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller):
        while self._ended_unseen:
            self._left_the_race(tune_controller, self._ended_unseen.pop())
        # New trials first, so rungs fill; then the paused trials that went on from theirs.
        for trial in tune_controller.get_trials():
            if trial.status == Trial.PENDING:
                return trial
        for trial in tune_controller.get_trials():
            if trial.status == Trial.PAUSED and trial.trial_id in self._promoted:
                self._promoted.discard(trial.trial_id)
                return trial
        return None

    def debug_string(self) -> str:
        return f"Using synchronous successive halving per task: num_stopped={self._num_stopped}"


class HalvingState(Callback):
    """Saves PerTaskHalving's rungs with the experiment's state, in the same snapshot as the
    trials' statuses, and gives them back on --resume: Ray saves and restores its callbacks'
    state, but no scheduler's (ray-project/ray#30838). Without them a resumed sweep would hold its
    trials at rungs for trials that already ended there. The scheduler is the same object as the
    Tuner's: both are pickled together in the experiment (tuner.pkl)."""

    def __init__(self, scheduler: PerTaskHalving):
        self.scheduler = scheduler

    def get_state(self) -> dict:
        return self.scheduler.get_state()

    def set_state(self, state: dict) -> None:
        self.scheduler.set_state(state)


GROUPS = {"task": ("dimension", "multiply"), "cell": ("dimension", "multiply", "depth", "width")}


def make_scheduler(settings: SweepSettings) -> PerTaskASHA | PerTaskHalving | FullBudget:
    if not settings.asha:
        return FullBudget()
    # A pool's size is part of the task: a larger pool is easier to generalise from (and its
    # trials take more steps per epoch); its trials compete only with trials of the same pool.
    users = ("users",) if settings.data == "pool" else ()
    group_by = GROUPS[settings.asha_per] + users
    if settings.halves_synchronously:
        cohorts = collections.Counter(tuple(point.get(name) for name in group_by)
                                      for point in stratified_points(settings)
                                      if point["depth"] != 0)
        return PerTaskHalving(cohorts, rung_milestones(settings), settings.reduction_factor,
                              group_by=group_by, time_attr=settings.time_attr)
    return PerTaskASHA(
        group_by=group_by,
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
