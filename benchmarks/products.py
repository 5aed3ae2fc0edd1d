"""One hidden layer's step for K replicas, batched and product by product, against K single replicas.

`python benchmarks/products.py [--json] [--seeds 3] [--widths 64,256] [--batch 1024] [--repeats 50]`

Times a hidden layer of the sweep's model (dotmlp.model.StackedLinear and its ReLU), forward and
backward, at the sweep's batch and one thread: for one replica (one product, as the one-replica
model computes it), for K replicas in one batched product (`layer_step`, DotMLP.batched: a GPU's
path) and for K replicas one product each (`layer_step_per_replica`, DotMLP.replicas_by_product: a
CPU's path); and its elementwise work alone (ReLU and its backward). A ratio is K × (one
replica's time) ÷ (K replicas' time): above 1, that way of running K replicas beats K single
ones. Near 1 at a width, a step there is arithmetic, which batching cannot shrink; below 1 for the
elementwise work, K replicas' activations no longer fit the cache one replica's do.
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

from dotmlp.config import SweepSettings  # noqa: E402
from dotmlp.model import StackedLinear  # noqa: E402


def seconds(work, repeats: int) -> float:
    """The median of `repeats` timed calls, after a few untimed ones."""
    for _ in range(3):
        work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def layer_parts(replicas: int, width: int, batch: int, repeats: int) -> dict:
    """Seconds of one layer's step (forward and backward, with autograd; batched and per replica)
    and of its ReLU's elementwise work alone (forward and backward)."""
    layer = StackedLinear(replicas, width, width)
    for k in range(replicas):
        layer.reset_replica(k, torch.Generator().manual_seed(k))
    x = torch.randn(replicas, batch, width)
    grad = torch.randn(replicas, batch, width)
    elementwise = seconds(lambda: torch.ops.aten.threshold_backward(grad, torch.relu(x), 0.0),
                          repeats)
    xg = x.clone().requires_grad_()

    def step():
        layer.zero_grad(set_to_none=True)
        torch.relu_(layer(xg)).backward(grad)

    def step_per_replica():
        layer.zero_grad(set_to_none=True)
        outs = [torch.relu_(h) for h in layer.per_replica(xg.unbind(0))]
        torch.autograd.backward(outs, list(grad.unbind(0)))

    parts = {"elementwise": elementwise, "layer_step_per_replica": seconds(step_per_replica, repeats)}
    # One replica's layer step is its single product (a one-replica model on a CPU): not timed
    # again as a batched product of one.
    parts["layer_step"] = seconds(step, repeats) if replicas > 1 else parts["layer_step_per_replica"]
    return parts


def measure(seeds: int, widths: list[int], batch: int, repeats: int) -> dict:
    torch.set_num_threads(1)
    rows = []
    for width in widths:
        one, many = (layer_parts(k, width, batch, repeats) for k in (1, seeds))
        row = {"width": width, **{f"{part}_ratio": seeds * one[part] / many[part] for part in one},
               **{f"{part}_us_per_replica_single": 1e6 * one[part] for part in one},
               **{f"{part}_us_per_replica_batched": 1e6 * many[part] / seeds for part in many}}
        rows.append(row)
        print(f"width {width:>4}: " + "  ".join(
            f"{part} {1e6 * one[part]:.0f} vs {1e6 * many[part] / seeds:.0f} us/replica "
            f"(ratio {row[f'{part}_ratio']:.3f})" for part in one), file=sys.stderr, flush=True)
    return {"seeds": seeds, "batch": batch, "repeats": repeats, "threads": 1, "widths": rows}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=SweepSettings().seeds, help="replicas K")
    parser.add_argument("--widths", default="64,256", help="hidden widths, comma-separated")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        parser.error(f"--widths wants integers separated by commas, got {args.widths!r}")
    if min(args.seeds, args.batch, args.repeats, *widths) < 1:
        parser.error("--seeds, --batch, --repeats and every width must be >= 1")
    result = measure(args.seeds, widths, args.batch, args.repeats)
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
