"""The scaling law's predictions checked: train the configuration it recommends and compare.

For each dimension: the fit (R/N/fit.csv, written by `python -m dotmlp.study.answer`) gives the
pair (N, S) of least compute N·S that it predicts reaches the threshold
(dotmlp.study.predictions.predict, also beyond the sizes trained); N becomes a depth-2
architecture (the width whose parameter count is closest), S becomes steps of the study's batch
(rounded up to a multiple of 25, so that Lightning runs them in groups); the learning rate is the
best one of the trained cell nearest in parameters (same dimension and flag, depth 2 where there
is one); the schedule and target are the study's. It is trained with `dotmlp.train.train` (K seeds
side by side, starting at --seed, by default 1000: seeds the study never used) and the measured
median is set against the law's NMSE at the architecture and samples actually trained (`ratio` =
measured ÷ predicted; target: within 2×). --width trains that width for the samples the law says
it needs (an affordable check where the least-compute pair is not); --width with --steps trains
exactly that. A dimension without a fit of its own (e.g. one beyond the study's) gets the law
interpolated or extrapolated in log d from the determined fits
(dotmlp.study.predictions.law_for_dimension; `law_from` says which) and the learning rate of the
nearest trained dimension.

Before training, the cost is measured: a few optimiser steps of the same K-replica model, timed
on this machine, times the steps. A configuration whose estimate is over --max-seconds is not run
(status "over budget", with the estimate), so a check never runs for hours by surprise.
Rows go to R/N/predictions.csv (replacing rows of the same dimension, flag, threshold,
architecture and steps). `python sweep/check_predictions.py` is its command line.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dotmlp.analysis.tables import cells, write_csv
from dotmlp.sizes import params_of
from dotmlp.study import scaling
from dotmlp.study.law import nmse
from dotmlp.study.points import load_tables, normalise
from dotmlp.study.predictions import architecture_for, law_for_dimension, predict, samples_needed

PREDICTIONS_FILE = "predictions.csv"
STEP_MULTIPLE = 25  # config.MAX_STEPS_PER_BATCH: steps in groups of 25 per Lightning step
COLUMNS = ["dimension", "multiply", "threshold", "predicted_params", "predicted_samples",
           "architecture", "lr", "steps", "measured_nmse_median", "measured_nmse_min",
           "measured_nmse_max", "predicted_nmse", "ratio", "within_2x",
           # extras
           "status", "params", "samples", "seeds", "seed", "form", "determined", "law_from",
           "lr_from", "beyond_trained",
           "max_params_trained", "max_samples_trained", "estimated_seconds", "seconds", "device",
           "current_fit"]


def seconds_per_step(dimension: int, depth: int, width: int, multiply: bool, seeds: int,
                     batch_size: int, device: str, steps: int = 5) -> float:
    """One optimiser step of the K-replica model on this machine (data drawn on the device, as
    in training), the median of `steps` after a warm-up step."""
    import torch

    from dotmlp.model import DotMLP

    model = DotMLP(dimension, (width,) * depth, multiply, replicas=seeds, seed=0).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for k in range(steps + 1):
        started = time.perf_counter()
        a = torch.randn(seeds, batch_size, dimension, device=device)
        b = torch.randn(seeds, batch_size, dimension, device=device)
        loss = (model(a, b) - (a * b).sum(-1)).square().mean(-1).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if k:
            times.append(time.perf_counter() - started)
    return float(np.median(times))


def nearest_cell_lr(cell_table: pd.DataFrame, dimension: int, multiply: bool, params: float,
                    depth: int) -> tuple[float, str]:
    """The best learning rate of the trained cell nearest in log-parameters (same flag; the same
    dimension, or the nearest trained one in log d; the same depth where there is one)."""
    task = cell_table[(cell_table["multiply"] == multiply) & (cell_table["depth"] >= 1)]
    if not len(task):
        raise LookupError(f"no trained cell with the flag {'on' if multiply else 'off'}")
    distance = (np.log(task["dimension"].astype(float)) - math.log(dimension)).abs()
    task = task[distance == distance.min()]
    same = task[task["depth"] == depth]
    task = same if len(same) else task
    index = (np.log(task["params"].astype(float)) - math.log(params)).abs().idxmin()
    cell = task.loc[index]
    at = "" if int(cell["dimension"]) == dimension else f" at d={int(cell['dimension'])}"
    return (float(cell["lr"]),
            f"{int(cell['depth'])}x{int(cell['width'])}{at} ({int(cell['params'])} params)")


def steps_for(samples: float, batch_size: int) -> int:
    """The steps trained for the samples the law asks: rounded up to a multiple of STEP_MULTIPLE."""
    return STEP_MULTIPLE * math.ceil(samples / batch_size / STEP_MULTIPLE)


def plan(fit: pd.DataFrame, cell_table: pd.DataFrame, dimensions, threshold: float,
         multiply: bool, depth: int, batch_size: int, width: int | None = None,
         steps: int | None = None) -> list[dict]:
    """What to train per dimension: the law's least-compute pair for the threshold; with `width`,
    that width and the samples the law says it needs; with `width` and `steps`, exactly those
    (the threshold is then only recorded). The law's NMSE at what is trained is the prediction."""
    rows = []
    for dimension in dimensions:
        row = {"dimension": dimension, "multiply": multiply, "threshold": threshold}
        law = law_for_dimension(fit, dimension, multiply)
        if law is None:
            match = fit[(fit["dimension"] == dimension) & (fit["multiply"] == multiply)]
            note = match.iloc[0]["note"] if len(match) else "no fit for this task"
            rows.append({**row, "status": f"no fit: {note}"})
            continue
        row.update(form=law["form"], max_params_trained=int(law["max_params"]),
                   max_samples_trained=int(law["max_samples"]),
                   determined=str(law.get("determined", "")).lower() == "true",
                   law_from="interpolated" if law["interpolated"] else "fit")
        if width is None:
            p = predict(law, threshold)
            params_wanted, samples_wanted = p["params"], p["samples"]
            if not np.isfinite(params_wanted):
                rows.append({**row, "status": "unreachable by the law (threshold at or below its "
                             f"floor, or beyond {p['max_params']:.3g} params)"})
                continue
            architecture = architecture_for(params_wanted, dimension, multiply, depth)
        else:
            architecture = architecture_for(params_of(dimension, depth, width, multiply),
                                            dimension, multiply, depth)
            params_wanted = architecture["architecture_params"]
            samples_wanted = (steps * batch_size if steps is not None
                              else float(samples_needed(law, params_wanted, threshold)))
            if not np.isfinite(samples_wanted):
                rows.append({**row, "architecture": architecture["architecture"],
                             "status": "unreachable by the law at this width"})
                continue
        trained_steps = steps if steps is not None else steps_for(samples_wanted, batch_size)
        samples = trained_steps * batch_size
        lr, lr_from = nearest_cell_lr(cell_table, dimension, multiply,
                                      architecture["architecture_params"], depth)
        row.update(predicted_params=params_wanted, predicted_samples=samples_wanted,
                   architecture=architecture["architecture"], width=architecture["width"],
                   depth=depth, params=architecture["architecture_params"], steps=trained_steps,
                   samples=samples, lr=lr, lr_from=lr_from,
                   predicted_nmse=float(nmse(law, architecture["architecture_params"], samples,
                                             depth)),
                   beyond_trained=bool(architecture["architecture_params"] > law["max_params"]
                                       or samples > law["max_samples"]),
                   status="planned")
        rows.append(row)
    return rows


def check(results_dir, names: list[str], dimensions, threshold: float, *, fit_path=None,
          out=None, multiply: bool = False, depth: int = 2, width: int | None = None,
          steps: int | None = None, seeds: int = 3, seed: int = 1000, max_seconds: float = 1800,
          threads: int = 0, dry_run: bool = False) -> pd.DataFrame:
    """Plan each dimension's check from the fit beside the first sweep (or `fit_path`), estimate
    its cost here, train what is within `max_seconds` (nothing with `dry_run`), and write the rows
    to `out` (default: predictions.csv beside the fit) unless a dry run. One row per dimension
    (COLUMNS). Raises FileNotFoundError for a missing fit or sweep, LookupError for a flag with
    no trained cell."""
    fit_path = Path(fit_path) if fit_path else Path(results_dir) / names[0] / scaling.FIT_FILE
    if not fit_path.exists():
        raise FileNotFoundError(f"{fit_path} does not exist: run `python -m dotmlp.study.answer "
                                f"--results-dir {results_dir} --name {names[0]}` first (or pass --fit)")
    trials, _ = load_tables(results_dir, names)
    settings = _settings(results_dir, names[0])
    batch_size = int(settings.get("batch_size", 1024))
    fit = pd.read_csv(fit_path)
    fit["multiply"] = fit["multiply"].astype(str).str.lower().eq("true")
    cell_table = cells(normalise(trials))
    rows = plan(fit, cell_table, dimensions, threshold, multiply, depth, batch_size, width, steps)

    import torch

    if threads:
        torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for row in rows:
        if row["status"] != "planned":
            print(f"d={row['dimension']}: {row['status']}", file=sys.stderr)
            continue
        per_step = seconds_per_step(row["dimension"], depth, row["width"], multiply, seeds,
                                    batch_size, device)
        # Lightning's own overhead and the evaluations: about 15 % on these nets, plus start-up.
        row["estimated_seconds"] = 1.15 * per_step * row["steps"] + 5
        row.update(seeds=seeds, seed=seed, device=device)
        print(f"d={row['dimension']}: {row['architecture']} ({row['params']:,} params), "
              f"{row['samples']:,} samples ({row['steps']:,} steps), lr {row['lr']:.2g} (from "
              f"{row['lr_from']}): predicted NMSE {row['predicted_nmse']:.2e}"
              f"{' [beyond the trained sizes]' if row['beyond_trained'] else ''}"
              f"{' [law interpolated in d]' if row['law_from'] == 'interpolated' else ''}"
              f"{'' if row['determined'] else ' [fit not determined: see fit.csv notes]'}; "
              f"estimated {row['estimated_seconds']:.0f} s on {device}", flush=True)
        if row["estimated_seconds"] > max_seconds:
            row["status"] = "over budget"
            print(f"d={row['dimension']}: not run: the estimate {row['estimated_seconds']:.0f} s "
                  f"is over --max-seconds {max_seconds:g} (run it on a GPU, or raise "
                  "--max-seconds)", file=sys.stderr)
            continue
        if dry_run:
            row["status"] = "dry run"
            continue
        row.update(train_row(row, depth, multiply, seed, seeds, settings, batch_size))
        print(f"d={row['dimension']}: measured {row['measured_nmse_median']:.2e} "
              f"[{row['measured_nmse_min']:.1e}, {row['measured_nmse_max']:.1e}], ratio "
              f"{row['ratio']:.2f} ({'within' if row['within_2x'] else 'NOT within'} 2×), "
              f"{row['seconds']:.0f} s", flush=True)
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for column in ("steps", "params", "samples", "seeds", "seed", "max_params_trained",
                   "max_samples_trained"):
        table[column] = pd.array(pd.to_numeric(table[column]).round(), dtype="Int64")
    out = Path(out) if out else fit_path.parent / PREDICTIONS_FILE
    if not dry_run:
        write_csv(mark_current(_merged(out, table), fit_path.parent / scaling.PREDICTIONS_FILE,
                               batch_size), out)
        print(f"Written: {out}")
    return table


def train_row(row: dict, depth: int, multiply: bool, seed: int, seeds: int, settings: dict,
              batch_size: int) -> dict:
    from dotmlp.cli import quiet_lightning
    from dotmlp.config import TrialConfig
    from dotmlp.train import train

    quiet_lightning()
    config = TrialConfig(dimension=row["dimension"], depth=depth, width=row["width"],
                         lr=row["lr"], steps=row["steps"], batch_size=batch_size,
                         multiply=multiply, target=settings.get("target", "dot"),
                         schedule=settings.get("schedule", "constant"), eval_every=row["steps"],
                         seed=seed, seeds=seeds)
    result = train(config)
    measured = result["val_nmse"]
    ratio = measured / row["predicted_nmse"]
    return {"measured_nmse_median": measured, "measured_nmse_min": result["val_nmse_min"],
            "measured_nmse_max": result["val_nmse_max"], "ratio": ratio,
            "within_2x": bool(0.5 <= ratio <= 2), "seconds": result["seconds"],
            "status": "diverged" if result["diverged"] else "measured",
            "device": result["device"]}



def _settings(results_dir, name) -> dict:
    from dotmlp import record

    path = record.path(results_dir, name)
    return json.loads(path.read_text()).get("settings", {}) if path.exists() else {}


def mark_current(table: pd.DataFrame, predicted: Path, batch_size: int) -> pd.DataFrame:
    """current_fit: whether a row trained the architecture and the steps the fit beside it
    recommends now (predicted.csv); the file keeps the checks of earlier fits too, and this tells
    them apart (a refit that moves only the samples makes an older check of the same net stale)."""
    if not predicted.exists():
        return table.assign(current_fit=pd.NA)
    law = pd.read_csv(predicted)
    law["multiply"] = law["multiply"].astype(str).str.lower().eq("true")
    recommended = {(int(r.dimension), bool(r.multiply), float(r.threshold), str(r.architecture),
                    steps_for(r.samples, batch_size))
                   for r in law.itertuples() if isinstance(r.architecture, str)}
    return table.assign(current_fit=[key in recommended for key in _keys(table)])


def _merged(path: Path, table: pd.DataFrame) -> pd.DataFrame:
    """The new rows, and the file's rows of other (dimension, flag, threshold, architecture,
    steps)."""
    if not path.exists():
        return table
    old = pd.read_csv(path)
    old["multiply"] = old["multiply"].astype(str).str.lower().eq("true")
    new_keys = set(_keys(table))
    keep = old[[key not in new_keys for key in _keys(old)]]
    return pd.concat([keep, table], ignore_index=True).sort_values(
        ["dimension", "multiply", "threshold"], ignore_index=True, kind="stable")


def _keys(frame: pd.DataFrame) -> list[tuple]:
    return [(int(row.dimension), bool(row.multiply), float(row.threshold),
             "" if pd.isna(row.architecture) else str(row.architecture),
             -1 if pd.isna(row.steps) else int(row.steps)) for row in frame.itertuples()]


def json_rows(table: pd.DataFrame) -> str:
    """The rows as one line of JSON (NaN and NA as null)."""
    return json.dumps([{k: _plain(v) for k, v in row.items()} for row in table.to_dict("records")],
                      allow_nan=False)


def _plain(value):
    if value is pd.NA:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value
