"""The frontier search's decisions, on a synthetic world whose answer is known (no training): it
brackets the smallest width, brackets the learning rate, trains a failing width on at least the
samples of the reported one, and, replayed on its own ledger, asks for nothing twice."""

from __future__ import annotations

import math

import pytest

from dotmlp import frontier
from dotmlp.config import ConfigError
from dotmlp.frontier import FrontierSettings, RunKey


def synthetic_nmse(key: RunKey) -> float:
    """Capacity (falls as width^-2, harder with d), data (falls as samples^-1/2) and a learning-rate
    penalty around a best rate that shifts with the budget: a learning curve per width."""
    capacity = 0.5 * key.dimension / key.width**2
    data = 1.0 * key.dimension / math.sqrt(key.samples)
    best_index = 3 - int(math.log(key.samples / frontier.FIRST_SAMPLES, 4))
    return (capacity + data) * (1 + 0.4 * (key.lr_index - best_index) ** 2)


def run_row(key: RunKey) -> dict:
    nmse = synthetic_nmse(key)
    return {"dimension": key.dimension, "depth": key.depth, "width": key.width,
            "lr_index": key.lr_index, "lr": key.lr, "samples": key.samples, "nmse_median": nmse,
            "nmse_min": nmse * 0.9, "nmse_max": nmse * 1.1, "diverged": 0}


def start(task):
    return 8 * task.dimension


SETTINGS = FrontierSettings(dimensions=(1, 4), depths=(1,), thresholds=(1e-2, 1e-3),
                            caps=((64, 2**25),))


def search_to_the_end(settings, ledger_path, limit=None):
    """The Searcher's loop without Tune: run what is pending, record it, until nothing is."""
    trained = []
    while True:
        ledger = frontier.load_ledger(ledger_path)
        keys = frontier.pending(settings, ledger, start)
        if not keys or (limit is not None and len(trained) >= limit):
            return trained
        frontier.append_runs(ledger_path, [run_row(keys[0])])
        trained.append(keys[0])


def test_the_search_brackets_width_and_learning_rate(tmp_path):
    ledger_path = tmp_path / "candidates.csv"
    trained = search_to_the_end(SETTINGS, ledger_path)
    assert len(trained) == len(set(trained)), "a run was trained twice"
    ledger = frontier.load_ledger(ledger_path)
    results = frontier.outcomes(SETTINGS, ledger, start)
    assert all(isinstance(o, frontier.TaskOutcome) for o in results)
    for outcome in results:
        eps = outcome.task.threshold
        hi, lo = outcome.reached, outcome.failed
        assert hi is not None and hi.best.nmse_median <= eps
        assert lo is not None and lo.width < hi.width
        assert hi.width <= SETTINGS.bracket * lo.width or hi.width - lo.width == 1
        assert lo.best.nmse_median > eps
        # The failing width was trained on at least the samples the reported one needed.
        assert lo.samples >= hi.samples
        # The learning rate is bracketed where the width reached: its best lies inside what was tried.
        assert hi.bracketed and min(hi.lrs) < hi.best.key.lr < max(hi.lrs)
        # What data buys: the nets 2x and 4x wider, each up its own ladder, need no more samples here.
        assert sorted(outcome.wider) == [2, 4]
        assert all(w.reached and w.samples <= hi.samples for w in outcome.wider.values())
        # The width below the reported one really fails in this world at those samples (any rate).
        rates = range(frontier.LR_MIN_INDEX, frontier.LR_MAX_INDEX + 1)
        assert min(synthetic_nmse(RunKey(outcome.task.dimension, 1, lo.width, j, hi.samples))
                   for j in rates) > eps


def test_a_stopped_search_resumes_without_training_anything_twice(tmp_path):
    ledger_path = tmp_path / "candidates.csv"
    first = search_to_the_end(SETTINGS, ledger_path, limit=17)  # stopped part-way
    assert len(first) == 17
    rest = search_to_the_end(SETTINGS, ledger_path)  # started again on its ledger
    assert not set(first) & set(rest)
    uninterrupted = search_to_the_end(SETTINGS, tmp_path / "other.csv")
    assert sorted(first + rest) == sorted(uninterrupted)


def test_thresholds_share_runs(tmp_path):
    one = search_to_the_end(FrontierSettings(dimensions=(4,), depths=(1,), thresholds=(1e-2,),
                                             caps=((64, 2**25),)), tmp_path / "a.csv")
    both = search_to_the_end(FrontierSettings(dimensions=(4,), depths=(1,), thresholds=(1e-2, 1e-3),
                                              caps=((64, 2**25),)), tmp_path / "b.csv")
    assert set(one) <= set(both)


def test_unreached_task_is_a_bound_at_its_cap_and_widest_width(tmp_path):
    settings = FrontierSettings(dimensions=(4,), depths=(1,), thresholds=(1e-5,), caps=((64, 2**23),),
                                max_width_factor=4)
    search_to_the_end(settings, tmp_path / "c.csv")
    (outcome,) = frontier.outcomes(settings, frontier.load_ledger(tmp_path / "c.csv"), start)
    assert outcome.reached is None
    assert outcome.widest.width == 4 * start(outcome.task)
    # Narrower widths may stop on a flattened curve; the bound is the widest one at the cap.
    assert outcome.widest.samples == 2**23 and outcome.widest.reason == "cap"
    assert any(o.reason == "flattened" for o in outcome.evaluated.values())


@pytest.mark.parametrize("kwargs", [{"thresholds": (0.0,)}, {"thresholds": (1.5,)}, {"depths": (0,)},
                                    {"dimensions": ()}, {"precision": "fp8"}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        FrontierSettings(**kwargs)


def test_flattened_projects_the_last_rate_to_the_cap():
    cap = frontier.FIRST_SAMPLES * 4**3
    # Halving per x4 budget, 2 budgets left: 0.04 -> 0.01 at the cap: reaches 1e-2, not 5e-3.
    curve = [(frontier.FIRST_SAMPLES, 0.08), (frontier.FIRST_SAMPLES * 4, 0.04)]
    assert not frontier.flattened(curve, 1e-2, cap)
    assert frontier.flattened(curve, 5e-3, cap)
    assert frontier.flattened([(1, 0.05), (4, 0.05)], 1e-2, cap)  # no improvement


# --- the search under Tune: real Ray, Lightning and MLflow, at a tiny budget --------------------------
TINY = FrontierSettings(dimensions=(1,), depths=(1,), thresholds=(0.3,), first_samples=2**12,
                        caps=((64, 2**14),), max_width_factor=2)


@pytest.mark.slow
def test_a_resumed_search_trains_only_the_runs_it_lacks(ray_runtime, tmp_path):
    """Stopped after some runs (the ledger holds only what finished), started again: it trains what
    is missing and nothing twice, and ends where the uninterrupted search ended. The three searches
    share the tests' Ray runtime (a new one each would cost two more starts)."""
    from dotmlp import sweep
    from tests.conftest import finished_runs

    whole = sweep.run_frontier(TINY, tmp_path, verbose=0)
    ledger_path = tmp_path / "frontier" / "candidates.csv"
    lines = ledger_path.read_text().splitlines(keepends=True)
    assert whole["decided"] == 1 and whole["runs_after"] == len(lines) - 1 >= 6
    uninterrupted = set(frontier.load_ledger(ledger_path))
    kept = 1 + (len(lines) - 1) // 2  # the header and the first half of the runs
    ledger_path.write_text("".join(lines[:kept]))

    resumed = sweep.run_frontier(TINY, tmp_path, verbose=0)
    assert resumed["runs_before"] == kept - 1
    assert resumed["runs_after"] - resumed["runs_before"] == len(lines) - kept  # only the missing ones
    assert set(frontier.load_ledger(ledger_path)) == uninterrupted
    # Every run is an MLflow run: the first search's and the resumed one's, nothing more.
    assert finished_runs(tmp_path, "frontier") == (len(lines) - 1) + (len(lines) - kept)
    # Started once more on a finished search: nothing to train.
    again = sweep.run_frontier(TINY, tmp_path, verbose=0)
    assert again["runs_after"] == again["runs_before"] == len(lines) - 1


def test_frontier_usage_errors_are_one_line(run_cli, tmp_path):
    for args in (["--thresholds", "2"], ["--thresholds", "x"], ["--depths", "0"], ["--multiply", "both"]):
        done = run_cli("sweep/run.py", "--frontier", "--results-dir", str(tmp_path), *args, timeout=120)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "frontier").exists()


def test_the_flag_is_a_search_of_its_own_from_two_units():
    flag = FrontierSettings(dimensions=(4,), depths=(1, 2), thresholds=(1e-2,), multiply=True)
    assert flag.ledger_name == "candidates-multiply.csv"
    assert FrontierSettings(multiply=True, precision="bf16").ledger_name == "candidates-multiply-bf16.csv"
    assert FrontierSettings().ledger_name == "candidates.csv"
    # Two ReLUs are exact with a·b fed, at every depth: the search starts there, not at 2dk units.
    assert {key.width for key in frontier.pending(flag, {})} == {frontier.FLAG_WIDTH}
    assert {key.width for key in frontier.pending(FrontierSettings(dimensions=(4,), depths=(1,),
                                                                   thresholds=(1e-2,)), {})} == {32}
    from dotmlp.tune.frontier import FrontierSearcher

    key = frontier.pending(flag, {})[0]
    assert FrontierSearcher(flag, "unused.csv").trial_config(key)["multiply"] is True
