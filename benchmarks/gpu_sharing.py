"""Fractional GPUs: the same sweep with a quarter of a GPU per trial and with a whole one.

`python benchmarks/gpu_sharing.py [--json] [--shares 0.25,1] [--num-samples 16] [--timelines DIR]
[SWEEP ARGS]`

Needs a machine whose Ray runtime sees a GPU. Each share runs the same seeded configurations to
their full budget (no ASHA, so both sweeps do the same work) and reports trials per minute of
the sweep's fit, how many trials ran at once on average, and the samples per second of a
trial. The figure of merit is trials per minute at each share over that at the largest share:
with four trials to a GPU, small MLPs leave most of the card idle, so the target is >= 3x.
With --timelines, each sweep also writes Ray's timeline (DIR/timeline_<share>.json) and the
figures split the workers' time: inside trainable calls (a trial computing up to its next
report), between calls (the driver's turn at each report, and the hand-over from one trial to
the next), before a worker's first call and after its last.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sweep_efficiency import run_sweep  # noqa: E402


def share_figures(table: pd.DataFrame, summary: dict) -> dict:
    fit = summary["wall_seconds"]
    return {
        "trials": len(table),
        "fit_seconds": fit,
        "trials_per_minute": 60 * len(table) / fit,
        # Time-weighted: trial-seconds per second of the fit (Tune's report timestamps are whole
        # seconds, too coarse to find the peak from trials a few seconds long).
        "mean_concurrent_trials": float(table["trial_seconds"].sum() / fit),
        "median_trial_samples_per_s": float((table["samples"] / table["trial_seconds"]).median()),
        "errored": int((table["status"] == "errored").sum()),
    }


def worker_time(events: list[dict]) -> dict:
    """Seconds of the workers' time from Ray's timeline (Chrome-trace events, microseconds),
    summed over workers, from the driver's first request to the last event: start-up (until
    the worker's first event; None where the timeline lost the driver's first events), inside
    trainable calls (a trial computing up to its next report), between calls (the driver's turn
    at each report; the hand-over from one trial to the next), and after the worker's last call."""
    calls: dict[str, list[tuple[float, float]]] = {}
    first_event: dict[str, float] = {}
    for event in events:
        tid = event.get("tid")
        first_event[tid] = min(first_event.get(tid, event["ts"]), event["ts"])
        if event.get("name") == "train" and "dur" in event:
            calls.setdefault(tid, []).append((event["ts"], event["ts"] + event["dur"]))
    if not calls:
        return {}
    start = min(e["ts"] for e in events)
    end = max(e["ts"] + e.get("dur", 0) for e in events)
    driver_start = min((e["ts"] for e in events if str(e.get("tid", "")).startswith("driver")),
                       default=None)
    # Ray keeps a bounded number of a process's profile events (the driver's last 1,000 here):
    # in a long sweep the driver's first request is gone and start-up cannot be told apart.
    start_up_known = driver_start is not None and driver_start <= min(first_event[w] for w in calls)
    split = dict.fromkeys(("start_up", "in_calls", "between_calls", "after_last_call"), 0.0)
    for worker, spans in calls.items():
        spans.sort()
        split["start_up"] += first_event[worker] - start
        split["between_calls"] += spans[0][0] - first_event[worker]  # the actor's own set-up
        split["in_calls"] += sum(b - a for a, b in spans)
        split["between_calls"] += sum(a - b for (_, b), (a, _) in itertools.pairwise(spans))
        split["after_last_call"] += end - spans[-1][1]
    figures = {"workers": len(calls), "timeline_seconds": (end - start) / 1e6,
               **{k: v / 1e6 for k, v in split.items()}}
    if not start_up_known:
        figures["start_up"] = None
    return figures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--shares", default="0.25,1", help="GPU fractions per trial to compare")
    parser.add_argument("--timelines", type=Path, default=None, metavar="DIR",
                        help="write Ray's timeline of each sweep here and split the workers' time")
    args, sweep_args = parser.parse_known_args(argv)
    try:
        shares = sorted({float(s) for s in args.shares.split(",")})
    except ValueError:
        parser.error(f"--shares must be comma-separated numbers, got {args.shares!r}")
    if not shares or min(shares) <= 0 or max(shares) > 1:
        parser.error(f"--shares must lie in (0, 1], got {args.shares!r}")

    import torch

    if not torch.cuda.is_available():
        parser.error("no CUDA device visible: this benchmark compares GPU shares")
    if args.timelines:
        args.timelines.mkdir(parents=True, exist_ok=True)
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        for share in shares:
            name = f"share_{share:g}".replace(".", "_")
            common = ["--num-samples", str(args.num_samples), "--no-asha", "--no-figures",
                      "--gpus-per-trial", f"{share:g}", *sweep_args]
            timeline = args.timelines / f"timeline_{name}.json" if args.timelines else None
            if timeline:
                common += ["--ray-timeline", str(timeline)]
            table, summary, _ = run_sweep(common, Path(folder), name)
            figures[f"{share:g}"] = share_figures(table, summary)
            if timeline:
                figures[f"{share:g}"]["worker_time"] = worker_time(json.loads(timeline.read_text()))
            # Each share's figures as soon as its sweep ends: a run cut short keeps what it measured.
            print(f"share {share:g}: {json.dumps(figures[f'{share:g}'])}", file=sys.stderr, flush=True)
    whole = figures[f"{max(shares):g}"]["trials_per_minute"]
    result = {
        "device": torch.cuda.get_device_name(),
        "shares": figures,
        "speedup_over_largest_share": {k: v["trials_per_minute"] / whole for k, v in figures.items()},
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
