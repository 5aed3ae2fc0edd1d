"""Rendle et al.'s Figure 3 redone: an MLP against the dot product it should learn, as users grow.

    python sweep/rendle.py --dimensions 16,32,64 --ms 1,2,4 --users 1000,2000,4000 --seeds 5
    python sweep/rendle.py --dimensions 32 --users 1000,2000,4000 --multiply   # a*b as input too
    python sweep/rendle.py --grid paper                  # the paper's 72 points, in paper_grid.csv
    python sweep/rendle.py --grid paper --list           # the plan: what is done, what each costs

Every point (dimension, users, m, multiply and the protocol) is one run of `dotmlp.train`'s path
on the pool regime (real Lightning training, the paper's MLP [2md, md, md/2], Adam lr 1e-3, batch
256, 32 epochs) training its seeds 0 … S-1 side by side as replicas (each with its own pool, as
the one-seed run of that seed draws it: tests/test_pool.py). The protocol is the reference's by
default: Keras's initialisation (`--init glorot`: Glorot-uniform weights, zero biases) and its pair
sampling (`--sampling reference`: each pair kept with probability 1.1·n/(U·I), the first n kept;
dotmlp.data.sample_reference); `--init default --sampling uniform` is what rendle.csv's first 26
points ran. The point is the mean over the seeds (the paper's number), with the median and range
beside it (dotmlp.rendle_grid: a diverged seed counts as +inf and makes the mean inf).

A finished point is a row of `<out>/<table>` (rendle.csv; paper_grid.csv with --grid paper),
written as it finishes (atomically: aside, then renamed), so an interrupted or extended grid
resumes where it stopped: a point already there with at least S seeds is not run again. With
--commit each row is also committed (that file alone). The figures are redrawn from the table
after every point, named after it: rendle.png (a custom grid: every RMSE against users), or
paper_grid.png and paper_grid_additions.png (--grid paper: the paper's Figure 3, and the fresh
pairs and a·b fed beside it).

The protocol is google-research/google-research dot_vs_learned_similarity/approx_dot.py's (see
dotmlp/data.py, Pool); its README gives the paper's grid: d in {16, 32, 64, 128}, users = items
in {4000, ..., 128000}, m in {1, 2, 4}, lr 1e-3, 5 repeats, the mean reported.
"""

from __future__ import annotations

import itertools
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere, like sweep/run.py

from dotmlp import rendle_grid as grid  # noqa: E402
from dotmlp.cli import ArgumentParser, fail  # noqa: E402
from dotmlp.config import ConfigError  # noqa: E402

MLP_METRICS = grid.MLP_METRICS
TABLE = "rendle.csv"
PAPER_TABLE = "paper_grid.csv"


def int_list(name: str, text: str, minimum: int) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated integers >= {minimum}, got {text!r}") from None
    if not values or min(values) < minimum:
        raise ConfigError(f"{name} must be comma-separated integers >= {minimum}, got {text!r}")
    return values


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python sweep/rendle.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--grid", choices=("custom", "paper"), default="custom",
        help="paper: the paper's 72 points in dotmlp.rendle_grid.paper_plan's order (--dimensions, "
             "--ms and --users then only select among them); custom: the product of the three lists",
    )
    parser.add_argument("--dimensions", default=None, help="custom grid default: 16,32,64")
    parser.add_argument("--ms", default=None, help="MLP multipliers m: hidden 2md, md, md/2 (default 1,2,4)")
    parser.add_argument("--users", default=None,
                        help="pool sizes, users = items (custom default 1000,2000,4000)")
    parser.add_argument("--seeds", type=int, default=grid.PAPER_REPEATS,
                        help="seeds 0..S-1 per point (>= 1), trained side by side in one run; the paper's 5")
    parser.add_argument("--epochs", type=int, default=32, help="passes over the training pairs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--multiply", action="store_true", help="feed a*b as an input too")
    parser.add_argument(
        "--init", choices=("glorot", "default"), default=grid.REFERENCE_INIT,
        help="glorot: Keras's defaults, as the reference (Glorot-uniform weights, zero biases); "
             "default: PyTorch's",
    )
    parser.add_argument(
        "--sampling", choices=("reference", "uniform"), default=grid.REFERENCE_SAMPLING,
        help="reference: each pair kept with probability 1.1·n/(U·I), the first n kept, as the "
             "reference; uniform: a uniform subset of n distinct pairs",
    )
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--out", default=str(ROOT / "results" / "rendle"), help="output folder")
    parser.add_argument("--table", default=None,
                        help=f"the table's file name in --out ({TABLE}; {PAPER_TABLE} with --grid paper)")
    parser.add_argument("--commit", action="store_true",
                        help="git-commit the table (that file alone) after every finished point")
    parser.add_argument("--no-figure", action="store_true", help="the tables only")
    parser.add_argument("--list", action="store_true",
                        help="run nothing: print the plan, each point's samples and whether it is done")
    parser.add_argument(
        "--report-only", action="store_true",
        help="run nothing: redraw the figures from the table and print it",
    )
    return parser


def plan(args) -> list[dict]:
    """The grid's points: the paper's in its order (grid.paper_plan), or the product of the lists,
    smallest pools first, so that a grid stopped early has its cheap end."""
    if args.seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1, got {args.seeds}")
    if args.workers < 1 or args.threads < 1:
        raise ConfigError(f"workers and threads must be integers >= 1, got {args.workers}, {args.threads}")
    if args.grid == "paper":
        chosen = [int_list(name, text, minimum) if text is not None else None
                  for name, text, minimum in (("dimensions", args.dimensions, 1), ("ms", args.ms, 1),
                                              ("users", args.users, 10))]
        points = [(d, u, m) for d, u, m in grid.paper_plan(args.multiply)
                  if all(values is None or value in values
                         for value, values in zip((d, m, u), chosen, strict=True))]
        if not points:
            raise ConfigError("dimensions, ms and users select none of the paper's points "
                              f"(d in {grid.PAPER_DIMENSIONS}, m in {grid.PAPER_MS}, users in "
                              f"{grid.PAPER_USERS})")
    else:
        dims = int_list("dimensions", args.dimensions or "16,32,64", 1)
        ms = int_list("ms", args.ms or "1,2,4", 1)
        users = int_list("users", args.users or "1000,2000,4000", 10)
        points = [(d, u, m) for u, d, m in itertools.product(sorted(users), dims, ms)]
    runs = [
        {"dimension": d, "users": u, "m": m, "multiply": args.multiply, "epochs": args.epochs,
         "batch_size": args.batch_size, "lr": args.lr, "init": args.init, "sampling": args.sampling,
         "seeds": args.seeds}
        for d, u, m in points
    ]
    for run in runs:
        grid.trial_config(run)  # every bad setting is a usage error before the first run starts
    return runs


def figure(table, path: Path) -> None:
    """RMSE against users, a column per dimension and a row per m, like the paper's Figure 3:
    the MLP's train, test and fresh RMSE (mean over seeds where recorded, else the median; band =
    range over seeds), with a*b as input where run (dashed), the exact dot product and the naive
    predictor (0). One protocol: the reference's if the table has it, else its most common."""
    import seaborn as sns
    from matplotlib.figure import Figure

    table, words = grid._protocol(table)
    dims = sorted(table["dimension"].unique())
    ms = sorted(table["m"].unique())
    colors = dict(zip(MLP_METRICS, sns.color_palette("deep", 3), strict=True))
    fig = Figure(figsize=(4.2 * len(dims), 3.3 * len(ms)), layout="constrained")
    axes = fig.subplots(len(ms), len(dims), squeeze=False, sharex=True, sharey=True)
    for (i, m), (j, d) in itertools.product(enumerate(ms), enumerate(dims)):
        ax = axes[i][j]
        cell = table[(table["dimension"] == d) & (table["m"] == m)]
        for multiply, style in ((False, "-"), (True, "--")):
            rows = cell[cell["multiply"] == multiply].sort_values("users")
            if rows.empty:
                continue
            for metric in MLP_METRICS:
                label = f"MLP{' + a*b' if multiply else ''} {metric.split('_')[0]}"
                ax.plot(rows["users"], rows[f"point_{metric}"], style, marker="o", ms=3,
                        color=colors[metric], label=label)
                ax.fill_between(rows["users"], rows[f"{metric}_min"], rows[f"{metric}_max"],
                                color=colors[metric], alpha=0.15 if not multiply else 0.08)
        rows = cell.sort_values("users").drop_duplicates("users")
        ax.plot(rows["users"], rows["point_dot_test_rmse"], ":", color="black", label="dot product (test)")
        ax.plot(rows["users"], rows["point_naive_fresh_rmse"], "-.", color="gray", label="naive: 0 (fresh)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(table["users"].unique()))
        ax.set_xticklabels([f"{u / 1000:g}k" for u in sorted(table["users"].unique())])
        ax.minorticks_off()
        ax.set_title(f"d = {d}, m = {m}", fontsize=10)
        ax.grid(True, alpha=0.3)
        if i == len(ms) - 1:
            ax.set_xlabel("users (= items), 100 ratings per user")
        if j == 0:
            ax.set_ylabel("RMSE")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in itertools.chain.from_iterable(axes):  # the panel with the most lines names them all
        h, lab = ax.get_legend_handles_labels()
        if len(lab) > len(labels):
            handles, labels = h, lab
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 5), fontsize=8)
    fig.suptitle(f"Rendle et al.'s protocol: the MLP against the dot product it should learn ({words})",
                 fontsize=10)
    grid.write_atomically(path, lambda target: fig.savefig(target, dpi=110, format="png"))


def markdown(table) -> str:
    """The table as results/rendle/README.md shows it: RMSE means with the median and range."""
    return grid.markdown(table)


def report(out: Path, table_name: str, paper: bool, draw: bool) -> None:
    table = grid.load(grid.read_table(out / table_name))
    if not draw or table.empty:
        return
    stem = Path(table_name).stem  # rendle.csv -> rendle.png: each table its own figures
    if paper:
        grid.paper_figure(table, out / f"{stem}.png")
        grid.additions_figure(table, out / f"{stem}_additions.png")
    else:
        figure(table, out / f"{stem}.png")


def samples(run: dict) -> int:
    """Training samples of a point: steps × batch × seeds (what its time is proportional to)."""
    return grid.trial_config(run).steps * run["batch_size"] * run["seeds"]


def describe(run: dict) -> str:
    return (f"d={run['dimension']} U={run['users']} m={run['m']} multiply={run['multiply']} "
            f"init={run['init']} sampling={run['sampling']} seeds={run['seeds']}")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = plan(args)
    except ConfigError as error:
        fail(parser.prog, str(error))
    out = Path(args.out)
    paper = args.grid == "paper"
    table_name = args.table or (PAPER_TABLE if paper else TABLE)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(parser.prog, f"out must be a writable folder, got {args.out!r} ({error.strerror})")
    if args.report_only:
        report(out, table_name, paper, draw=not args.no_figure)
        print(markdown(grid.load(grid.read_table(out / table_name))))
        return
    rows = grid.read_table(out / table_name)
    todo = [run for run in runs if not grid.done(rows, run)]
    if args.list:
        for run in runs:
            params = grid.paper_params(run["dimension"], run["m"], run["multiply"])
            print(f"{'done' if run not in todo else 'todo'}  {describe(run)}  params={params:,}  "
                  f"samples={samples(run):.3g}  sample-params={samples(run) * params:.3g}")
        print(f"{len(runs) - len(todo)} of {len(runs)} points done in {out / table_name}")
        return
    print(f"{len(runs)} points in the grid, {len(runs) - len(todo)} already in {out / table_name} "
          f"with {args.seeds}+ seeds", flush=True)
    started = time.perf_counter()
    # spawn, not fork: a forked worker inherits whatever the driver has imported and started.
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(grid.run_point, run, args.threads, args.accelerator): run for run in todo}
        for future in as_completed(futures):
            row = future.result()
            grid.append_row(out / table_name, row)  # replaces a point run before with fewer seeds
            if args.commit:
                grid.commit_table(out / table_name, f"issue 36: {table_name}: {describe(row)}, "
                                  f"{row['cpu_seconds']:.0f} CPU s on {row['cpu']}")
            report(out, table_name, paper, draw=not args.no_figure)
            print(f"[{time.perf_counter() - started:7.0f} s] {describe(row)}: "
                  f"train {row['train_rmse_mean']:.4f} test {row['test_rmse_mean']:.4f} "
                  f"(median {row['test_rmse_median']:.4f}, {row['test_rmse_min']:.4f}-"
                  f"{row['test_rmse_max']:.4f}) fresh {row['fresh_rmse_mean']:.4f} "
                  f"(dot {row['dot_test_rmse_mean']:.4f}) {row['seconds']} s, "
                  f"{row['cpu_seconds']} CPU s", flush=True)
    report(out, table_name, paper, draw=not args.no_figure)


if __name__ == "__main__":
    main(sys.argv[1:])
