"""The original notebook's configurations, trained by this tool: what they reach once the
network ends in a plain linear head and trains on fresh data with a held-out metric.

`python sweep/notebook_configs.py [--steps 3000] [--out results/notebook_configs.csv]`

The notebook trained each on 1,024 fixed pairs (one batch per epoch) with lr 1e-2, stopped by
EarlyStopping(patience=2) after about 50 steps, and "tested" on its training batch: seven of its
eight reported runs ended at MSE ≈ 0.96. Here: lr 1e-2 as in the notebook, `--steps` steps of
1,024 fresh samples, NMSE on the held-out set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dotmlp.cli import quiet_lightning  # noqa: E402
from dotmlp.config import TrialConfig  # noqa: E402
from dotmlp.train import train  # noqa: E402

# (dimension, hidden layer sizes, multiplication flag), as the notebook's train_loop calls list them.
# Its default layer_sizes is [2d, d]. [10000, 512, 128, 64, 32] is left out: one step of it costs
# about a second on a 2-core machine.
NOTEBOOK = [
    (4, [4, 2], False),
    (4, [4], False),
    (4, [16, 8, 4, 2], False),
    (2, [4, 2], False),
    (1, [2], False),
    (2, [16, 8, 4, 2], False),
    (2, [32, 32, 16, 16, 8, 8, 4, 4, 2, 2], False),
    (2, [4] * 30, False),
    (1, [4] * 100, False),
    (1, [1024, 512, 128, 64, 32], False),
    (1, [2, 1], False),
    (1, [2, 1], True),
    (1, [8, 8, 4, 4], True),
    (1, [16, 8, 8, 4, 4], True),
    (1, [], True),
    (1, [1] * 30, True),
    (1, [64, 32, 16, 8, 4, 2], False),
    (1, [], False),
    (2, [], False),
]


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--out", default="results/notebook_configs.csv")
    args = parser.parse_args(argv)
    quiet_lightning()
    rows = []
    for dimension, hidden, multiply in NOTEBOOK:
        config = TrialConfig(dimension=dimension, hidden=hidden, depth=len(hidden), multiply=multiply,
                             lr=args.lr, steps=args.steps)
        result = train(config)
        rows.append({"dimension": dimension, "layers": str(hidden), "multiply": multiply,
                     "params": result["params"], "val_nmse": result["val_nmse"],
                     "diverged": result["diverged"], "steps": result["steps"]})
        print(f"d={dimension} layers={hidden if len(hidden) < 12 else f'{hidden[:2]}…x{len(hidden)}'} "
              f"flag={multiply}: val_nmse={result['val_nmse']:.3g}", flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    return table


if __name__ == "__main__":
    main()
