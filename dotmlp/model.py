"""The MLP that tries to be a dot product. Plain PyTorch: knows nothing of Lightning, Tune or MLflow."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

# The model's own initialisations (config.TrialConfig.init adds "construction", which starts from
# the default and then loads the hand-built net).
INITS = ("default", "glorot")


class StackedLinear(nn.Module):
    """K independent linear layers (one per replica), stacked in one weight and one bias.

    One Adam step updates every replica: Adam is elementwise, so with the replicas' losses summed
    each replica gets exactly the update it would get alone. The products run as one batched
    product (forward) or one product per replica (per_replica): see DotMLP.forward for which.
    """

    def __init__(self, replicas: int, fan_in: int, fan_out: int):
        super().__init__()
        self.fan_in, self.fan_out = fan_in, fan_out
        # (K, in, out): baddbmm multiplies without a transposed copy.
        self.weight = nn.Parameter(torch.empty(replicas, fan_in, fan_out))
        self.bias = nn.Parameter(torch.empty(replicas, 1, fan_out))

    def reset_replica(self, k: int, generator: torch.Generator | None, init: str = "default") -> None:
        """Replica k's weight and bias drawn afresh:
        - default: nn.Linear's initialisation (uniform in ±1/sqrt(fan_in) for weight and bias);
        - glorot: Keras's Dense defaults, as Rendle et al.'s code (approx_dot.py) gets them:
          glorot_uniform weights, uniform in ±sqrt(6 / (fan_in + fan_out)), and zero biases (which
          draw nothing from the generator)."""
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        with torch.no_grad():
            if init == "glorot":
                bound = math.sqrt(6 / (self.fan_in + self.fan_out))
                self.weight[k].uniform_(-bound, bound, generator=generator)
                self.bias[k].zero_()
                return
            bound = 1 / math.sqrt(self.fan_in) if self.fan_in else 0.0
            self.weight[k].uniform_(-bound, bound, generator=generator)
            self.bias[k].uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, batch, in) -> (K, batch, out)
        return torch.baddbmm(self.bias, x, self.weight)

    def per_replica(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """K inputs (batch, in) -> K outputs (batch, out): replica k's product alone, as a
        one-replica layer computes it, on views of the stacked weight (one backward node stacks
        the replicas' gradients)."""
        weights, biases = self.weight.unbind(0), self.bias.unbind(0)
        return [torch.addmm(bias, x, weight) for x, weight, bias in zip(xs, weights, biases, strict=True)]


class DotMLP(nn.Module):
    """f(a, b) = head(hidden([a, b])) or, with multiply, head(hidden([a, b, a*b])), for K replicas.

    The head is a plain linear layer with no activation after it, so the output spans the whole
    real line (the original notebook ended in ReLU → Linear(1, 1) and could only fit half the
    target). With no hidden layers the model is linear in its inputs.

    replicas: K independent copies of the network (own weights, own initialisation), trained side
    by side; replica k is initialised from seed + k, as a one-replica model with that seed is.
    init: "default" (PyTorch's nn.Linear) or "glorot" (Keras's Dense: Glorot-uniform weights, zero
    biases; StackedLinear.reset_replica).
    Inputs of shape (batch, d) are shared by every replica; (K, batch, d) gives each its own.
    The output is (batch,) for one replica and shared inputs, else (K, batch).
    """

    def __init__(
        self,
        dimension: int,
        hidden: Sequence[int] = (64, 64),
        multiply: bool = False,
        replicas: int = 1,
        seed: int | None = None,
        init: str = "default",
    ):
        super().__init__()
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        if replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {replicas}")
        self.dimension = dimension
        self.multiply = multiply
        self.replicas = replicas
        sizes = [dimension * (3 if multiply else 2), *hidden, 1]
        self.layers = nn.ModuleList(
            StackedLinear(replicas, sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)
        )
        for k in range(replicas):
            # Each replica from its own generator, layer after layer: replica k of K is the
            # one-replica model of seed + k. Without a seed, torch's global generator draws.
            generator = None if seed is None else torch.Generator().manual_seed(seed + k)
            for layer in self.layers:
                layer.reset_replica(k, generator, init)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.check_inputs(a, b)
        x = torch.cat([a, b, a * b] if self.multiply else [a, b], dim=-1)
        shared = x.dim() == 2
        if shared:
            x = x.expand(self.replicas, *x.shape)
        out = self.replicas_by_product(x) if x.device.type == "cpu" else self.batched(x)
        out = out.squeeze(-1)
        return out[0] if shared and self.replicas == 1 else out

    def batched(self, x: torch.Tensor) -> torch.Tensor:
        """(K, batch, in) -> (K, batch, 1), one kernel per layer for all K replicas: on a GPU a
        step of these nets is kernel launches, and batching the replicas divides them by K."""
        for layer in self.layers[:-1]:
            # In place: the product's backward needs its inputs, not its output.
            x = torch.relu_(layer(x))
        return self.layers[-1](x)

    def replicas_by_product(self, x: torch.Tensor) -> torch.Tensor:
        """The same, one matrix product per replica: on a CPU a step is arithmetic, and there K
        products measured faster than one batched product (benchmarks/README.md, 2026-12-04: K = 3
        against 3 single runs of the same path, 1.00-1.40 where the batched product gave
        0.81-0.99), and replica k computes exactly what the one-replica model of its seed does."""
        xs = x.unbind(0)
        for layer in self.layers[:-1]:
            xs = [torch.relu_(h) for h in layer.per_replica(xs)]
        return torch.stack(self.layers[-1].per_replica(xs))

    def check_inputs(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """torch.dot's rules, batched: two (batch, d) tensors of one shape, dtype and device
        (or (replicas, batch, d): one batch per replica)."""
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            raise ValueError(
                f"a and b must be tensors, got {type(a).__name__} and {type(b).__name__}"
            )
        replica_batch = a.dim() == 3 and b.dim() == 3 and a.shape[0] == self.replicas
        if not (a.dim() == 2 and b.dim() == 2) and not replica_batch:
            raise ValueError(
                f"2D tensors of shape (batch, {self.dimension}) expected "
                f"(or ({self.replicas}, batch, {self.dimension}), one batch per replica), "
                f"but got {a.dim()}D and {b.dim()}D tensors"
            )
        if a.shape != b.shape:
            raise ValueError(
                f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        if a.shape[-1] != self.dimension:
            raise ValueError(
                f"this model takes vectors of dimension {self.dimension}, got {a.shape[-1]}"
            )
        if a.device != b.device:
            raise ValueError(f"a and b must be on the same device, got {a.device} and {b.device}")
        if a.dtype != b.dtype or not a.is_floating_point():
            raise ValueError(
                f"a and b must share one floating-point dtype, got {a.dtype} and {b.dtype}"
            )


def parameter_count(model: nn.Module) -> int:
    """Parameters of one network: a model of K replicas holds K of them."""
    total = sum(p.numel() for p in model.parameters())
    return total // getattr(model, "replicas", 1)
