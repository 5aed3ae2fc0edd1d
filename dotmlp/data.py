"""Random dot-product data, made directly on the device that trains on it.

Batches are generated where the model lives (no DataLoader workers, no host-to-device copies):
for MLPs this small, moving data costs more than the arithmetic.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch

# The held-out set has its own seed, independent of the trial's, so every trial of a given
# dimension and target is scored on the same pairs and NMSE values are comparable across a sweep.
HELD_OUT_SEED = 2_718_281

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def target_values(a: torch.Tensor, b: torch.Tensor, target: str = "dot") -> torch.Tensor:
    """y for each row: the dot product a·b, or the cosine similarity a·b / (|a||b|)."""
    dot = (a * b).sum(dim=1)
    if target == "dot":
        return dot
    if target == "cosine":
        return dot / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    raise ValueError(f"target must be 'dot' or 'cosine', got {target!r}")


def sample_pairs(
    n: int, dimension: int, generator: torch.Generator, target: str = "dot"
) -> Batch:
    """n pairs a, b ~ N(0, I_d) and their targets, on the generator's device."""
    device = generator.device
    a = torch.randn(n, dimension, generator=generator, device=device)
    b = torch.randn(n, dimension, generator=generator, device=device)
    return a, b, target_values(a, b, target)


def make_generator(seed: int, device: torch.device | str) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def held_out_set(
    dimension: int, n: int, device: torch.device | str, target: str = "dot"
) -> Batch:
    """The fixed evaluation pairs for this dimension and target; never trained on."""
    return sample_pairs(n, dimension, make_generator(HELD_OUT_SEED, device), target)


def training_seed(seed: int, start_step: int) -> int:
    """A training stream seed that differs from the held-out seed and, on resume, from the
    stream already consumed before the checkpoint (so a resumed trial never replays its data)."""
    return (seed * 1_000_003 + 7919 * start_step + 1) % (2**63)


class SingleBatch:
    """The held-out set as one batch, re-iterable so every evaluation sees the same pairs."""

    def __init__(self, batch: Batch):
        self.batch = batch

    def __iter__(self) -> Iterator[Batch]:
        yield self.batch

    def __len__(self) -> int:
        return 1


class FreshBatches:
    """An endless stream of new batches: every step sees samples it has never seen."""

    def __init__(
        self, dimension: int, batch_size: int, generator: torch.Generator, target: str = "dot"
    ):
        self.dimension = dimension
        self.batch_size = batch_size
        self.generator = generator
        self.target = target

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield sample_pairs(self.batch_size, self.dimension, self.generator, self.target)


class FixedBatches:
    """n fixed pairs, reshuffled and reused every epoch, without end (the budget stops training)."""

    def __init__(
        self,
        dimension: int,
        n: int,
        batch_size: int,
        generator: torch.Generator,
        target: str = "dot",
    ):
        self.pairs = sample_pairs(n, dimension, generator, target)
        self.batch_size = min(batch_size, n)
        self.generator = generator

    def __iter__(self) -> Iterator[Batch]:
        a, b, y = self.pairs
        n = len(y)
        while True:
            order = torch.randperm(n, generator=self.generator, device=self.generator.device)
            # Drop the ragged tail so every step uses the same batch size (the budget's unit).
            for start in range(0, n - self.batch_size + 1, self.batch_size):
                index = order[start : start + self.batch_size]
                yield a[index], b[index], y[index]


class Chunks:
    """Groups of k consecutive batches, so that one Lightning step runs k optimiser steps (see
    DotProductModule.training_step): the same batches in the same order, with the framework's
    per-step cost paid once per k steps.

    A group draws its batches from the stream as it is iterated, one per optimiser step, not when
    Lightning fetches it (a step ahead): drawn ahead, a group of d = 64 batches (13 MB) has left
    the CPU's cache before it is trained on, which cost 6 % of a step here."""

    def __init__(self, batches, k: int):
        self.batches = batches
        self.k = k

    def __iter__(self) -> Iterator[Chunk]:
        stream = iter(self.batches)  # endless: the budget, not the data, ends training
        while True:
            yield Chunk(stream, self.k)


class Chunk:
    """The next k batches of a stream, drawn when iterated: iterate each Chunk once, in order."""

    def __init__(self, stream: Iterator[Batch], k: int):
        self.stream = stream
        self.k = k

    def __iter__(self) -> Iterator[Batch]:
        return itertools.islice(self.stream, self.k)

    def __len__(self) -> int:
        return self.k
