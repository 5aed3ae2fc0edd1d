"""A trial's precision (bf16 autocast for the training products) and its start (the hand-built net,
with noise): real Lightning training at a tiny budget."""

from __future__ import annotations

import pytest
import torch

from dotmlp import construction
from dotmlp.config import ConfigError, TrialConfig
from dotmlp.train import train


def test_a_run_started_at_the_construction_scores_what_the_construction_scores():
    # One step at a negligible rate: the first evaluation is the hand-built net's, on the same pairs.
    config = TrialConfig(dimension=4, depth=1, width=32, init="construction", lr=1e-12, steps=1, seeds=2)
    result = train(config, accelerator="cpu")
    expected = construction.held_out_nmse(4, 4)
    assert result["val_nmse_seeds"] == pytest.approx([expected, expected], rel=1e-4)


def test_noise_on_the_construction_is_per_seed_and_grows_the_error():
    base = dict(dimension=4, depth=1, width=32, init="construction", lr=1e-12, steps=1, seeds=2)
    small = train(TrialConfig(**base, init_noise=0.05), accelerator="cpu")["val_nmse_seeds"]
    large = train(TrialConfig(**base, init_noise=0.5), accelerator="cpu")["val_nmse_seeds"]
    exact = construction.held_out_nmse(4, 4)
    assert small[0] != small[1]  # each replica its own noise
    assert all(exact < s < big for s, big in zip(small, large, strict=True))


def test_bf16_trains_to_the_fp32_result_and_evaluates_in_fp32():
    base = dict(dimension=4, depth=2, width=32, lr=3e-3, steps=300, seeds=2, schedule="cosine")
    fp32 = train(TrialConfig(**base), accelerator="cpu")
    bf16 = train(TrialConfig(**base, precision="bf16"), accelerator="cpu")
    assert bf16["val_nmse"] == pytest.approx(fp32["val_nmse"], rel=0.15)
    assert bf16["val_nmse"] != fp32["val_nmse"]  # the products did run in bfloat16


def test_bf16_keeps_parameters_and_optimiser_state_in_fp32():
    from dotmlp.module import DotProductModule

    module = DotProductModule(TrialConfig(dimension=2, depth=1, width=8, precision="bf16").to_dict())
    batch = (torch.randn(16, 2), torch.randn(16, 2), torch.randn(16))
    loss = module.replica_mse(batch, autocast=True)
    assert loss.dtype == torch.float32
    loss.sum().backward()
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in module.parameters())


@pytest.mark.parametrize("changes", [
    {"init": "construction", "width": 30},  # not 2·d·k
    {"init": "construction", "width": 24},  # k = 3 is odd
    {"init": "construction", "depth": 2},
    {"init": "construction", "multiply": True},
    {"init": "nope"}, {"precision": "fp16"}, {"init_noise": -1.0}, {"init_noise": float("nan")},
])
def test_bad_precision_or_init_is_refused(changes):
    with pytest.raises(ConfigError):
        TrialConfig(**{"dimension": 4, "depth": 1, "width": 32, **changes})
