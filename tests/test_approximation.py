"""A study's smallest nets against approximation theory (dotmlp.study.approximation): the comparison
table and the paragraph of approximation.md, on a hand-made answer table."""

import math

import pandas as pd

from dotmlp import construction
from dotmlp.sizes import params_of
from dotmlp.study.approximation import approximation_comparison, approximation_paragraph, yarotsky_params


def answer_rows():
    """d = 2 and 4 reach both thresholds, d = 8 only 1e-2; a flag row (not compared)."""
    rows = [(2, False, 1e-2, True, 261, "2x13"), (2, False, 1e-3, True, 499, "1x83"),
            (4, False, 1e-2, True, 523, "2x18"), (4, False, 1e-3, True, 4001, "1x400"),
            (8, False, 1e-2, True, 1981, "2x36"), (8, False, 1e-3, False, None, "1x889"),
            (4, True, 1e-2, True, 13, "linear")]
    table = pd.DataFrame(rows, columns=["dimension", "multiply", "threshold", "reached", "params",
                                        "architecture"])
    table["params"] = pd.array(table["params"], dtype="Int64")
    return table


def test_yarotsky_reference_grows_with_d_and_precision():
    assert yarotsky_params(8, 1e-3) > yarotsky_params(8, 1e-2) > yarotsky_params(4, 1e-2)
    units = 16 * math.log(100)
    assert yarotsky_params(16, 1e-2) == params_of(16, 2, math.ceil(units / 2))


def test_comparison_sets_the_smallest_net_against_the_hand_built_one():
    table = approximation_comparison(answer_rows())
    assert len(table) == 6  # the flag row is not compared
    row = table[(table["dimension"] == 4) & (table["threshold"] == 1e-2)].iloc[0]
    built = construction.params(4, construction.smallest_k(1e-2))
    assert row["hand_built_params"] == built and math.isclose(row["ratio"], 523 / built)
    missed = table[(table["dimension"] == 8) & (table["threshold"] == 1e-3)].iloc[0]
    assert not missed["reached"] and math.isnan(missed["params"]) and math.isnan(missed["ratio"])


def test_paragraph_has_the_table_the_growth_and_the_bound():
    text = approximation_paragraph(answer_rows())
    assert "| 4 | 0.01 | 523 (2x18) |" in text and "| 8 | 0.001 | not reached |" in text
    assert "grows as d^" in text and "d·ln(1/ε)" in text
    assert "From ε = 0.01 to 0.001 the smallest net grows" in text and "Not reached at d = 8" in text
    empty = approximation_paragraph(answer_rows().iloc[6:])
    assert "nothing to compare" in empty
