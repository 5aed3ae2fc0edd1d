"""Rendle et al.'s Figure 3 at the paper's scale: the points, their rows, the paper's figures.

The paper's grid (google-research/google-research, dot_vs_learned_similarity/README.md): d in
{16, 32, 64, 128}, users = items in {4000, 8000, 16000, 32000, 64000, 128000}, first-layer
multipliers m in {1, 2, 4}, Adam lr 1e-3, 32 epochs, batch 256, 5 repeats, the mean reported: 72
points. `paper_plan` orders them so that a grid stopped early has what the issue asks first (m = 1
for d = 16, 32, 64 at every pool; then m = 2, 4 for d = 16, 32 to 64,000 users; then the rest,
cheapest first). sweep/rendle.py runs them (`--grid paper`) and this module holds what a point is:

- `run_point`: one point in a worker process, its seeds trained side by side (dotmlp.train's path,
  with the pool sampled as the run asks: `train_point`), its row: every RMSE as the mean over
  seeds (the paper's number), the median, min and max beside it, and each seed's value; the CPU
  seconds of the point and the CPU's name;
- `append_row`: the row into the table, atomically (the whole file written aside, then renamed
  over the old one): a stopped run leaves the finished points and nothing half-written, and a run
  started again skips every point already there with enough seeds (`done`);
- `paper_figure` and `additions_figure`: the paper's Figure 3 (the MLP's RMSE minus the dot
  product's against users, a panel per m, a line per d) and ours (fresh pairs, a·b fed), drawn
  from the table alone.

Light to import (no torch, no Lightning at module level): sweep/rendle.py checks its arguments first.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import platform
import subprocess
import time
from pathlib import Path

PAPER_USERS = (4000, 8000, 16000, 32000, 64000, 128000)
PAPER_DIMENSIONS = (16, 32, 64, 128)
PAPER_MS = (1, 2, 4)
PAPER_REPEATS = 5
# The reference's protocol, the replication's default: Keras's initialisation (model.StackedLinear,
# init "glorot") and its pair sampling (data.sample_reference).
REFERENCE_INIT = "glorot"
REFERENCE_SAMPLING = "reference"

# A point is its protocol as well as its place in the grid: a run at other epochs, batch, lr,
# initialisation or sampling is another point, never a finished one.
KEY = ("dimension", "users", "m", "multiply", "epochs", "batch_size", "lr", "init", "sampling")
MLP_METRICS = ("train_rmse", "test_rmse", "fresh_rmse")
REFERENCE_METRICS = ("dot_test_rmse", "dot_fresh_rmse", "naive_test_rmse", "naive_fresh_rmse")
NMSE_METRICS = ("test_nmse", "fresh_nmse")
STATS = ("mean", "median", "min", "max")
# One row per point. Over its seeds, by dotmlp.module.replica_stats's rule (a seed gone NaN or
# inf counts as +inf wherever it is; the median of an even number is the lower middle value):
# - the MLP's RMSEs: mean (the point, as the paper reports it), median, min, max and each seed's
#   value (`_values`, ';'-separated in seed order). A diverged seed makes the mean inf: it is
#   shown, not hidden (`diverged` counts such seeds);
# - the NMSEs and the reference lines: the median under the plain name (as rendle.csv has always
#   had it), the mean, and for the reference lines each seed's value (each seed has its own pool).
# Then the cost: `seconds` (wall time of the training, Trainer.fit), `cpu_seconds` (the worker
# process's CPU time for the whole point: pools, training, evaluation), the replica-samples per
# second of training, the torch threads, the CPU's name and the device trained on.
FIELDS = (
    *KEY, "seeds", "params", "steps",
    *(f"{metric}_{stat}" for metric in MLP_METRICS for stat in (*STATS, "values")),
    *itertools.chain.from_iterable((name, f"{name}_mean") for name in NMSE_METRICS),
    *itertools.chain.from_iterable((name, f"{name}_mean", f"{name}_values") for name in REFERENCE_METRICS),
    "diverged", "seconds", "cpu_seconds", "samples_per_second", "threads", "cpu", "device",
)
# Rows written before the fidelity options: PyTorch's initialisation and the uniform subset.
LEGACY = {"init": "default", "sampling": "uniform"}


# ------------------------------------------------------------------------------------------------
# The plan


def paper_params(dimension: int, m: int, multiply: bool = False) -> int:
    """Parameters of the paper's MLP [2md, md, md/2] on [a, b] (and a·b)."""
    sizes = [dimension * (3 if multiply else 2), 2 * m * dimension, m * dimension, m * dimension // 2, 1]
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(sizes))


def paper_plan(multiply: bool = False) -> list[tuple[int, int, int]]:
    """The paper's 72 points (dimension, users, m), in the order to run them:
    1. m = 1 for d = 16, 32, 64 at every pool size, smallest pools first;
    2. m = 2 and 4 for d = 16 and 32 up to 64,000 users, smallest pools first;
    3. everything else (d = 128; m = 2, 4 at d = 64; m = 2, 4 at d = 16, 32 with 128,000 users),
       cheapest first (training pairs × parameters)."""
    first = [(d, u, 1) for u in PAPER_USERS for d in (16, 32, 64)]
    second = [(d, u, m) for u in PAPER_USERS if u <= 64_000 for d in (16, 32) for m in (2, 4)]
    done = set(first) | set(second)
    rest = [(d, u, m) for d, u, m in itertools.product(PAPER_DIMENSIONS, PAPER_USERS, PAPER_MS)
            if (d, u, m) not in done]
    rest.sort(key=lambda p: (p[1] * paper_params(p[0], p[2], multiply), p))
    return first + second + rest


# ------------------------------------------------------------------------------------------------
# The table


def normalise(row: dict) -> dict:
    """A row as read back from the csv, with the protocol of rows written before it was recorded."""
    row = dict(row)
    for name, value in LEGACY.items():
        if not row.get(name):
            row[name] = value
    return row


def point_key(row: dict) -> tuple:
    row = normalise(row)
    return (int(row["dimension"]), int(row["users"]), int(row["m"]),
            str(row["multiply"]) == "True", int(row["epochs"]), int(row["batch_size"]),
            float(row["lr"]), str(row["init"]), str(row["sampling"]))


def read_table(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [normalise(row) for row in csv.DictReader(f)]


def done(rows: list[dict], run: dict) -> bool:
    """Whether a point is finished: in the table with at least the seeds the run asks for."""
    key = point_key(run)
    return any(point_key(row) == key and int(row["seeds"]) >= int(run["seeds"]) for row in rows)


def write_atomically(path: Path, write) -> None:
    """write(target) into a file beside `path`, then renamed over it: readers (and a run started
    again after a kill) see the old file or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


def write_table(path: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=point_key)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(FIELDS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, lambda target: target.write_text(text.getvalue()))


def append_row(path: Path, row: dict) -> list[dict]:
    """Add one finished point to the table (replacing a row of the same point with fewer seeds),
    atomically; returns the table's rows."""
    rows = [old for old in read_table(path) if point_key(old) != point_key(row)]
    rows.append(normalise(row))
    write_table(path, rows)
    return rows


def commit_table(path: Path, message: str, attempts: int = 5) -> bool:
    """`git add` and `git commit` the table alone (`git commit -- path` leaves everything else
    staged or not as it was), retried while another commit holds the index; False, with the
    reason printed, if it could not (the row is on disk either way)."""
    folder = path.resolve().parent
    for attempt in range(attempts):
        add = subprocess.run(["git", "add", "--", path.name], cwd=folder, capture_output=True, text=True)
        commit = add.returncode == 0 and subprocess.run(
            ["git", "commit", "-q", "-m", message, "--", path.name], cwd=folder,
            capture_output=True, text=True)
        if commit and commit.returncode == 0:
            return True
        error = (commit.stderr if commit else add.stderr).strip()
        if "index.lock" not in error:
            break
        time.sleep(1 + attempt)
    print(f"warning: {path} not committed: {error}", flush=True)
    return False


# ------------------------------------------------------------------------------------------------
# One point


def seed_stats(values: list[float]) -> dict:
    """mean, median, min, max over seeds, by dotmlp.module.replica_stats's rule: NaN and inf count
    as +inf, so one diverged seed makes the mean (and the max) inf."""
    from dotmlp.module import replica_stats

    scored = [float(v) if math.isfinite(v) else math.inf for v in values]
    median, lowest, highest = replica_stats(scored)
    mean = math.fsum(scored) / len(scored) if math.isfinite(highest) else math.inf
    return {"mean": mean, "median": median, "min": lowest, "max": highest}


def format_values(values: list[float]) -> str:
    return ";".join(f"{v:.6g}" for v in values)


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def train_point(config, sampling: str = REFERENCE_SAMPLING, accelerator: str = "cpu",
                callbacks=(), evaluate: bool = True) -> tuple[dict, dict]:
    """dotmlp.train.train for one pool config with the pools sampled by `sampling` (data.Pool):
    returns train's summary and every pool metric per replica (data.replica_pool_metrics on the
    trained model: one more pass over the pairs, about 1 % of a point's training; {} without
    `evaluate`)."""
    import pytorch_lightning as pl

    from dotmlp import data
    from dotmlp.module import DotProductModule
    from dotmlp.train import make_trainer, summarize

    class SampledPoolModule(DotProductModule):
        """The pool regime's module with its pools drawn by `sampling` (TrialConfig has no such
        field: every other trial keeps the uniform subset)."""

        @property
        def pools(self) -> list[data.Pool]:
            if not self._pools or self._pools[0].device != self.device:
                cfg = self.config
                self._pools = [data.Pool(cfg.dimension, cfg.users, cfg.seed + k, self.device,
                                         sampling=sampling) for k in range(cfg.seeds)]
            return self._pools

    pl.seed_everything(config.seed, verbose=False)
    module = SampledPoolModule(config.to_dict())
    trainer = make_trainer(config, callbacks, accelerator)
    started = time.perf_counter()
    trainer.fit(module)
    seconds = time.perf_counter() - started
    if module.last_metrics.get("steps") != trainer.global_step and not module.diverged:
        trainer.validate(module, verbose=False)  # the budget ended between two evaluations
    device = trainer.strategy.root_device
    summary = summarize(module, trainer.global_step, seconds, str(device))
    if not evaluate:
        return summary, {}
    module.to(device)  # Lightning moves it back to the CPU when fit ends; its pools are on `device`
    replicas = data.replica_pool_metrics(module.pools, module.model, train=True)
    return summary, replicas


def trial_config(run: dict):
    from dotmlp.config import TrialConfig
    from dotmlp.train import rendle_hidden

    hidden = rendle_hidden(run["m"], run["dimension"])
    init = run.get("init", REFERENCE_INIT)
    return TrialConfig(
        dimension=run["dimension"], hidden=hidden, depth=len(hidden), multiply=run["multiply"],
        data="pool", users=run["users"], epochs=run["epochs"], batch_size=run["batch_size"],
        lr=run["lr"], seed=0, seeds=run["seeds"], init=init,
    )


def run_point(run: dict, threads: int = 1, accelerator: str = "cpu") -> dict:
    """One point, in a worker process: the paper's numbers after the last epoch, over its seeds,
    and what the point cost."""
    import torch

    from dotmlp.cli import quiet_lightning

    cpu_started = time.process_time()
    torch.set_num_threads(threads)
    quiet_lightning()
    config = trial_config(run)
    # One evaluation, at the end, as the paper reports: each costs a pass over the test and fresh
    # pairs, more than the training steps between evaluations at the default interval.
    config = config.replace(eval_every=config.steps)
    result, replicas = train_point(config, run.get("sampling", REFERENCE_SAMPLING), accelerator)
    row = {**run, "steps": result["steps"], "params": result["params"],
           "diverged": int(result.get("diverged_replicas", 0)), "seconds": round(result["seconds"], 1),
           "samples_per_second": round(result["replica_samples_per_second"]), "threads": threads,
           "cpu": cpu_name(), "device": device_name(result["device"])}
    for metric in MLP_METRICS:
        values = replicas.get(metric, [math.nan] * config.seeds)
        row.update({f"{metric}_{stat}": value for stat, value in seed_stats(values).items()})
        row[f"{metric}_values"] = format_values(values)
    for name in NMSE_METRICS:
        stats = seed_stats(replicas[name])
        row[name], row[f"{name}_mean"] = stats["median"], stats["mean"]
    for name in REFERENCE_METRICS:
        stats = seed_stats(replicas[name])
        row[name], row[f"{name}_mean"] = stats["median"], stats["mean"]
        row[f"{name}_values"] = format_values(replicas[name])
    row["cpu_seconds"] = round(time.process_time() - cpu_started, 1)
    return row


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


# ------------------------------------------------------------------------------------------------
# The table as a frame, and the paper's figures


def load(rows: list[dict]):
    """The table as a frame with its types (rows read back from the csv are strings); `point_*`
    is the mean over seeds where recorded, else (rows from before the mean was) the median."""
    import pandas as pd

    frame = pd.DataFrame([normalise(row) for row in rows], columns=list(FIELDS))
    text = {"init", "sampling", "cpu", "device", *(c for c in FIELDS if c.endswith("_values"))}
    for column in frame.columns:
        if column == "multiply":
            frame[column] = frame[column].astype(str) == "True"
        elif column in text:
            frame[column] = frame[column].fillna("").astype(str)
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for name in (*MLP_METRICS, *REFERENCE_METRICS):
        mean = frame[f"{name}_mean"]
        fallback = frame[f"{name}_median"] if name in MLP_METRICS else frame[name]
        frame[f"point_{name}"] = mean.where(mean.notna(), fallback)
    return frame


def seed_differences(row, metric: str, reference: str) -> list[float]:
    """Each seed's MLP RMSE minus its own pool's reference RMSE (empty if not recorded)."""
    mlp, ref = getattr(row, f"{metric}_values"), getattr(row, f"{reference}_values")
    if not mlp or not ref:
        return []
    return [float(a) - float(b) for a, b in zip(mlp.split(";"), ref.split(";"), strict=True)]


def _gap_panel(ax, rows, metric: str, reference: str, colors: dict, style: str = "-",
               label_suffix: str = "") -> None:
    """One line per d: the mean over seeds of (MLP − dot product) RMSE, the seeds' range as a band."""
    for d, group in rows.groupby("dimension"):
        group = group.sort_values("users")
        gap = group[f"point_{metric}"] - group[f"point_{reference}"]
        ax.plot(group["users"], gap, style, marker="o", ms=3, color=colors[d],
                label=f"d = {d}{label_suffix}")
        spreads = [seed_differences(row, metric, reference) for row in group.itertuples()]
        if all(spreads):
            ax.fill_between(group["users"], [min(s) for s in spreads], [max(s) for s in spreads],
                            color=colors[d], alpha=0.12)


def _axes(fig, rows: int, ms: list[int]):
    axes = fig.subplots(rows, len(ms), squeeze=False, sharex=True, sharey="row")
    for ax in itertools.chain.from_iterable(axes):
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(PAPER_USERS)
        ax.set_xticklabels([f"{u // 1000}k" for u in PAPER_USERS])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
    return axes


def _protocol(table):
    """The rows of one protocol (the reference's if any, else the most common) and its words."""
    counts = table.groupby(["init", "sampling", "epochs", "batch_size", "lr"]).size()
    preferred = [key for key in counts.index if key[:2] == (REFERENCE_INIT, REFERENCE_SAMPLING)]
    key = max(preferred or counts.index, key=lambda k: counts[k])
    rows = table[(table[["init", "sampling", "epochs", "batch_size", "lr"]] == list(key)).all(axis=1)]
    init, sampling, epochs, batch, lr = key
    return rows, f"init {init}, sampling {sampling}, {epochs} epochs, batch {batch}, lr {lr:g}"


def _colors(dims):
    import seaborn as sns

    return dict(zip(dims, sns.color_palette("viridis", len(dims)), strict=True))


def paper_figure(table, path: Path, metric: str = "test_rmse") -> None:
    """Rendle et al.'s Figure 3 as the paper draws it: RMSE of the MLP minus the dot product's
    (on the test pairs: unseen ratings of the pool's users and items; `metric` fresh_rmse for new
    embeddings) against users (= items, log axis), a panel per m, a line per d; the mean over
    seeds, the band the seeds' range of their own differences."""
    from matplotlib.figure import Figure

    table = table[~table["multiply"]]
    if table.empty:
        return
    rows, words = _protocol(table)
    reference = "dot_" + metric
    ms = sorted(rows["m"].unique())
    colors = _colors(sorted(rows["dimension"].unique()))
    fig = Figure(figsize=(4.0 * len(ms), 3.4), layout="constrained")
    axes = _axes(fig, 1, ms)
    for j, m in enumerate(ms):
        ax = axes[0][j]
        _gap_panel(ax, rows[rows["m"] == m], metric, reference, colors)
        ax.set_title(f"first layer {2 * m}·d (m = {m})", fontsize=10)
        ax.set_xlabel("users (= items)")
    axes[0][0].set_ylabel(f"RMSE(MLP) − RMSE(dot), {metric.split('_')[0]}")
    axes[0][0].legend(fontsize=8)
    fewest, most = int(rows["seeds"].min()), int(rows["seeds"].max())
    seeds = f"{fewest}" if fewest == most else f"{fewest}–{most}"
    fig.suptitle(f"Rendle et al.'s Figure 3 redone ({words}; mean of {seeds} seeds)", fontsize=10)
    write_atomically(path, lambda target: fig.savefig(target, dpi=110, format="png"))


def additions_figure(table, path: Path) -> None:
    """What the paper does not show, on the same axes: the gap on fresh pairs (new embeddings:
    has the MLP learned the function or the pool?), and with a·b fed as an input too (test pairs
    solid, fresh dashed); a panel per m, a line per d."""
    from matplotlib.figure import Figure

    if table.empty:
        return
    rows, words = _protocol(table)
    ms = sorted(rows["m"].unique())
    colors = _colors(sorted(rows["dimension"].unique()))
    fig = Figure(figsize=(4.0 * len(ms), 6.4), layout="constrained")
    axes = _axes(fig, 2, ms)
    plain, fed = rows[~rows["multiply"]], rows[rows["multiply"]]
    for j, m in enumerate(ms):
        top, bottom = axes[0][j], axes[1][j]
        _gap_panel(top, plain[plain["m"] == m], "fresh_rmse", "dot_fresh_rmse", colors)
        top.set_title(f"fresh pairs, m = {m}", fontsize=10)
        cell = fed[fed["m"] == m]
        if cell.empty:
            bottom.text(0.5, 0.5, "a·b fed: not run", ha="center", va="center",
                        transform=bottom.transAxes, color="gray")
        else:
            _gap_panel(bottom, cell, "test_rmse", "dot_test_rmse", colors, "-", " test")
            _gap_panel(bottom, cell, "fresh_rmse", "dot_fresh_rmse", colors, "--", " fresh")
            bottom.legend(fontsize=7)
        bottom.set_title(f"a·b fed as an input too, m = {m}", fontsize=10)
        bottom.set_xlabel("users (= items)")
    axes[0][0].set_ylabel("RMSE(MLP) − RMSE(dot), fresh")
    axes[1][0].set_ylabel("RMSE(MLP + a·b) − RMSE(dot)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Beyond the paper: new embeddings, and a·b fed ({words})", fontsize=10)
    write_atomically(path, lambda target: fig.savefig(target, dpi=110, format="png"))


def markdown(table) -> str:
    """The table as the READMEs show it: RMSE means over seeds (the paper's number) with the
    median and range beside them; the protocol in the header's columns."""
    if table.empty:
        return "(no runs yet)"
    lines = ["| d | users | m | a·b | init | sampling | seeds | params | MLP train | MLP test: mean "
             "(median; range) | MLP fresh: mean (median; range) | dot test | dot fresh | naive fresh "
             "| test NMSE | CPU s |",
             "|" + "---|" * 16]

    def number(value: float) -> str:
        return "–" if math.isnan(value) else f"{value:.3f}"

    def spread(row, metric):
        get = lambda stat: getattr(row, f"{metric}_{stat}")  # noqa: E731
        return (f"{number(get('mean'))} ({number(get('median'))}; {number(get('min'))}–"
                f"{number(get('max'))})")

    ordered = table.sort_values(["multiply", "init", "sampling", "dimension", "m", "users"])
    for row in ordered.itertuples():
        cpu = "–" if math.isnan(row.cpu_seconds) else f"{row.cpu_seconds:,.0f}"
        lines.append(
            f"| {row.dimension} | {row.users:,} | {row.m} | {'on' if row.multiply else 'off'} "
            f"| {row.init} | {row.sampling} | {row.seeds} | {row.params:,} "
            f"| {number(row.point_train_rmse)} | {spread(row, 'test_rmse')} | {spread(row, 'fresh_rmse')} "
            f"| {number(row.point_dot_test_rmse)} | {number(row.point_dot_fresh_rmse)} "
            f"| {number(row.point_naive_fresh_rmse)} | {number(row.test_nmse)} | {cpu} |"
        )
    return "\n".join(lines)
