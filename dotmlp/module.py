"""The LightningModule: MSE loss on fresh, fixed or pool batches, held-out NMSE, Adam. No Tune here."""

from __future__ import annotations

import math
import statistics
import time

import pytorch_lightning as pl
import torch

from dotmlp import data
from dotmlp.config import TrialConfig
from dotmlp.model import DotMLP, parameter_count

# Held-out NMSE above this is a run that blew up (predictions a hundred times the targets' spread)
# even where the loss is still finite: small ReLU nets under a huge lr often saturate at 1e10-1e20
# instead of overflowing. The sweep's lr range never gets near it; 1 is "predicts the mean".
DIVERGED_ABOVE_NMSE = 1e4


class DotProductModule(pl.LightningModule):
    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters()
        self.config = TrialConfig.from_dict(config)
        cfg = self.config
        # K = cfg.seeds replicas in one batched model: replica k is the run of seed cfg.seed + k
        # (its own initialisation and its own data stream), and every metric is per replica.
        self.model = DotMLP(cfg.dimension, cfg.hidden_sizes, cfg.multiply, cfg.seeds, cfg.seed,
                            init="glorot" if cfg.init == "glorot" else "default")
        if cfg.init == "construction":
            start_at_construction(self.model, cfg)
        self.params = parameter_count(self.model)  # of one replica
        self.diverged = False
        self.replica_diverged = [False] * cfg.seeds
        # Manual optimisation, so that one Lightning step can run config.steps_per_batch optimiser
        # steps (Lightning's per-step cost: see config.MAX_STEPS_PER_BATCH). Each is
        # the usual zero_grad, backward, Adam step through Lightning's optimizer wrapper, which
        # counts them (global_step, hence max_steps), checkpoints and resumes them.
        self.automatic_optimization = False
        self.last_metrics: dict[str, float] = {}
        # Training loss summed on the device and read once per evaluation, not once per step:
        # a per-step .item() would force a device sync and, on a GPU, stall these tiny models.
        self.register_buffer("_loss_sum", torch.zeros(cfg.seeds), persistent=False)
        self._loss_count = 0
        # Seconds inside training steps (drawing the batch, forward, backward, Adam), for the
        # sweep-efficiency benchmark (on a GPU this is launch time: kernels run asynchronously).
        self.train_seconds = 0.0
        self._step_started = 0.0
        self._pools: list[data.Pool] = []
        # The replicas' training streams, saved with every checkpoint, so that a trial resumed from
        # one (a pause at a rung, a node loss, --resume) draws the batches the uninterrupted run
        # would have drawn (see training_generators).
        self._generators: list[torch.Generator] = []
        self._restored_streams: dict | None = None

    @property
    def pools(self) -> list[data.Pool]:
        """The pool regime's users, items and splits, one pool per replica (replica k's world is
        drawn from its seed, like its initialisation and its shuffles, on the CPU: the same world
        on any device), moved to the module's device when first needed (after Lightning has moved
        the module there) and rebuilt if it moves; not part of the checkpoint: the seeds give the
        same pools back on resume."""
        if not self._pools or self._pools[0].device != self.device:
            cfg = self.config
            self._pools = [data.Pool(cfg.dimension, cfg.users, cfg.seed + k, self.device)
                           for k in range(cfg.seeds)]
        return self._pools

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model(a, b)

    def training_generators(self, seeds: list[int]) -> list[torch.Generator]:
        """One generator per replica, seeded from its seed; on resume, set to the state the
        checkpoint saved. Batches are drawn as they are trained on (data.Chunk), so that state is
        the stream exactly at the checkpoint's step: fresh data then resumes bit for bit as the
        uninterrupted run. (Fixed and pool data resume mid-epoch with the next epoch's shuffle.)
        A state saved on another kind of device does not fit this one's generators: the stream
        is then a new one, seeded from the step, which never replays the batches already seen."""
        saved, self._restored_streams = self._restored_streams, None
        if saved is not None and saved["device"] == self.device.type:
            self._generators = [data.make_generator(0, self.device) for _ in seeds]
            for generator, state in zip(self._generators, saved["states"], strict=True):
                generator.set_state(state)
        else:
            self._generators = [
                data.make_generator(data.training_seed(seed, self.global_step), self.device)
                for seed in seeds
            ]
        return self._generators

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self._generators:
            checkpoint["training_streams"] = {
                "device": self.device.type, "states": [g.get_state() for g in self._generators]
            }
        # What the next report reads besides the weights: the evaluation before it (whether the
        # curve still falls: budget_limited), which replicas have diverged, the training time.
        checkpoint["dotmlp_run"] = {"last_metrics": self.last_metrics,
                                    "replica_diverged": self.replica_diverged,
                                    "train_seconds": self.train_seconds}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Lightning calls this before it builds the dataloaders (train_dataloader).
        self._restored_streams = checkpoint.get("training_streams")
        run = checkpoint.get("dotmlp_run", {})
        self.last_metrics = dict(run.get("last_metrics", {}))
        self.replica_diverged = list(run.get("replica_diverged", self.replica_diverged))
        self.train_seconds = run.get("train_seconds", 0.0)

    # Data is made here, after Lightning has moved the module to its device.
    def train_dataloader(self):
        cfg = self.config
        seeds = [cfg.seed + k for k in range(cfg.seeds)]
        generators = self.training_generators(seeds)
        if cfg.data == "fixed":
            streams = []
            for seed, generator in zip(seeds, generators, strict=True):
                # Each replica's fixed set is drawn from its own seed, on the CPU, so a resumed
                # trial, or one on another device, sees the same pairs; its shuffles come from
                # the stream that resumes, on the trial's device.
                fixed = data.make_generator(data.training_seed(seed, 0), data.WORLD_DEVICE)
                batches = data.FixedBatches(
                    cfg.dimension, cfg.train_samples, cfg.batch_size, fixed, cfg.target,
                    device=self.device,
                )
                batches.generator = generator
                streams.append(batches)
            batches = data.StackedBatches(streams)
        elif cfg.data == "pool":
            batches = data.StackedBatches([
                data.PoolBatches(pool, cfg.batch_size, generator)
                for pool, generator in zip(self.pools, generators, strict=True)
            ])
        else:
            batches = data.FreshBatches(cfg.dimension, cfg.batch_size, generators, cfg.target)
        return data.Chunks(batches, cfg.steps_per_batch)

    def val_dataloader(self):
        cfg = self.config
        if cfg.data == "pool":
            # validation_step reads the pool's splits itself, in slices; this batch is a placeholder.
            return data.SingleBatch(torch.zeros(()))
        return data.SingleBatch(
            data.held_out_set(cfg.dimension, cfg.val_samples, self.device, cfg.target)
        )

    def replica_mse(self, batch: data.Batch, autocast: bool = False) -> torch.Tensor:
        """Each replica's mean squared error on its batch (or on a batch they share): shape (K,).
        autocast: the products in bfloat16 (precision bf16, training only); the error in float32."""
        a, b, y = batch
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
            predictions = self(a, b)
        predictions = predictions.float().view(self.config.seeds, -1)  # (K, batch) for shared inputs too
        return (predictions - y).square().mean(dim=-1)

    def training_step(self, chunk: data.Chunk, batch_idx: int) -> None:
        optimizer = self.optimizers()
        schedule = self.lr_schedulers()
        bf16 = self.config.precision == "bf16"
        for batch in chunk:  # steps_per_batch consecutive batches, in order, each drawn here
            mse = self.replica_mse(batch, autocast=bf16)
            # Summed, not averaged: each replica's gradient is then exactly its own run's.
            loss = mse.sum()
            optimizer.zero_grad(set_to_none=True)
            # Not self.manual_backward: its precision and strategy hooks cost ~0.1 ms a step (6% of
            # a small net's step) and do nothing here: one device, full precision, no loss scaling.
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            self._loss_sum += mse.detach()
        self._loss_count += len(chunk)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.train_seconds += time.perf_counter() - self._step_started

    def validation_step(self, batch: data.Batch, batch_idx: int) -> None:
        if not self.config.evaluates_at(self.global_step):
            return  # Lightning checks at every interval; the ladder scores only at ×2 budgets
        extra: dict[str, float] = {}
        if self.config.data == "pool":
            # The paper's RMSEs (against noisy labels) on train (after the last step only: it is
            # every training pair), test and fresh pairs, its two reference lines, and the tool's
            # NMSE against the noiseless target. val_* are the test pairs': unseen ratings of
            # known users and items, what a recommender is asked for.
            final = self.global_step >= self.config.steps
            replicas = data.replica_pool_metrics(self.pools, self.model, train=final)
            mse, nmse = replicas["test_mse"], replicas["test_nmse"]
            extra = pool_summary(replicas)
            # Passes over the training pairs so far: the budget's unit when trials of different
            # pool sizes share a scheduler (their step counts differ for the same epochs).
            extra["epochs_done"] = (self.global_step * self.config.batch_size
                                    / len(self.pools[0].train_ids))
        else:
            a, b, y = batch  # the held-out set, shared by every replica
            mse = self.replica_mse(batch).tolist()
            # NMSE divides by the held-out targets' variance (≈ d for the dot product), so 1 means
            # "no better than predicting the mean" at every dimension and values compare across d.
            variance = y.var(unbiased=False).item()
            nmse = [value / variance for value in mse]
        trained = self._loss_count > 0
        train_mse = (self._loss_sum / self._loss_count).tolist() if trained else [math.nan] * len(mse)
        self._loss_sum.zero_()
        self._loss_count = 0
        for k, (held_out, train) in enumerate(zip(nmse, train_mse, strict=True)):
            if not math.isfinite(held_out) or held_out > DIVERGED_ABOVE_NMSE or (
                trained and not math.isfinite(train)
            ):
                self.replica_diverged[k] = True
        # NaN counts as infinitely bad, a finite blow-up at its value (above the threshold): the
        # trial has diverged when its (lower) median has, i.e. when most of its replicas have.
        median, lowest, highest = replica_stats(nmse)
        self.diverged = not median <= DIVERGED_ABOVE_NMSE
        median_mse = replica_stats(mse)[0]
        previous = self.last_metrics
        self.last_metrics = {
            "val_nmse": median,
            "val_nmse_min": lowest,
            "val_nmse_max": highest,
            "val_mse": median_mse,
            "val_rmse": math.sqrt(median_mse) if median_mse >= 0 else math.nan,
            "val_r2": 1.0 - median,
            "train_mse": replica_stats(train_mse)[0],
            "steps": float(self.global_step),
            "samples": float(self.global_step * self.config.samples_per_step),
            "seeds": float(self.config.seeds),
            "diverged": float(self.diverged),
            "diverged_replicas": float(sum(self.replica_diverged)),
            "train_seconds": self.train_seconds,
            # The evaluation before this one (on a ladder: at half the budget), so a reader can
            # tell a curve still falling at its end from one that has flattened.
            "val_nmse_previous": previous.get("val_nmse", math.nan),
            "steps_previous": previous.get("steps", math.nan),
            # One held-out curve per replica, named by its seed.
            **{f"val_nmse_seed{self.config.seed + k}": value for k, value in enumerate(nmse)},
            **extra,
        }
        # Read from last_metrics by the callers (train, the Tune callback); not self.log_dict:
        # Lightning's result collection costs ~10 ms per evaluation, more than the evaluation.
        if self.diverged:
            # Divergence is a result, not a crash: stop here and let the caller record it.
            self.trainer.should_stop = True

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
        if self.config.schedule == "constant":
            return optimizer
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.config.steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def start_at_construction(model: DotMLP, config: TrialConfig) -> None:
    """Every replica set to the hand-built net of width 2·d·k (dotmlp.construction), plus Gaussian
    noise of config.init_noise times the default initialisation's standard deviation (uniform in
    ±1/√fan_in: σ = 1/√(3·fan_in)), drawn for replica k from its own seed."""
    from dotmlp import construction

    construction.load_into(model, config.width // (2 * config.dimension))
    if not config.init_noise:
        return
    with torch.no_grad():
        for k in range(model.replicas):
            generator = torch.Generator().manual_seed(data.training_seed(config.seed + k, -1))
            for layer in model.layers:
                sigma = config.init_noise / math.sqrt(3 * layer.fan_in)
                for tensor in (layer.weight[k], layer.bias[k]):
                    tensor.add_(sigma * torch.randn(tensor.shape, generator=generator))


def replica_stats(values) -> tuple[float, float, float]:
    """(median, min, max) of one metric over the K replicas, by the one rule every statistic over
    seeds follows (val_nmse, val_mse, train_mse, the pool's RMSEs, hence sweep/rendle.py's table):

    - a non-finite value (NaN or inf: a replica that diverged) counts as +inf, the worst, wherever
      it is (statistics.median of raw NaNs depends on their position: [nan, .9, 1] gives .9,
      [.9, nan, 1] nan); so min and max keep it, as inf;
    - the median of an even number of replicas is the lower of the two middle values, so that it
      is finite exactly while most (more than half) of the replicas are, as for an odd number: the
      trial has diverged when its median has (validation_step), i.e. when most replicas have.
    """
    scored = [value if math.isfinite(value) else math.inf for value in values]
    return statistics.median_low(scored), min(scored), max(scored)


def pool_summary(replicas: dict[str, list[float]]) -> dict[str, float]:
    """The pool metrics of K replicas as the median over seeds (the paper's numbers for one run
    when K = 1), and the seeds' range of the MLP's own RMSEs (the replication's error bars); NaN
    counted as +inf (replica_stats)."""
    summary = {key: replica_stats(values)[0] for key, values in replicas.items()}
    for key in ("train_rmse", "test_rmse", "fresh_rmse"):
        if key in replicas:
            _, summary[f"{key}_min"], summary[f"{key}_max"] = replica_stats(replicas[key])
    return summary
