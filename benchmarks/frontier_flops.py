"""The frontier search's arithmetic rate: its widest runs' GFLOP/s against this machine's peak.

`python benchmarks/frontier_flops.py [--ledger results/frontier/candidates.csv] [--top 10] [--json]`

A run's work is 6 × params × samples × seeds floating-point operations (forward 2, backward 4 per
parameter and sample: the standard count for a dense net, biases and the ReLUs left out), done in
its `seconds` (Tune's time for the whole trial: start-up and evaluations included, so this is what
the search gets, not the kernel's rate). The peak is measured, not read off a data sheet: the best
of a few float32 matrix products of 4,096 × 4,096 on one thread and on every core (torch.mm, which
calls the machine's BLAS), the rate a CPU reaches on the most favourable dense work. The CPU's
model name is printed with every figure: timings compare within one machine only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dotmlp.tune.frontier import cpu_name  # noqa: E402


def gemm_gflops(threads: int, n: int = 4096, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up: the BLAS's threads and buffers
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def run_rates(ledger: Path, top: int) -> pd.DataFrame:
    runs = pd.read_csv(ledger)
    runs["gflop"] = 6 * runs["params"] * runs["samples"] * runs["seeds"] / 1e9
    runs["gflops"] = runs["gflop"] / runs["seconds"]
    widest = runs.sort_values(["params", "samples"], ascending=False).head(top)
    return widest[["dimension", "depth", "width", "params", "samples", "seeds", "cpus", "seconds",
                   "gflops", "cpu"]]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", default="results/frontier/candidates.csv")
    parser.add_argument("--top", type=int, default=10, help="the widest runs to show")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cores = torch.get_num_threads()
    peak = {"one_thread": gemm_gflops(1), "all_cores": gemm_gflops(cores), "cores": cores}
    widest = run_rates(Path(args.ledger), args.top)
    result = {"cpu": cpu_name(), "peak_gflops": peak, "widest_runs": widest.to_dict("records")}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"CPU: {result['cpu']}; float32 GEMM peak: {peak['one_thread']:.1f} GFLOP/s on one thread, "
              f"{peak['all_cores']:.1f} on {cores}")
        print(widest.to_string(index=False))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
