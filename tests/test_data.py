import pytest
import torch

from dotmlp import data
from dotmlp.config import TrialConfig


def test_targets_are_the_dot_product_and_cosine():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    b = torch.tensor([[11.0, 21.0, 19.0]])
    assert data.target_values(a, b, "dot").item() == 110.0  # torch.dot's own example
    cosine = data.target_values(a, b, "cosine").item()
    assert abs(cosine - 110.0 / (a.norm() * b.norm()).item()) < 1e-6


def test_dot_target_has_variance_d():
    generator = data.make_generator(0, "cpu")
    for d in (1, 16):
        _, _, y = data.sample_pairs(200_000, d, generator)
        assert abs(y.var().item() / d - 1) < 0.03


def test_held_out_set_is_fixed_and_independent_of_the_trial_seed():
    first = data.held_out_set(3, 64, "cpu")
    again = data.held_out_set(3, 64, "cpu")
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    train = next(iter(data.FreshBatches(3, 64, data.make_generator(data.training_seed(0, 0), "cpu"))))
    assert not torch.equal(train[0], first[0])


def test_fresh_batches_never_repeat_and_are_seeded():
    def stream(seed):
        return iter(data.FreshBatches(2, 8, data.make_generator(seed, "cpu")))

    one, two = stream(5), stream(5)
    b1, b2 = next(one), next(one)
    assert torch.equal(b1[0], next(two)[0])
    assert not torch.equal(b1[0], b2[0])


def test_fixed_batches_reuse_the_same_pairs_every_epoch():
    batches = data.FixedBatches(2, 32, 8, data.make_generator(1, "cpu"))
    stream = iter(batches)
    epoch1 = torch.cat([next(stream)[0] for _ in range(4)])
    epoch2 = torch.cat([next(stream)[0] for _ in range(4)])
    key = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert key(epoch1) == key(epoch2) == key(batches.pairs[0])
    assert not torch.equal(epoch1, epoch2)  # reshuffled


def test_training_seed_differs_after_resume():
    assert data.training_seed(0, 0) != data.training_seed(0, 500)
    assert data.training_seed(0, 0) != data.HELD_OUT_SEED


def test_chunks_hold_consecutive_batches_in_order():
    def stream():
        return data.FreshBatches(3, 4, data.make_generator(7, "cpu"))

    singles, chunks = iter(stream()), iter(data.Chunks(stream(), 5))
    ahead = [next(chunks), next(chunks)]  # Lightning fetches a chunk before the last is used
    for chunk in ahead + [next(chunks)]:
        assert len(chunk) == 5
        batches = list(chunk)
        assert len(batches) == 5
        for a, b, y in batches:
            one = next(singles)
            assert torch.equal(a, one[0]) and torch.equal(b, one[1]) and torch.equal(y, one[2])


def test_held_out_pairs_are_drawn_on_the_cpu_before_any_device_is_involved():
    # The CPU's draw with the held-out seed is the set, whatever device scores it. The meta device
    # has no generator and holds no values: a set drawn there fails; one drawn on the CPU and
    # moved there arrives with its shape.
    cpu = data.sample_pairs(64, 3, data.make_generator(data.HELD_OUT_SEED, "cpu"))
    assert all(torch.equal(x, y) for x, y in zip(data.held_out_set(3, 64, "cpu"), cpu, strict=True))
    moved = data.held_out_set(3, 64, "meta")
    assert [t.device.type for t in moved] == ["meta"] * 3
    assert [t.shape for t in moved] == [t.shape for t in cpu]


def test_a_fixed_set_is_drawn_by_its_generator_and_moved_to_the_device():
    cpu = data.FixedBatches(2, 32, 8, data.make_generator(1, "cpu"))
    moved = data.FixedBatches(2, 32, 8, data.make_generator(1, "cpu"), device="meta")
    assert [t.device.type for t in moved.pairs] == ["meta"] * 3
    assert [t.shape for t in moved.pairs] == [t.shape for t in cpu.pairs]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_trial_is_scored_on_the_pairs_a_cpu_trial_is():
    from dotmlp.module import DotProductModule

    config = TrialConfig(dimension=4, depth=1, width=8, lr=1e-3, steps=8, data="fixed",
                         train_samples=64, batch_size=16, val_samples=256, seeds=2).to_dict()
    cpu, cuda = DotProductModule(config), DotProductModule(config).to("cuda")
    assert cuda.device.type == "cuda"
    for here, there in ((cpu.val_dataloader().batch, cuda.val_dataloader().batch),
                        *((a.pairs, b.pairs) for a, b in zip(
                            cpu.train_dataloader().batches.streams,
                            cuda.train_dataloader().batches.streams, strict=True))):
        assert all(x.device.type == "cuda" for x in there)
        assert all(torch.equal(x, y.cpu()) for x, y in zip(here, there, strict=True))
    on_cpu, on_cuda = data.Pool(4, 50, seed=2), data.Pool(4, 50, seed=2, device="cuda")
    for name in ("user_vectors", "item_vectors", "train_ids", "test_ids", "train_labels"):
        assert torch.equal(getattr(on_cpu, name), getattr(on_cuda, name).cpu())
    assert all(torch.equal(x, y.cpu()) for x, y in zip(on_cpu.fresh, on_cuda.fresh, strict=True))
