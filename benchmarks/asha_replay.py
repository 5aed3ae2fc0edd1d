"""ASHA's settings replayed on recorded learning curves, without training anything again.

`python benchmarks/asha_replay.py --full-dir DIR [--json] [--slots 2] [--grace 0.0625,0.125 ...]
[--reduction 4 ...] [--prune-linear] [--synchronous] [--rejudge] [--judge latest|best]
[--per task|task-lr|cell]`

DIR holds a `--no-asha` sweep (`python sweep/run.py --num-samples 200 --no-asha --results-dir DIR
--name full`): its table (DIR/full/trials.csv) and the MLflow store with every trial's held-out
curve. The replay feeds those curves to the sweep's own scheduler (dotmlp.tune.scheduler.PerTaskASHA) in the
order a sweep with `--slots` trial slots would deliver them (each trial's recorded seconds per step
set the clock), stops a trial where the scheduler says so, and reports what asha_savings.py reports
for a real sweep: the compute against the full budget, and the best NMSE per task against the
full-budget best. Arrival order is modelled, not measured: a real sweep's decisions can differ in
a trial or two (results/README.md).
"""

from __future__ import annotations

import argparse
import collections
import heapq
import itertools
import json
import math
import sys
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.asha_savings import compare  # noqa: E402
from dotmlp import analysis, tracking  # noqa: E402
from dotmlp.tune.scheduler import GROUPS, PerTaskASHA, PerTaskHalving, exempt  # noqa: E402
from dotmlp.tune.trainable import METRIC  # noqa: E402


def load(full_dir: Path, name: str = "full") -> tuple[pd.DataFrame, dict[str, dict[int, float]]]:
    table = pd.read_csv(full_dir / name / analysis.TABLE_FILE)
    if (table["status"] != "completed").any():
        sys.exit("asha_replay.py: the sweep in --full-dir must be a --no-asha sweep, all completed")
    client = MlflowClient(tracking.default_uri(full_dir))
    curves = {run: {int(m.step): m.value for m in client.get_metric_history(run, METRIC)}
              for run in table["run_id"]}
    # Trials in the order Tune started them (the stratified points' order).
    table = table.assign(order=table["trial_id"].str.rsplit("_", n=1).str[1].astype(int))
    return table.sort_values("order").reset_index(drop=True), curves


def best_so_far(curves: dict) -> dict:
    """Each curve as its running minimum: what a rung sees when ASHA judges a trial by the best
    median it has reached, not by its latest one (a spike of Adam at a high learning rate that
    lands on a rung then does not stop a trial that was, and will be again, the best)."""
    out = {}
    for run, curve in curves.items():
        best, out[run] = math.inf, {}
        for step in sorted(curve):
            best = min(best, curve[step]) if not math.isnan(curve[step]) else best
            out[run][step] = curve[step] if math.isinf(best) else best
    return out


def stub_trials(table: pd.DataFrame, group_by: tuple[str, ...]) -> list[Trial]:
    """One Tune trial per row, with the config a scheduler reads: its task and its depth."""
    keys = sorted({"dimension", "multiply", "depth", *group_by})
    return [Trial("replay", config={k: row[k] for k in keys}, stub=True) for _, row in table.iterrows()]


class RejudgingASHA(PerTaskASHA):
    """ASHA that also stops a trial, at any later report, once it has fallen out of the best
    1/reduction_factor at a rung it went on from, as later trials of its task reached that rung.
    Asynchronous ASHA lets a rung's first arrivals through unopposed; this takes them back when
    the rung fills, without the pauses synchronous successive halving needs. (A benchmark's
    question, not the sweep's scheduler.)"""

    def on_trial_result(self, tune_controller, trial, result):
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.CONTINUE and not self._exempt(trial) and self._demoted(trial):
            return TrialScheduler.STOP
        return action

    def _demoted(self, trial) -> bool:
        # ASHA's own rung records (private to Tune's ASHAScheduler: a benchmark's look inside).
        bracket = self._task(trial)._trial_info[trial.trial_id]
        return any(trial.trial_id in recorded and recorded[trial.trial_id] < bracket.cutoff(recorded)
                   for _, recorded in bracket._rungs)


def replay(
    table: pd.DataFrame, curves: dict, grace: int, reduction: int, slots: int,
    exempt_depths: tuple[int, ...] = (0,), group_by: tuple[str, ...] = ("dimension", "multiply"),
    rejudge: bool = False,
) -> pd.Series:
    """The step at which each trial ends under ASHA (max_steps where it is not stopped), judging
    the values of `curves` (the recorded ones, or best_so_far of them); ASHA's tasks are
    `group_by`."""
    max_steps = int(table["steps"].max())
    scheduler = (RejudgingASHA if rejudge else PerTaskASHA)(
        group_by=group_by, time_attr="steps", metric=METRIC, mode="min", max_t=max_steps,
        grace_period=grace, reduction_factor=reduction, exempt_depths=exempt_depths)
    trials = stub_trials(table, group_by)
    seconds_per_step = (table["train_seconds"] / table["steps"]).tolist()
    ended = [max_steps] * len(table)
    events: list[tuple[float, int, int]] = []  # (time, trial, step of its next report)
    waiting = iter(range(len(table)))

    def start(now: float) -> None:
        i = next(waiting, None)
        if i is not None:
            scheduler.on_trial_add(None, trials[i])
            for step in sorted(curves[table["run_id"][i]]):
                heapq.heappush(events, (now + step * seconds_per_step[i], i, step))

    for _ in range(slots):
        start(0.0)
    stopped = set()
    while events:
        now, i, step = heapq.heappop(events)
        if i in stopped:
            continue
        result = {"steps": step, METRIC: curves[table["run_id"][i]][step]}
        if step >= max_steps:
            scheduler.on_trial_complete(None, trials[i], result)
            start(now)
        elif scheduler.on_trial_result(None, trials[i], result) == TrialScheduler.STOP:
            ended[i] = step
            stopped.add(i)
            scheduler.on_trial_remove(None, trials[i])
            start(now)
    return pd.Series(ended, index=table.index)


def successive_halving(
    table: pd.DataFrame, curves: dict, grace: int, reduction: int, slots: int = 2,
    exempt_depths: tuple[int, ...] = (0,), group_by: tuple[str, ...] = ("dimension", "multiply"),
) -> pd.Series:
    """The step at which each trial ends under the sweep's synchronous successive halving
    (dotmlp.tune.scheduler.PerTaskHalving, `--halving synchronous`) with the same rungs: a trial
    that reaches a rung waits, its slot given to the next trial, until its task's rung is full;
    the rung's best 1/reduction then resume. Its decisions do not depend on the arrival order."""
    max_steps = int(table["steps"].max())
    trials = stub_trials(table, group_by)
    racing = [t for t in trials if not exempt(t, exempt_depths)]
    cohorts = collections.Counter(tuple(t.config[k] for k in group_by) for t in racing)
    milestones = list(itertools.takewhile(lambda m: m < max_steps,
                                          (grace * reduction**k for k in itertools.count())))
    scheduler = PerTaskHalving(cohorts, milestones, reduction, group_by=group_by,
                               exempt_depths=exempt_depths, metric=METRIC, mode="min")
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    seconds_per_step = (table["train_seconds"] / table["steps"]).tolist()
    ended = [max_steps] * len(table)
    events: list[tuple[float, int, int]] = []
    waiting, paused = list(range(len(table))), {}  # paused: trial -> the step it waits at

    def run(i: int, now: float, after: int = 0) -> None:
        for step in sorted(curves[table["run_id"][i]]):
            if step > after:
                heapq.heappush(events, (now + (step - after) * seconds_per_step[i], i, step))

    def next_trial(now: float) -> None:  # as PerTaskHalving.choose_trial_to_run: new ones first
        if waiting:
            run(waiting.pop(0), now)
            return
        resumed = next((i for i in paused if trials[i].trial_id in scheduler._promoted), None)
        if resumed is not None:
            scheduler._promoted.discard(trials[resumed].trial_id)
            run(resumed, now, after=paused.pop(resumed))

    for _ in range(slots):
        next_trial(0.0)
    while events:
        now, i, step = heapq.heappop(events)
        result = {"steps": step, METRIC: curves[table["run_id"][i]][step]}
        action = (TrialScheduler.CONTINUE if step >= max_steps
                  else scheduler.on_trial_result(None, trials[i], result))
        if step >= max_steps or action != TrialScheduler.CONTINUE:
            events = [e for e in events if e[1] != i]  # it leaves its slot
            heapq.heapify(events)
            if action == TrialScheduler.PAUSE:
                paused[i] = step
            elif action == TrialScheduler.STOP:
                ended[i] = step
            for j in [j for j in paused if trials[j].trial_id not in scheduler._next_rung]:
                ended[j] = paused.pop(j)  # halved while it waited
            # Fill every free slot: a decision can resume more trials than this one's slot.
            while len({k for _, k, _ in events}) < slots and (waiting or any(
                    trials[j].trial_id in scheduler._promoted for j in paused)):
                next_trial(now)
    return pd.Series(ended, index=table.index)


def figures(table: pd.DataFrame, curves: dict, ended: pd.Series) -> dict:
    """asha_savings.compare on the replayed sweep: each trial as if it had ended at its step."""
    seconds_per_step = table["train_seconds"] / table["steps"]
    asha = table.assign(
        steps=ended,
        samples=table["samples"] / table["steps"] * ended,
        train_seconds=seconds_per_step * ended,
        val_nmse=[curves[run][step] for run, step in zip(table["run_id"], ended, strict=True)],
    )
    compared = compare(asha, table)
    return {"samples_ratio": float(asha["samples"].sum() / table["samples"].sum()),
            **{k: compared[k] for k in ("compute_ratio_flops", "compute_ratio_seconds",
                                        "tasks_within_10_percent", "tasks_within_seeds_range",
                                        "tasks",
                                        "best_ratio_per_task_worst")}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-dir", type=Path, required=True, help="results dir of a --no-asha sweep")
    parser.add_argument("--name", default="full", help="that sweep's --name")
    parser.add_argument("--grace", default="0.0625,0.125,0.1875,0.25",
                        help="first rungs, fractions of the budget")
    parser.add_argument("--reduction", default="2,3,4,8", help="reduction factors")
    parser.add_argument("--slots", type=int, default=2, help="trials at a time in the modelled sweep")
    parser.add_argument("--prune-linear", action="store_true",
                        help="let ASHA stop linear models too (the sweep never does)")
    parser.add_argument("--synchronous", action="store_true",
                        help="also replay synchronous successive halving with the same rungs")
    parser.add_argument("--rejudge", action="store_true",
                        help="also replay ASHA that stops a trial at any report once it has "
                        "fallen out of the best 1/reduction at a rung it passed")
    parser.add_argument("--judge", choices=("latest", "best"), default="latest",
                        help="what a rung compares: each trial's latest median (the sweep's "
                        "ASHA), or the best it has reached so far")
    parser.add_argument("--per", choices=("task", "task-lr", "cell"), default="task",
                        help="ASHA's groups: per (dimension, flag); per (dimension, flag, lr): "
                        "architectures compete only at one learning rate; per cell (dimension, "
                        "flag, depth, width): only a cell's learning rates compete")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not (args.full_dir / args.name / analysis.TABLE_FILE).is_file():
        parser.error(f"no {analysis.TABLE_FILE} of a sweep named {args.name!r} in {args.full_dir}")
    try:
        graces = [float(x) for x in args.grace.split(",")]
        reductions = [int(x) for x in args.reduction.split(",")]
    except ValueError:
        parser.error("--grace takes fractions and --reduction integers, comma-separated")
    table, curves = load(args.full_dir, args.name)
    interval = min(min(steps) for steps in curves.values())  # the sweep's evaluation interval
    exempt = () if args.prune_linear else (0,)
    group_by = GROUPS["task"] + ("lr",) if args.per == "task-lr" else GROUPS[args.per]
    judged = best_so_far(curves) if args.judge == "best" else curves
    rows = []
    for fraction, reduction in itertools.product(graces, reductions):
        # As SweepSettings.grace_period: a whole number of evaluation intervals.
        grace = interval * max(1, round(table["steps"].max() * fraction / interval))
        schedules = {"asha": replay(table, judged, grace, reduction, args.slots, exempt, group_by)}
        if args.rejudge:
            schedules["rejudged"] = replay(table, judged, grace, reduction, args.slots, exempt,
                                           group_by, rejudge=True)
        if args.synchronous:
            schedules["synchronous"] = successive_halving(table, curves, grace, reduction,
                                                             args.slots, exempt, group_by)
        for schedule, ended in schedules.items():
            rows.append({"schedule": schedule, "grace_steps": grace, "reduction_factor": reduction,
                         **figures(table, curves, ended)})
            if not args.json:
                r = rows[-1]
                print(f"{schedule:>11} grace {grace:>4} rf {reduction}: compute "
                      f"{r['compute_ratio_flops']:.3f} (samples × params), "
                      f"{r['compute_ratio_seconds']:.3f} (seconds), {r['samples_ratio']:.3f} (samples); "
                      f"best within 10 % in {r['tasks_within_10_percent']}/{r['tasks']} tasks, "
                      f"within the seeds' range in {r['tasks_within_seeds_range']}, "
                      f"worst ratio {r['best_ratio_per_task_worst']:.3g}")
    result = {"trials": len(table), "slots": args.slots, "judge": args.judge, "per": args.per,
              "settings": rows}
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
