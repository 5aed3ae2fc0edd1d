"""A training step in float32 against the same step under bfloat16 autocast (precision bf16).

`python benchmarks/precision.py [--json] [--threads 1] [--repeats 20]`

The step the trials take (dotmlp.module.DotProductModule.replica_mse, its backward and Adam) for
K = 3 replicas of a one-hidden-layer net at the frontier search's sizes, batch 1,024, on one thread;
fp32 and bf16 timed in alternating rounds, so that a load on the machine falls on both alike. A
ratio is fp32's median time ÷ bf16's: above 1, bf16 is faster. bf16 pays only where the CPU
multiplies bfloat16 natively (AVX-512 BF16, AMX); the CPU's model name is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dotmlp.config import TrialConfig  # noqa: E402
from dotmlp.module import DotProductModule  # noqa: E402
from dotmlp.tune.frontier import cpu_name  # noqa: E402

SIZES = ((16, 1, 256), (32, 1, 1024), (64, 1, 1024), (64, 2, 512))


def step_seconds(module: DotProductModule, optimizer, batch, bf16: bool, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        loss = module.replica_mse(batch, autocast=bf16).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def measure(dimension: int, depth: int, width: int, repeats: int, rounds: int = 5) -> dict:
    module = DotProductModule(TrialConfig(dimension=dimension, depth=depth, width=width, seeds=3).to_dict())
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    batch = (torch.randn(3, 1024, dimension), torch.randn(3, 1024, dimension), torch.randn(3, 1024))
    times = {False: [], True: []}
    for _ in range(rounds):
        for bf16 in (False, True):
            step_seconds(module, optimizer, batch, bf16, 2)  # warm-up of this path
            times[bf16] += step_seconds(module, optimizer, batch, bf16, repeats)
    fp32, bf16 = statistics.median(times[False]), statistics.median(times[True])
    flops = 6 * module.params * 1024 * 3
    return {"dimension": dimension, "depth": depth, "width": width, "params": module.params,
            "fp32_ms": 1e3 * fp32, "bf16_ms": 1e3 * bf16, "ratio": fp32 / bf16,
            "fp32_gflops": flops / fp32 / 1e9, "bf16_gflops": flops / bf16 / 1e9}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [measure(d, depth, w, args.repeats) for d, depth, w in SIZES]
    result = {"cpu": cpu_name(), "threads": args.threads, "sizes": rows}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"CPU: {result['cpu']}, {args.threads} thread(s), K = 3 replicas, batch 1,024")
        for row in rows:
            print(f"d={row['dimension']} {row['depth']}x{row['width']} ({row['params']:,} params): "
                  f"fp32 {row['fp32_ms']:.1f} ms ({row['fp32_gflops']:.0f} GFLOP/s), bf16 "
                  f"{row['bf16_ms']:.1f} ms ({row['bf16_gflops']:.0f}): ratio {row['ratio']:.2f}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
