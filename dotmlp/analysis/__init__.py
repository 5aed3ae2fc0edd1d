"""Join a sweep's Tune trials and MLflow runs into one table, and draw what it says.

Three stages, a module each: the join (dotmlp.analysis.trials: trials and curves), the tables
(dotmlp.analysis.tables: cells, frontier, summary) and the figures (dotmlp.analysis.figures);
`build` runs them for one sweep. `python -m dotmlp.analysis --results-dir DIR --name NAME` writes
DIR/NAME/trials.csv (one row per trial), cells.csv (one row per architecture cell: its best
learning rate's median over seeds), curves.csv (every trial's held-out learning curve) and the
figures. A results dir without its Tune experiment (the committed one, a fetched one) redraws the
figures from those tables. Reads results only; never trains, and never imports the study across
sweeps (dotmlp.study), which reads these tables.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dotmlp import record as sweep_record
from dotmlp.analysis.figures import (
    MARKS,
    cell_labels,
    draw_all,
    frontier_figure,
    heatmap_figures,
    learning_curves_figure,
    learning_rate_figure,
    pool_figure,
    save_figure,
)
from dotmlp.analysis.tables import (
    CELLS_FILE,
    CURVES_FILE,
    TABLE_FILE,
    architecture_label,
    cells,
    format_summary,
    frontier,
    grid_of,
    read_tables,
    smallest_reaching,
    summarize,
    write_csv,
)
from dotmlp.analysis.trials import join, load_record, merge_curves, mlflow_curves, mlflow_runs, tune_trials

# The stages' names a reader of one sweep uses, as dotmlp.analysis.<name> (the notebook, the tests).
__all__ = ["CELLS_FILE", "CURVES_FILE", "MARKS", "TABLE_FILE", "architecture_label", "build", "cell_labels",
           "cells", "draw_all", "format_summary", "frontier", "frontier_figure", "grid_of",
           "heatmap_figures", "join", "learning_curves_figure", "learning_rate_figure", "load_record",
           "merge_curves", "mlflow_curves", "mlflow_runs", "pool_figure", "read_tables", "save_figure",
           "smallest_reaching", "summarize", "tune_trials", "write_csv"]


def build(results_dir: str | os.PathLike, name: str, figures: bool = True,
          mlflow_uri: str | None = None, storage: str | None = None) -> pd.DataFrame:
    """Join the sweep's two records, write trials.csv, cells.csv and curves.csv (atomically) and
    the figures. Without the Tune experiment (a committed or fetched results dir), redraw the
    figures from the tables already there."""
    record = load_record(results_dir, name)
    out = Path(results_dir) / name
    experiment = (f"{storage.rstrip('/')}/{name}" if storage and "://" in storage
                  else str(Path(storage) / name) if storage
                  else sweep_record.experiment_path(record, results_dir))
    if "://" not in experiment and not (Path(experiment) / "tuner.pkl").exists():
        if not (out / TABLE_FILE).exists():
            raise FileNotFoundError(f"{out} has neither the Tune experiment nor {TABLE_FILE}")
        table, curves = read_tables(out)
    else:
        uri = mlflow_uri or sweep_record.mlflow_uri(record, results_dir)
        tune_df, curves = tune_trials(experiment)
        runs = mlflow_runs(uri, name, sweep_record.sweep_id(record))
        curves = merge_curves(curves, mlflow_curves(uri, runs))
        table = join(tune_df, runs, record)
        write_csv(table, out / TABLE_FILE)
        write_csv(curves, out / CURVES_FILE)
        write_csv(cells(table), out / CELLS_FILE)
    if figures:
        draw_all(table, curves, out, grid_of(record))
    return table
