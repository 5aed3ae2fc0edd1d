"""The flag at the frontier: the smallest MLP that SGD trains to ε with a·b among its inputs, against
the smallest without, both found by the same frontier search (dotmlp.frontier) at the same seeds,
budgets and learning-rate bracket.

With the flag, two ReLUs are exact at any d (relu(s) − relu(−s), s = Σ a_i·b_i): the search
starts there (frontier.FLAG_WIDTH). Without it, the answer table's row.

`python -m dotmlp.study.frontier_flag [--results-dir results] [--name frontier] [--depths 1]` reads
<name>/candidates-multiply.csv (`python sweep/run.py --frontier --multiply on --depths 1`) and
<name>/candidates.csv, and writes flag.csv (one row per (d, ε, depth): each side's width, params,
samples, NMSE and seeds' range, and `params_ratio`, without ÷ with) and flag.md (one line each).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from dotmlp import frontier
from dotmlp.cli import int_list
from dotmlp.config import ConfigError
from dotmlp.record import write_atomically
from dotmlp.study.frontier import METHOD, answer_table, ledger_parser, require_ledger

CSV, SUMMARY = "flag.csv", "flag.md"
KEYS = ["dimension", "threshold", "depth"]
SIDE = ["status", "reached", "width", "params", "failed_width", "samples", "nmse_median", "nmse_min",
        "nmse_max", "lr", "lr_bracketed"]


def flag_table(with_flag: dict, without: dict, depths: tuple[int, ...] = (1,),
               thresholds: tuple[float, ...] = frontier.FrontierSettings.thresholds) -> pd.DataFrame:
    """Per (d, ε, depth) of the answer's grid: with_* from the flag's ledger, without_* from the
    plain one, and params_ratio = without_params ÷ with_params where both reached."""
    sides = []
    for prefix, ledger, flag in (("with_", with_flag, True), ("without_", without, False)):
        settings = frontier.FrontierSettings(depths=depths, thresholds=thresholds, multiply=flag)
        table = answer_table(settings, ledger)
        sides.append(table[KEYS + SIDE].rename(columns={c: prefix + c for c in SIDE}))
    both = sides[0].merge(sides[1], on=KEYS)
    reached = (both["with_reached"] == True) & (both["without_reached"] == True)  # noqa: E712 (NaN)
    ratio = pd.to_numeric(both["without_params"]) / pd.to_numeric(both["with_params"])
    both["params_ratio"] = ratio.where(reached).round(1)
    return both.sort_values(["threshold", "depth", "dimension"], ascending=[False, True, True],
                            ignore_index=True)


def side(row, prefix: str) -> str:
    get = lambda name: getattr(row, prefix + name)  # noqa: E731
    if get("status") != "decided":
        return str(get("status"))
    if get("reached") is not True:
        return f"not reached (best {get('nmse_median'):.2g}): a bound"
    return (f"{row.depth} × {get('width')}, {get('params'):,} params, {get('samples'):,} samples "
            f"(NMSE {get('nmse_median'):.2g} [{get('nmse_min'):.2g}, {get('nmse_max'):.2g}])")


def summary(table: pd.DataFrame) -> str:
    lines = ["# The flag at the frontier", "",
             "The smallest MLP SGD trained to ε with a·b fed as d more inputs, against the smallest "
             f"without: {METHOD}; with the fewest samples of the ladder that reached "
             "(dotmlp.study.frontier_flag).", "",
             "| d | ε | with the flag | without | params without ÷ with |", "|---|---|---|---|---|"]
    for row in table.itertuples():
        ratio = "" if pd.isna(row.params_ratio) else f"{row.params_ratio:g}×"
        lines.append(f"| {row.dimension} | {row.threshold:g} | {side(row, 'with_')} | "
                     f"{side(row, 'without_')} | {ratio} |")
    return "\n".join(lines) + "\n"


def ledgers(precision: str = "fp32") -> list[frontier.FrontierSettings]:
    """The two searches set against each other, with the flag first: one precision for both."""
    return [frontier.FrontierSettings(multiply=flag, precision=precision) for flag in (True, False)]


def write(results_dir: Path, name: str = "frontier", depths: tuple[int, ...] = (1,),
          precision: str = "fp32") -> pd.DataFrame:
    """flag.csv and flag.md from the two ledgers in <results-dir>/<name>/, written atomically."""
    folder = Path(results_dir) / name
    with_flag, without = (frontier.load_ledger(folder / s.ledger_name) for s in ledgers(precision))
    table = flag_table(with_flag, without, depths=depths)
    write_atomically(Path(results_dir) / CSV, table.to_csv(index=False))
    write_atomically(Path(results_dir) / SUMMARY, summary(table))
    print(f"{Path(results_dir) / CSV}: {int(table['params_ratio'].notna().sum())} of {len(table)} "
          "rows with both sides reached")
    return table


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ledger_parser("dotmlp.study.frontier_flag", __doc__, f"{CSV} and {SUMMARY}")
    parser.add_argument("--depths", default="1", help="the depths to compare (comma-separated)")
    args = parser.parse_args(argv)
    try:
        depths = int_list("depths", args.depths)
    except ConfigError as error:
        parser.error(str(error))
    for settings in ledgers():
        require_ledger(parser, args, settings)
    return write(Path(args.results_dir), args.name, depths)


if __name__ == "__main__":
    main(sys.argv[1:])
