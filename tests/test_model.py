import pytest
import torch

from dotmlp.model import DotMLP, parameter_count


def test_output_is_one_value_per_pair_from_a_plain_linear_head():
    model = DotMLP(3, hidden=(8, 8))
    assert model(torch.randn(5, 3), torch.randn(5, 3)).shape == (5,)
    # No activation after the head: the notebook's ReLU → Linear(1, 1) tail fit half the range.
    assert isinstance(model.net[-1], torch.nn.Linear) and model.net[-1].out_features == 1
    assert isinstance(model.net[-2], torch.nn.ReLU) and model.net[-3].out_features == 8


def test_depth_zero_is_linear_and_the_flag_adds_d_inputs():
    assert parameter_count(DotMLP(4, hidden=())) == 2 * 4 + 1
    assert parameter_count(DotMLP(4, hidden=(), multiply=True)) == 3 * 4 + 1
    assert parameter_count(DotMLP(1, hidden=(64, 64))) == (2 * 64 + 64) + (64 * 64 + 64) + (64 + 1)


def test_flag_model_can_be_an_exact_dot_product():
    model = DotMLP(3, hidden=(), multiply=True)
    with torch.no_grad():
        model.net[0].weight.copy_(torch.tensor([[0, 0, 0, 0, 0, 0, 1.0, 1.0, 1.0]]))
        model.net[0].bias.zero_()
    a, b = torch.randn(10, 3), torch.randn(10, 3)
    assert torch.allclose(model(a, b), (a * b).sum(1))


@pytest.mark.parametrize(
    "a, b, message",
    [
        (torch.randn(4, 3), torch.randn(4, 2), "same shape"),
        (torch.randn(4, 2), torch.randn(4, 2), "dimension 3, got 2"),
        (torch.randn(3), torch.randn(3), "2D tensors .* got 1D and 1D"),
        (torch.randn(2, 4, 3), torch.randn(2, 4, 3), "got 3D and 3D"),
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
