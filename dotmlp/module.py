"""The LightningModule: MSE loss on fresh or fixed batches, held-out NMSE, Adam. Knows nothing of Tune."""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl
import torch
from torch.nn import functional as F

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
        self.model = DotMLP(self.config.dimension, self.config.hidden_sizes, self.config.multiply)
        self.params = parameter_count(self.model)
        self.diverged = False
        # Manual optimisation, so that one Lightning step can run config.steps_per_batch optimiser
        # steps (Lightning's per-step cost: see config.MAX_STEPS_PER_BATCH). Each is
        # the usual zero_grad, backward, Adam step through Lightning's optimizer wrapper, which
        # counts them (global_step, hence max_steps), checkpoints and resumes them.
        self.automatic_optimization = False
        self.last_metrics: dict[str, float] = {}
        # Training loss summed on the device and read once per evaluation, not once per step:
        # a per-step .item() would force a device sync and, on a GPU, stall these tiny models.
        self.register_buffer("_loss_sum", torch.zeros(()), persistent=False)
        self._loss_count = 0
        # Seconds inside training steps (drawing the batch, forward, backward, Adam), for the
        # sweep-efficiency benchmark (on a GPU this is launch time: kernels run asynchronously).
        self.train_seconds = 0.0
        self._step_started = 0.0

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model(a, b)

    # Data is made here, after Lightning has moved the module to its device.
    def train_dataloader(self):
        cfg = self.config
        generator = data.make_generator(data.training_seed(cfg.seed, self.global_step), self.device)
        if cfg.data == "fixed":
            # The fixed set is drawn from the trial's own seed so a resumed trial sees the same pairs.
            fixed = data.make_generator(data.training_seed(cfg.seed, 0), self.device)
            batches = data.FixedBatches(
                cfg.dimension, cfg.train_samples, cfg.batch_size, fixed, cfg.target
            )
            batches.generator = generator
        else:
            batches = data.FreshBatches(cfg.dimension, cfg.batch_size, generator, cfg.target)
        return data.Chunks(batches, cfg.steps_per_batch)

    def val_dataloader(self):
        cfg = self.config
        return data.SingleBatch(
            data.held_out_set(cfg.dimension, cfg.val_samples, self.device, cfg.target)
        )

    def model_step(self, batch: data.Batch) -> torch.Tensor:
        a, b, y = batch
        return F.mse_loss(self(a, b), y)

    def training_step(self, chunk: data.Chunk, batch_idx: int) -> None:
        optimizer = self.optimizers()
        schedule = self.lr_schedulers()
        for batch in chunk:  # steps_per_batch consecutive batches, in order, each drawn here
            loss = self.model_step(batch)
            optimizer.zero_grad(set_to_none=True)
            # Not self.manual_backward: its precision and strategy hooks cost ~0.1 ms a step (6% of
            # a small net's step) and do nothing here: one device, full precision, no loss scaling.
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            self._loss_sum += loss.detach()
        self._loss_count += len(chunk)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.train_seconds += time.perf_counter() - self._step_started

    def validation_step(self, batch: data.Batch, batch_idx: int) -> None:
        a, b, y = batch
        mse = self.model_step(batch).item()
        # NMSE divides by the held-out targets' variance (≈ d for the dot product), so 1 means
        # "no better than predicting the mean" at every dimension and values compare across d.
        nmse = mse / y.var(unbiased=False).item()
        trained = self._loss_count > 0
        train_mse = self._loss_sum.item() / self._loss_count if trained else math.nan
        self._loss_sum.zero_()
        self._loss_count = 0
        if not math.isfinite(nmse) or nmse > DIVERGED_ABOVE_NMSE or (
            trained and not math.isfinite(train_mse)
        ):
            self.diverged = True
        self.last_metrics = {
            "val_nmse": nmse,
            "val_mse": mse,
            "val_rmse": math.sqrt(mse) if mse >= 0 else math.nan,
            "val_r2": 1.0 - nmse,
            "train_mse": train_mse,
            "steps": float(self.global_step),
            "samples": float(self.global_step * self.config.batch_size),
            "diverged": float(self.diverged),
            "train_seconds": self.train_seconds,
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
