"""The MLP that tries to be a dot product. Plain PyTorch: knows nothing of Lightning, Tune or MLflow."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DotMLP(nn.Module):
    """f(a, b) = head(hidden([a, b])) or, with multiply, head(hidden([a, b, a*b])).

    The head is a plain Linear with no activation after it, so the output spans the whole real
    line (the original notebook ended in ReLU → Linear(1, 1) and could only fit half the target).
    With no hidden layers the model is linear in its inputs.
    """

    def __init__(self, dimension: int, hidden: Sequence[int] = (64, 64), multiply: bool = False):
        super().__init__()
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        self.dimension = dimension
        self.multiply = multiply
        layers: list[nn.Module] = []
        fan_in = dimension * (3 if multiply else 2)
        for size in hidden:
            layers += [nn.Linear(fan_in, size), nn.ReLU()]
            fan_in = size
        layers.append(nn.Linear(fan_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.check_inputs(a, b)
        features = [a, b, a * b] if self.multiply else [a, b]
        return self.net(torch.cat(features, dim=1)).squeeze(1)

    def check_inputs(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """torch.dot's rules, batched: two (batch, d) tensors of one shape, dtype and device."""
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            raise ValueError(
                f"a and b must be tensors, got {type(a).__name__} and {type(b).__name__}"
            )
        if a.dim() != 2 or b.dim() != 2:
            raise ValueError(
                f"2D tensors of shape (batch, {self.dimension}) expected, "
                f"but got {a.dim()}D and {b.dim()}D tensors"
            )
        if a.shape != b.shape:
            raise ValueError(
                f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        if a.shape[1] != self.dimension:
            raise ValueError(
                f"this model takes vectors of dimension {self.dimension}, got {a.shape[1]}"
            )
        if a.device != b.device:
            raise ValueError(f"a and b must be on the same device, got {a.device} and {b.device}")
        if a.dtype != b.dtype or not a.is_floating_point():
            raise ValueError(
                f"a and b must share one floating-point dtype, got {a.dtype} and {b.dtype}"
            )


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
