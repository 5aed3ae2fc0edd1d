"""The study across sweeps: above the per-sweep analysis (dotmlp.analysis), which never imports it.

presets    which cells a study sweep trains, on which machine (PRESETS, for sweep/run.py)
points     every measurement of one or several sweeps as one table: (trial, budget) → NMSE
answer     the answer table (answer.csv), and everything a study writes
approximation a study's smallest nets against approximation theory, in prose (approximation.md)
depth      deep against shallow at equal parameters, on a grid study's nets
frontier   the answer table from the frontier search (answer.csv)
frontier_depth depth 1, 2 and 4 at the frontier: each depth's smallest net for ε (depth.csv)
frontier_flag the flag at the frontier: the smallest net with a·b fed against without (flag.csv)
across_fit one law across dimensions for SGD's NMSE, fitted with bootstrap intervals (law.csv)
across_checks the law left one dimension out, and asked for unseen dimensions' widths (law_checks.csv)
price      the price of learning: SGD's smallest net ÷ the hand-built net (price.csv, price.png)
law_across the law's files and the price's, written together (python -m dotmlp.study.law_across)

Light on purpose: sweep/run.py imports PRESETS before Ray starts; nothing heavy is imported here.
"""

from dotmlp.study.presets import PRESETS

__all__ = ["PRESETS"]
