"""How big, on how much data: the scaling law per task (dimension, flag) fitted to a study's
learning curves, and the files it writes.

The law and its NMSE: dotmlp.study.law; its fit, with bootstrap intervals and residuals:
dotmlp.study.fit; what it predicts a threshold takes: dotmlp.study.predictions; set against
approximation theory, in prose: dotmlp.study.approximation; drawn: dotmlp.study.fit_figure.
`python -m dotmlp.study.answer` writes these files with the answer table.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import pandas as pd

from dotmlp.analysis.figures import save_figure
from dotmlp.analysis.tables import write_csv
from dotmlp.record import write_atomically
from dotmlp.study.approximation import approximation_paragraph
from dotmlp.study.fit import FIT_DEPTHS, RESAMPLES, fit_scaling, residuals, tuned_points
from dotmlp.study.fit_figure import fit_figure
from dotmlp.study.points import load_tables, out_dir
from dotmlp.study.predictions import THRESHOLDS, prediction_table

FIT_FILE = "fit.csv"
DRAWS_FILE = "fit_bootstrap.csv"
PREDICTIONS_FILE = "predicted.csv"
RESIDUALS_FILE = "fit_residuals.csv"
APPROXIMATION_FILE = "approximation.md"


def write_fit(results_dir: str | os.PathLike, names: Sequence[str] | str,
              machines: Sequence[str] | None = None, out: str | os.PathLike | None = None, *,
              resamples: int = RESAMPLES, seed: int = 0, depths: Sequence[int] | None = FIT_DEPTHS,
              form: str = "auto", figures: bool = True,
              thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """Fit the sweeps' curves and write, atomically, into `out` (default: the one sweep's folder):
    fit.csv, fit_bootstrap.csv, fit_residuals.csv, predicted.csv (prediction_table),
    approximation.md and, with figures, fit.png (flag off) and fit_multiply_on.png."""
    trials, curves = load_tables(results_dir, names, machines)
    out = out_dir(results_dir, names, out)
    fit, draws = fit_scaling(trials, curves, depths=depths, form=form, resamples=resamples, seed=seed)
    predictions = prediction_table(fit, draws, thresholds)
    write_csv(fit, out / FIT_FILE)
    write_csv(draws, out / DRAWS_FILE)
    write_csv(predictions, out / PREDICTIONS_FILE)
    write_csv(residuals(tuned_points(trials, curves, depths), fit), out / RESIDUALS_FILE)
    write_atomically(out / APPROXIMATION_FILE, approximation_paragraph(fit, predictions))
    if figures:
        points = tuned_points(trials, curves, depths)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for multiply, stem in ((False, "fit"), (True, "fit_multiply_on")):
                if (points["multiply"] == multiply).any():
                    save_figure(fit_figure(points, fit, predictions, multiply, thresholds),
                                out / f"{stem}.png")
    return fit
