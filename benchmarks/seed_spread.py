"""A sweep's task winners trained again with other seeds: how far one configuration's final NMSE
moves with the seed alone.

`python benchmarks/seed_spread.py --results-dir DIR [--name NAME] [--seeds 3,6] [--workers 2] [--json]`

Every trial of a sweep trains with the sweep's seed, which draws the initialisation and the
training data (the held-out set has its own). The ASHA target asks for each task's best NMSE
within 10 % of the full-budget best; this puts those 10 % next to the spread of the winners
themselves over seeds. Each task's best completed MLP (depth > 0; the linear models are exact or
hopeless) is trained again as the sweep trains it (same settings and threads); with the sweep's
own seed among --seeds it must give the sweep's figure again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dotmlp import analysis  # noqa: E402
from dotmlp.config import ConfigError, SweepSettings  # noqa: E402
from dotmlp.tune.trainable import shared_settings  # noqa: E402

ARCHITECTURE = ["dimension", "multiply", "depth", "width", "lr"]


def winners(table: pd.DataFrame) -> pd.DataFrame:
    """Each task's best completed MLP."""
    mlps = table[(table["status"] == "completed") & (table["depth"] > 0)]
    return mlps.loc[mlps.groupby(["dimension", "multiply"])["val_nmse"].idxmin()].reset_index(drop=True)


def final_nmse(config: dict) -> float:
    import torch

    from dotmlp.cli import quiet_lightning
    from dotmlp.config import TrialConfig
    from dotmlp.train import train

    torch.set_num_threads(config["threads"])
    quiet_lightning()
    return train(TrialConfig.from_dict(config))["val_nmse"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, required=True, help="a sweep's results dir")
    parser.add_argument("--name", default="sweep", help="that sweep's --name")
    parser.add_argument("--seeds", default="3,6",
                        help="first seeds of the winners' retrained replica sets (a trial of K replicas "
                        "with seed s trains s … s+K-1: keep them K apart, or replicas are shared)")
    parser.add_argument("--workers", type=int, default=2, help="trainings at a time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        seeds = sorted({int(s) for s in args.seeds.split(",")})
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if min(seeds) < 0 or args.workers < 1:
        parser.error("--seeds must be >= 0 and --workers >= 1")
    try:
        record = analysis.load_record(args.results_dir, args.name)
    except FileNotFoundError as error:
        parser.error(str(error))
    try:
        settings = SweepSettings(**record["settings"])
    except (TypeError, ConfigError) as error:
        parser.error(f"the settings of sweep {args.name!r} do not load: {error}")
    best = winners(pd.read_csv(args.results_dir / args.name / analysis.TABLE_FILE))
    configs = [{**shared_settings(settings), **row, "seed": seed}
               for row in best[ARCHITECTURE].to_dict("records") for seed in seeds]
    # Spawned, not forked: each worker imports torch afresh.
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        nmse = list(pool.map(final_nmse, configs))
    rows = []
    for i, row in enumerate(best.to_dict("records")):
        by_seed = dict(zip(seeds, nmse[i * len(seeds):(i + 1) * len(seeds)], strict=True))
        values = [row["val_nmse"], *by_seed.values()]
        rows.append({**{k: row[k] for k in ARCHITECTURE}, "val_nmse_sweep": row["val_nmse"],
                     "val_nmse_by_seed": by_seed, "spread": max(values) / min(values),
                     "all_within_10_percent": all(0.9 <= v / row["val_nmse"] <= 1.1 for v in values)})
    spreads = pd.Series([r["spread"] for r in rows])
    result = {"sweep_seed": settings.seed, "seeds": seeds, "winners": rows,
              "median_spread": float(spreads.median()),
              "winners_all_within_10_percent": sum(r["all_within_10_percent"] for r in rows)}
    if not args.json:
        for r in rows:
            others = ", ".join(f"{v:.3g}" for v in r["val_nmse_by_seed"].values())
            flag = "on " if r["multiply"] else "off"
            print(f"d={r['dimension']:>2} flag={flag} {r['depth']}x{r['width']:<3} lr {r['lr']:.1e}: "
                  f"NMSE {r['val_nmse_sweep']:.3g} in the sweep, {others} with seeds {args.seeds}; "
                  f"max/min {r['spread']:.2f}")
    print(json.dumps(result) if args.json else
          f"median max/min {result['median_spread']:.2f}; all seeds within 10 % of the sweep's figure: "
          f"{result['winners_all_within_10_percent']} of {len(rows)} winners")
    return result


if __name__ == "__main__":
    main()
