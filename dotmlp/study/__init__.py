"""The study across sweeps: above the per-sweep analysis (dotmlp.analysis), which never imports it.

presets    which cells a study sweep trains, on which machine (PRESETS, for sweep/run.py)
points     every measurement of one or several sweeps as one table: (trial, budget) → NMSE
answer     the answer table (answer.csv), and everything a study writes
law        the scaling law: its form, NMSE at (N, S), parameter counts
fit        the law fitted per task, with bootstrap intervals and residuals
predictions what the law says a threshold takes (predicted.csv)
approximation the fit against approximation theory, in prose (approximation.md)
fit_figure the fit drawn (fit.png)
scaling    the scaling fit's files: fit, predictions, prose and figures, written together
depth      deep against shallow at equal parameters
checks     the law's predictions checked: train what it recommends and compare

Light on purpose: sweep/run.py imports PRESETS before Ray starts; nothing heavy is imported here.
"""

from dotmlp.study.presets import PRESETS

__all__ = ["PRESETS"]
