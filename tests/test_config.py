import math

import pytest

from dotmlp import record
from dotmlp.config import MAX_STEPS_PER_BATCH, ConfigError, TrialConfig
from tests.conftest import ROOT


def test_defaults_are_valid_and_round_trip():
    config = TrialConfig(dimension=4)
    assert TrialConfig.from_dict({**config.to_dict(), "unrelated_tune_key": 1}) == config
    assert config.hidden_sizes == (64, 64)
    assert config.eval_interval == 100


def test_explicit_layers_override_depth_and_width():
    config = TrialConfig(dimension=2, hidden=[16, 8, 4, 2])
    assert config.hidden_sizes == (16, 8, 4, 2)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("dimension", 0, "dimension must be an integer >= 1"),
        ("depth", -1, "depth must be an integer >= 0"),
        ("width", 0, "width must be an integer >= 1"),
        ("lr", 0.0, "lr must be a finite number > 0"),
        ("lr", -1e-3, "lr must be a finite number > 0"),
        ("lr", math.nan, "lr must be a finite number > 0"),
        ("lr", "fast", "lr must be a number > 0"),
        ("steps", 0, "steps must be an integer >= 1"),
        ("target", "l2", "target must be one of dot, cosine"),
        ("data", "stream", "data must be one of fresh, fixed, pool"),
        ("hidden", (4, 0), "hidden layer size must be an integer >= 1"),
    ],
)
def test_bad_settings_name_the_argument_and_range(field, value, words):
    with pytest.raises(ConfigError, match=words):
        TrialConfig(**{"dimension": 4, field: value})


@pytest.mark.parametrize(
    "steps, eval_every, k",
    [(2000, 125, 25), (25, 10, 5), (1000, 100, 25), (3000, 300, 25), (7, 7, 7), (97, 0, 1), (64, 16, 16),
     (60, 60, 20)],
)
def test_steps_per_batch_divides_the_budget_and_the_evaluation_interval(steps, eval_every, k):
    config = TrialConfig(dimension=2, steps=steps, eval_every=eval_every)
    assert config.steps_per_batch == k
    assert steps % k == 0 and config.eval_interval % k == 0 and 1 <= k <= MAX_STEPS_PER_BATCH


def test_a_record_made_before_a_setting_existed_means_what_those_sweeps_did():
    # The committed studies were recorded before --halving: they resume with ASHA, whatever the
    # default is now.
    committed = record.load(ROOT / "results", "study-cpu-long")
    assert "halving" not in committed["settings"]
    assert record.settings(committed).halving == "asynchronous"
    given = {**committed, "settings": {**committed["settings"], "halving": "synchronous"}}
    assert record.settings(given).halving == "synchronous"
