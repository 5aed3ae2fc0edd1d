"""Check the scaling law's predictions: train the configuration it recommends and compare.

`python sweep/check_predictions.py --results-dir R --name N --dimensions 2,4,8 [--threshold 1e-2]
[--seeds 3] [--multiply] [--width W [--steps T]] [--max-seconds 1800] [--dry-run] [--json]`

What it plans, trains and writes: dotmlp.study.checks (R/N/predictions.csv, beside the fit).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

from dotmlp.cli import ArgumentParser, fail, int_list  # noqa: E402
from dotmlp.config import ConfigError  # noqa: E402
from dotmlp.study import checks  # noqa: E402

PROG = "python sweep/check_predictions.py"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--results-dir", default="results")
    p.add_argument("--name", action="append", default=None,
                   help="the sweep(s) the fit was made from (repeat for a study of several)")
    p.add_argument("--fit", default=None, help="fit.csv to read (default: <results-dir>/<name>/fit.csv)")
    p.add_argument("--out", default=None,
                   help=f"where {checks.PREDICTIONS_FILE} goes (default: next to the fit)")
    p.add_argument("--dimensions", required=True, help="comma-separated, e.g. 2,4,8")
    p.add_argument("--threshold", type=float, default=1e-2, help="the NMSE to reach (0 < t < 1)")
    p.add_argument("--multiply", action="store_true", help="the flag-on task (a*b fed)")
    p.add_argument("--depth", type=int, default=2, help="depth of the architecture trained")
    p.add_argument("--width", type=int, default=None,
                   help="train this width (default: the law's least-compute size for the threshold)")
    p.add_argument("--steps", type=int, default=None,
                   help="with --width: train this many steps (default: what the law says it needs)")
    p.add_argument("--seeds", type=int, default=3, help="replicas; the median is compared")
    p.add_argument("--seed", type=int, default=1000, help="first seed (the study's were 0…K-1)")
    p.add_argument("--max-seconds", type=float, default=1800,
                   help="refuse a configuration whose measured estimate is longer")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--dry-run", action="store_true", help="predict and estimate, train nothing")
    p.add_argument("--json", action="store_true", help="last stdout line: the rows as JSON")
    return p


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        dimensions = int_list("dimensions", args.dimensions)
    except ConfigError as error:
        fail(PROG, str(error))
    if not 0 < args.threshold < 1:
        fail(PROG, f"threshold must be a number in (0, 1), got {args.threshold}")
    if args.steps is not None and args.width is None:
        fail(PROG, "--steps needs --width (without it the law chooses both)")
    for name, value, minimum in (("seeds", args.seeds, 1), ("depth", args.depth, 1),
                                 ("seed", args.seed, 0), ("threads", args.threads, 0),
                                 ("width", args.width or 1, 1), ("steps", args.steps or 1, 1)):
        if value < minimum:
            fail(PROG, f"{name} must be an integer >= {minimum}, got {value}")
    if not args.max_seconds > 0:
        fail(PROG, f"max-seconds must be a number > 0, got {args.max_seconds}")
    try:
        table = checks.check(args.results_dir, args.name or ["sweep"], dimensions, args.threshold,
                             fit_path=args.fit, out=args.out, multiply=args.multiply,
                             depth=args.depth, width=args.width, steps=args.steps, seeds=args.seeds,
                             seed=args.seed, max_seconds=args.max_seconds, threads=args.threads,
                             dry_run=args.dry_run)
    except (FileNotFoundError, LookupError) as error:
        fail(PROG, str(error))
    if args.json:
        print(checks.json_rows(table))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
