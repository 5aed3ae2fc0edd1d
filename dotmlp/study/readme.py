"""The README's answer table, generated from results/answer.csv: one row per dimension, for each
threshold the hand-built net's size, the smallest net SGD trained to it and the samples that took.

`python -m dotmlp.study.readme` rewrites the block between `<!-- answer-table -->` and
`<!-- /answer-table -->` in README.md and results/README.md (each file that has the markers),
atomically; run it after `python -m dotmlp.study.frontier` rewrites answer.csv. The table says
"in progress" wherever the frontier search has not decided every depth of a (d, ε): a number read
off an unfinished search is not an answer. tests/test_readme.py checks that the README's block is
what this module makes of the committed answer.csv.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from dotmlp.cli import ArgumentParser, fail
from dotmlp.record import write_atomically

ANSWER = Path("results/answer.csv")
READMES = (Path("README.md"), Path("results/README.md"))
BEGIN, END = "<!-- answer-table -->", "<!-- /answer-table -->"
THRESHOLDS = (1e-2, 1e-3)
IN_PROGRESS = "in progress"
# The frontier search's answer (dotmlp.study.frontier) has these; the grid study's older format not.
NEEDED = ("dimension", "multiply", "threshold", "depth", "reached", "width", "params", "samples",
          "construction_hidden", "construction_params", "price", "max_width_tried",
          "max_samples_tried", "status")


def _count(value) -> str:
    return f"{int(value):,}"


def _net(row) -> str:
    return f"{int(row['depth'])} × {int(row['width'])}"


def _eps(eps: float) -> str:
    mantissa, exponent = f"{eps:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _is_true(value) -> bool:
    return str(value) == "True"


def hand_built(rows: pd.DataFrame) -> str:
    row = rows.iloc[0]
    return f"1 × {int(row['construction_hidden'])}, {_count(row['construction_params'])} params"


def sgd_cells(rows: pd.DataFrame) -> tuple[str, str]:
    """(SGD's smallest net, its samples) for one (d, ε) over the depths searched."""
    decided = rows[rows["status"] == "decided"]
    reached = decided[decided["reached"].map(_is_true).astype(bool)]
    reached = reached.sort_values(["params", "samples", "depth"])
    if len(decided) < len(rows):
        if not len(reached):
            return IN_PROGRESS, IN_PROGRESS
        best = reached.iloc[0]
        return f"{IN_PROGRESS} (so far {_net(best)}, {_count(best['params'])} params)", IN_PROGRESS
    if len(reached):
        best = reached.iloc[0]
        return (f"{_net(best)}, {_count(best['params'])} params ({best['price']:.2g}× hand-built)",
                _count(best["samples"]))
    widths = ", ".join(f"{int(r['depth'])} × {int(r['max_width_tried'])}"
                       for _, r in decided.sort_values("depth").iterrows())
    return f"not reached by {widths} (a bound)", f"> {_count(decided['max_samples_tried'].max())}"


def readme_table(answer: pd.DataFrame, thresholds: Sequence[float] = THRESHOLDS) -> str:
    """The markdown table: a row per dimension, the flag off (a·b not fed), from answer.csv."""
    missing = [c for c in NEEDED if c not in answer]
    if missing:
        raise ValueError(f"answer.csv lacks {', '.join(missing)}: not the frontier search's answer "
                         "(python -m dotmlp.study.frontier writes it)")
    searched = answer[~answer["multiply"].map(_is_true).astype(bool)]
    head = ["d"]
    for eps in thresholds:
        head += [f"hand-built, {_eps(eps)}", f"SGD's smallest, {_eps(eps)}", f"samples, {_eps(eps)}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dimension in sorted(searched["dimension"].unique()):
        cells = [str(dimension)]
        for eps in thresholds:
            rows = searched[(searched["dimension"] == dimension) & (searched["threshold"] == eps)]
            if not len(rows):
                cells += ["–", "not searched", "–"]
                continue
            cells += [hand_built(rows), *sgd_cells(rows)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, table: str) -> str:
    """text with the block between the markers replaced by table; a ValueError without them."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} … {END} block")
    return text[:start + len(BEGIN)] + "\n" + table + text[end:]


def block(text: str) -> str:
    """The table between the markers, as replace_block writes it."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} … {END} block")
    return text[start + len(BEGIN):end].removeprefix("\n")


def main(argv: list[str] | None = None) -> list[Path]:
    parser = ArgumentParser(prog="python -m dotmlp.study.readme", description=__doc__.splitlines()[0])
    parser.add_argument("--answer", default=str(ANSWER), help="the answer table to read")
    parser.add_argument("--readme", action="append", default=None,
                        help="a markdown file with the markers (repeat; default README.md and "
                             "results/README.md, each that has them)")
    args = parser.parse_args(argv)
    if not Path(args.answer).exists():
        fail(parser.prog, f"answer {args.answer!r} does not exist: python -m dotmlp.study.frontier writes it")
    try:
        table = readme_table(pd.read_csv(args.answer))
    except ValueError as error:
        fail(parser.prog, str(error))
    paths = [Path(p) for p in args.readme] if args.readme else [p for p in READMES if p.exists()]
    written = []
    for path in paths:
        if not path.exists():
            fail(parser.prog, f"{str(path)!r} does not exist")
        text = path.read_text()
        if BEGIN not in text:
            if args.readme:
                fail(parser.prog, f"{str(path)!r} has no {BEGIN} … {END} block")
            continue
        new = replace_block(text, table)
        if new != text:
            write_atomically(path, new)
        written.append(path)
    print(f"answer table from {args.answer} in {', '.join(map(str, written)) or 'no file'}")
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
