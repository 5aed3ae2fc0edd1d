"""The study's tables of one sweep already run, rebuilt as `python sweep/run.py` writes them.

`python -m dotmlp.study --results-dir DIR --name NAME [--no-figures]` writes answer.csv beside the
sweep's analysis tables and, for a study preset, approximation.md and deep against shallow too
(dotmlp.study.answer.write_sweep); `python -m dotmlp.analysis` rebuilds those tables and the
sweep's figures first, where needed. Several sweeps as one study: `python -m dotmlp.study.answer`.
"""

from __future__ import annotations

import sys

from dotmlp.cli import ArgumentParser, fail

PROG = "python -m dotmlp.study"


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--name", action="append", default=None,
                        help="a sweep under the results dir (repeat for several, each on its own)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    from dotmlp.study import answer  # pandas: after the arguments are checked

    for name in args.name or ["sweep"]:
        try:
            answer.write_sweep(args.results_dir, name, figures=not args.no_figures)
        except FileNotFoundError as error:
            fail(PROG, str(error))


if __name__ == "__main__":
    main(sys.argv[1:])
