"""Depth at the frontier: the smallest nets of one, two and four hidden layers that SGD trains to ε,
each found by the same frontier search (dotmlp.frontier), at the same sample cap, seeds and
learning-rate bracket, so that only depth differs.

`python -m dotmlp.study.frontier_depth [--results-dir results] [--name frontier]` replays the
search on its ledger (<results-dir>/<name>/candidates.csv) for depths 1, 2 and 4 and writes
depth.csv (one row per (d, ε, depth): the answer table's columns, plus `params_vs_depth1`, the
smallest net's parameters ÷ depth 1's) and depth.md (one line per (d, ε)) to the results dir.
A (d, depth) the search never started is "not searched", with the command that starts it; a
started one not yet decided is "in progress". Depth 4 is searched on request only
(`python sweep/run.py --frontier --depths 4 ...`); the answer table keeps depths 1 and 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from dotmlp import frontier
from dotmlp.record import write_atomically
from dotmlp.study.frontier import LEDGER, METHOD, answer_table, ledger_parser, require_ledger

DEPTHS = (1, 2, 4)
CSV, SUMMARY = "depth.csv", "depth.md"
COLUMNS = ["dimension", "threshold", "depth", "status", "reached", "width", "params", "params_vs_depth1",
           "failed_width", "failed_params", "samples", "nmse_median", "nmse_min", "nmse_max", "seeds",
           "lr", "lrs_tried", "lr_bracketed", "construction_params", "price", "max_width_tried",
           "max_samples_tried", "sample_cap", "cpu_hours", "note"]


def depth_table(ledger: dict, settings: frontier.FrontierSettings | None = None) -> pd.DataFrame:
    """One row per (d, ε, depth) of settings (default: the answer's dimensions and thresholds at
    depths 1, 2, 4)."""
    settings = settings or frontier.FrontierSettings(depths=DEPTHS)
    table = answer_table(settings, ledger)
    started = {(key.dimension, key.depth) for key in ledger}
    tasks = list(table[["dimension", "depth", "threshold"]].itertuples(index=False, name=None))
    unstarted = [(d, depth) not in started for d, depth, _ in tasks]
    table.loc[unstarted, "status"] = "not searched"
    table.loc[unstarted, "note"] = [
        f"start it: python sweep/run.py --frontier --dimensions {d} --depths {depth} --thresholds {eps:g}"
        for (d, depth, eps), new in zip(tasks, unstarted, strict=True) if new]
    shallow = table.loc[(table["depth"] == 1) & (table["reached"] == True),  # noqa: E712 (NaN: undecided)
                        ["dimension", "threshold", "params"]].rename(columns={"params": "depth1_params"})
    table = table.merge(shallow, on=["dimension", "threshold"], how="left")
    ratio = pd.to_numeric(table["params"]) / pd.to_numeric(table["depth1_params"])
    table["params_vs_depth1"] = ratio.round(3)
    return table[COLUMNS]


def net(row) -> str:
    """'2 × 31 (1,551 params, 9.3e-03 [8.2e-03, 1.1e-02])', or what the row says instead."""
    if row.status != "decided":
        return row.status
    if row.reached is not True:
        return f"not reached by width ≤ {row.max_width_tried} (best {row.nmse_median:.2g}): a bound"
    ratio = ("" if row.depth == 1 or pd.isna(row.params_vs_depth1)
             else f", {row.params_vs_depth1:.2f}× depth 1's")
    return (f"{row.depth} × {row.width} ({row.params:,} params{ratio}; NMSE {row.nmse_median:.2g} "
            f"[{row.nmse_min:.2g}, {row.nmse_max:.2g}], lr {row.lr:g}, failed {row.failed_width})")


def summary(table: pd.DataFrame) -> str:
    lines = ["# Depth at the frontier", "",
             f"The smallest net of each depth that SGD trained to ε: {METHOD}; the same sample cap per "
             "d at every depth (dotmlp.study.frontier_depth; the search: dotmlp.frontier). In brackets: "
             "the seeds' range, the best rate, and the width below it that failed.", "",
             "| d | ε | depth 1 | depth 2 | depth 4 |", "|---|---|---|---|---|"]
    for (d, eps), group in table.groupby(["dimension", "threshold"], sort=False):
        cells = {row.depth: net(row) for row in group.itertuples()}
        lines.append(f"| {d} | {eps:g} | " + " | ".join(cells.get(depth, "") for depth in DEPTHS) + " |")
    return "\n".join(lines) + "\n"


def write(results_dir: Path, name: str = "frontier") -> pd.DataFrame:
    ledger = frontier.load_ledger(Path(results_dir) / name / LEDGER.name)
    table = depth_table(ledger)
    table = table.sort_values(["threshold", "dimension", "depth"], ascending=[False, True, True],
                              ignore_index=True)
    write_atomically(Path(results_dir) / CSV, table.to_csv(index=False))
    write_atomically(Path(results_dir) / SUMMARY, summary(table))
    return table


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ledger_parser("dotmlp.study.frontier_depth", __doc__, f"{CSV} and {SUMMARY}")
    args = parser.parse_args(argv)
    require_ledger(parser, args)
    table = write(Path(args.results_dir), args.name)
    decided = table[table["status"] == "decided"]
    print(f"{Path(args.results_dir) / CSV}: {len(decided)} of {len(table)} (d, ε, depth) rows decided")
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
