"""Depth at the frontier (dotmlp.study.frontier_depth): the search's outcomes at depths 1, 2 and 4
side by side, on the synthetic world of tests/test_frontier.py (no training)."""

from __future__ import annotations

import pandas as pd
import pytest

from dotmlp import frontier
from dotmlp.frontier import FrontierSettings
from dotmlp.sizes import params_of
from dotmlp.study import frontier_depth, frontier_flag
from tests.test_frontier import run_row

# d = 1 searched at depths 1 and 4, d = 2 at depth 1 only: (2, 4) was never started.
SEARCHED = [FrontierSettings(dimensions=(1,), depths=(1, 4), thresholds=(1e-2,), caps=((64, 2**23),)),
            FrontierSettings(dimensions=(2,), depths=(1,), thresholds=(1e-2,), caps=((64, 2**23),))]
ASKED = FrontierSettings(dimensions=(1, 2), depths=frontier_depth.DEPTHS, thresholds=(1e-2,),
                         caps=((64, 2**23),))


def searched_ledger(path):
    for settings in SEARCHED:
        while keys := frontier.pending(settings, frontier.load_ledger(path)):
            frontier.append_runs(path, [run_row(keys[0])])
    return frontier.load_ledger(path)


def test_depths_side_by_side_with_their_ratio_and_what_was_not_searched(tmp_path):
    table = frontier_depth.depth_table(searched_ledger(tmp_path / "candidates.csv"), ASKED)
    assert list(table.columns) == frontier_depth.COLUMNS
    rows = {(r.dimension, r.depth): r for r in table.itertuples()}
    assert set(rows) == {(d, depth) for d in (1, 2) for depth in (1, 2, 4)}
    shallow, deep = rows[1, 1], rows[1, 4]
    assert shallow.status == deep.status == "decided" and shallow.reached and deep.reached
    assert deep.params == params_of(1, 4, deep.width)
    assert deep.params_vs_depth1 == round(deep.params / shallow.params, 3)
    assert shallow.params_vs_depth1 == 1.0
    assert rows[2, 1].status == "decided"
    for d, depth in ((1, 2), (2, 2), (2, 4)):  # never started: says how to start it
        assert rows[d, depth].status == "not searched" and pd.isna(rows[d, depth].params_vs_depth1)
        assert rows[d, depth].note == (f"start it: python sweep/run.py --frontier --dimensions {d} "
                                       f"--depths {depth} --thresholds 0.01")
    text = frontier_depth.summary(table)
    assert "| 1 | 0.01 | 1 × " in text and f"{deep.params_vs_depth1:.2f}× depth 1's" in text
    assert "| 2 | 0.01 | 1 × " in text and text.count("not searched") == 3


def test_cli_writes_both_files_and_refuses_a_missing_ledger(tmp_path, capsys):
    searched_ledger(tmp_path / "frontier" / "candidates.csv")
    table = frontier_depth.main(["--results-dir", str(tmp_path)])
    assert pd.read_csv(tmp_path / frontier_depth.CSV).shape == table.shape
    assert (tmp_path / frontier_depth.SUMMARY).read_text().startswith("# Depth at the frontier")
    with pytest.raises(SystemExit) as ended:
        frontier_depth.main(["--results-dir", str(tmp_path / "empty")])
    assert ended.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m dotmlp.study.frontier_depth: error: no ledger")


def test_the_flag_table_sets_the_flag_s_smallest_net_against_the_plain_one(tmp_path):
    """frontier_flag: both searches on the synthetic world (which ignores the inputs), so the
    widths agree and the parameters differ by the flag's d more inputs. ε = 0.05: within the
    flag search's widest width (4 × its start of 2) in that world."""
    ledgers = {}
    for flag in (True, False):
        settings = FrontierSettings(dimensions=(2,), depths=(1,), thresholds=(5e-2,), caps=((64, 2**23),),
                                    multiply=flag)
        path = tmp_path / settings.ledger_name
        while keys := frontier.pending(settings, frontier.load_ledger(path)):
            frontier.append_runs(path, [run_row(keys[0])])
        ledgers[flag] = frontier.load_ledger(path)
    table = frontier_flag.flag_table(ledgers[True], ledgers[False], thresholds=(5e-2,))
    row = table[table["dimension"] == 2].iloc[0]
    assert row["with_status"] == row["without_status"] == "decided"
    assert row["with_width"] == row["without_width"]  # the same world, found from either start
    assert row["with_params"] == params_of(2, 1, row["with_width"], multiply=True)
    assert row["without_params"] == params_of(2, 1, row["without_width"])
    assert row["params_ratio"] == round(row["without_params"] / row["with_params"], 1) < 1
    assert (table.loc[table["dimension"] != 2, "with_status"] == "in progress").all()
    text = frontier_flag.summary(table)
    assert f"| 2 | 0.05 | 1 × {row['with_width']}, {row['with_params']:,} params" in text
