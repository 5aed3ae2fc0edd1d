"""The frontier search: the smallest MLP that SGD trains to a target NMSE, bracketed by one that fails.

Pure logic, no Ray, no torch: which runs a search needs next, given the runs it has (the ledger).
`dotmlp.tune.frontier.FrontierSearcher` asks it for runs and feeds their results back; the answer
table (`answer_rows`) reads the same decisions off a finished ledger.

A *run* is one configuration trained once: (dimension, depth, width, learning rate, samples), K
seeds side by side, Adam with a cosine decay to zero over exactly its budget, so its final NMSE is
that of a decayed run at that budget (a point of a learning curve is a separate run, never a
constant-rate run frozen mid-schedule). Its score is the median over the seeds.

A *task* is (dimension, depth, ε). Its search is a deterministic function of the ledger, replayed
from the start whenever a result arrives: it needs nothing else to resume (a stopped search,
started again, finds every finished run in the ledger and trains none twice), and two thresholds of
one (dimension, depth) share every run they both need.

- A **width** is judged on a ladder of budgets ×4 apart (2^19 samples, 2^21, … up to the cap): at
  each budget the learning rate is bracketed (three rates ×2 apart around the last budget's best,
  extended until the best lies strictly inside what was tried); the width *reaches* ε at the first
  budget whose best median is ≤ ε. It *fails* at the cap, or earlier when it has **flattened**:
  even if its last improvement per ×4 budget went on at the same rate to the cap, it would end
  above ε (learning curves flatten, so this projection is optimistic, and the stop conservative).
  It is never stopped below the `floor`: the samples the smallest reaching width needed, so a
  failing width is always trained on at least as many samples as the one reported; and the
  widest width, where nothing narrower reached, is trained to the cap: a task not reached is a
  bound at the widest width and the cap, never at a curve's projection.
- The **widths** start at the hand-built construction's (dotmlp.construction; depth 2: its equal
  parameters), halve while they reach and double while they fail (up to max_width_factor × the
  start), then bisect geometrically until the smallest reaching and the largest failing widths
  are within `bracket` (1.25×) of each other.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dotmlp.sizes import params_of, width_for_params

# Learning rates on a fixed grid, LR_BASE · 2^j: integer keys, so a replayed search asks for the
# very same rates (floats recomputed by multiplication would not compare equal).
LR_BASE = 1e-3
LR_START_INDEX = 1  # 2e-3: the middle of the first bracket {1e-3, 2e-3, 4e-3}
# A bracket is not extended past these (1.6e-5 … 1.024; a ladder's next rung re-centres on its best
# rate, so one centred on them reaches a step beyond). Best rates reach 0.512 at d = 8.
LR_MIN_INDEX, LR_MAX_INDEX = -6, 10
BUDGET_FACTOR = 4
WIDER_FACTORS = (2, 4)
FIRST_SAMPLES = 2**19
PRECISIONS = ("fp32", "bf16")
# With a·b among the inputs, two ReLUs are exact at any d: relu(s) − relu(−s), s = Σ (a·b)_i.
FLAG_WIDTH = 2


def lr_of(index: int) -> float:
    return LR_BASE * 2.0**index


@dataclass(frozen=True)
class FrontierSettings:
    """What a frontier search runs: its tasks, seeds, budgets and how tight a bracket it wants."""

    dimensions: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    thresholds: tuple[float, ...] = (1e-2, 1e-3)
    depths: tuple[int, ...] = (1, 2)
    seeds: int = 3
    """Replicas per run (seeds 0 … K−1); a run's score is their median."""
    batch_size: int = 1024
    caps: tuple[tuple[int, int], ...] = ((16, 2**25), (64, 2**27))
    """(largest dimension, sample cap): d ≤ 16 stops at 2^25 = 33.5M samples, d ≤ 64 at 2^27 =
    134M (≥ 10^8 where 1e-2 is hardest). A width not reached by its cap is a bound."""
    first_samples: int = FIRST_SAMPLES
    """The ladder's first budget (2^19 = 0.5M samples); a test's tiny search sets it lower."""
    bracket: float = 1.25
    """Stop when the smallest reaching width ÷ the largest failing one is at most this."""
    max_width_factor: int = 4
    """Widths grow to at most this multiple of the starting (construction) width: a task not
    reached there is a bound at 4x the hand-built net, the widest this CPU affords at d = 64."""
    precision: str = "fp32"
    multiply: bool = False
    """The flag: a·b fed to the net as d more inputs (its own ledger; its nets start at FLAG_WIDTH)."""

    def __post_init__(self) -> None:
        from dotmlp.config import ConfigError

        for name, values, minimum in (("dimensions", self.dimensions, 1), ("depths", self.depths, 1)):
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum
                                 for v in values):
                raise ConfigError(f"{name} must list integers >= {minimum}, got {values!r}")
        if not self.thresholds or any(not 0 < t < 1 for t in self.thresholds):
            raise ConfigError(f"thresholds must be NMSEs in (0, 1), got {self.thresholds!r}")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be an integer >= 1, got {self.seeds}")
        if not self.bracket > 1:
            raise ConfigError(f"bracket must be > 1, got {self.bracket}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def cap(self, dimension: int) -> int:
        for largest, cap in self.caps:
            if dimension <= largest:
                return cap
        return self.caps[-1][1]

    def tasks(self) -> list[Task]:
        """Cheapest first: small dimensions, shallow nets, the looser threshold."""
        return [Task(d, depth, eps) for d in sorted(self.dimensions) for depth in sorted(self.depths)
                for eps in sorted(self.thresholds, reverse=True)]

    @property
    def ledger_name(self) -> str:
        """The ledger's file: one per precision and flag, so that runs of one never stand in for
        another's."""
        flag = "-multiply" if self.multiply else ""
        precision = "" if self.precision == "fp32" else f"-{self.precision}"
        return f"candidates{flag}{precision}.csv"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Task:
    dimension: int
    depth: int
    threshold: float


@dataclass(frozen=True, order=True)
class RunKey:
    """One run: what the ledger is keyed by."""

    dimension: int
    depth: int
    width: int
    lr_index: int
    samples: int

    @property
    def lr(self) -> float:
        return lr_of(self.lr_index)


@dataclass
class Run:
    key: RunKey
    nmse_median: float  # +inf for a diverged run: worse than anything
    nmse_min: float
    nmse_max: float
    row: dict = field(default_factory=dict)  # the ledger's row, whole


class NeedRuns(Exception):
    """The search cannot go on without these runs (all of them may run at once)."""

    def __init__(self, keys: list[RunKey]):
        super().__init__(f"{len(keys)} runs needed")
        self.keys = keys


@dataclass
class WidthOutcome:
    width: int
    reached: bool
    samples: int  # reached: the first budget that reached; failed: the largest budget trained
    best: Run  # at `samples`: the best learning rate's run
    lrs: list[float]  # tried at `samples`
    bracketed: bool  # the best rate lies strictly inside those tried
    reason: str  # reached, flattened, cap
    curve: list[tuple[int, float]]  # (samples, best median) of every budget trained


@dataclass
class TaskOutcome:
    task: Task
    start_width: int
    reached: WidthOutcome | None  # the smallest width that reached
    failed: WidthOutcome | None  # the largest width below it that failed
    widest: WidthOutcome  # the widest width tried (the bound when nothing reached)
    evaluated: dict[int, WidthOutcome]
    wider: dict[int, WidthOutcome] = field(default_factory=dict)  # factor -> the net that much wider
    runs: list[RunKey] = field(default_factory=list)  # every run the search read


class Search:
    """One task's search over a ledger: `outcome()` returns its result or raises NeedRuns."""

    def __init__(self, settings: FrontierSettings, task: Task, ledger: dict[RunKey, Run],
                 start_width: int):
        self.settings, self.task, self.ledger = settings, task, ledger
        self.start_width = start_width
        self.cap = settings.cap(task.dimension)
        self.used: set[RunKey] = set()  # every run the search has read: what the task cost

    def need(self, keys: list[RunKey]) -> list[Run]:
        self.used.update(key for key in keys if key in self.ledger)
        missing = [key for key in keys if key not in self.ledger]
        if missing:
            raise NeedRuns(missing)
        return [self.ledger[key] for key in keys]

    def best_lr(self, width: int, samples: int, centre: int) -> tuple[Run, list[int], bool]:
        """The best learning rate at this budget, bracketed: three rates ×2 apart around
        `centre`, extended by one at the edge where the best lies until it lies inside."""
        indices = [centre - 1, centre, centre + 1]
        while True:
            runs = self.need([RunKey(self.task.dimension, self.task.depth, width, j, samples)
                              for j in indices])
            best = min(range(len(runs)), key=lambda i: (runs[i].nmse_median, indices[i]))
            if best == 0 and indices[0] > LR_MIN_INDEX:
                indices.insert(0, indices[0] - 1)
            elif best == len(indices) - 1 and indices[-1] < LR_MAX_INDEX:
                indices.append(indices[-1] + 1)
            else:
                return runs[best], indices, 0 < best < len(indices) - 1

    def judge(self, width: int, floor: int = 0) -> WidthOutcome:
        """Train `width` up the ladder of budgets until it reaches ε, flattens or hits the cap."""
        eps, samples, centre = self.task.threshold, self.settings.first_samples, LR_START_INDEX
        curve: list[tuple[int, float]] = []
        while True:
            best, indices, bracketed = self.best_lr(width, samples, centre)
            curve.append((samples, best.nmse_median))
            lrs = [lr_of(j) for j in indices]
            if best.nmse_median <= eps:
                return WidthOutcome(width, True, samples, best, lrs, bracketed, "reached", curve)
            if samples >= self.cap:
                return WidthOutcome(width, False, samples, best, lrs, bracketed, "cap", curve)
            if samples >= floor and flattened(curve, eps, self.cap):
                return WidthOutcome(width, False, samples, best, lrs, bracketed, "flattened", curve)
            samples, centre = samples * BUDGET_FACTOR, best.key.lr_index

    def outcome(self) -> TaskOutcome:
        evaluated: dict[int, WidthOutcome] = {}
        top = self.start_width * self.settings.max_width_factor
        width = self.start_width
        while True:
            reaching = [w for w, o in evaluated.items() if o.reached]
            hi = min(reaching) if reaching else None
            floor = evaluated[hi].samples if hi is not None else 0
            if hi is None and width * 2 > top:
                # The widest width, nothing reached yet: a bound is a width trained to the cap,
                # so this one is not stopped early by a flattened curve.
                floor = self.cap
            evaluated[width] = self.judge(width, floor)
            reaching = [w for w, o in evaluated.items() if o.reached]
            hi = min(reaching) if reaching else None
            failing = [w for w, o in evaluated.items() if not o.reached and (hi is None or w < hi)]
            lo = max(failing) if failing else None
            if hi is None:
                if width * 2 > top:
                    return TaskOutcome(self.task, self.start_width, None, None,
                                       evaluated[max(evaluated)], evaluated)
                width *= 2
            elif lo is None:
                if hi == 1:
                    return self.done(hi, None, evaluated)
                width = max(1, hi // 2)
            elif hi <= self.settings.bracket * lo or hi - lo <= 1:
                floor = evaluated[hi].samples
                if evaluated[lo].samples < floor and not evaluated[lo].reached:
                    width = lo  # trained on fewer samples than the reported width: train it on
                    del evaluated[lo]
                    continue
                return self.done(hi, lo, evaluated)
            else:
                width = min(max(round(math.sqrt(lo * hi)), lo + 1), hi - 1)

    def wider(self, outcome: TaskOutcome) -> dict[int, WidthOutcome]:
        """What data buys at the frontier: the samples that nets WIDER_FACTORS × the smallest
        reaching width need (each up its own ladder, learning rate bracketed)."""
        if outcome.reached is None:
            return {}
        return {factor: self.judge(factor * outcome.reached.width) for factor in WIDER_FACTORS}

    def done(self, hi: int, lo: int | None, evaluated) -> TaskOutcome:
        return TaskOutcome(self.task, self.start_width, evaluated[hi],
                           evaluated[lo] if lo is not None else None, evaluated[max(evaluated)],
                           evaluated)


def flattened(curve: list[tuple[int, float]], eps: float, cap: int) -> bool:
    """Whether a width's curve, improving at its last rate per ×4 budget all the way to the cap,
    would still end above ε. Needs two budgets; a curve that did not improve has flattened."""
    if len(curve) < 2:
        return False
    (_, before), (samples, last) = curve[-2], curve[-1]
    if not (math.isfinite(last) and math.isfinite(before)):
        return not math.isfinite(last)  # every rate diverged here; from a diverged start, go on
    rate = last / before
    if rate >= 1:
        return True
    steps_left = math.log(cap / samples, BUDGET_FACTOR)
    return last * rate**steps_left > eps


def start_width(task: Task, multiply: bool = False) -> int:
    """The hand-built net's width for ε (depth 1), or the depth-`depth` width of its parameters;
    with the flag, FLAG_WIDTH at any depth."""
    from dotmlp import construction

    if multiply:
        return FLAG_WIDTH
    k = construction.smallest_k(task.threshold)
    hidden = construction.hidden_units(task.dimension, k)
    if task.depth == 1:
        return hidden
    return width_for_params(params_of(task.dimension, 1, hidden), task.dimension, task.depth)


def starts(settings: FrontierSettings):
    return lambda task: start_width(task, settings.multiply)


def pending(settings: FrontierSettings, ledger: dict[RunKey, Run], start=None) -> list[RunKey]:
    """Every run some unfinished task needs next, cheapest task first (no duplicates); the runs of
    the wider nets (Search.wider) only after every task's own search. start(task): the first
    width tried (default: start_width, with the settings' flag)."""
    start = start or starts(settings)
    keys: list[RunKey] = []
    later: list[RunKey] = []
    for task in settings.tasks():
        search = Search(settings, task, ledger, start(task))
        try:
            found = search.outcome()
        except NeedRuns as needed:
            keys += [key for key in needed.keys if key not in keys]
            continue
        try:
            search.wider(found)
        except NeedRuns as needed:
            later += [key for key in needed.keys if key not in later]
    return keys + [key for key in later if key not in keys]


def outcomes(settings: FrontierSettings, ledger: dict[RunKey, Run],
             start=None) -> list[TaskOutcome | Task]:
    """Each task's outcome (with its wider nets where they are done, and the runs it read), or
    the task itself where its search has not finished."""
    start = start or starts(settings)
    results: list[TaskOutcome | Task] = []
    for task in settings.tasks():
        search = Search(settings, task, ledger, start(task))
        try:
            outcome = search.outcome()
        except NeedRuns:
            results.append(task)
            continue
        try:
            outcome.wider = search.wider(outcome)
        except NeedRuns:
            pass
        outcome.runs = sorted(search.used)
        results.append(outcome)
    return results


# --- the ledger: every finished run, one row each; the search's only memory -------------------------
LEDGER_COLUMNS = ["dimension", "depth", "width", "lr_index", "lr", "samples", "steps", "seeds",
                  "batch_size", "schedule", "precision", "params", "nmse_median", "nmse_min",
                  "nmse_max", "nmse_seeds", "diverged_replicas", "diverged", "seconds", "cpus",
                  "device", "cpu", "trial_id", "finished_at"]


def nan_as_inf(value) -> float:
    value = float(value)
    return math.inf if math.isnan(value) else value


def run_from_row(row: dict) -> Run:
    key = RunKey(int(row["dimension"]), int(row["depth"]), int(row["width"]), int(row["lr_index"]),
                 int(row["samples"]))
    diverged = str(row.get("diverged", "")).lower() in ("1", "true", "1.0")
    median = math.inf if diverged else nan_as_inf(row["nmse_median"])
    return Run(key, median, nan_as_inf(row["nmse_min"]), nan_as_inf(row["nmse_max"]), dict(row))


def load_ledger(path: str | os.PathLike) -> dict[RunKey, Run]:
    """The ledger's runs by key (a missing file is an empty ledger). A key twice: the last row wins."""
    path = Path(path)
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        runs = [run_from_row(row) for row in csv.DictReader(handle)]
    return {run.key: run for run in runs}


def append_runs(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Add finished runs to the ledger, atomically: the file is always whole, never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, LEDGER_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if not path.exists():
        writer.writeheader()
    for row in rows:
        writer.writerow({**row, "nmse_seeds": json.dumps(row.get("nmse_seeds", []))})
    text = (path.read_text() if path.exists() else "") + buffer.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
