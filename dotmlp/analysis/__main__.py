"""Join a sweep's Tune trials and MLflow runs into one table, and draw what it says.

`python -m dotmlp.analysis --results-dir DIR --name NAME`: one sweep's tables and figures
(dotmlp.analysis.build), then its summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from dotmlp.analysis import build, format_summary, load_record, summarize
from dotmlp.cli import ArgumentParser, fail


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ArgumentParser(prog="python -m dotmlp.analysis", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--name", default="sweep")
    parser.add_argument("--mlflow-uri", default=None,
                        help="the sweep's MLflow store (default: the record's, or <results-dir>/mlflow.db)")
    parser.add_argument("--storage-path", default=None,
                        help="where the Tune experiment's folder is (default: the record's, "
                        "or the results dir)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    try:
        record = load_record(args.results_dir, args.name)
        table = build(args.results_dir, args.name, figures=not args.no_figures,
                      mlflow_uri=args.mlflow_uri, storage=args.storage_path)
    except FileNotFoundError as error:
        fail(parser.prog, str(error))
    summary = {**summarize(table, record), "figures": not args.no_figures,
               "asha": record["settings"].get("asha", True)}
    print(format_summary(summary, Path(args.results_dir) / args.name))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
