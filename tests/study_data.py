"""Synthetic sweep tables for the study's analysis tests: trials.csv and curves.csv as the analysis
writes them, with NMSE drawn from a known law of size and samples."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from dotmlp.sizes import params_of

LADDER = tuple(1024 * 2**k for k in range(5, 12))  # 32 … 2048 steps of 1024 samples


def law_nmse(law: dict, params, samples, factor: float = 1.0):
    f = factor * (law["A"] * np.asarray(params, float) ** -law["alpha"]
         + law["B"] * np.asarray(params, float) ** -law.get("delta", 0.0)
         * np.asarray(samples, float) ** -law["beta"] + law.get("E", 0.0))
    return f / (1 + f)


def sweep_tables(law: dict, dimensions=(4,), multiply=(False,), depths=(2,),
                 widths=(8, 16, 32, 64, 128, 256), lrs=(1e-3, 3e-3, 1e-2), ladder=LADDER,
                 seeds=3, noise=0.1, seed=0, prefix="t",
                 depth_factors=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every (dimension, flag, depth, width, lr) a completed trial with `seeds` replicas whose
    NMSE at each rung is the law's times a log-normal seed noise; learning rates away from 3e-3
    are worse by a factor (1 + 2·|log10(lr / 3e-3)|) on the law's f, so the tuned one is 3e-3.
    depth_factors: {depth: factor} on the law's f (default 1)."""
    rng = np.random.default_rng(seed)
    trials, curves = [], []
    for dimension in dimensions:
        for flag in multiply:
            for depth in depths:
                for width in widths:
                    params = params_of(dimension, depth, width, flag)
                    for lr in lrs:
                        trial_id = f"{prefix}{len(trials):05d}"
                        penalty = 1 + 2 * abs(np.log10(lr / 3e-3))
                        factor = (depth_factors or {}).get(depth, 1.0)
                        for samples in ladder:
                            values = (law_nmse(law, params, samples, factor * penalty)
                                      * np.exp(rng.normal(0, noise, seeds)))
                            curves.append({"trial_id": trial_id, "steps": samples // 1024,
                                           "samples": samples, "val_nmse": float(np.median(values)),
                                           "val_nmse_min": values.min(), "val_nmse_max": values.max()})
                        trials.append(trial(trial_id, dimension, flag, depth, width, lr, seeds,
                                            curves[-1], values, params=params))
    return pd.DataFrame(trials), pd.DataFrame(curves)


def trial(trial_id, dimension, multiply, depth, width, lr, seeds, last: dict, values=None,
          status="completed", params=None, budget_limited=False) -> dict:
    """One trials.csv row whose final result is the curve point `last`."""
    values = [last["val_nmse"]] * seeds if values is None else list(values)
    return {"trial_id": trial_id, "dimension": dimension, "multiply": multiply, "depth": depth,
            "width": width, "lr": lr,
            "params": params if params is not None else params_of(dimension, depth, width, multiply),
            "seeds": seeds, "status": status, "steps": last["steps"], "samples": last["samples"],
            "val_nmse": last["val_nmse"], "val_nmse_min": last.get("val_nmse_min", min(values)),
            "val_nmse_max": last.get("val_nmse_max", max(values)),
            "val_nmse_seeds": json.dumps([float(v) for v in values]),
            "budget_limited": budget_limited}


def curve(trial_id, points: dict, spread: float = 1.5) -> list[dict]:
    """Curve rows from {samples: median}; the seeds' range is median ÷ spread … median × spread."""
    return [{"trial_id": trial_id, "steps": samples // 1024, "samples": samples, "val_nmse": value,
             "val_nmse_min": value / spread, "val_nmse_max": value * spread}
            for samples, value in sorted(points.items())]
