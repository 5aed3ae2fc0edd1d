"""One law across dimensions for SGD's NMSE: fitted, tested by leaving one dimension out, asked
for the widths of dimensions it never saw, and the price of learning beside it.

`python -m dotmlp.study.law_across [--ledger results/frontier/candidates.csv] [--answer
results/answer.csv] [--out-dir results]` writes, atomically and seeded (the same ledger writes the
same files; run it again as the ledger grows):
- law.csv: the law's constants with 90 % bootstrap intervals (dotmlp.study.across_fit), for the
  law with d-exponents γ and without, and the per-dimension fits';
- law_loo.csv: per dimension left out, each method's held-out RMSE of log NMSE (and bias), and
  the RMS log ratio of found to predicted width (dotmlp.study.across_checks);
- law_checks.csv: predicted against found widths (d = 24, 48 held out; 32, 64 from d ≤ 16; each
  dimension with data left out);
- price.csv, price.png: the price of learning (dotmlp.study.price).

What it finds on the committed ledger (the law kept, its exponents and intervals, the held-out
errors and the widths predicted for unseen dimensions) is in results/README.md, "Why", and in the
files themselves: the numbers move as the ledger grows, so they are not repeated here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from dotmlp.cli import ArgumentParser, fail
from dotmlp.record import write_atomically
from dotmlp.study import across_checks, across_fit
from dotmlp.study.across_fit import MAX_NMSE, NET_KEYS, POINT_KEYS, RESAMPLES

LEDGER = Path("results/frontier/candidates.csv")
ANSWER = Path("results/answer.csv")
OUT_DIR = Path("results")


# ---------------------------------------------------------------------------- the command
def write_all(ledger_path: Path, answer_path: Path, out_dir: Path, resamples: int = RESAMPLES,
              seed: int = 0, figure: bool = True) -> dict[str, pd.DataFrame]:
    """law.csv, law_loo.csv, law_checks.csv, price.csv (and price.png) under out_dir, atomically."""
    from dotmlp.study import price

    curves = across_fit.learning_curves(pd.read_csv(ledger_path))
    points = across_fit.fitted_points(curves)
    answer = pd.read_csv(answer_path)
    loo = across_fit.leave_one_out(points) if points["dimension"].nunique() >= 3 else pd.DataFrame()
    if len(loo):
        loo = loo.merge(across_checks.width_scores(points, answer), on="held_out", how="left")
    kept = across_fit.kept_method(loo)
    fits = across_fit.Fits(points, resamples, seed)
    tables = {"law": across_fit.law_table(fits, loo, kept), "law_loo": loo,
              "law_checks": across_checks.law_checks(fits, answer, kept), "price": price.price_table(answer)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_atomically(out_dir / f"{name}.csv", table.to_csv(index=False, float_format="%.6g"))
    if figure:
        price.draw(tables["price"], out_dir / "price.png")
    unbracketed = int((~curves["bracketed"].astype(bool)).sum())
    print(f"{out_dir}/law.csv: kept {kept} (held-out RMSE of log NMSE "
          + ", ".join(f"{m} {across_fit.pooled_rmse(loo, m):.3f}" for m in across_fit.METHODS if len(loo))
          + f"); {len(points)} points of {len(curves)} ({unbracketed} with an unbracketed rate), "
          f"d = {across_fit.dims_text(points)}")
    return tables


def main(argv: list[str] | None = None) -> dict[str, pd.DataFrame]:
    parser = ArgumentParser(prog="python -m dotmlp.study.law_across", description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", default=str(LEDGER), help="the frontier search's candidates.csv")
    parser.add_argument("--answer", default=str(ANSWER), help="answer.csv (found widths, the price)")
    parser.add_argument("--out-dir", default=str(OUT_DIR), help="where the tables and price.png go")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-figure", action="store_true")
    args = parser.parse_args(argv)
    for name, path in (("ledger", args.ledger), ("answer", args.answer)):
        if not Path(path).is_file():
            fail(parser.prog, f"--{name} {path!r} does not exist")
    if args.resamples < 1:
        fail(parser.prog, f"--resamples must be >= 1, got {args.resamples}")
    try:
        ledger = pd.read_csv(args.ledger)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        fail(parser.prog, f"--ledger {args.ledger!r} cannot be read: {error}")
    missing = {*POINT_KEYS, "lr", "nmse_median"} - set(ledger.columns)
    if missing:
        fail(parser.prog, f"--ledger {args.ledger!r} lacks columns {', '.join(sorted(missing))}")
    points = across_fit.fitted_points(across_fit.learning_curves(ledger))
    if points["dimension"].nunique() < 2 or points.groupby(NET_KEYS).ngroups < 4:
        dims = across_fit.dims_text(points) or "none"
        fail(parser.prog, f"--ledger {args.ledger!r} has too few runs to fit: "
                          f"{len(points)} points below NMSE {MAX_NMSE:g}, d = {dims} "
                          "(the law needs nets at 2 dimensions or more)")
    return write_all(Path(args.ledger), Path(args.answer), Path(args.out_dir), args.resamples,
                     args.seed, figure=not args.no_figure)


if __name__ == "__main__":
    main(sys.argv[1:])
