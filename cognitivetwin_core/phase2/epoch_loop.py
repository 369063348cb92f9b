"""The Phase 2 epoch loop: set up, resume, train epoch by epoch, validate, keep the best
epoch, checkpoint, stop early, save the model."""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.models.training import fingerprint_changes, lr_factor, resume_mismatch_error, warmup_steps
from cognitivetwin_core.phase2.config import DEFAULT_LOSS_WEIGHTS
from cognitivetwin_core.phase2.events import CheckpointEvent, EpochEvent, FinishedEvent, StepEvent

log = logging.getLogger(__name__)


class StopRun(Exception):
    pass


class RunFailure(Exception):
    pass


@dataclass
class TrainingState:
    """What the epoch loop carries from one step to the next."""

    components: object
    optimizer: object
    scheduler: object
    identity: dict
    train_ids: list[int]
    val_ids: list[int]
    batches_per_epoch: int
    started: float
    start_epoch: int = 1
    global_step: int = 0
    history: list = field(default_factory=list)
    last_good_epoch: int = 0
    steps_this_run: int = 0
    examples_this_run: int = 0
    epoch_train_losses: dict = field(default_factory=dict)
    best_epoch: int | None = None  # the epoch whose components are the run's model
    best_state: dict | None = None  # its components' state dict, on the CPU
    best_loss: float = math.inf
    early_stop: str | None = None  # why the run stopped before its last epoch
    ablation: dict | None = None  # trajectory_ablation of the saved model


class LossMeter:
    """Step losses summed on the device; read on the host (one sync) only every `every` steps
    and at the epoch's last step. A read gives the mean over the steps since the last read."""

    def __init__(self, every: int):
        self.every = max(1, int(every))
        self.names: list[str] = []
        self.window = None  # float64 tensor on the device: sums since the last read
        self.steps = 0
        self.epoch_sums: dict[str, float] = {}

    def add(self, losses: dict) -> None:
        import torch

        self.names = list(losses)
        stacked = torch.stack([value.detach() for value in losses.values()]).double()
        self.window = stacked if self.window is None else self.window + stacked
        self.steps += 1

    def due(self, step: int, last_step: int) -> bool:
        return step % self.every == 0 or step == last_step

    def read(self) -> dict:
        sums = self.window.tolist()
        for name, value in zip(self.names, sums):
            self.epoch_sums[name] = self.epoch_sums.get(name, 0.0) + value
        means = {name: value / self.steps for name, value in zip(self.names, sums)}
        self.window, self.steps = None, 0
        return means


def cuda_memory(device: str) -> tuple[int, int] | None:
    """(allocated, peak allocated) bytes on a CUDA device: counters the caching allocator keeps,
    read without a sync."""
    if not device.startswith("cuda"):
        return None
    import torch

    return int(torch.cuda.memory_allocated(device)), int(torch.cuda.max_memory_allocated(device))


class EpochLoop:
    """Phase2Trainer's training part (a mixin: it reads the trainer's config and state)."""

    def _train(self, conversations, cached, device, digest):
        """Set up, resume if asked, then epoch by epoch: steps, validation, checkpoint; on the
        CPU on one thread (the heads are small: models/devices.py, one_thread_on_cpu), while
        each epoch's checkpoint is written on another (phase2/checkpoint.py)."""
        from cognitivetwin_core.models.devices import one_thread_on_cpu
        from cognitivetwin_core.phase2.checkpoint import CheckpointWriter

        self._checkpoints = CheckpointWriter(self.output_dir)
        try:
            with one_thread_on_cpu(device):
                yield from self._train_epochs(conversations, cached, device, digest)
        finally:
            # However the run ends, the write in flight completes before anything (a cancel's
            # clean-up, the caller) touches the folder.
            self._checkpoints.close()

    def _train_epochs(self, conversations, cached, device, digest):
        state = self._setup_training(conversations, cached, device, digest)
        self._run_conversations = conversations  # the person's style centroid averages their messages
        self._resume_into(state)
        self._stop_message = "Stopped before the first epoch ended; nothing was saved."
        for epoch in range(state.start_epoch, self.config.epochs + 1):
            yield from self._train_epoch(state, epoch)
            yield from self._end_epoch(state, epoch)
            state.early_stop = self._early_stop_reason(state, epoch)
            if state.early_stop:
                log.info("Phase 2 run %s: %s", self.run_id, state.early_stop)
                break
        yield from self._checkpoint_written(state, wait=True)
        yield self._complete(state)

    def _setup_training(self, conversations, cached, device, digest) -> TrainingState:
        """Annotations, the split, fresh components with their statistics, optimizer and schedule."""
        import numpy as np
        import torch

        from cognitivetwin_core.phase2.twin_model import TwinComponents, TwinConfig

        config = self.config
        data = self._annotations(conversations)
        if data.offsets[-1] != cached.features.shape[0]:
            raise CognitiveTwinError("The feature cache does not match the data; delete the cache folder and retry.")
        train_ids, val_ids = self.split(len(conversations))
        self.run_record["split"] = {
            "train_conversations": len(train_ids),
            "validation_conversations": len(val_ids),
            "validation_ids": [conversations[i].id for i in val_ids],
        }
        self._data, self._cached, self._device = data, cached, device
        self._val_ids = val_ids

        torch.manual_seed(config.seed)
        twin_config = TwinConfig(
            hidden_size=cached.hidden_size,
            plan_steps=config.plan_steps,
            base_model=str(config.base_model),
            adapter=str(Path(config.adapter_dir).resolve()) if config.adapter_dir else None,
            encoding=self.encoding_settings.cache_identity(),
        )
        components = TwinComponents(twin_config)
        mean, std = self._feature_statistics(train_ids)
        components.set_feature_statistics(mean, std)
        components.to(device)
        train_rows = [i for c in train_ids for i in range(data.offsets[c], data.offsets[c + 1])]
        self._train_prior = data.patterns[train_rows].mean(0).numpy() if train_rows else np.zeros(12)
        prior = torch.from_numpy(self._train_prior).float()
        self._pattern_pos_weight = ((1 - prior) / prior.clamp_min(1e-3)).clamp(1.0, 10.0).to(device)
        # Stylometric features are mostly small fractions with small spreads: an unweighted MSE
        # from sigmoid(0) = 0.5 barely moves (the readout said ~0.5 for everything). Errors are
        # measured in training standard deviations, and the readout starts at the means.
        train_stylo = data.stylometrics[train_rows] if train_rows else data.stylometrics
        self._stylometric_mean = train_stylo.mean(0)
        self._stylometric_scale = (1.0 / train_stylo.std(0, unbiased=False).clamp_min(0.02)).to(device)
        components.style_head.init_readout(self._stylometric_mean)

        batches_per_epoch = max(1, math.ceil(len(train_ids) / config.batch_size))
        optimizer, scheduler = self._optimizer_and_schedule(components, batches_per_epoch)
        return TrainingState(
            components=components,
            optimizer=optimizer,
            scheduler=scheduler,
            identity={"data_hash": digest, "hidden_size": cached.hidden_size, **self._resume_identity()},
            train_ids=train_ids,
            val_ids=val_ids,
            batches_per_epoch=batches_per_epoch,
            started=time.perf_counter(),
        )

    def _optimizer_and_schedule(self, components, batches_per_epoch: int):
        """AdamW with a linear warm-up then a cosine decay to 10% over the whole run."""
        import torch

        config = self.config
        # The fused kernel updates all parameters in one call: on the CPU a step of the heads
        # took 2.4 ms instead of 5.6 (docs/phase2-training.md, "Checkpoints").
        fused = self._device.split(":")[0] in ("cpu", "cuda")
        optimizer = torch.optim.AdamW(
            components.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused or None
        )
        updates_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation)
        total_updates = updates_per_epoch * config.epochs
        warmup = warmup_steps(total_updates, config.warmup_fraction)

        def schedule(update: int) -> float:
            return lr_factor(update, total_updates, warmup, decay="cosine")

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _resume_into(self, state: TrainingState) -> None:
        """With --resume: weights, optimizer, schedule, RNG and history from the last checkpoint."""
        from cognitivetwin_core.phase2.checkpoint import find_checkpoint, load_checkpoint, restore_rng

        checkpoint_dir = find_checkpoint(self.output_dir) if self.config.resume else None
        if checkpoint_dir is None:
            return
        checkpoint = load_checkpoint(checkpoint_dir)
        # Checkpoints written before epochs could grow still record them: not compared.
        saved_identity = {k: v for k, v in checkpoint.trainer_state.get("identity", {}).items() if k != "epochs"}
        changed = fingerprint_changes(saved_identity, state.identity)
        if changed:
            raise resume_mismatch_error(checkpoint_dir, changed)
        state.components.load_state_dict(checkpoint.components_state)
        state.optimizer.load_state_dict(checkpoint.optimizer_state)
        state.scheduler.load_state_dict(checkpoint.scheduler_state)
        restore_rng(checkpoint.rng_state)
        state.start_epoch = int(checkpoint.trainer_state["epoch"]) + 1
        state.global_step = int(checkpoint.trainer_state["global_step"])
        state.history = checkpoint.trainer_state.get("history", [])
        state.last_good_epoch = state.start_epoch - 1
        if checkpoint.best_state is not None and checkpoint.trainer_state.get("best_epoch"):
            state.best_state = checkpoint.best_state
            state.best_epoch = int(checkpoint.trainer_state["best_epoch"])
            best_loss = checkpoint.trainer_state.get("best_loss")
            state.best_loss = math.inf if best_loss is None else float(best_loss)
        log.info("Resuming %s from epoch %d", self.output_dir, state.start_epoch)

    def _epoch_batches(self, state: TrainingState, epoch: int) -> list[list[int]]:
        """The training conversations in a seeded order for this epoch, cut into batches."""
        import torch

        config = self.config
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        order = [state.train_ids[i] for i in torch.randperm(len(state.train_ids), generator=generator).tolist()]
        return [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]

    def _train_epoch(self, state: TrainingState, epoch: int):
        """One pass over the training conversations; a StepEvent every `log_every_steps` batches
        (and at the last), when the losses are read on the host. Leaves the mean training losses
        in `state.epoch_train_losses`.

        The batches of one update (`gradient_accumulation` of them) go through the components in
        one pass, each with losses of its own (`_group_losses`): the same update as one pass and
        one backward each, in about 60 % of the time on the CPU. A step is still one batch: its
        losses are logged, checked and counted on their own, and a Stop is seen between updates.
        """
        import torch

        config = self.config
        components, optimizer = state.components, state.optimizer
        components.train()
        batches = self._epoch_batches(state, epoch)
        total_steps = state.batches_per_epoch * config.epochs
        meter = LossMeter(config.log_every_steps)
        accumulation = config.gradient_accumulation
        optimizer.zero_grad(set_to_none=True)
        for first in range(0, len(batches), accumulation):
            if self.cancellation.cancelled:
                yield from self._checkpoint_written(state, wait=True)
                self._stop_during_training(state)
                raise StopRun()
            group, examples = self._group_losses(components, batches[first : first + accumulation])
            steps = []
            for step, losses in enumerate(group, start=first + 1):
                meter.add(losses)
                logged = meter.read() if meter.due(step, len(batches)) else None  # the one host sync
                if logged is not None and not math.isfinite(logged["total"]):
                    yield from self._checkpoint_written(state, wait=True)  # the message names the last one
                    self._check_finite(logged, epoch, step, state.last_good_epoch)
                steps.append((step, logged))
            # Divided by the full count even for a shorter last update, as one backward a batch did.
            (sum(losses["total"] for losses in group) / accumulation).backward()
            lr = float(optimizer.param_groups[0]["lr"])  # this update's
            torch.nn.utils.clip_grad_norm_(components.parameters(), config.max_grad_norm)
            optimizer.step()
            state.scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            yield from self._checkpoint_written(state)
            for (step, logged), count in zip(steps, examples):
                state.global_step += 1
                state.steps_this_run += 1
                state.examples_this_run += count
                if logged is None:
                    continue
                elapsed = max(time.perf_counter() - state.started, 1e-9)
                yield StepEvent(
                    epoch=epoch,
                    epochs=config.epochs,
                    step=step,
                    steps_per_epoch=len(batches),
                    global_step=state.global_step,
                    total_steps=total_steps,
                    losses=logged,
                    lr=lr,
                    examples_per_s=state.examples_this_run / elapsed,
                    eta_s=elapsed / state.steps_this_run * (total_steps - state.global_step),
                    device_memory=cuda_memory(self.run_record["device"]),
                )
        state.epoch_train_losses = {name: value / len(batches) for name, value in meter.epoch_sums.items()}

    def _check_finite(self, losses: dict, epoch: int, step: int, last_good_epoch: int) -> None:
        """A NaN or infinite loss (as read on the host) ends the run with a sentence saying what
        to change."""
        total = losses["total"]
        if math.isfinite(total):
            return
        config = self.config
        bad = [n for n, v in losses.items() if n != "total" and not math.isfinite(v)] or ["total"]
        raise RunFailure(
            f"Training stopped at epoch {epoch}, step {step}: the {', '.join(bad)} loss became "
            f"{total} (numerically unstable). "
            + (
                f"The last good checkpoint (epoch {last_good_epoch}) is kept in {self.output_dir / 'checkpoint'}; "
                if last_good_epoch >= 1
                else "No epoch had finished, so nothing was saved; "
            )
            + f"lower the learning rate (now {config.lr:g}) and run again"
            + (" with --resume." if last_good_epoch >= 1 else ".")
        )

    def _end_epoch(self, state: TrainingState, epoch: int):
        """Validation, the best epoch kept, metrics.json, the EpochEvent, then the resume
        checkpoint, written while the next epoch trains."""
        from cognitivetwin_core.phase2.checkpoint import snapshot
        from cognitivetwin_core.phase2.metrics import format_table

        config = self.config
        yield from self._checkpoint_written(state, wait=True)  # one write in flight at a time
        train_losses = state.epoch_train_losses
        val_losses, metrics, per_pattern = self.evaluate(state.components, state.val_ids)
        state.history.append(
            {
                "epoch": epoch,
                "global_step": state.global_step,
                "train": train_losses,
                "validation": val_losses,
                "metrics": metrics,
                "per_pattern": per_pattern,
            }
        )
        self._keep_if_best(state, epoch, val_losses)
        self._write_metrics(state)
        yield EpochEvent(epoch, config.epochs, train_losses, val_losses, metrics, per_pattern, format_table(metrics))
        trainer_state = {
            "epoch": epoch,
            "global_step": state.global_step,
            "history": state.history,
            "identity": state.identity,
            "best_epoch": state.best_epoch,
            "best_loss": state.best_loss if math.isfinite(state.best_loss) else None,
        }
        self._checkpoints.start(
            epoch, snapshot(state.components, state.optimizer, state.scheduler, trainer_state, state.best_state)
        )

    def _checkpoint_written(self, state: TrainingState, wait: bool = False):
        """The CheckpointEvent of the epoch whose checkpoint is now on disk, if its write has
        finished (or, with `wait`, once it has); a failed write raises its error here."""
        written = self._checkpoints.collect(wait=wait)
        if written is None:
            return
        epoch, path = written
        state.last_good_epoch = epoch
        yield CheckpointEvent(epoch, str(path))

    def _keep_if_best(self, state: TrainingState, epoch: int, val_losses: dict) -> None:
        """Remember this epoch's components if its validation loss is the lowest so far (every
        epoch is 'best' without validation data: the latest is kept)."""
        loss = val_losses.get("total") if val_losses else None
        if loss is not None and not (math.isfinite(loss) and loss < state.best_loss):
            return
        state.best_epoch = epoch
        state.best_loss = math.inf if loss is None else float(loss)
        state.best_state = {k: v.detach().to("cpu").clone() for k, v in state.components.state_dict().items()}

    def _early_stop_reason(self, state: TrainingState, epoch: int) -> str | None:
        patience = self.config.patience
        if not patience or state.best_epoch is None or epoch >= self.config.epochs:
            return None
        if epoch - state.best_epoch < patience:
            return None
        return (
            f"Stopped early after epoch {epoch}: the validation loss has not improved for {patience} epochs "
            f"(best at epoch {state.best_epoch})."
        )

    def _best_components(self, state: TrainingState):
        """The components of the best epoch (a copy; the live ones keep training state)."""
        if state.best_state is None:
            return state.components
        best = copy.deepcopy(state.components)
        best.load_state_dict(state.best_state)
        best.eval()
        return best

    def _save_model(self, state: TrainingState) -> dict:
        """Save the best epoch's components as the run's model, measure the trajectory ablation,
        write metrics.json; returns the model's validation metrics."""
        from cognitivetwin_core.phase2.twin_model import save_components

        model = self._best_components(state)
        save_components(model, self.output_dir)
        self._save_person_style(model, self._run_conversations)
        state.ablation = self.trajectory_ablation(model, state.val_ids)
        entry = self._entry_of(state, state.best_epoch)
        metrics = dict(entry["metrics"]) if entry else {}
        self._write_metrics(state)
        self.run_record["final_metrics"] = metrics
        self.run_record["best_epoch"] = state.best_epoch
        self.run_record["epochs_trained"] = state.last_good_epoch
        if state.ablation:
            self.run_record["trajectory_ablation"] = state.ablation
        return metrics

    @staticmethod
    def _entry_of(state: TrainingState, epoch: int | None) -> dict | None:
        for entry in state.history:
            if entry.get("epoch") == epoch and epoch is not None:
                return entry
        return None

    def _complete(self, state: TrainingState) -> FinishedEvent:
        metrics = self._save_model(state)
        done = state.last_good_epoch
        message = (state.early_stop + " ") if state.early_stop else f"Trained {done} epoch{'s' if done != 1 else ''}. "
        if state.best_epoch is not None and state.best_epoch != done:
            message += f"The model of epoch {state.best_epoch} (the best on validation) is kept in {self.output_dir}."
        else:
            message += f"The model is in {self.output_dir}."
        return self._finish("completed", message, metrics)

    def _resume_identity(self) -> dict:
        """Settings that must not change across --resume. Not epochs: a stopped run may be
        continued with more (or fewer) epochs; the LR schedule is rebuilt for the new total
        and continues from the saved update count."""
        c = self.config
        return {
            "base_model": str(c.base_model),
            "adapter": c.adapter_dir,
            "batch_size": c.batch_size,
            "lr": c.lr,
            "gradient_accumulation": c.gradient_accumulation,
            "plan_steps": c.plan_steps,
            "seed": c.seed,
            "loss_weights": {k: c.weight(k) for k in DEFAULT_LOSS_WEIGHTS},
            "val_fraction": c.val_fraction,
        }

    def _stop_during_training(self, state: TrainingState) -> None:
        """Stop (and save): the best finished epoch becomes the model; if no epoch finished,
        the weights at the stop do."""
        from cognitivetwin_core.phase2.twin_model import save_components

        with self._lock:
            cancelled, save = self._cancel_requested, self._save_on_stop
        if cancelled:
            return
        last_good_epoch = state.last_good_epoch
        resume = f"; --resume continues from epoch {last_good_epoch + 1}." if last_good_epoch >= 1 else "."
        if save and state.best_epoch is not None:
            self._stop_metrics = self._save_model(state)
            self._stop_message = (
                f"Stopped and saved after {last_good_epoch} finished epoch{'s' if last_good_epoch != 1 else ''}: the model in {self.output_dir} is "
                f"epoch {state.best_epoch}'s (the best on validation){resume}"
            )
        elif save:
            save_components(state.components, self.output_dir)
            _, metrics, per_pattern = self.evaluate(state.components, self._val_ids)
            state.history.append({"epoch": None, "stopped": True, "metrics": metrics, "per_pattern": per_pattern})
            self._write_metrics(state)
            self.run_record["final_metrics"] = metrics
            self._stop_metrics = metrics
            self._stop_message = (
                f"Stopped and saved: the model in {self.output_dir} holds the weights at the stop{resume}"
            )
        else:
            self._stop_message = (
                f"Stopped without saving{resume}"
                if last_good_epoch >= 1
                else "Stopped before the first epoch ended; nothing was saved."
            )
