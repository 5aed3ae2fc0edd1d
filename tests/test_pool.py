"""The pool regime (Rendle et al.'s protocol): sizes, noise, splits, determinism, the CLI."""

import json
import math

import pytest
import torch

from dotmlp import data
from dotmlp.config import ConfigError, TrialConfig, pool_test_pairs, pool_train_pairs
from dotmlp.train import rendle_hidden, train


@pytest.fixture(scope="module")
def pool():
    # 2,000 users: 200,000 ratings, 20,000 of them test, in well under a second.
    return data.Pool(dimension=16, users=2000, seed=3)


def test_sizes_match_the_protocol_and_the_config(pool):
    assert pool.user_vectors.shape == pool.item_vectors.shape == (2000, 16)
    assert len(pool.train_ids) == len(pool.train_labels) == 180_000 == pool_train_pairs(2000)
    assert len(pool.test_ids) == len(pool.test_labels) == 20_000 == pool_test_pairs(2000)
    assert [len(t) for t in pool.fresh] == [data.POOL_FRESH_PAIRS] * 4
    # Var(u·v) = d σ⁴ = 1.13² − 0.85²: the paper's scale whatever d.
    assert abs(pool.sigma**4 * 16 - (1.13**2 - 0.85**2)) < 1e-12
    assert abs(pool.user_vectors.std().item() / pool.sigma - 1) < 0.02  # 32,000 entries


def test_observed_pairs_are_distinct_and_test_pairs_unseen(pool):
    every = torch.cat([pool.train_ids, pool.test_ids])
    assert len(torch.unique(every)) == len(every)  # without replacement, train and test disjoint
    assert every.min() >= 0 and every.max() < 2000 * 2000
    users = every // pool.items
    # About 100 ratings per user (binomial-like counts, as in the paper's sampling), none missing.
    counts = torch.bincount(users, minlength=2000)
    assert counts.float().mean().item() == 100 and counts.min() > 50


def test_a_small_pool_observes_every_pair():
    small = data.Pool(dimension=2, users=20, seed=0)  # 20 × 20 pairs < 100 per user
    ids = torch.cat([small.train_ids, small.test_ids])
    assert sorted(ids.tolist()) == list(range(400))
    assert len(small.test_ids) == 40


def test_sampling_64000_users_needs_no_user_by_item_matrix():
    # 6.4M distinct pairs out of 4.1e9: a dense draw would need 33 GB, this one about 100 MB.
    ids = data.sample_distinct(6_400_000, 64_000 * 64_000, data.make_generator(0, "cpu"))
    assert len(ids) == 6_400_000 and len(torch.unique(ids)) == 6_400_000
    assert ids.max() < 64_000 * 64_000


def test_noise_and_reference_rmse_within_sampling_error(pool):
    ref = pool.dot_metrics()
    # The dot product's residual on a pair is its label noise e ~ N(0, 0.85²) exactly: its mean
    # square over n pairs has sd 0.85²·√(2/n), so the RMSE has sd ≈ 0.85 / √(2n).
    n_test, n_fresh = len(pool.test_ids), data.POOL_FRESH_PAIRS
    assert abs(ref["dot_test_rmse"] - 0.85) < 5 * 0.85 / math.sqrt(2 * n_test)
    assert abs(ref["dot_fresh_rmse"] - 0.85) < 5 * 0.85 / math.sqrt(2 * n_fresh)
    # The naive predictor's squared error is y² = (s + e)², s = u·v with Var(s) = c = 1.13² − 0.85²:
    # Var(y²) = Var(s²) + 4·c·0.85² + 2·0.85⁴, Var(s²) = (2 + 6/d)·c² (u, v Gaussian), on fresh
    # pairs independent, so the RMSE's sd is √(Var(y²)/n) / (2 · 1.13).
    c, d = 1.13**2 - 0.85**2, 16
    sd_square = math.sqrt((2 + 6 / d) * c**2 + 4 * c * 0.85**2 + 2 * 0.85**4)
    assert abs(ref["naive_fresh_rmse"] - 1.13) < 5 * sd_square / math.sqrt(n_fresh) / (2 * 1.13)
    # The stored labels carry the noise: label − target has sd 0.85 on the training pairs too.
    noise = pool.train_labels - pool.targets(pool.train_ids)
    assert abs(noise.std().item() - 0.85) < 5 * 0.85 / math.sqrt(2 * len(noise))


def test_metrics_of_the_dot_product_itself(pool):
    # The exact dot product as "the model": NMSE 0 against the noiseless target on every split,
    # its RMSE the noise, train included.
    metrics = data.pool_metrics(pool, data.target_values)
    for split in ("train", "test", "fresh"):
        assert metrics[f"{split}_nmse"] < 1e-10
        assert abs(metrics[f"{split}_rmse"] - 0.85) < 0.02
    assert metrics["test_rmse"] == pytest.approx(metrics["dot_test_rmse"])
    zero = data.pool_metrics(pool, lambda a, b: torch.zeros(len(a)), train=False)
    assert "train_rmse" not in zero
    assert zero["fresh_nmse"] == pytest.approx(1.0, abs=0.02)  # predicting 0 ≈ the mean


def test_errors_of_stacked_replicas_are_per_replica(pool):
    # Ready for seed replicas: a leading axis of K models gives K values, each what that model
    # scores alone.
    def stacked(a, b):
        return torch.stack([target_values_scaled(a, b, 1.0), target_values_scaled(a, b, 0.5)])

    def chunks():
        for a, b, labels, targets in pool.split("test"):
            yield a, b, torch.stack([labels, labels]), torch.stack([targets, targets])

    together = data.split_errors(stacked, chunks())
    alone = data.split_errors(lambda a, b: target_values_scaled(a, b, 0.5), pool.split("test"))
    assert together["nmse"][0] < 1e-10
    assert together["nmse"][1] == pytest.approx(alone["nmse"]) == pytest.approx(0.25, rel=0.01)
    assert together["rmse"][1] == pytest.approx(alone["rmse"])


def target_values_scaled(a, b, scale):
    return scale * data.target_values(a, b)


def test_the_pool_is_deterministic_for_a_seed():
    one, again, other = (data.Pool(4, 300, seed=s) for s in (7, 7, 8))
    for name in ("user_vectors", "train_ids", "test_ids", "train_labels"):
        assert torch.equal(getattr(one, name), getattr(again, name))
        assert not torch.equal(getattr(one, name), getattr(other, name))
    assert all(torch.equal(x, y) for x, y in zip(one.fresh, again.fresh, strict=True))


def test_fresh_embeddings_are_new_draws(pool):
    a, b, _, _ = pool.fresh
    # Not rows of the pool: no fresh vector is within float error of any user's or item's.
    for fresh, table in ((a[:500], pool.user_vectors), (b[:500], pool.item_vectors)):
        assert torch.cdist(fresh, table).min() > 1e-3
    # Independent of the pool and of each other: the sample correlation of one coordinate is
    # within 5 sd (1/√n) of 0, and the same scale σ.
    n = len(a)
    assert abs(torch.corrcoef(torch.stack([a[:, 0], b[:, 0]]))[0, 1]) < 5 / math.sqrt(n)
    assert abs(a.std().item() / pool.sigma - 1) < 0.01


def test_batches_cover_every_training_pair_once_per_epoch_and_reshuffle():
    small = data.Pool(dimension=3, users=32, seed=1)  # 1024 pairs, 922 train
    n = len(small.train_ids)
    batches = iter(data.PoolBatches(small, 461, data.make_generator(5, "cpu")))  # 2 per epoch
    epochs = [[next(batches) for _ in range(2)] for _ in range(2)]
    rows = {tuple(r) for r in torch.cat([small.user_vectors[small.train_ids // 32],
                                         small.item_vectors[small.train_ids % 32]], 1).tolist()}
    for epoch in epochs:
        a = torch.cat([batch[0] for batch in epoch])
        b = torch.cat([batch[1] for batch in epoch])
        y = torch.cat([batch[2] for batch in epoch])
        assert a.shape == b.shape == (n, 3) and y.shape == (n,)
        assert {tuple(r) for r in torch.cat([a, b], 1).tolist()} == rows  # every pair once
        assert sorted(y.tolist()) == sorted(small.train_labels.tolist())  # with its own label
    assert not torch.equal(epochs[0][0][2], epochs[1][0][2])  # reshuffled


def test_a_batch_straddles_epochs_so_none_is_short():
    small = data.Pool(dimension=2, users=10, seed=0)  # 100 pairs, 90 train
    stream = iter(data.PoolBatches(small, 64, data.make_generator(0, "cpu")))
    assert all(len(next(stream)[2]) == 64 for _ in range(5))


def test_config_derives_steps_from_epochs_and_rejects_bad_pools():
    config = TrialConfig(dimension=4, data="pool", users=1000, epochs=32, batch_size=256)
    assert config.steps == math.ceil(32 * 90_000 / 256) == 11_250
    assert TrialConfig.from_dict(config.to_dict()) == config
    for bad, words in [
        (dict(data="fresh", users=100), "users applies to data pool only"),
        (dict(data="fixed", epochs=3), "epochs applies to data pool only"),
        (dict(data="pool"), "users must be an integer >= 10"),
        (dict(data="pool", users=0), "users must be an integer >= 10"),
        (dict(data="pool", users=100, epochs=0), "epochs must be an integer >= 1"),
        (dict(data="pool", users=100, target="cosine"), "data pool takes target dot only"),
    ]:
        with pytest.raises(ConfigError, match=words):
            TrialConfig(dimension=4, **bad)


def test_rendle_mlp_shape():
    assert rendle_hidden(1, 16) == (32, 16, 8)
    assert rendle_hidden(4, 64) == (512, 256, 128)
    with pytest.raises(ConfigError, match="rendle-m"):
        rendle_hidden(0, 16)


def test_training_on_the_pool_reaches_the_dot_product_with_the_flag():
    # A linear model on [a, b, a*b] can be the dot product exactly: trained on noisy ratings of a
    # small pool, its error on unseen pairs and fresh embeddings must come down to the noise floor
    # (the dot product's own RMSE), and its noiseless NMSE near 0. Without the flag it stays ≥ the
    # naive predictor's (E[y·a] = 0), which is what makes this test able to fail.
    config = TrialConfig(dimension=4, depth=0, multiply=True, lr=1e-2, data="pool", users=300,
                         epochs=12, batch_size=256)
    result = train(config, accelerator="cpu")
    assert result["steps"] == config.steps == math.ceil(12 * 27_000 / 256)
    assert abs(result["test_rmse"] - result["dot_test_rmse"]) < 0.01
    assert abs(result["fresh_rmse"] - result["dot_fresh_rmse"]) < 0.01
    assert result["val_nmse"] == result["test_nmse"] < 0.01
    linear = train(config.replace(multiply=False), accelerator="cpu")
    assert linear["fresh_nmse"] > 0.95 and linear["fresh_rmse"] > 0.99 * linear["naive_fresh_rmse"]


def test_each_pool_replica_trains_as_the_single_run_of_its_seed():
    # Replica k of K = 3 draws its own pool (users, items, ratings, fresh pairs) from seed 7 + k,
    # as the one-replica run of that seed does, and is scored on it: the same numbers up to the
    # batched kernels' summation order (tolerance as in test_train's fresh-data twin).
    base = dict(dimension=4, depth=1, width=16, lr=3e-3, data="pool", users=60, epochs=3,
                batch_size=128)
    stacked = train(TrialConfig(**base, seed=7, seeds=3), accelerator="cpu")
    singles = [train(TrialConfig(**base, seed=7 + k), accelerator="cpu") for k in range(3)]
    assert stacked["val_nmse_seeds"] == pytest.approx([s["val_nmse"] for s in singles], rel=0.02)
    for key in ("test_rmse", "fresh_rmse", "train_rmse"):
        values = sorted(s[key] for s in singles)
        assert stacked[key] == pytest.approx(values[1], rel=0.02)  # the median over seeds
        assert stacked[f"{key}_min"] == pytest.approx(values[0], rel=0.02)
        assert stacked[f"{key}_max"] == pytest.approx(values[2], rel=0.02)
    # Each replica's reference lines are its own pool's: three pools, three noise draws.
    dots = sorted(s["dot_test_rmse"] for s in singles)
    assert len(set(dots)) == 3 and stacked["dot_test_rmse"] == pytest.approx(dots[1], rel=1e-6)


def test_cli_pool_run_prints_the_papers_numbers(run_cli):
    proc = run_cli("-m", "dotmlp.train", "--dimension", "4", "--data", "pool", "--users", "100",
                   "--rendle-m", "2", "--epochs", "2", "--batch-size", "256", "--threads", "1",
                   "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("train_rmse", "test_rmse", "fresh_rmse", "dot_test_rmse", "dot_fresh_rmse",
                "naive_fresh_rmse", "val_nmse", "fresh_nmse"):
        assert isinstance(result[key], float), key
    assert result["config"]["hidden"] == [16, 8, 4]
    assert result["steps"] == math.ceil(2 * 9000 / 256)
    assert 2 <= result["epochs_done"] < 2 + 256 / 9000


@pytest.mark.parametrize(
    "args, words",
    [
        (["--users", "0"], "users must be an integer >= 10"),
        (["--epochs", "0"], "epochs must be an integer >= 1"),
        (["--data", "fresh", "--steps", "5", "--epochs", ""], "users applies to data pool only"),
        (["--data", "fresh", "--users", "", "--epochs", "2"], "epochs applies to data pool only"),
        (["--steps", "5"], "give the budget as --steps"),
        (["--layers", "8,4"], "rendle-m and layers both set"),
        (["--rendle-m", "0"], "rendle-m must be an integer >= 1"),
        (["--users", "many"], "--users: invalid int value"),
    ],
)
def test_cli_pool_usage_errors_are_one_line_and_exit_2(run_cli, args, words):
    base = {"--dimension": "4", "--data": "pool", "--users": "100", "--epochs": "1",
            "--rendle-m": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = [item for flag, value in base.items() if value != "" for item in (flag, value)]
    proc = run_cli("-m", "dotmlp.train", *argv, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr


def test_rendle_script_writes_its_table_and_figure_and_resumes(tmp_path, capsys):
    # Its main() here, three times (its CLI in a subprocess: test_rendle_script_usage_error): each
    # point still trains in a worker process of its own.
    import pandas as pd

    from sweep.rendle import main

    args = ["--dimensions", "2", "--ms", "2", "--users", "10,20", "--seeds", "2", "--epochs", "1",
            "--workers", "1", "--out", str(tmp_path)]
    main(args)
    table = pd.read_csv(tmp_path / "rendle.csv")
    assert list(table["users"]) == [10, 20] and list(table["seeds"]) == [2, 2]
    for column in ("test_rmse_median", "test_rmse_min", "test_rmse_max", "fresh_rmse_median",
                   "train_rmse_median", "dot_test_rmse", "naive_fresh_rmse"):
        assert table[column].notna().all(), column
    assert (table["test_rmse_min"] <= table["test_rmse_median"]).all()
    assert (table["test_rmse_median"] <= table["test_rmse_max"]).all()
    assert (table["test_rmse_min"] < table["test_rmse_max"]).all()  # two seeds, two pools
    assert (tmp_path / "rendle.png").stat().st_size > 10_000
    capsys.readouterr()
    main(args)
    assert "2 already in" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "rendle.csv").equals(table)  # nothing run twice
    # A third seed is a point not yet finished: run again (all three seeds), replacing its row.
    main([*args, "--users", "10", "--seeds", "3"])  # the last option wins
    extended = pd.read_csv(tmp_path / "rendle.csv")
    assert list(extended["seeds"]) == [3, 2] and len(extended) == 2


def test_rendle_script_usage_error(run_cli, tmp_path):
    proc = run_cli("sweep/rendle.py", "--users", "5", "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "users must be" in proc.stderr


def test_the_pool_is_drawn_on_the_cpu_and_moved_to_its_device():
    # One world per seed on any device: the meta device has no generator and holds no values,
    # so a pool made there exists only if it was drawn on the CPU first.
    cpu, moved = data.Pool(3, 32, seed=1), data.Pool(3, 32, seed=1, device="meta")
    for name in ("user_vectors", "item_vectors", "train_ids", "test_ids", "train_labels"):
        assert getattr(moved, name).device.type == "meta"
        assert getattr(moved, name).shape == getattr(cpu, name).shape
    assert [t.device.type for t in moved.fresh] == ["meta"] * 4


@pytest.mark.parametrize("values", [[math.nan, 0.9, 1.0], [0.9, math.nan, 1.0], [0.9, 1.0, math.nan]])
def test_a_nan_replica_counts_as_the_worst_wherever_it_is(values):
    from dotmlp.module import pool_summary

    summary = pool_summary({"test_rmse": values, "dot_test_rmse": [0.85, 0.85, 0.85]})
    assert (summary["test_rmse"], summary["test_rmse_min"], summary["test_rmse_max"]) == (
        1.0, 0.9, math.inf)
    assert summary["dot_test_rmse"] == 0.85


# ---------------------------------------------------------------------------------------------
# sampling="reference": Rendle et al.'s pair sampling, vectorised (data.sample_reference)


def reference_loop(users: int, items: int, n: int, rng) -> list[int]:
    """approx_dot.py's GenerateData loop, as written there (np.random.uniform replaced by a seeded
    random.Random): each (u, i) kept with probability 1.1 · n / (users · items), in the order u then
    i, the first n kept. Returns the kept flat indices u · items + i."""
    sampling_prob = 1.1 * n / (users * items)
    kept = []
    for u in range(users):
        for i in range(items):
            if rng.random() < sampling_prob:
                kept.append(u * items + i)
    return kept[:n]


def per_user_counts(ids, users: int, items: int) -> list[int]:
    counts = [0] * users
    for pair in ids:
        counts[int(pair) // items] += 1
    return counts


def test_reference_sampling_matches_the_reference_loops_per_user_counts():
    # 50 users × 50 items, 10 pairs per user on average (n = 500, p = 0.22): the loop keeps ~550
    # and truncates at 500, so the first ~45 users get Binomial(50, 0.22) (mean 11) and the last
    # ones none. The vectorised sampler must give the same per-user counts in distribution: each
    # user's mean count over 400 draws within 5 standard errors of the loop's, and the uniform
    # subset (mean 10 for every user) must fail the same comparison.
    import random

    users, items, n, draws = 50, 50, 500, 400
    rng = random.Random(0)
    loop = [per_user_counts(reference_loop(users, items, n, rng), users, items) for _ in range(draws)]
    vectorised, uniform = [], []
    for seed in range(draws):
        ids = data.sample_reference(users, items, n, data.make_generator(seed, "cpu"))
        # Distinct, in the loop's order; fewer than n when fewer were kept (550 ± 21 here: rarely).
        assert len(ids) <= n and bool((ids[1:] > ids[:-1]).all())
        vectorised.append(per_user_counts(ids.tolist(), users, items))
        uniform.append(per_user_counts(
            data.sample_distinct(n, users * items, data.make_generator(seed, "cpu")).tolist(), users, items))

    def agree(ours, theirs) -> bool:
        a, b = torch.tensor(ours, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64)
        error = (a.var(0) / draws + b.var(0) / draws).sqrt() + 1e-9
        return bool(((a.mean(0) - b.mean(0)).abs() <= 5 * error + 0.05).all())

    assert agree(vectorised, loop)
    assert not agree(uniform, loop)
    # The first user's count is Binomial(50, 0.22): mean 11, variance 8.58.
    first = torch.tensor([counts[0] for counts in vectorised], dtype=torch.float64)
    assert abs(first.mean().item() - 11) < 5 * math.sqrt(8.58 / draws)
    assert abs(first.var().item() / 8.58 - 1) < 0.25
    # Short draws (fewer than n kept) as often as in the loop.
    short = [sum(sum(c) < n for c in counts) / draws for counts in (vectorised, loop)]
    assert abs(short[0] - short[1]) < 0.03
    # The last users are cut off in both: the share of draws where user 49 has no pair.
    last_empty = [sum(c[-1] == 0 for c in counts) / draws for counts in (vectorised, loop)]
    assert last_empty[0] > 0.9 and abs(last_empty[0] - last_empty[1]) < 0.06


def test_reference_pool_sizes_distinct_pairs_and_its_users():
    pool = data.Pool(dimension=16, users=2000, seed=3, sampling="reference")
    # n kept (1.1·n expected before the cut), split as the config counts its steps.
    assert len(pool.train_ids) == pool_train_pairs(2000) and len(pool.test_ids) == pool_test_pairs(2000)
    every = torch.cat([pool.train_ids, pool.test_ids])
    assert len(torch.unique(every)) == len(every) and every.max() < 2000 * 2000
    counts = torch.bincount(every // 2000, minlength=2000)
    # ~110 per user up to the cut near user 2000 / 1.1 = 1818, none after it.
    cut = int((counts > 0).nonzero().max())
    assert abs(cut - 2000 / 1.1) < 40 and counts[cut + 1:].sum() == 0
    assert abs(counts[:cut].float().mean().item() - 110) < 1
    # In random order before the split (the reference shuffles): test pairs are not the last users'.
    assert (pool.test_ids // 2000).float().mean().item() == pytest.approx(cut / 2, rel=0.05)


def test_reference_sampling_is_deterministic_drawn_on_the_cpu_and_opt_in():
    one, two = (data.Pool(4, 300, seed=5, sampling="reference") for _ in range(2))
    assert torch.equal(one.train_ids, two.train_ids) and torch.equal(one.test_labels, two.test_labels)
    other = data.Pool(4, 300, seed=6, sampling="reference")
    assert not torch.equal(one.train_ids[:100], other.train_ids[:100])
    moved = data.Pool(4, 300, seed=5, device="meta", sampling="reference")
    assert moved.train_ids.device.type == "meta" and moved.train_ids.shape == one.train_ids.shape
    # The default is the uniform subset every committed pool result was drawn with.
    assert torch.equal(data.Pool(4, 300, seed=5).train_ids,
                       data.Pool(4, 300, seed=5, sampling="uniform").train_ids)
    assert data.Pool(4, 300, seed=5).sampling == "uniform"
    with pytest.raises(ValueError, match="sampling must be one of"):
        data.Pool(4, 300, seed=5, sampling="bernoulli")


def test_reference_sampling_keeps_every_pair_of_a_small_pool():
    # 20 users and items, fewer than 110 per user: p = 1.1 ≥ 1 keeps all 400, as the loop does.
    small = data.Pool(dimension=2, users=20, seed=0, sampling="reference")
    assert sorted(torch.cat([small.train_ids, small.test_ids]).tolist()) == list(range(400))
    import random

    assert reference_loop(20, 20, 400, random.Random(1)) == list(range(400))


def test_reference_sampling_128000_users_is_one_vectorised_draw():
    # The reference's loop is 1.6e10 steps here; this is n uniforms (seconds, ~0.5 GB at most).
    ids = data.sample_reference(128_000, 128_000, 12_800_000, data.make_generator(0, "cpu"))
    assert len(ids) == 12_800_000 and bool((ids[1:] > ids[:-1]).all())
    assert ids.max() < 128_000 * 128_000
