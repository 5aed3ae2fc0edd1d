"""Random dot-product data, made directly on the device that trains on it.

Batches are generated where the model lives (no DataLoader workers, no host-to-device copies):
for MLPs this small, moving data costs more than the arithmetic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator

import torch

# The held-out set has its own seed, independent of the trial's, so every trial of a given
# dimension and target is scored on the same pairs and NMSE values are comparable across a sweep.
HELD_OUT_SEED = 2_718_281
# Where the fixed worlds (held-out pairs, fixed training sets, pools) are drawn before they move to
# the trial's device: CPU and CUDA generators give different numbers for one seed (and CUDA's
# may differ between GPU models), so a world drawn on the device would depend on the machine.
# Training streams stay on the device: their batches are never compared across trials.
WORLD_DEVICE = "cpu"

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def target_values(a: torch.Tensor, b: torch.Tensor, target: str = "dot") -> torch.Tensor:
    """y for each row: the dot product a·b, or the cosine similarity a·b / (|a||b|)."""
    dot = (a * b).sum(dim=-1)
    if target == "dot":
        return dot
    if target == "cosine":
        return dot / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
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
    """The fixed evaluation pairs for this dimension and target; never trained on. Drawn on the
    CPU and moved to `device`: the same pairs on any machine."""
    pairs = sample_pairs(n, dimension, make_generator(HELD_OUT_SEED, WORLD_DEVICE), target)
    return tuple(tensor.to(device) for tensor in pairs)


def training_seed(seed: int, start_step: int) -> int:
    """A training stream seed that differs from the held-out seed. A resume continues the saved
    stream (DotProductModule.training_generators); where none fits, the stream is seeded from the
    step it starts at, so it does not replay the one consumed before the checkpoint."""
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
    """An endless stream of new batches: every step sees samples it has never seen.

    With several generators (one per replica) each batch is (K, batch, d): slice k is drawn from
    generator k exactly as a one-replica stream on that generator draws it, straight into place.
    """

    def __init__(
        self,
        dimension: int,
        batch_size: int,
        generator: torch.Generator | list[torch.Generator],
        target: str = "dot",
    ):
        self.dimension = dimension
        self.batch_size = batch_size
        self.generators = generator if isinstance(generator, list) else [generator]
        self.stacked = isinstance(generator, list)
        self.target = target

    def __iter__(self) -> Iterator[Batch]:
        shape = (len(self.generators), self.batch_size, self.dimension)
        device = self.generators[0].device
        while True:
            a, b = torch.empty(shape, device=device), torch.empty(shape, device=device)
            for k, generator in enumerate(self.generators):
                torch.randn(shape[1:], generator=generator, device=device, out=a[k])
                torch.randn(shape[1:], generator=generator, device=device, out=b[k])
            y = target_values(a, b, self.target)
            yield (a, b, y) if self.stacked else (a[0], b[0], y[0])


class FixedBatches:
    """n fixed pairs, reshuffled and reused every epoch, without end (the budget stops training).

    The pairs are drawn by `generator` and moved to `device` (by default the generator's): a
    trial draws them on the CPU (WORLD_DEVICE), so its fixed set is the same on any device, and
    shuffles them with a generator on its device (set `generator` after construction)."""

    def __init__(
        self,
        dimension: int,
        n: int,
        batch_size: int,
        generator: torch.Generator,
        target: str = "dot",
        device: torch.device | str | None = None,
    ):
        pairs = sample_pairs(n, dimension, generator, target)
        self.pairs = tuple(tensor.to(device or generator.device) for tensor in pairs)
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


class StackedBatches:
    """One batch per replica from K streams of their own, stacked to (K, batch, d)."""

    def __init__(self, streams: list):
        self.streams = streams

    def __iter__(self) -> Iterator[Batch]:
        for parts in zip(*self.streams, strict=True):
            yield tuple(torch.stack(tensors) for tensors in zip(*parts, strict=True))


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


# ---------------------------------------------------------------------------------------------
# The pool regime: Rendle, Krichene, Zhang, Anderson (RecSys 2020), Figure 3. The constants and
# the protocol follow their code, google-research/google-research
# dot_vs_learned_similarity/approx_dot.py (GenerateData and main):
# - the dot product of the true embeddings, plus Gaussian noise of sd 0.85, is the label, so the
#   exact dot product scores RMSE 0.85 (rmse_best) and predicting 0 scores 1.13 (rmse_naive);
# - every embedding entry ~ N(0, σ²), σ = ((1.13² − 0.85²)/d)^¼, so Var(u·v) = dσ⁴ = 1.13² − 0.85²;
# - U users, U items, U·100 distinct observed pairs, 90 % train, 10 % test;
# - 100,000 "fresh" pairs whose embeddings are new draws, not rows of the pool.
# Which pairs are observed: Pool(sampling=...). "reference" is the paper's rule, vectorised
# (sample_reference: each pair kept with probability 1.1·n/(U·I) in a loop over users then items,
# the first n kept, so the last ~9 % of users get none and the others ~110 each); "uniform", the
# default of every trial, is a uniform random subset of n distinct pairs of all U·I.
POOL_SAMPLINGS = ("uniform", "reference")
# approx_dot.py's GenerateData: `sampling_prob *= 1.1  # oversample to make sure we have enough`.
REFERENCE_OVERSAMPLING = 1.1
POOL_NOISE = 0.85
POOL_NAIVE_RMSE = 1.13
POOL_FRESH_PAIRS = 100_000
# Evaluations run in slices of this many pairs: the 5.8M training pairs of a 64,000-user pool at
# d = 64 would be 3 GB of input rows at once.
EVAL_CHUNK = 65_536

PoolSplit = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, label, target


def pool_sigma(dimension: int) -> float:
    """The embeddings' standard deviation that gives the noiseless target variance 1.13² − 0.85²."""
    return ((POOL_NAIVE_RMSE**2 - POOL_NOISE**2) / dimension) ** 0.25


def pool_seed(seed: int) -> int:
    """The pool's own stream, apart from the training stream (training_seed) and the held-out set:
    a resumed trial rebuilds the same pool from its seed, then draws new shuffles."""
    return (seed * 2_654_435_761 + 97) % (2**63)


def sample_distinct(n: int, total: int, generator: torch.Generator) -> torch.Tensor:
    """n distinct integers in [0, total), a uniform random subset in random order, without ever
    holding `total` values (U·I = 4.1e9 at 64,000 users and items): draw with replacement,
    deduplicate, draw again for what collided. The set of distinct values drawn is exchangeable,
    so given its size it is a uniform subset, and so is a random n of it."""
    device = generator.device
    if n > total:
        raise ValueError(f"cannot draw {n} distinct values from {total}")
    if 2 * n >= total:  # a dense subset: a permutation of everything is cheap and needs no retries
        return torch.randperm(total, generator=generator, device=device)[:n]
    chosen = torch.empty(0, dtype=torch.long, device=device)
    while len(chosen) < n:
        missing = n - len(chosen)
        # At most half of [0, total) is taken, so a draw collides with probability < 1/2; 10 %
        # extra usually ends it in one or two rounds.
        draw = torch.randint(total, (missing + missing // 10 + 16,), generator=generator, device=device)
        chosen = torch.unique(torch.cat([chosen, draw]))  # sorted, hence the final shuffle
    keep = torch.randperm(len(chosen), generator=generator, device=device)[:n]
    return chosen[keep]


def sample_reference(users: int, items: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Rendle et al.'s pair sampling, exactly in distribution, as flat indices user · items + item
    in increasing order (shuffle them before splitting, as the reference does).

    What the reference does (google-research/google-research, dot_vs_learned_similarity/
    approx_dot.py, GenerateData, called by main() with num_samples = num_users * 100):

        sampling_prob = num_samples / (num_users * num_items)
        sampling_prob *= 1.1  # oversample to make sure we have enough samples
        counter = 0
        for u in range(num_users):
          for i in range(num_items):
            if np.random.uniform() < sampling_prob:
              ... train_x[counter] = (user u, item i); counter = counter + 1
        counter = np.min([counter, num_samples])
        # discard any additional items
        train_x = train_x[:counter, :, :]

    then shuffles the kept pairs and splits them 90/10 into train and test. So each (u, i) is kept
    independently with p = 1.1 · n / (U · I), in the order u = 0, 1, …, i = 0, 1, … within u, and
    only the first n kept survive: about 1.1 · n are kept, so the cut falls near user U / 1.1.
    Users before it get Binomial(I, p) items each (mean 110 at n = 100 · U), the user at the cut
    the lowest-numbered of its kept items, the last ~9 % of users none (they never appear in train
    or test). With p ≥ 1 (fewer than 110 items) every pair is kept. The loop is U · I steps
    (1.6e10 at 128,000 users and items).

    Vectorised here without changing the distribution: the positions of the kept pairs in that
    order are a Bernoulli(p) process, whose gaps are independent Geometric(p) (trials up to and
    including a success); the first n kept are the cumulative sums of n such gaps, minus one, and
    those past U · I − 1 do not exist (then fewer than n are returned, as the reference keeps
    `counter` < n). One draw of n uniforms, O(n) time and memory, deterministic for the generator.
    """
    total = users * items
    if n < 1 or total < 1:
        return torch.empty(0, dtype=torch.long)
    p = REFERENCE_OVERSAMPLING * n / total
    if p >= 1:  # every uniform in [0, 1) is below it: every pair is kept, the first n survive
        return torch.arange(min(n, total))
    uniform = torch.rand(n, generator=generator, dtype=torch.float64)
    # Inverse CDF of Geometric(p) on {1, 2, …}: P(G > k) = (1 − p)^k, with V = 1 − uniform in (0, 1].
    gaps = torch.floor(torch.log1p(-uniform) / math.log1p(-p)).long() + 1
    positions = torch.cumsum(gaps, 0) - 1
    return positions[positions < total]


class Pool:
    """A finite world of users and items, its observed noisy ratings split into train and test,
    and a set of fresh pairs; all on `device`, deterministic for `seed`: drawn on the CPU
    (WORLD_DEVICE) and then moved, so a seed's world is the same on any device.

    sampling: which pairs are observed. "uniform" (the default): n = U · 100 distinct pairs, a
    uniform random subset (sample_distinct), so every user has about 100; "reference": Rendle et
    al.'s rule (sample_reference), whose n pairs sit on the first ~91 % of users, ~110 each. Either
    way the pairs are in random order, the first 10 % of them test.

    Pairs are stored as flat indices user · items + item into the two embedding tables, not as
    copies of the vectors (a 64,000-user pool's 6.4M pairs: 51 MB of indices instead of 3.3 GB of
    d = 64 rows); batches and evaluations gather the rows when they need them.
    """

    def __init__(
        self,
        dimension: int,
        users: int,
        seed: int = 0,
        device: torch.device | str = "cpu",
        items: int | None = None,
        items_per_user: int = 100,
        noise: float = POOL_NOISE,
        test_fraction: float = 0.1,
        fresh_pairs: int = POOL_FRESH_PAIRS,
        sampling: str = "uniform",
    ):
        if sampling not in POOL_SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(POOL_SAMPLINGS)}, got {sampling!r}")
        generator = make_generator(pool_seed(seed), WORLD_DEVICE)
        self.sampling = sampling
        self.dimension, self.users = dimension, users
        self.items = users if items is None else items
        self.noise = noise
        self.sigma = pool_sigma(dimension)
        self.device = torch.device(device)

        def embeddings(rows: int) -> torch.Tensor:
            return self.sigma * torch.randn(rows, dimension, generator=generator)

        self.user_vectors = embeddings(users)
        self.item_vectors = embeddings(self.items)
        n = users * min(items_per_user, self.items)  # config.pool_pairs when items == users
        if sampling == "reference":
            # In (user, item) order, shuffled as the reference shuffles. Fewer than n only where
            # the reference keeps fewer, in practice never with n = U · min(100, I): at U ≤ 110,
            # p ≥ 1 keeps the first n; above, 1.1·n are kept on average and n is over 9 sd below.
            pairs = sample_reference(users, self.items, n, generator)
            pairs = pairs[torch.randperm(len(pairs), generator=generator)]
            n = len(pairs)
        else:
            pairs = sample_distinct(n, users * self.items, generator)  # in random order: split it
        labels = self.targets(pairs) + noise * torch.randn(n, generator=generator)
        n_test = int(n * test_fraction)
        a, b = embeddings(fresh_pairs), embeddings(fresh_pairs)
        fresh_targets = target_values(a, b)
        fresh_labels = fresh_targets + noise * torch.randn(fresh_pairs, generator=generator)
        self.user_vectors, self.item_vectors, pairs, labels, a, b, fresh_labels, fresh_targets = (
            tensor.to(device) for tensor in (self.user_vectors, self.item_vectors, pairs, labels,
                                             a, b, fresh_labels, fresh_targets))
        self.test_ids, self.train_ids = pairs[:n_test], pairs[n_test:]
        self.test_labels, self.train_labels = labels[:n_test], labels[n_test:]
        self.fresh: PoolSplit = (a, b, fresh_labels, fresh_targets)
        self._dot_metrics: dict[str, float] | None = None

    def vectors(self, pair_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The user and item embeddings of flat pair indices."""
        return self.user_vectors[pair_ids // self.items], self.item_vectors[pair_ids % self.items]

    def targets(self, pair_ids: torch.Tensor) -> torch.Tensor:
        """The noiseless target, the dot product of the pair's embeddings."""
        return target_values(*self.vectors(pair_ids))

    def split(self, name: str, chunk: int = EVAL_CHUNK) -> Iterator[PoolSplit]:
        """One evaluation set (train, test or fresh) in slices of `chunk` pairs:
        (a, b, noisy label, noiseless target)."""
        if name == "fresh":
            a, b, labels, targets = self.fresh
            for start in range(0, len(labels), chunk):
                end = start + chunk
                yield a[start:end], b[start:end], labels[start:end], targets[start:end]
            return
        if name not in ("train", "test"):
            raise ValueError(f"split must be train, test or fresh, got {name!r}")
        ids, labels = (self.train_ids, self.train_labels) if name == "train" else (
            self.test_ids, self.test_labels
        )
        for start in range(0, len(ids), chunk):
            a, b = self.vectors(ids[start : start + chunk])
            yield a, b, labels[start : start + chunk], target_values(a, b)

    def dot_metrics(self) -> dict[str, float]:
        """The exact dot product's and the naive predictor's (always 0) RMSE: the paper's two
        reference lines, fixed for the pool, so computed once."""
        if self._dot_metrics is None:
            dot = lambda a, b: target_values(a, b)  # noqa: E731
            zero = lambda a, b: torch.zeros(len(a), device=a.device)  # noqa: E731
            self._dot_metrics = {
                "dot_test_rmse": split_errors(dot, self.split("test"))["rmse"],
                "dot_fresh_rmse": split_errors(dot, self.split("fresh"))["rmse"],
                "naive_test_rmse": split_errors(zero, self.split("test"))["rmse"],
                "naive_fresh_rmse": split_errors(zero, self.split("fresh"))["rmse"],
            }
        return self._dot_metrics


@torch.no_grad()
def split_errors(predict, chunks: Iterable[PoolSplit]) -> dict:
    """A predictor's errors on one evaluation set: RMSE against the noisy labels (the paper's
    measure, floor 0.85 on unseen pairs), and MSE and NMSE against the noiseless target, NMSE
    = MSE / Var(target), as the fresh and fixed regimes measure it, so the regimes compare.

    Reduces over the last axis only, so stacked replicas (a, b of shape (K, n, d), predictions
    and labels (K, n)) get one value per replica, as lists; a single model gets floats. Sums are
    kept on the device in float64 and read once, not once per chunk."""
    sums = None
    n = 0
    for a, b, labels, targets in chunks:
        prediction = predict(a, b).double()
        labels, targets = labels.double(), targets.double()
        chunk = torch.stack([
            (prediction - labels).square().sum(-1),
            (prediction - targets).square().sum(-1),
            targets.sum(-1),
            targets.square().sum(-1),
        ])
        sums = chunk if sums is None else sums + chunk
        n += labels.shape[-1]
    if sums is None:
        nan = float("nan")
        return {"rmse": nan, "mse": nan, "nmse": nan}
    label_se, target_se, target_sum, target_sq = (sums / n).unbind(0)
    mse = target_se
    nmse = mse / (target_sq - target_sum.square())
    return {name: value.tolist() for name, value in
            (("rmse", label_se.sqrt()), ("mse", mse), ("nmse", nmse))}


def pool_metrics(pool: Pool, predict, train: bool = True) -> dict[str, float]:
    """Everything the paper reports for one model on one pool, plus the tool's NMSE: the K = 1 case
    of replica_pool_metrics (predict sees inputs of shape (1, n, d))."""
    return {key: values[0] for key, values in replica_pool_metrics([pool], predict, train).items()}


def stacked_split(pools: list[Pool], name: str) -> Iterator[PoolSplit]:
    """One evaluation set of K pools side by side, (K, n, d) and (K, n): a model of K replicas
    scores replica k on pool k's pairs in one pass. The pools have one size (one config)."""
    for parts in zip(*(pool.split(name) for pool in pools), strict=True):
        yield tuple(torch.stack(tensors) for tensors in zip(*parts, strict=True))


def replica_pool_metrics(pools: list[Pool], predict, train: bool = True) -> dict[str, list[float]]:
    """Everything the paper reports for K replicas, each on its own pool (seed), plus the tool's
    NMSE; one value per replica. `train` adds the RMSE on all training pairs (the paper evaluates
    it once, after training; at 64,000 users it is 5.8M forward passes, too many for every
    evaluation)."""
    metrics: dict[str, list[float]] = {}
    for name in ("train", "test", "fresh") if train else ("test", "fresh"):
        errors = split_errors(predict, stacked_split(pools, name))
        for kind in ("rmse", "mse", "nmse"):
            metrics[f"{name}_{kind}"] = errors[kind]
    for key in pools[0].dot_metrics():
        metrics[key] = [pool.dot_metrics()[key] for pool in pools]
    return metrics


class PoolBatches:
    """The pool's training pairs, reshuffled every epoch, as an endless stream of (a, b, label)
    batches of exactly batch_size pairs: a batch may straddle two epochs, so E epochs take
    ceil(E · n / batch_size) steps (config.TrialConfig.epochs) and no pair is dropped."""

    def __init__(self, pool: Pool, batch_size: int, generator: torch.Generator):
        self.pool = pool
        self.batch_size = batch_size
        self.generator = generator

    def __iter__(self) -> Iterator[Batch]:
        pool, size, generator = self.pool, self.batch_size, self.generator
        n = len(pool.train_ids)
        pending = torch.empty(0, dtype=torch.long, device=generator.device)  # positions in train
        while True:
            while len(pending) < size:
                order = torch.randperm(n, generator=generator, device=generator.device)
                pending = torch.cat([pending, order])
            index, pending = pending[:size], pending[size:]
            a, b = pool.vectors(pool.train_ids[index])
            yield a, b, pool.train_labels[index]
