"""The frontier search as a Tune Searcher: it suggests the runs dotmlp.frontier needs and writes each
finished run to the ledger, from the driver, as it finishes."""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path

from ray.tune.search import Searcher

from dotmlp import frontier
from dotmlp.tune.trainable import METRIC

# A run that errors this often is left out (its task waits; the summary says which): a bug or a
# machine fault, not a result to retry forever.
MAX_ERRORS_PER_RUN = 2


def cpu_name() -> str:
    """The CPU's model name: a run's seconds mean nothing without it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class FrontierSearcher(Searcher):
    """Suggests what the frontier search needs next and records what finished.

    Its whole memory is the ledger (a CSV that is committed as it grows): a search stopped at any
    point and started again replays every task on it and suggests only runs it lacks. Runs in
    flight when it stopped are not in it, and run again from the start."""

    def __init__(self, settings: frontier.FrontierSettings, ledger: str | Path, cpus: float = 1.0,
                 device: str = "cpu"):
        super().__init__(metric=METRIC, mode="min")
        self.settings = settings
        self.ledger_path = Path(ledger)
        self.ledger = frontier.load_ledger(self.ledger_path)
        self.cpus, self.device, self.cpu = cpus, device, cpu_name()
        self.running: dict[str, frontier.RunKey] = {}
        self.errors: dict[frontier.RunKey, int] = {}
        self.suggested = 0

    def trial_config(self, key: frontier.RunKey) -> dict:
        s = self.settings
        return {"dimension": key.dimension, "depth": key.depth, "width": key.width, "lr": key.lr,
                "multiply": s.multiply, "steps": key.samples // s.batch_size, "batch_size": s.batch_size,
                "seeds": s.seeds, "schedule": "cosine", "precision": s.precision, "lr_index": key.lr_index,
                "samples_budget": key.samples}

    def suggest(self, trial_id: str):
        in_flight = set(self.running.values())
        for key in frontier.pending(self.settings, self.ledger):
            if key in in_flight or self.errors.get(key, 0) >= MAX_ERRORS_PER_RUN:
                continue
            self.running[trial_id] = key
            self.suggested += 1
            return self.trial_config(key)
        if self.running:
            return None  # waiting for a result before the next decision
        return Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        key = self.running.pop(trial_id, None)
        if key is None:
            return
        # A run that ended short of its budget without diverging did not finish: not a result.
        trained = int((result or {}).get("steps", 0)) * self.settings.batch_size
        if error or not result or (trained < key.samples and not result.get("diverged")):
            self.errors[key] = self.errors.get(key, 0) + 1
            return
        row = ledger_row(key, result, self.settings, self.cpus, self.device, self.cpu, trial_id)
        frontier.append_runs(self.ledger_path, [row])
        self.ledger[key] = frontier.run_from_row(row)

    def save(self, checkpoint_path: str):  # the ledger is the state; Tune's copy needs nothing
        Path(checkpoint_path).write_text(str(self.ledger_path))

    def restore(self, checkpoint_path: str):
        self.ledger_path = Path(Path(checkpoint_path).read_text())
        self.ledger = frontier.load_ledger(self.ledger_path)


def ledger_row(key: frontier.RunKey, result: dict, settings: frontier.FrontierSettings, cpus: float,
               device: str, cpu: str, trial_id: str) -> dict:
    """One finished run, as the ledger keeps it: the seeds' final NMSEs as they were (NaN and inf
    kept: a diverged seed is a result), their median, min and max."""
    seeds = [result.get(f"val_nmse_seed{k}", math.nan) for k in range(settings.seeds)]
    diverged = bool(result.get("diverged"))
    return {
        "dimension": key.dimension, "depth": key.depth, "width": key.width,
        "lr_index": key.lr_index, "lr": key.lr, "samples": key.samples,
        "steps": int(result.get("steps", 0)), "seeds": settings.seeds,
        "batch_size": settings.batch_size, "schedule": "cosine", "precision": settings.precision,
        "params": int(result.get("params", frontier.params_of(key.dimension, key.depth, key.width))),
        "nmse_median": math.inf if diverged else result.get("val_nmse", math.nan),
        "nmse_min": result.get("val_nmse_min", math.nan),
        "nmse_max": result.get("val_nmse_max", math.nan),
        "nmse_seeds": seeds, "diverged_replicas": int(result.get("diverged_replicas", 0)),
        "diverged": int(diverged), "seconds": round(float(result.get("time_total_s", 0.0)), 2),
        "cpus": cpus, "device": device, "cpu": cpu, "trial_id": trial_id,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
