"""The headline figure, results/answer.png, drawn from results/answer.csv.

Left: hidden units needed against d (log axes), for each threshold: the hand-built net's line, and
SGD's smallest one-hidden-layer net as points whose bar runs down to the width that failed (the
bracket); a row not reached is an arrow up from the widest width tried (a bound); dotted, the law
across dimensions' prediction (results/law_checks.csv, kind "all data": fitted on every dimension
with data, dotmlp.study.law_across), where that file exists. Right: the samples
SGD's smallest net needed, and its 2x- and 4x-wider nets' (what data buys at the frontier).
Depth 1 only: units of one hidden layer are what the construction counts. Legible at 1,000 px
wide: fonts of 10 pt at that size, two panels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from dotmlp.cli import ArgumentParser, fail

ANSWER = Path("results/answer.csv")
LAW = Path("results/law_checks.csv")
FIGURE = Path("results/answer.png")
COLOURS = {1e-2: "tab:blue", 1e-3: "tab:red"}
WIDTH_INCHES, DPI = 10, 100  # 1,000 px wide: a 10 pt font is 10 pt on the page a reader sees


def read_law(path: Path) -> pd.DataFrame | None:
    """law_checks.csv, or None where the law has not been fitted yet."""
    return pd.read_csv(path) if Path(path).is_file() else None


def law_widths(law: pd.DataFrame | None) -> pd.DataFrame:
    """The law's depth-1 widths per (ε, d), from every dimension with data (empty: no law yet)."""
    if law is None or not len(law):
        return pd.DataFrame(columns=["threshold", "dimension", "predicted_width", "fitted_on"])
    rows = law[(law["kind"] == "all data") & (law["depth"] == 1)].dropna(subset=["predicted_width"])
    return rows[["threshold", "dimension", "predicted_width", "fitted_on"]].sort_values("dimension")


def draw(answer: pd.DataFrame, out: Path, law: pd.DataFrame | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = answer[(answer["multiply"].astype(str) == "False") & (answer["depth"] == 1)]
    fig, (units, data) = plt.subplots(1, 2, figsize=(WIDTH_INCHES, 4.4), dpi=DPI)
    predictions = law_widths(law)
    for eps, task in rows.groupby("threshold"):
        colour = COLOURS.get(eps, "tab:gray")
        task = task.sort_values("dimension")
        units.plot(task["dimension"], task["construction_hidden"], "--", color=colour, lw=1.5,
                   label=f"hand-built, ε = {eps:g}")
        predicted = predictions[np.isclose(predictions["threshold"], eps)]
        if len(predicted):
            units.plot(predicted["dimension"], predicted["predicted_width"], ":", color=colour, lw=1.5,
                       label=f"law's prediction (fit on d = {predicted['fitted_on'].iloc[0]}), ε = {eps:g}")
        reached = task[task["reached"].astype(str) == "True"]
        low = reached["width"] - reached["failed_width"].fillna(reached["width"])
        units.errorbar(reached["dimension"], reached["width"], yerr=[low, 0 * low], fmt="o",
                       color=colour, capsize=3, label=f"SGD's smallest (bar: width that failed), ε = {eps:g}")
        bound = task[(task["reached"].astype(str) == "False") & (task["status"] == "decided")]
        for _, row in bound.iterrows():
            units.annotate("", xy=(row["dimension"], row["max_width_tried"] * 2.2),
                           xytext=(row["dimension"], row["max_width_tried"]),
                           arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5})
        data.plot(reached["dimension"], reached["samples"], "o-", color=colour,
                  label=f"smallest net, ε = {eps:g}")
        for factor, marker in ((2, "s"), (4, "^")):
            column = f"samples_{factor}x_wider"
            wider = reached.dropna(subset=[column])
            data.plot(wider["dimension"], wider[column], marker, color=colour, alpha=0.6, ls=":",
                      label=f"{factor}x wider, ε = {eps:g}")
    for axis in (units, data):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        dimensions = sorted(answer["dimension"].unique())
        axis.set_xticks(dimensions, [str(d) for d in dimensions])
        axis.set_xlim(dimensions[0] / 1.3, dimensions[-1] * 1.3)
        axis.set_xlabel("dimension d")
        axis.grid(True, which="both", alpha=0.3)
        axis.tick_params(labelsize=10)
    units.set_ylabel("hidden units (one layer)", fontsize=11)
    units.set_title("Size to reach NMSE ε: SGD vs hand-built", fontsize=11)
    data.set_ylabel("training samples", fontsize=11)
    data.set_title("Samples SGD needs (cosine-decayed Adam)", fontsize=11)
    units.legend(fontsize=9, loc="upper left")
    data.legend(fontsize=9, loc="upper left", ncol=2)
    return save(fig, out)


def save(fig, out: Path) -> Path:
    """Write a figure at DPI (1,000 px for a 10-inch figure), atomically, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = ArgumentParser(prog="python -m dotmlp.study.answer_figure", description=__doc__.splitlines()[0])
    parser.add_argument("--answer", default=str(ANSWER))
    parser.add_argument("--law", default=str(LAW), help="law_checks.csv (dotmlp.study.law_across); "
                        "the figure goes without the law's line where it does not exist")
    parser.add_argument("--out", default=str(FIGURE))
    args = parser.parse_args(argv)
    if not Path(args.answer).exists():
        fail(parser.prog, f"answer {args.answer!r} does not exist: python -m dotmlp.study.frontier writes it")
    return draw(pd.read_csv(args.answer), Path(args.out), read_law(args.law))


if __name__ == "__main__":
    main(sys.argv[1:])
