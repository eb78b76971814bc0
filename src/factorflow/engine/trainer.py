"""One training loop for every registered model.

The loop only knows the model seam (`factorflow.models.base`): it asks for per-sample loss terms,
weights and reduces them, steps the optimizer, and keeps the run safe:
- checkpoints (safetensors + JSON, atomic) every `ckpt_every` steps and at every validation;
- `resume=True` continues from the last checkpoint; batches and noise are pure functions of
  (seed, step), so a resumed run reaches the same parameters as an uninterrupted one;
- a non-finite loss or gradient skips the step; `nan_patience` of them in a row roll back to the
  last checkpoint with the learning rate scaled by `nan_lr_factor`;
- under torchrun: DistributedDataParallel, ActNorm initialised on rank 0 and broadcast before
  wrapping, logs and checkpoints from rank 0 only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import default_collate

from factorflow import checkpoint as ckpt
from factorflow.config import Config, save_config, to_dict
from factorflow.data.shards import is_url
from factorflow.engine import distributed
from factorflow.engine.loader import StepLoader, first_batch, open_split, val_batches
from factorflow.engine.logger import RunLogger
from factorflow.io import has_content
from factorflow.models import BatchRandom, FlowModel, build_model, spec

__all__ = [
    "MEMORY_KEYS",
    "TrainResult",
    "Trainer",
    "check_batch_size",
    "check_resumable",
    "check_run_dir",
    "model_sections",
    "train",
]

log = logging.getLogger(__name__)


# Keys of the model's sections that trade memory for time and leave its tensors alone: a run may
# resume with other values (e.g. turn on invertible recomputation when memory runs short).
MEMORY_KEYS = ("flow.checkpoint", "flow.recompute")


def model_sections(config: Config) -> tuple[str, ...]:
    """Sections of the config that define the model's tensors: a checkpoint made with other
    values cannot be resumed under this config."""
    return ("model", "flow", *spec(config.model).sections)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    metrics: dict[str, float]
    val: dict[str, float]
    images_per_s: float
    checkpoint: Path | None


def _to(batch: dict, device: torch.device) -> dict:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


def _lr_at(step: int, cfg: Config, scale: float) -> float:
    warm = cfg.train.warmup_steps
    factor = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
    return cfg.train.lr * factor * scale


def _batch_items(batch: dict) -> int:
    if "image" in batch:
        return batch["image"].shape[0]
    if "own" in batch:
        return batch["own"].shape[0]
    return batch["frames"].shape[0] * batch["frames"].shape[1]


def check_resumable(
    saved: dict, config: Config, where: Path, pending: tuple[str, ...] = ()
) -> None:
    """ValueError naming the keys when `saved` (a checkpoint's config) and `config` differ in
    the model sections; `pending` keys ("section.key") are filled later and not compared."""
    current = to_dict(config)
    saved = {k: dict(v) if isinstance(v, dict) else v for k, v in saved.items()}
    for key in pending:
        section, name = key.split(".", 1)
        if isinstance(saved.get(section), dict) and isinstance(current.get(section), dict):
            saved[section][name] = current[section][name]
    diffs = []
    for section in model_sections(config):
        a, b = saved.get(section), current.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += ckpt.config_diff(a, b, f"{section}.")
        elif a != b:
            diffs.append(f"{section}: {a!r} -> {b!r}")
    diffs = [d for d in diffs if d.split(":", 1)[0] not in MEMORY_KEYS]
    if diffs:
        raise ValueError(
            f"checkpoint {where} was made with a different model config: " + "; ".join(diffs[:5])
        )


def check_batch_size(config: Config) -> None:
    """A model that trains on pairs of clips needs two clips per batch (checked before stage 1)."""
    if spec(config.model).batch_kind == "clips" and config.data.batch_size < 2:
        raise ValueError(
            f"data.batch_size={config.data.batch_size}: {config.model} trains on pairs of "
            "clips, so each process needs at least 2 clips per batch"
        )


def check_run_dir(
    run_dir: Path, config: Config, resume: bool, pending: tuple[str, ...] = ()
) -> None:
    """Refuse, before anything is written, a run folder that the run may not use: an existing
    non-empty folder without --resume, or --resume under a different model config."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out {run_dir} is a file, expected a run folder")
    if not has_content(run_dir):
        return
    last = ckpt.latest(run_dir) or ckpt.latest(run_dir / "stage1")
    if not resume:
        held = f"checkpoints (last: {last})" if last else "files"
        raise ValueError(
            f"--out {run_dir} already holds {held}: pass --resume to continue that run, "
            "or choose another --out"
        )
    if ckpt.latest(run_dir) is None:
        return
    for step_dir in reversed(ckpt.step_dirs(run_dir / "checkpoints")):
        try:
            saved = json.loads((step_dir / "state.json").read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # resume itself reports and skips broken steps
        check_resumable(saved, config, step_dir, pending)
        return


class Trainer:
    def __init__(
        self,
        config: Config,
        data_dir: Path,
        run_dir: Path,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.data_dir = data_dir if is_url(data_dir) else Path(data_dir)
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.progress = progress
        self.dist = distributed.setup(config.train.device)
        torch.manual_seed(config.train.seed)
        self.model: FlowModel = build_model(config).to(self.dist.device)
        kind = self.model.batch_kind
        options = self.model.data_options()
        self.train_set = open_split(self.data_dir, "train", config.data, kind, **options)
        try:
            self.val_set = open_split(
                self.data_dir, "val", config.data, kind, self.train_set, **options
            )
        except (ValueError, FileNotFoundError) as exc:
            log.warning("no validation split (%s): validation is skipped", exc)
            self.val_set = None
        check_batch_size(config)
        self.logger: RunLogger | None = None  # made once the run folder is accepted (_setup)
        self.step = 0
        self.lr_scale = 1.0
        self.best: float | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.saved_step = -1

    # -- state ---------------------------------------------------------------------------
    def _restore(self, path: Path) -> None:
        state = ckpt.load(path, optimizer=True)
        check_resumable(state.config, self.config, state.path)
        ckpt.load_model_state(self.model, state.model, state.path)
        self.optimizer = self._make_optimizer()
        ckpt.restore_optimizer(self.optimizer, state, self.dist.device)
        ckpt.restore_rng(state.optimizer, state.state["rng"])
        self.step = self.saved_step = state.step
        self.lr_scale = float(state.state.get("lr_scale", 1.0))
        self.best = ckpt.best_value(self.run_dir)
        log.info("resumed from %s (step %d)", state.path, self.step)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.trainable_parameters(), lr=self.config.train.lr)

    def _save(self, metrics: dict[str, float]) -> None:
        self.saved_step = self.step
        if self.dist.is_main:
            ckpt.save(
                self.run_dir,
                self.step,
                self.model,
                self.optimizer,
                to_dict(self.config),
                metrics,
                keep_last=self.config.train.keep_last,
                extra={"lr_scale": self.lr_scale},
            )
        distributed.barrier()

    def _setup(self) -> None:
        # Every refusal comes before the first write: a refused run changes nothing on disk.
        last = ckpt.latest(self.run_dir)
        if last is not None and not self.resume:
            raise ValueError(
                f"{self.run_dir} already holds checkpoints (last: {last.name}): "
                "pass --resume to continue, or choose another --out"
            )
        intact = ckpt.latest_intact(self.run_dir) if last is not None else None
        if last is not None and intact is None:
            raise ckpt.CheckpointError(
                f"cannot resume {self.run_dir}: no intact checkpoint in "
                f"{self.run_dir / 'checkpoints'} (see the warnings above)"
            )
        if intact is not None:
            self._restore(intact)
        else:
            if self.resume:
                log.info("--resume: no checkpoint in %s yet, starting fresh", self.run_dir)
            self.model.load_pretrained()
            if self.dist.is_main:
                batch = first_batch(self.train_set, self.config.data.init_batch)
                self.model.initialize(_to(batch, self.dist.device))
            distributed.broadcast_module(self.model)
            self.optimizer = self._make_optimizer()
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run_dir / "config.yaml")
        self.logger = RunLogger(self.run_dir, self.dist.is_main, self.config.train.tensorboard)

    # -- loop ----------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        amp = self.config.train.amp
        use = amp == "bf16" or (amp == "auto" and self.dist.device.type == "cuda")
        if not use:
            return contextlib.nullcontext()
        return torch.autocast(self.dist.device.type, dtype=torch.bfloat16)

    def _weighted(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = self.model.loss_weights
        return sum(w * terms[k].float().mean() for k, w in weights.items() if w and k in terms)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.val_set is None:
            return {}
        cfg = self.config
        min_batch = 2 if self.model.batch_kind == "clips" else 1
        plan = val_batches(
            len(self.val_set), cfg.data.val_batch_size, cfg.train.val_batches, self.dist, min_batch
        )
        if not plan:
            return {}
        self.model.eval()
        sums: dict[str, float] = {}
        count = 0
        for indices, weight in plan:
            batch = default_collate([self.val_set[j] for j in indices])
            rand = BatchRandom.seeded(10_000_019 + indices[0], self.dist.device)
            with self._autocast():
                terms = self.model.losses(_to(batch, self.dist.device), rand)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + weight * float(v.float().sum())
            count += weight * len(indices)
        self.model.train()
        # Sums and counts over every rank: the result is the single-process one, whatever the world.
        totals = distributed.mean_scalars({**sums, "_count": float(count)}, self.dist.device)
        n = max(totals.pop("_count"), 1e-12)
        return {k: v / n for k, v in totals.items()}

    def _rollback(self) -> None:
        last = ckpt.latest_intact(self.run_dir)
        if last is None:
            raise FloatingPointError(
                f"training diverged (non-finite loss {self.config.train.nan_patience} steps in a "
                f"row at step {self.step}) before any checkpoint: lower train.lr"
            )
        scale = self.lr_scale * self.config.train.nan_lr_factor
        self._restore(last)
        self.lr_scale = scale
        log.warning("rolled back to %s with learning rate x%.3g", last.name, self.lr_scale)

    def _wrapped(self) -> torch.nn.Module:
        if not self.dist.enabled:
            return self.model
        ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
        return DDP(self.model, device_ids=ids, broadcast_buffers=False)

    def _progress_bar(self) -> Any:
        if not (self.progress and self.dist.is_main):
            return None
        from tqdm import tqdm

        total = self.config.train.max_steps
        return tqdm(total=total, initial=self.step, desc="train", dynamic_ncols=True)

    def _train_step(
        self, net: torch.nn.Module, batch: dict
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Forward, backward and clip on one batch: (terms, loss, gradient norm), the norm None
        when the loss or the gradient is not finite on some rank (nothing is stepped then)."""
        train = self.config.train
        for group in self.optimizer.param_groups:
            group["lr"] = _lr_at(self.step, self.config, self.lr_scale)
        rand = BatchRandom.seeded(train.seed * 1_000_003 + self.step, self.dist.device)
        rand.rank, rand.world = self.dist.rank, self.dist.world
        with self._autocast():
            terms = net(batch, rand)
        loss = self._weighted(terms)
        self.optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        grad_norm = None
        if finite:
            loss.backward()
            params = self.model.trainable_parameters()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
            finite = bool(torch.isfinite(grad_norm))
        if not distributed.all_true(finite, self.dist.device):
            self.optimizer.zero_grad(set_to_none=True)
            return terms, loss, None
        self.optimizer.step()
        self.step += 1
        return terms, loss, grad_norm

    def _skipped(self, bad_in_row: int) -> bool:
        """Log a skipped step; after `nan_patience` in a row roll back (True: batches restart)."""
        log.warning(
            "step %d: non-finite loss or gradient, step skipped (%d in a row)",
            self.step,
            bad_in_row,
        )
        self.logger.scalars(self.step, {"skipped": 1.0})
        if bad_in_row < self.config.train.nan_patience:
            return False
        self._rollback()
        return True

    def _log_train(
        self, terms: dict, loss: torch.Tensor, grad_norm: torch.Tensor, items_per_s: float, bar: Any
    ) -> dict[str, float]:
        metrics = {k: float(v.detach().float().mean()) for k, v in terms.items()}
        metrics = distributed.mean_scalars(metrics, self.dist.device)
        metrics.update(
            loss=float(loss.detach()),
            lr=self.optimizer.param_groups[0]["lr"],
            grad_norm=float(grad_norm),
            items_per_s=items_per_s,
        )
        self.logger.scalars(self.step, metrics)
        if bar is not None:
            shown = {k: f"{v:.3g}" for k, v in metrics.items() if k in ("loss", "bpd")}
            bar.set_postfix(**shown, img_s=f"{items_per_s:.1f}")
        return metrics

    def _log_val(self) -> dict[str, float]:
        val = self.validate()
        if val:
            self.logger.scalars(self.step, val, split="val")
            shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(val.items()))
            log.info("step %d val %s", self.step, shown)
        return val

    def _checkpoint(self, metrics: dict[str, float], val: dict[str, float], is_val: bool) -> None:
        self._save({**metrics, **{f"val_{k}": v for k, v in val.items()}})
        metric = val.get(self.model.val_metric)
        if is_val and metric is not None and (self.best is None or metric < self.best):
            self.best = metric
            if self.dist.is_main:
                ckpt.mark_best(self.run_dir, self.step, self.model.val_metric, metric)

    def fit(self) -> TrainResult:
        self._setup()
        cfg, train = self.config, self.config.train
        net = self._wrapped()
        self.model.train()
        loader = StepLoader(
            self.train_set, cfg.data.batch_size, train.seed, self.dist, cfg.data.num_workers
        )
        batches = loader.iterate(self.step)
        bar = self._progress_bar()
        start = t_last = time.time()
        items, bad_in_row, ips = 0, 0, 0.0
        metrics: dict[str, float] = {}
        val: dict[str, float] = {}
        while self.step < train.max_steps:
            batch = _to(next(batches), self.dist.device)
            terms, loss, grad_norm = self._train_step(net, batch)
            if grad_norm is None:
                bad_in_row += 1
                if self._skipped(bad_in_row):
                    batches = loader.iterate(self.step)
                    bad_in_row = 0
                continue
            bad_in_row = 0
            items += _batch_items(batch) * self.dist.world
            if self.step % train.log_every == 0 or self.step == train.max_steps:
                now = time.time()
                ips, t_last, items = items / max(now - t_last, 1e-9), now, 0
                metrics = self._log_train(terms, loss, grad_norm, ips, bar)
            if bar is not None:
                bar.update(1)
            out_of_time = train.max_minutes and (time.time() - start) > 60 * train.max_minutes
            is_val = self.step % train.val_every == 0 or self.step == train.max_steps
            if is_val or out_of_time:
                val = self._log_val()
            if self.step % train.sample_every == 0 and self.dist.is_main:
                self.model.eval()
                self.logger.images(self.step, self.model.previews(batch))
                self.model.train()
            if self.step % train.ckpt_every == 0 or is_val or out_of_time:
                self._checkpoint(metrics, val, is_val or bool(out_of_time))
            if out_of_time:
                log.info("stopping at step %d: train.max_minutes=%s", self.step, train.max_minutes)
                break
        if bar is not None:
            bar.close()
        if self.saved_step != self.step:
            self._save(metrics)
        self.logger.close()
        return TrainResult(self.run_dir, self.step, metrics, val, ips, ckpt.latest(self.run_dir))


def train(
    config: Config, data_dir: Path, run_dir: Path, resume: bool = False, progress: bool = True
) -> TrainResult:
    trainer = Trainer(config, data_dir, run_dir, resume=resume, progress=progress)
    try:
        return trainer.fit()
    finally:
        distributed.teardown()
