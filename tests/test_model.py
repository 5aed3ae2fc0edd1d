import math

import pytest
import torch

from dotmlp.model import DotMLP, parameter_count


def test_output_is_one_value_per_pair_from_a_plain_linear_head():
    model = DotMLP(3, hidden=(8, 8))
    assert model(torch.randn(5, 3), torch.randn(5, 3)).shape == (5,)
    assert [(layer.fan_in, layer.fan_out) for layer in model.layers] == [(6, 8), (8, 8), (8, 1)]
    # No activation after the head: the notebook's ReLU → Linear(1, 1) tail fit half the range.
    # A head of weight 0 and bias -5 must give -5, which no ReLU before the output could.
    with torch.no_grad():
        model.layers[-1].weight.zero_()
        model.layers[-1].bias.fill_(-5.0)
    assert torch.equal(model(torch.randn(5, 3), torch.randn(5, 3)), torch.full((5,), -5.0))


def test_replicas_are_independent_networks_each_initialised_from_its_own_seed():
    stacked = DotMLP(3, hidden=(8,), replicas=3, seed=10)
    singles = [DotMLP(3, hidden=(8,), seed=10 + k) for k in range(3)]
    for k, single in enumerate(singles):
        for mine, theirs in zip(stacked.parameters(), single.parameters(), strict=True):
            assert torch.equal(mine[k], theirs[0])
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    out = stacked(a, b)  # shared inputs: one row per replica
    assert out.shape == (3, 5)
    for k, single in enumerate(singles):
        assert torch.equal(out[k], single(a, b))  # on a CPU, replica k's own products
    own = stacked(torch.randn(3, 5, 3), torch.randn(3, 5, 3))  # one batch per replica
    assert own.shape == (3, 5)
    assert parameter_count(stacked) == parameter_count(singles[0])


def test_the_batched_product_a_gpu_runs_computes_what_the_per_replica_products_compute():
    # A GPU takes DotMLP.batched (one kernel for K replicas), a CPU replicas_by_product: the
    # same network, so the same outputs and gradients up to the products' summation order.
    model = DotMLP(2, hidden=(16, 16), replicas=3, seed=0)
    x = torch.randn(3, 7, 4)
    outs, grads = [], []
    for path in (model.batched, model.replicas_by_product):
        model.zero_grad()
        out = path(x)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
        assert out.shape == (3, 7, 1)
    assert torch.allclose(*outs, atol=1e-6)
    for batched, per_replica in zip(*grads, strict=True):
        assert torch.allclose(batched, per_replica, atol=1e-5)


def test_depth_zero_is_linear_and_the_flag_adds_d_inputs():
    assert parameter_count(DotMLP(4, hidden=())) == 2 * 4 + 1
    assert parameter_count(DotMLP(4, hidden=(), multiply=True)) == 3 * 4 + 1
    assert parameter_count(DotMLP(1, hidden=(64, 64))) == (2 * 64 + 64) + (64 * 64 + 64) + (64 + 1)


def test_flag_model_can_be_an_exact_dot_product():
    model = DotMLP(3, hidden=(), multiply=True)
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[0, 0, 0, 0, 0, 0, 1.0, 1.0, 1.0]]).T[None])
        model.layers[0].bias.zero_()
    a, b = torch.randn(10, 3), torch.randn(10, 3)
    assert torch.allclose(model(a, b), (a * b).sum(1))


@pytest.mark.parametrize(
    "a, b, message",
    [
        (torch.randn(4, 3), torch.randn(4, 2), "same shape"),
        (torch.randn(4, 2), torch.randn(4, 2), "dimension 3, got 2"),
        (torch.randn(3), torch.randn(3), "2D tensors .* got 1D and 1D"),
        (torch.randn(2, 4, 3), torch.randn(2, 4, 3), "got 3D and 3D"),  # 2 batches, 1 replica
        (torch.randn(1, 2, 4, 3), torch.randn(1, 2, 4, 3), "got 4D and 4D"),
        (torch.randn(4, 3), torch.randn(4, 3, dtype=torch.float64), "floating-point dtype"),
        (torch.ones(4, 3, dtype=torch.long), torch.ones(4, 3, dtype=torch.long), "floating-point"),
        ([1.0, 2.0, 3.0], torch.randn(1, 3), "must be tensors"),
    ],
)
def test_bad_inputs_raise_value_error_that_says_which(a, b, message):
    with pytest.raises(ValueError, match=message):
        DotMLP(3, hidden=(4,))(a, b)


def test_inputs_on_different_devices_are_refused():
    model = DotMLP(3, hidden=(4,))
    meta = torch.empty(4, 3, device="meta")
    with pytest.raises(ValueError, match="same device"):
        model(torch.randn(4, 3), meta)


def test_glorot_init_is_keras_dense_default_uniform_weights_zero_biases():
    # Rendle et al.'s code builds its MLP from keras.layers.Dense, whose defaults are
    # glorot_uniform weights (uniform in ±sqrt(6 / (fan_in + fan_out))) and zero biases.
    model = DotMLP(16, hidden=(64, 32, 16), replicas=2, seed=5, init="glorot")
    for layer in model.layers:
        bound = math.sqrt(6 / (layer.fan_in + layer.fan_out))
        weight = layer.weight.detach()
        assert weight.abs().max() <= bound
        assert torch.count_nonzero(layer.bias) == 0
        if weight[0].numel() >= 512:  # uniform in the whole range: reaches near its ends, std bound/√3
            assert weight.abs().max() > 0.95 * bound
            assert abs(weight.std().item() / (bound / math.sqrt(3)) - 1) < 0.1
    default = DotMLP(16, hidden=(64, 32, 16), seed=5)
    assert torch.count_nonzero(default.layers[0].bias) > 0  # PyTorch's biases are not zero


def test_glorot_replica_k_is_the_one_replica_model_of_seed_plus_k():
    stacked = DotMLP(3, hidden=(8, 4), replicas=3, seed=10, init="glorot")
    for k in range(3):
        single = DotMLP(3, hidden=(8, 4), seed=10 + k, init="glorot")
        for mine, theirs in zip(stacked.parameters(), single.parameters(), strict=True):
            assert torch.equal(mine[k], theirs[0])
    # The default initialisation is untouched by the option: committed results keep their nets.
    for mine, theirs in zip(DotMLP(3, hidden=(8,), seed=4).parameters(),
                            DotMLP(3, hidden=(8,), seed=4, init="default").parameters(), strict=True):
        assert torch.equal(mine, theirs)
    with pytest.raises(ValueError, match="init must be one of"):
        DotMLP(3, hidden=(8,), seed=0, init="he")


def test_a_trial_with_init_glorot_starts_from_it():
    from dotmlp.config import TrialConfig
    from dotmlp.module import DotProductModule

    config = TrialConfig(dimension=4, hidden=(16, 8), depth=2, seed=3, seeds=2, init="glorot")
    module = DotProductModule(config.to_dict())
    expected = DotMLP(4, hidden=(16, 8), replicas=2, seed=3, init="glorot")
    for mine, theirs in zip(module.model.parameters(), expected.parameters(), strict=True):
        assert torch.equal(mine, theirs)
