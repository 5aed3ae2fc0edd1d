"""Rendle et al.'s Figure 3 redone: an MLP against the dot product it should learn, as users grow.

    python sweep/rendle.py --dimensions 16,32,64 --ms 1,2,4 --users 1000,2000,4000 --seeds 3
    python sweep/rendle.py --dimensions 32 --users 1000,2000,4000 --multiply   # a*b as input too

Every point (dimension, users, m, multiply) is one `dotmlp.train.train` run on the pool regime
(real Lightning training, the paper's MLP [2md, md, md/2], Adam lr 1e-3, batch 256, 32 epochs)
training its seeds 0 … S-1 side by side as replicas (each with its own pool, as the one-seed run
of that seed draws it: tests/test_pool.py). A finished point is a row of `<out>/rendle.csv`, written
as it finishes (atomically: aside, then renamed), so an interrupted or extended grid resumes where
it stopped: a point already there with at least S seeds is not run again. The figure
`<out>/rendle.png` is redrawn from that table after every point.

The protocol is google-research/google-research dot_vs_learned_similarity/approx_dot.py's (see
dotmlp/data.py, Pool); its README gives the paper's grid: d in {16, 32, 64, 128}, users = items
in {4000, ..., 128000}, m in {1, 2, 4}, lr 1e-3, 5 repeats, the mean reported.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere, like sweep/run.py

from dotmlp.cli import ArgumentParser, fail  # noqa: E402
from dotmlp.config import ConfigError  # noqa: E402

# A point is its protocol as well as its place in the grid: a run at other epochs, batch or lr is
# another point, never a finished one.
KEY = ("dimension", "users", "m", "multiply", "epochs", "batch_size", "lr")
MLP_METRICS = ("train_rmse", "test_rmse", "fresh_rmse")
REFERENCE_METRICS = ("dot_test_rmse", "dot_fresh_rmse", "naive_test_rmse", "naive_fresh_rmse")
# One row per point: the MLP's RMSEs as median, min and max over seeds (the paper reports a mean
# of 5; a median of 3 is less moved by one bad seed), NMSEs and the references as medians. A seed
# gone NaN counts as +inf in all of them, wherever it is (dotmlp.module.replica_stats: the lower
# median for an even number of seeds), and `diverged` counts the seeds that went.
FIELDS = (
    *KEY, "seeds", "params", "steps",
    *(f"{metric}_{stat}" for metric in MLP_METRICS for stat in ("median", "min", "max")),
    "test_nmse", "fresh_nmse", *REFERENCE_METRICS, "diverged", "seconds",
)


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
    parser.add_argument("--dimensions", default="16,32,64")
    parser.add_argument("--ms", default="1,2,4", help="MLP multipliers m: hidden 2md, md, md/2")
    parser.add_argument("--users", default="1000,2000,4000", help="pool sizes (users = items)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds 0..S-1 per point (>= 1), trained side by side in one run")
    parser.add_argument("--epochs", type=int, default=32, help="passes over the training pairs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--multiply", action="store_true", help="feed a*b as an input too")
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--out", default=str(ROOT / "results" / "rendle"), help="output folder")
    parser.add_argument("--no-figure", action="store_true", help="the tables only")
    parser.add_argument(
        "--report-only", action="store_true",
        help="run nothing: redraw rendle.png from rendle.csv and print the table",
    )
    return parser


def plan(args) -> list[dict]:
    """The grid's points, smallest pools first, so that a grid stopped early has its cheap end."""
    dims = int_list("dimensions", args.dimensions, 1)
    ms = int_list("ms", args.ms, 1)
    users = int_list("users", args.users, 10)
    if args.seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1, got {args.seeds}")
    if args.workers < 1 or args.threads < 1:
        raise ConfigError(f"workers and threads must be integers >= 1, got {args.workers}, {args.threads}")
    runs = [
        {"dimension": d, "users": u, "m": m, "multiply": args.multiply, "epochs": args.epochs,
         "batch_size": args.batch_size, "lr": args.lr, "seeds": args.seeds}
        for u, d, m in itertools.product(sorted(users), dims, ms)
    ]
    for run in runs:
        trial_config(run)  # every bad setting is a usage error before the first run starts
    return runs


def trial_config(run: dict):
    from dotmlp.config import TrialConfig
    from dotmlp.train import rendle_hidden

    hidden = rendle_hidden(run["m"], run["dimension"])
    return TrialConfig(
        dimension=run["dimension"], hidden=hidden, depth=len(hidden), multiply=run["multiply"],
        data="pool", users=run["users"], epochs=run["epochs"], batch_size=run["batch_size"],
        lr=run["lr"], seed=0, seeds=run["seeds"],
    )


def run_one(run: dict, threads: int) -> dict:
    """One point, in a worker process: the paper's numbers after the last epoch, over its seeds."""
    import torch

    from dotmlp.cli import quiet_lightning
    from dotmlp.train import train

    torch.set_num_threads(threads)
    quiet_lightning()
    config = trial_config(run)
    # One evaluation, at the end, as the paper reports: each costs a pass over the test and fresh
    # pairs, more than the training steps between evaluations at the default interval.
    config = config.replace(eval_every=config.steps)
    result = train(config, accelerator="cpu")
    row = {**run, "steps": result["steps"], "params": result["params"],
           "diverged": int(result.get("diverged_replicas", 0)), "seconds": round(result["seconds"], 1)}
    for metric in MLP_METRICS:  # the run reports the median as the metric itself
        row[f"{metric}_median"] = result.get(metric, math.nan)
        for stat in ("min", "max"):
            row[f"{metric}_{stat}"] = result.get(f"{metric}_{stat}", math.nan)
    for name in ("test_nmse", "fresh_nmse", *REFERENCE_METRICS):
        row[name] = result.get(name, math.nan)
    return row


def read_table(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def point_key(row: dict) -> tuple:
    return (int(row["dimension"]), int(row["users"]), int(row["m"]),
            str(row["multiply"]) == "True", int(row["epochs"]), int(row["batch_size"]),
            float(row["lr"]))


def write_atomically(path: Path, write) -> None:
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


def write_table(path: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=point_key)

    def write(target: Path) -> None:
        with target.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(FIELDS), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


def load(rows: list[dict]):
    """The table as a frame with its types (rows read back from the csv are strings)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(FIELDS))
    for column in frame.columns:
        if column == "multiply":
            frame[column] = frame[column].astype(str) == "True"
        else:
            frame[column] = pd.to_numeric(frame[column])
    return frame


def figure(table, path: Path) -> None:
    """RMSE against users, a column per dimension and a row per m, like the paper's Figure 3:
    the MLP's train, test and fresh RMSE (median, band = range over seeds), with a*b as input
    where run (dashed), the exact dot product and the naive predictor (0)."""
    import seaborn as sns
    from matplotlib.figure import Figure

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
                ax.plot(rows["users"], rows[f"{metric}_median"], style, marker="o", ms=3,
                        color=colors[metric], label=label)
                ax.fill_between(rows["users"], rows[f"{metric}_min"], rows[f"{metric}_max"],
                                color=colors[metric], alpha=0.15 if not multiply else 0.08)
        rows = cell.sort_values("users").drop_duplicates("users")
        ax.plot(rows["users"], rows["dot_test_rmse"], ":", color="black", label="dot product (test)")
        ax.plot(rows["users"], rows["naive_fresh_rmse"], "-.", color="gray", label="naive: 0 (fresh)")
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
    fig.suptitle("Rendle et al.'s protocol: the MLP against the dot product it should learn")
    write_atomically(path, lambda target: fig.savefig(target, dpi=110, format="png"))


def markdown(table) -> str:
    """The table as results/rendle/README.md shows it: RMSE medians with the seeds' range."""
    if table.empty:
        return "(no runs yet)"
    lines = ["| d | users | m | a*b | seeds | params | MLP train | MLP test (range) | MLP fresh (range) "
             "| dot test | dot fresh | naive fresh | test NMSE | fresh NMSE |",
             "|" + "---|" * 14]
    def spread(row, metric):
        return (f"{getattr(row, metric + '_median'):.3f} ({getattr(row, metric + '_min'):.3f}–"
                f"{getattr(row, metric + '_max'):.3f})")

    for row in table.sort_values(["multiply", "dimension", "m", "users"]).itertuples():
        lines.append(
            f"| {row.dimension} | {row.users:,} | {row.m} | {'on' if row.multiply else 'off'} "
            f"| {row.seeds} | {row.params:,} | {row.train_rmse_median:.3f} | {spread(row, 'test_rmse')} "
            f"| {spread(row, 'fresh_rmse')} | {row.dot_test_rmse:.3f} | {row.dot_fresh_rmse:.3f} "
            f"| {row.naive_fresh_rmse:.3f} | {row.test_nmse:.3f} | {row.fresh_nmse:.3f} |"
        )
    return "\n".join(lines)


def report(out: Path, draw: bool) -> None:
    table = load(read_table(out / TABLE))
    if draw and not table.empty:
        figure(table, out / "rendle.png")


TABLE = "rendle.csv"


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = plan(args)
    except ConfigError as error:
        fail(parser.prog, str(error))
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(parser.prog, f"out must be a writable folder, got {args.out!r} ({error.strerror})")
    if args.report_only:
        report(out, draw=not args.no_figure)
        print(markdown(load(read_table(out / TABLE))))
        return
    rows = {point_key(row): row for row in read_table(out / TABLE)}
    todo = [run for run in runs
            if point_key(run) not in rows or int(rows[point_key(run)]["seeds"]) < run["seeds"]]
    print(f"{len(runs)} points in the grid, {len(runs) - len(todo)} already in {out / TABLE} "
          f"with {args.seeds}+ seeds", flush=True)
    started = time.perf_counter()
    # spawn, not fork: a forked worker inherits whatever the driver has imported and started.
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_one, run, args.threads): run for run in todo}
        for future in as_completed(futures):
            row = future.result()
            rows[point_key(row)] = row  # replaces a point run before with fewer seeds
            write_table(out / TABLE, list(rows.values()))
            report(out, draw=not args.no_figure)
            print(f"[{time.perf_counter() - started:7.0f} s] d={row['dimension']} U={row['users']} "
                  f"m={row['m']} multiply={row['multiply']} seeds={row['seeds']}: "
                  f"train {row['train_rmse_median']:.4f} test {row['test_rmse_median']:.4f} "
                  f"({row['test_rmse_min']:.4f}-{row['test_rmse_max']:.4f}) "
                  f"fresh {row['fresh_rmse_median']:.4f} (dot {row['dot_test_rmse']:.4f}) "
                  f"{row['seconds']} s", flush=True)
    report(out, draw=not args.no_figure)


if __name__ == "__main__":
    main(sys.argv[1:])
