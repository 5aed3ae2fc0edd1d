"""Every measurement of a study as one table of points: (trial, budget) → median NMSE over seeds.

A sweep's folder holds `trials.csv` (one row per trial: its configuration and final NMSE) and
`curves.csv` (every trial's held-out NMSE at each rung of its ×2 ladder of budgets). The answer
table and the depth comparison both read the same thing from them: each trial's
configuration, at each budget it reached, with the median and range over its seeds there. This
module builds that table, for one sweep or several concatenated (a `sweep` and/or `machine`
column then tells their trials apart). Pure functions on DataFrames; reads results, never trains.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dotmlp.analysis.tables import CURVES_FILE, TABLE_FILE, architecture_label

# Columns that, with trial_id, name a trial across several sweeps (trial ids are unique in one).
TRIAL_KEYS = ("sweep", "machine", "trial_id")
CELL_KEYS = ["dimension", "multiply", "depth", "width"]
# Trials whose curves are measurements. A diverged trial's points before the divergence are real
# too, but its learning rate is unstable (a re-run may diverge sooner): none of them count.
COUNTED_STATUSES = ("completed", "pruned", "unfinished")
POINT_COLUMNS = ["dimension", "multiply", "depth", "width", "lr", "params", "seeds", "status",
                 "budget_limited", "steps", "samples", "val_nmse", "val_nmse_min", "val_nmse_max",
                 "final", "architecture"]


def as_bool(values: pd.Series) -> pd.Series:
    """True/False, 'True'/'False', 1/0 → bool ('False' is not truthy here; NaN is False)."""
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    return values.map(lambda v: v if isinstance(v, (bool, np.bool_))
                      else mapping.get(str(v).strip().lower(), False)).astype(bool)


def trial_keys(*frames: pd.DataFrame) -> list[str]:
    """The columns that name a trial in every one of these frames (trial_id at least)."""
    return [key for key in TRIAL_KEYS if all(key in frame for frame in frames)]


def normalise(trials: pd.DataFrame) -> pd.DataFrame:
    """Types as the analysis writes them, whatever the CSV reader made of them: multiply as bool,
    seeds (1 where an older table has none), width 0 for linear models (one cell per task)."""
    # A run with no Tune trial (analysis.join's missing "tune trial") has no configuration.
    trials = trials.dropna(subset=["dimension", "depth"]).copy()
    trials["width"] = trials["width"].fillna(0)
    trials["multiply"] = as_bool(trials["multiply"])
    trials["seeds"] = (pd.to_numeric(trials["seeds"], errors="coerce").fillna(1).astype(int)
                       if "seeds" in trials else 1)
    for column in ("dimension", "depth", "width"):
        trials[column] = pd.to_numeric(trials[column]).astype(int)
    trials["width"] = trials["width"].where(trials["depth"] > 0, 0)
    trials["budget_limited"] = (as_bool(trials["budget_limited"]) if "budget_limited" in trials
                                else False)
    for column in ("val_nmse_min", "val_nmse_max"):
        if column not in trials:
            trials[column] = np.nan
    return trials


def load_tables(results_dir: str | os.PathLike, names: Sequence[str] | str,
                machines: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """trials.csv and curves.csv of one or several sweeps under results_dir, concatenated, each
    row tagged with its sweep's name (and its machine where given, e.g. "cpu", "gpu").

    A point of a learning curve stands for "trained on that many samples" only when the run up
    to it is what a shorter run would be: with a constant learning rate, not with a schedule that
    depends on the whole budget (cosine). A sweep whose record names another schedule gives no
    curve points (its trials' final results only), with a warning."""
    names = [names] if isinstance(names, str) else list(names)
    if machines is not None and len(machines) != len(names):
        raise ValueError(f"give one machine per sweep: {len(names)} sweeps, {len(machines)} machines")
    all_trials, all_curves = [], []
    for k, name in enumerate(names):
        folder = Path(results_dir) / name
        if not (folder / TABLE_FILE).exists():
            raise FileNotFoundError(f"{folder / TABLE_FILE} does not exist: run "
                                    f"`python -m dotmlp.analysis --results-dir {results_dir} --name {name}`")
        trials = pd.read_csv(folder / TABLE_FILE)
        curves = (pd.read_csv(folder / CURVES_FILE) if (folder / CURVES_FILE).exists()
                  else pd.DataFrame(columns=["trial_id", "steps", "samples", "val_nmse"]))
        schedule = _schedule(results_dir, name)
        if schedule != "constant" and len(curves):
            warnings.warn(f"sweep {name}: schedule {schedule!r}, so its curve points are not "
                          "shorter runs: only its trials' final results are used", stacklevel=2)
            curves = curves.iloc[0:0]
        tags = {"sweep": name, **({"machine": machines[k]} if machines is not None else {})}
        all_trials.append(trials.assign(**tags))
        all_curves.append(curves.assign(**tags))
    return (pd.concat(all_trials, ignore_index=True),
            pd.concat(all_curves, ignore_index=True))


def _schedule(results_dir, name) -> str:
    from dotmlp import record

    path = record.path(results_dir, name)
    if not path.exists():
        return "constant"
    return json.loads(path.read_text()).get("settings", {}).get("schedule", "constant")


def measured_points(trials: pd.DataFrame, curves: pd.DataFrame | None = None,
                    statuses: Iterable[str] = COUNTED_STATUSES) -> pd.DataFrame:
    """One row per (trial, budget) with a finite median NMSE: every point of the trial's learning
    curve plus its final result (the budget may end between two rungs of the ladder), with the
    trial's configuration. `final` marks the trial's last budget. Trials of other statuses
    (diverged, errored) are left out."""
    trials = normalise(trials)
    trials = trials[trials["status"].isin(list(statuses))]
    keys = trial_keys(trials, curves) if curves is not None else trial_keys(trials)
    config = trials[[*keys, "dimension", "multiply", "depth", "width", "lr", "params", "seeds",
                     "status", "budget_limited"]]
    final = trials[[*keys, "steps", "samples", "val_nmse", "val_nmse_min", "val_nmse_max"]]
    parts = [config.merge(final, on=keys).assign(final=True)]
    if curves is not None and len(curves):
        curve_columns = [c for c in ("steps", "samples", "val_nmse", "val_nmse_min", "val_nmse_max")
                         if c in curves]
        parts.append(config.merge(curves[[*keys, *curve_columns]], on=keys).assign(final=False))
    points = pd.concat(parts, ignore_index=True)
    for column in ("steps", "samples", "val_nmse", "val_nmse_min", "val_nmse_max", "params", "lr"):
        points[column] = pd.to_numeric(points[column], errors="coerce")
    points = points.dropna(subset=["val_nmse", "samples", "params"])
    points = points[np.isfinite(points["val_nmse"]) & (points["samples"] > 0)]
    # The final result and the curve's last rung are one measurement: keep it once, as final.
    points = points.sort_values([*keys, "samples", "final"], ascending=[*([True] * len(keys)),
                                                                         True, False])
    points = points.drop_duplicates([*keys, "samples"], keep="first")
    points["final"] = points.groupby(keys)["samples"].transform("max") == points["samples"]
    points["samples"] = points["samples"].astype(np.int64)
    points["steps"] = points["steps"].round().astype("Int64")
    points["params"] = points["params"].astype(np.int64)
    points["architecture"] = [architecture_label(d, w) for d, w in
                              zip(points["depth"], points["width"], strict=True)]
    return points[[*keys, *POINT_COLUMNS]].reset_index(drop=True)


def out_dir(results_dir, names, out) -> Path:
    """Where tables about these sweeps go: `out`, or the one sweep's own folder."""
    names = [names] if isinstance(names, str) else list(names)
    if out is None:
        if len(names) != 1:
            raise ValueError("several sweeps: say where their joint tables go (out)")
        out = Path(results_dir) / names[0]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out
