"""The sweep: `python sweep/run.py --num-samples 200` (Lightning MLPs under Ray Tune with ASHA).

Writes the Tune experiment under <results-dir>/<name>/, one MLflow run per trial
(sqlite:///<results-dir>/mlflow.db by default), then the joined table and the heatmaps.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

from dotmlp.cli import ArgumentParser, fail, int_list  # noqa: E402
from dotmlp.config import (  # noqa: E402
    HALVINGS,
    POOL_BATCH_SIZE,
    POOL_EPOCHS,
    POOL_MIN_USERS,
    SWEEP_DATA_REGIMES,
    ConfigError,
    SweepSettings,
)
from dotmlp.study import PRESETS  # noqa: E402

PROG = "python sweep/run.py"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="a study's cells, budget and learning rates (dotmlp/study/presets.py); --dimensions "
                   "and --multiply pick among its cells, the other options given override its settings")
    p.add_argument("--num-samples", type=int, default=200, help="trials (>= 1)")
    p.add_argument("--max-steps", type=int, default=2048, help="full budget of a trial, in steps")
    p.add_argument("--batch-size", type=int, default=None,
                   help="samples per step (default 1024; 256, the paper's, with --data pool)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument(
        "--gpus-per-trial", type=float, default=None,
        help="GPU share per trial, e.g. 0.25 (default: 0.25 if Ray sees a GPU, else 0)",
    )
    p.add_argument("--address", default=None, help="Ray cluster to join ('auto' or host:port)")
    p.add_argument("--results-dir", default="results", help="table, figures and MLflow store")
    p.add_argument("--storage-path", default=None,
                   help="Tune's experiment storage (default: the results dir; s3://… on a cluster)")
    p.add_argument("--name", default="sweep", help="the sweep's name: its folder and MLflow experiment")
    p.add_argument("--mlflow-uri", default=None, help="default sqlite:///<results-dir>/mlflow.db")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=3,
                   help="replicas per trial, seeds seed … seed+K-1; Tune and ASHA see their median")
    p.add_argument("--dimensions", default="1,2,4,8,16,32,64")
    p.add_argument("--depths", default="0,1,2")
    p.add_argument("--widths", default="64,256")
    p.add_argument("--lr-range", default="1e-3,1e-2",
                   help="learning rates MIN,MAX: every cell tries --lrs-per-cell of them, log-spaced")
    p.add_argument("--lrs-per-cell", type=int, default=3, help="learning rates tried on every cell")
    p.add_argument("--multiply", choices=("both", "on", "off"), default="both")
    p.add_argument("--data", choices=SWEEP_DATA_REGIMES, default="fresh",
                   help="fresh: new vectors every step; pool: Rendle et al.'s finite users and items "
                   "with noisy ratings (--users, --epochs)")
    p.add_argument("--users", default=None,
                   help="with --data pool: pool sizes searched, e.g. 1000,4000,16000 (users = items)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"with --data pool: the budget in passes over the training pairs "
                   f"(default {POOL_EPOCHS}); replaces --max-steps")
    p.add_argument("--reports", type=int, default=6,
                   help="evaluations per full budget, x2 apart (6: at 1/32, 1/16, ... 1 of it)")
    p.add_argument("--max-failures", type=int, default=2,
                   help="retries of a trial that errors (a resumed sweep keeps its first run's)")
    p.add_argument("--no-asha", action="store_true", help="run every trial to the full budget")
    p.add_argument("--halving", choices=HALVINGS, default=None,
                   help="how the rungs decide: synchronous (each task's MLPs ranked all at once "
                   "at a rung, paused until it fills; the default) or asynchronous (Tune's ASHA; "
                   "the default with --data pool)")
    p.add_argument("--no-figures", action="store_true", help="write the table but no figures")
    p.add_argument("--frontier", action="store_true",
                   help="search the smallest width SGD trains to each --thresholds NMSE (dotmlp/frontier.py) "
                   "at each of --dimensions and --depths (default 1,2), instead of a grid sweep; run it "
                   "again to resume: finished runs are in <results-dir>/<name>/candidates.csv; --multiply on "
                   "searches with a·b fed (candidates-multiply.csv)")
    p.add_argument("--thresholds", default="1e-2,1e-3", help="with --frontier: target NMSEs, in (0, 1)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="with --frontier: bf16 runs the training products under bfloat16 autocast "
                   "(evaluations fp32), into a ledger of its own (candidates-bf16.csv)")
    p.add_argument("--ray-timeline", default=None, metavar="FILE",
                   help="write Ray's task and actor timeline here (Chrome trace JSON), to profile a sweep")
    return p


def settings_from(args, given: set[str] = frozenset()) -> SweepSettings:
    """The command line's settings; with --preset, the preset's, and the options given over it."""
    if args.data == "pool" and "max_steps" in given:
        raise ConfigError("--max-steps does not apply to --data pool: its budget is --epochs")
    plain = command_line_settings(args)
    if not args.preset:
        return plain
    fields = {f for option in given & set(SETTINGS_OPTIONS) for f in SETTINGS_OPTIONS[option]}
    overrides = {f: v for f, v in plain.to_dict().items() if f in fields}
    preset = PRESETS[args.preset]()
    # --dimensions and --multiply pick a part of the preset's cells (a smaller study, or a test's);
    # depths and widths are the preset's own choice per dimension, so they are not options of it.
    if fields & {"depths", "widths"}:
        raise ConfigError("--depths and --widths do not apply to a preset (its cells are chosen per "
                          "dimension in dotmlp/study/presets.py); --dimensions and --multiply pick among "
                          "them")
    dimensions = overrides.pop("dimensions", None)
    multiply = overrides.pop("multiply", None)
    cells = tuple(c for c in preset["cells"]
                  if (dimensions is None or c[0] in dimensions)
                  and (multiply is None or c[1] in multiply))
    if not cells:
        raise ConfigError(f"the preset {args.preset} has no cells with these --dimensions/--multiply")
    preset["cells"] = cells
    if "num_samples" not in fields:  # every cell at every learning rate of its grid
        preset["num_samples"] = len(cells) * overrides.get("lrs_per_cell", preset["lrs_per_cell"])
    return SweepSettings(**{**preset, **overrides})


def command_line_settings(args) -> SweepSettings:
    try:
        lr_min, lr_max = (float(x) for x in args.lr_range.split(","))
    except ValueError:
        raise ConfigError(f"lr-range must be MIN,MAX, got {args.lr_range!r}") from None
    dims = int_list("dimensions", args.dimensions)
    depths = int_list("depths", args.depths, minimum=0)
    widths = int_list("widths", args.widths)
    pool = args.data == "pool"
    if pool and args.users is None:
        raise ConfigError("data pool needs --users: the pool sizes to search, e.g. 1000,4000")
    if not pool and (args.users is not None or args.epochs is not None):
        raise ConfigError("--users and --epochs apply to --data pool only")
    return SweepSettings(
        num_samples=args.num_samples,
        max_steps=args.max_steps,
        batch_size=args.batch_size or (POOL_BATCH_SIZE if pool else 1024),
        data=args.data,
        users=int_list("users", args.users, minimum=POOL_MIN_USERS) if pool else (),
        epochs=args.epochs,
        reports=args.reports,
        dimensions=dims,
        depths=depths,
        widths=widths,
        lr_min=lr_min,
        lr_max=lr_max,
        lrs_per_cell=args.lrs_per_cell,
        multiply={"both": (False, True), "on": (True,), "off": (False,)}[args.multiply],
        asha=not args.no_asha,
        halving=args.halving,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        seed=args.seed,
        seeds=args.seeds,
    )


def writable(folder: Path) -> bool:
    """Whether folder exists and is writable, or could be created; creates nothing."""
    folder = folder.resolve()
    while not folder.exists():
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


# The SweepSettings fields each option sets (what --resume checks against the sweep's record).
SETTINGS_OPTIONS = {
    "num_samples": ("num_samples",), "max_steps": ("max_steps",), "batch_size": ("batch_size",),
    "reports": ("reports",), "dimensions": ("dimensions",), "depths": ("depths",),
    "widths": ("widths",), "lr_range": ("lr_min", "lr_max"), "lrs_per_cell": ("lrs_per_cell",),
    "multiply": ("multiply",), "no_asha": ("asha",), "halving": ("halving",), "seed": ("seed",),
    "seeds": ("seeds",),
    "cpus_per_trial": ("cpus_per_trial",), "gpus_per_trial": ("gpus_per_trial",),
    "data": ("data",), "users": ("users",), "epochs": ("epochs",),
}


def given_options(parser, argv: list[str]) -> set[str]:
    """The options the user wrote (parsed again with every default suppressed)."""
    import argparse

    defaults = {action.dest: action.default for action in parser._actions}
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        return set(vars(parser.parse_args(argv)))
    finally:
        for action in parser._actions:
            action.default = defaults[action.dest]


def check_arguments(parser, args, given: set[str] = frozenset()):
    """Everything that can be checked before starting Ray or writing a byte."""
    try:
        settings = settings_from(args, given)
    except ConfigError as error:
        parser.error(str(error))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.name):
        parser.error(f"name must be letters, digits, '.', '_' or '-', got {args.name!r}")
    if args.max_failures < 0:
        parser.error(f"max-failures must be an integer >= 0, got {args.max_failures}")
    results_dir = Path(args.results_dir)
    if not writable(results_dir):
        parser.error(f"results-dir {args.results_dir!r} cannot be written")
    from dotmlp import tracking

    if args.mlflow_uri is not None:
        try:
            tracking.check_uri(args.mlflow_uri, will_create=results_dir)
        except ValueError as error:
            parser.error(str(error))
    elif not args.resume:
        tracking.check_uri(tracking.default_uri(results_dir), will_create=results_dir)
    if args.ray_timeline is not None and not writable(Path(args.ray_timeline).parent):
        parser.error(f"ray-timeline {args.ray_timeline!r} cannot be written")
    fields = {field for option in given & set(SETTINGS_OPTIONS) for field in SETTINGS_OPTIONS[option]}
    return settings, results_dir, fields


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    settings, results_dir, fields = check_arguments(parser, args, given_options(parser, argv))

    from dotmlp import sweep

    if args.frontier:
        return run_frontier(parser, args, argv)
    try:
        summary = sweep.run(
            settings,
            name=args.name,
            results_dir=results_dir,
            storage=args.storage_path,
            mlflow_uri=args.mlflow_uri,
            address=args.address,
            resume=args.resume,
            given_fields=fields,
            max_failures=args.max_failures,
            figures=not args.no_figures,
            timeline=args.ray_timeline,
        )
    except sweep.UsageError as error:
        fail(PROG, str(error))
    # The study's tables of this sweep (answer.csv; a study's scaling fit and deep against shallow):
    # the study reads the analysis's tables and sits above it, so it is called from here.
    from dotmlp.study import answer

    answer.write_sweep(results_dir, args.name, figures=not args.no_figures)
    if summary["status"]["unfinished"]:
        # Tune ends a sweep early only when told to (Ctrl-C): its trials are not "pruned".
        fail(PROG, f"interrupted: {summary['status']['unfinished']} of {summary['trials']} trials "
                   f"unfinished; continue with: python sweep/run.py --resume --results-dir "
                   f"{args.results_dir} --name {args.name}", code=130)
    if summary["status"]["errored"]:
        # The tables and figures are written, but a sweep with holes is not a result to read.
        cause = f": {summary['first_error']}" if summary.get("first_error") else ""
        fail(PROG, f"{summary['status']['errored']} of {summary['trials']} trials errored, "
                   f"{summary['max_failures']} retries each{cause}; once fixed, --resume runs them again",
             code=1)
    return summary


def frontier_settings(parser, args, argv: list[str]):
    from dotmlp.frontier import FrontierSettings

    given = given_options(parser, argv)
    try:
        thresholds = tuple(float(x) for x in args.thresholds.split(","))
    except ValueError:
        parser.error(f"thresholds must be comma-separated numbers in (0, 1), got {args.thresholds!r}")
    if "multiply" in given and args.multiply == "both":
        parser.error("with --frontier, --multiply is on or off: each flag is a search of its own")
    try:
        return FrontierSettings(
            dimensions=int_list("dimensions", args.dimensions),
            depths=int_list("depths", args.depths) if "depths" in given else (1, 2),
            thresholds=thresholds, seeds=args.seeds, precision=args.precision,
            multiply=args.multiply == "on")
    except ConfigError as error:
        parser.error(str(error))


def run_frontier(parser, args, argv: list[str]) -> dict:
    from dotmlp import sweep

    settings = frontier_settings(parser, args, argv)
    if not writable(Path(args.results_dir)):
        parser.error(f"results-dir {args.results_dir!r} cannot be written")
    name = args.name if "name" in given_options(parser, argv) else "frontier"
    try:
        summary = sweep.run_frontier(settings, Path(args.results_dir), name=name,
                                     mlflow_uri=args.mlflow_uri, address=args.address,
                                     cpus_per_trial=args.cpus_per_trial,
                                     gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures)
    except sweep.UsageError as error:
        fail(PROG, str(error))
    # The answer table and figure (with the flag: its table against the plain search's), from
    # above: the study reads what the search wrote.
    from dotmlp.study import frontier as frontier_answer
    from dotmlp.study import frontier_flag

    if settings.multiply:
        plain = frontier_flag.ledgers(settings.precision)[1]
        if (Path(args.results_dir) / name / plain.ledger_name).exists():
            frontier_flag.write(Path(args.results_dir), name, settings.depths, settings.precision)
    else:
        frontier_answer.write_answer(Path(args.results_dir), name, figure=not args.no_figures)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
