"""What a trial became, from its last result and Tune's own status.

*pruned* is what ASHA's decisions alone produce: a trial Tune ended before its budget, in a sweep
run with ASHA, not diverged. A trial Tune has not ended (pending, running, or left so by an
interrupted sweep) is *unfinished*, whatever budget it reached.
"""

from __future__ import annotations

import math

STATUSES = ("completed", "pruned", "diverged", "errored", "unfinished")


def flag(value) -> bool:
    """A 0/1 metric read back from a table or a result: NaN or missing is False, not True."""
    try:
        return bool(value) and not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def trial_status(
    result: dict | None, max_t: float, tune_status: str = "TERMINATED", asha: bool = True,
    time_attr: str = "steps",
) -> str:
    """max_t: the full budget in time_attr's unit (steps, or epochs_done for a pool sweep)."""
    if tune_status == "ERROR":
        return "errored"
    if result and flag(result.get("diverged")):
        return "diverged"
    if result and (result.get(time_attr) or 0) >= max_t:
        return "completed"
    if tune_status == "TERMINATED" and asha:
        return "pruned"
    return "unfinished"
