"""The answer table from the frontier search: per (d, ε, depth), the smallest width SGD trained to ε,
the width below it that failed, the hand-built net's size, and the price of learning between them.

`python -m dotmlp.study.frontier` reads the search's ledger (results/frontier/candidates.csv),
replays the search on it (dotmlp.frontier: the same decisions the search made) and writes
results/answer.csv. A task whose search has not finished gets a row saying so ("in progress"),
never a number read off an unfinished search. The rows with the flag on (a·b fed to the net, where
a linear model is exact) are the grid study's linear model (results/grid/answer.csv); the smallest
MLP with the flag, from a search of its own, is in flag.csv (dotmlp.study.frontier_flag).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from dotmlp import construction, frontier
from dotmlp.cli import ArgumentParser, fail
from dotmlp.record import write_atomically

LEDGER = Path("results/frontier/candidates.csv")
ANSWER = Path("results/answer.csv")
# The grid study's answer (constant learning rate, results/grid/): where the flag rows come from.
GRID_ANSWER = Path("grid/answer.csv")
COLUMNS = ["dimension", "multiply", "threshold", "depth", "reached", "width", "params",
           "failed_width", "failed_params", "samples", "failed_samples", "nmse_median", "nmse_min",
           "nmse_max", "failed_nmse_median", "seeds", "lrs_tried", "lr", "lr_bracketed",
           "construction_k", "construction_hidden", "construction_params", "price",
           "samples_2x_wider", "samples_4x_wider", "start_width", "max_width_tried",
           "max_samples_tried", "sample_cap", "cpu_hours", "status", "note"]

# How every net of the frontier's tables was scored, for the tables' prose (depth.md, flag.md).
METHOD = ("the median of 3 seeds at its best learning rate (bracketed on a ×2 grid), Adam with a "
          "cosine decay to zero over each budget of a ladder ×4 apart from 2^19 samples")

INTEGER_COLUMNS = ["width", "params", "failed_width", "failed_params", "samples", "failed_samples",
                   "samples_2x_wider", "samples_4x_wider", "start_width", "max_width_tried",
                   "max_samples_tried", "sample_cap", "seeds", "construction_k", "construction_hidden",
                   "construction_params"]


def task_row(outcome: frontier.TaskOutcome | frontier.Task, settings: frontier.FrontierSettings,
             ledger: dict) -> dict:
    task = outcome if isinstance(outcome, frontier.Task) else outcome.task
    d, eps, flag = task.dimension, task.threshold, settings.multiply
    row = {"dimension": d, "multiply": flag, "threshold": eps, "depth": task.depth, **reference(d, eps, flag),
           "seeds": settings.seeds, "sample_cap": settings.cap(d),
           "start_width": frontier.start_width(task, flag)}
    if isinstance(outcome, frontier.Task):
        again = "python sweep/run.py --frontier" + (" --multiply on" if flag else "")
        return {**row, "status": "in progress", "note": f"search not finished: run `{again}` again to go on"}
    tried = outcome.evaluated.values()
    cpu_seconds = sum(float(ledger[key].row.get("seconds") or 0) * float(ledger[key].row.get("cpus") or 1)
                      for key in outcome.runs)
    row.update(max_width_tried=max(o.width for o in tried), max_samples_tried=max(o.samples for o in tried),
               cpu_hours=round(cpu_seconds / 3600, 3), status="decided")
    hi, lo = outcome.reached, outcome.failed
    if hi is None:
        widest = outcome.widest
        return {**row, "reached": False, "nmse_median": widest.best.nmse_median,
                "nmse_min": widest.best.nmse_min, "nmse_max": widest.best.nmse_max,
                "lr": widest.best.key.lr, "lrs_tried": lr_list(widest.lrs),
                "lr_bracketed": widest.bracketed,
                "note": f"not reached by width <= {row['max_width_tried']} with <= "
                        f"{row['max_samples_tried']:,} samples (best median {widest.best.nmse_median:.3g} "
                        f"at width {widest.width}): a bound, not a limit"}
    params = frontier.params_of(d, task.depth, hi.width, flag)
    row.update(reached=True, width=hi.width, params=params, samples=hi.samples,
               nmse_median=hi.best.nmse_median, nmse_min=hi.best.nmse_min, nmse_max=hi.best.nmse_max,
               lr=hi.best.key.lr, lrs_tried=lr_list(hi.lrs), lr_bracketed=hi.bracketed,
               price=round(params / row["construction_params"], 3))
    if lo is not None:
        row.update(failed_width=lo.width, failed_params=frontier.params_of(d, task.depth, lo.width, flag),
                   failed_samples=lo.samples, failed_nmse_median=lo.best.nmse_median,
                   note=f"width {lo.width} failed ({lo.reason}) after {lo.samples:,} samples")
    else:
        row.update(note="width 1 reached: nothing smaller to try")
    for factor, wider in outcome.wider.items():
        row[f"samples_{factor}x_wider"] = wider.samples if wider.reached else None
    return row


def reference(d: int, eps: float, flag: bool) -> dict:
    """The hand-built net the row is priced against: k ReLUs per square (2dk units), or with the
    flag the two units that are exact (relu(s) − relu(−s) on s = Σ a_i·b_i)."""
    if flag:
        return {"construction_hidden": frontier.FLAG_WIDTH,
                "construction_params": frontier.params_of(d, 1, frontier.FLAG_WIDTH, True)}
    k = construction.smallest_k(eps)
    return {"construction_k": k, "construction_hidden": construction.hidden_units(d, k),
            "construction_params": construction.params(d, k)}


def lr_list(lrs) -> str:
    return " ".join(f"{lr:.3g}" for lr in lrs)


def answer_table(settings: frontier.FrontierSettings, ledger: dict,
                 flag_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = [task_row(o, settings, ledger) for o in frontier.outcomes(settings, ledger)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    if flag_rows is not None and len(flag_rows):
        table = pd.concat([table, flag_rows.reindex(columns=COLUMNS)], ignore_index=True)
    for column in INTEGER_COLUMNS:  # whole numbers, empty where not measured (not 8.0, not NaN)
        table[column] = pd.to_numeric(table[column]).round().astype("Int64")
    return table.sort_values(["dimension", "multiply", "threshold", "depth"],
                             ascending=[True, True, False, True], ignore_index=True)


def kept_flag_rows(previous: Path) -> pd.DataFrame | None:
    """The flag rows of a grid answer: a linear model on [a, b, a·b] (exact), from the grid study
    that trained it (the smallest MLP with the flag, from its own search, is in flag.csv:
    dotmlp.study.frontier_flag)."""
    if not previous.exists():
        return None
    old = pd.read_csv(previous)
    old = old[old["multiply"].astype(str) == "True"].copy()
    if "architecture_samples" in old:  # the grid answer's format
        # Its samples column is the fastest network's, not this row's: the linear model's own.
        old["samples"] = old["architecture_samples"]
        old["depth"] = 0
        old["note"] = "a linear model on [a, b, a*b], from the grid study (results/study-cpu)"
    old["status"] = "decided"
    return old


def write_answer(results_dir: Path, name: str = "frontier", figure: bool = True) -> pd.DataFrame:
    """<results-dir>/answer.csv from the search's ledger <results-dir>/<name>/candidates.csv (and
    answer.png beside it), written atomically."""
    from dotmlp.study import answer_figure

    ledger_path, out = Path(results_dir) / name / LEDGER.name, Path(results_dir) / ANSWER.name
    ledger = frontier.load_ledger(ledger_path)
    grid = Path(results_dir) / GRID_ANSWER
    table = answer_table(frontier.FrontierSettings(), ledger, kept_flag_rows(grid if grid.exists() else out))
    write_atomically(out, table.to_csv(index=False))
    if figure:  # with the law's line as last fitted (make answer refits it, then redraws)
        law = answer_figure.read_law(Path(results_dir) / answer_figure.LAW.name)
        answer_figure.draw(table, out.with_suffix(".png"), law)
    searched = ~table["multiply"].astype(bool)
    decided = int(((table["status"] == "decided") & searched).sum())
    print(f"{out}: {decided} of {int(searched.sum())} searched rows decided, from {len(ledger)} runs in "
          f"{ledger_path}")
    return table


def ledger_parser(module: str, doc: str, writes: str) -> ArgumentParser:
    """The CLI of a study module that reads a frontier search's ledger: --results-dir, --name."""
    parser = ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    parser.add_argument("--results-dir", default="results", help=f"where {writes} go")
    parser.add_argument("--name", default="frontier", help="the search's folder: <name>/candidates.csv")
    return parser


def require_ledger(parser: ArgumentParser, args, settings: frontier.FrontierSettings | None = None) -> None:
    """A usage error, in one line, where the search of settings (default: the plain fp32 one) has
    not written its ledger yet."""
    settings = settings or frontier.FrontierSettings()
    if not (Path(args.results_dir) / args.name / settings.ledger_name).exists():
        flag = " --multiply on" if settings.multiply else ""
        fail(parser.prog, f"no ledger {args.name}/{settings.ledger_name} in {args.results_dir!r}: run "
                          f"`python sweep/run.py --frontier{flag}` first")


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = ledger_parser("dotmlp.study.frontier", __doc__, "answer.csv and answer.png")
    parser.add_argument("--no-figure", action="store_true", help="answer.csv only, no answer.png")
    args = parser.parse_args(argv)
    require_ledger(parser, args)
    return write_answer(Path(args.results_dir), args.name, figure=not args.no_figure)


if __name__ == "__main__":
    main(sys.argv[1:])
