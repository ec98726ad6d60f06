"""Training loop as a generator of events (a tqdm CLI and a napari worker both drive it).

Recipe (spec §6 with documented changes): loss 5·BCE(edge) + soft-IoU; AdamW (lr 1e-4 by default,
weight decay 0); learning rate with a linear warm-up then a cosine decay to 0 over the whole run
(the release's ``CosineAnnealingLR(T_max=50)`` stepped per epoch restarts every 100 epochs — not
reproduced); flip + scale jitter; batch 4. The best checkpoint is chosen on a validation split
carved from the *training* names (never the test split). Every epoch writes ``last.pt`` (our
checkpoint format, atomically) and ``last_state.pt`` (optimizer, step, RNG) so a run resumes where
it stopped; ``best.pt`` follows the best validation IoU.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.dataset import IRSTDDataset, read_split, split_train_val
from ..metrics import MetricAccumulator
from ..model import build_irsam, get_config, load_checkpoint
from ..model.checkpoint import atomic_torch_save, read_checkpoint, save_checkpoint
from ..model.device import autocast_for, block_triton_without_cuda, select_device
from ..model.weights import resolve_weights
from .augment import augment, eval_tensor
from .losses import irsam_loss


@dataclass
class TrainConfig:
    """Everything a run depends on (stored in the checkpoints' metadata)."""

    dataset: str
    out: str
    split: str | None = None  #: training split (file or name under splits/); None = all images
    init: str = "scratch"  #: "scratch", "mobile_sam", "default" or a checkpoint path
    #: None = the start checkpoint's own configuration when it carries one, else "paper"
    config: str | dict | None = None
    size: int | None = None  #: model input side; None = the configuration's image_size
    epochs: int = 10
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 50
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    max_steps: int | None = None
    time_budget_s: float | None = None
    target_crop: float = 0.0
    vflip: bool = False
    mask_bce_weight: float = 0.0  #: extra BCE on the mask logits (0 = the spec's loss)
    resume: bool = True


@dataclass
class TrainEvent:
    kind: str  #: "start" | "step" | "epoch" | "done"
    epoch: int = 0
    step: int = 0
    total_steps: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None


def lr_at(
    step: int, total: int, base: float, warmup: int, time_fraction: float | None = None
) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``.

    ``time_fraction`` (elapsed / time budget) lets a time-limited run anneal by the end of its
    budget: the decay follows whichever of steps and time is further along."""
    if step < warmup:
        return float(base * (step + 1) / warmup)
    progress = (step - warmup) / max(1, total - warmup)
    if time_fraction is not None:
        progress = max(progress, time_fraction)
    return float(base * 0.5 * (1 + np.cos(np.pi * min(1.0, progress))))


def _build(cfg: TrainConfig):
    loaded = read_checkpoint(resolve_weights(cfg.init)) if cfg.init != "scratch" else None
    config = cfg.config
    if config is None:
        config = loaded.config if loaded is not None and loaded.config else "paper"
    model_cfg = get_config(config)
    if cfg.size is not None:
        model_cfg = type(model_cfg).from_dict({**model_cfg.to_dict(), "image_size": cfg.size})
    model = build_irsam(model_cfg)
    if loaded is not None:
        load_checkpoint(model, loaded, strict=False)
    return model


@torch.inference_mode()
def validate(model, data: IRSTDDataset, device: torch.device, precision: str = "fp32") -> dict:
    """Corrected-mode metrics at each image's native size (squash pre-processing)."""
    model.eval()
    acc = MetricAccumulator("corrected")
    for i in range(len(data)):
        s = data[i]
        x = eval_tensor(s.image, model.image_size)[None].to(device)
        with autocast_for(device, precision):
            logits, _ = model(x)
        logits = F.interpolate(
            logits.float(), size=s.image.shape, mode="bilinear", align_corners=False
        )
        acc.update(logits[0, 0].cpu().numpy() > 0, s.mask)
    return acc.compute()


def train(cfg: TrainConfig) -> Iterator[TrainEvent]:
    """Run (or resume) training; yields events. Raises ValueError/FileNotFoundError on bad input."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = select_device(cfg.device)
    names = read_split(cfg.dataset, cfg.split) if cfg.split else None
    full = IRSTDDataset(cfg.dataset, names=names)
    train_names, val_names = split_train_val(full.names, cfg.val_fraction, cfg.seed)
    train_set = IRSTDDataset(cfg.dataset, names=train_names)
    val_set = IRSTDDataset(cfg.dataset, names=val_names) if val_names else None
    manifest = full.manifest_sha256()

    torch.manual_seed(cfg.seed)
    model = _build(cfg).to(device)
    block_triton_without_cuda()  # before torch.optim imports torch._dynamo (see its docstring)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_set) // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    start_epoch, step, best_iou, elapsed = 0, 0, -1.0, 0.0
    if cfg.resume and (out / "last.pt").is_file() and (out / "last_state.pt").is_file():
        load_checkpoint(model, out / "last.pt")
        state = torch.load(out / "last_state.pt", map_location="cpu", weights_only=True)
        opt.load_state_dict(state["optimizer"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        best_iou, elapsed = float(state["best_iou"]), float(state["elapsed"])
    yield TrainEvent("start", start_epoch, step, total)

    t0 = time.perf_counter() - elapsed
    stop = False
    for epoch in range(start_epoch, cfg.epochs):
        if stop or step >= total:
            break
        rng = np.random.default_rng([cfg.seed, epoch])  # per-epoch stream: resumable
        order = rng.permutation(len(train_set))
        model.train()
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            pairs = [
                augment(
                    s.image,
                    s.mask,
                    model.image_size,
                    rng,
                    vflip=cfg.vflip,
                    target_crop=cfg.target_crop,
                )
                for s in (train_set[int(i)] for i in idx)
            ]
            x = torch.stack([p[0] for p in pairs]).to(device)
            y = torch.stack([p[1] for p in pairs]).to(device)
            time_fraction = (
                (time.perf_counter() - t0) / cfg.time_budget_s if cfg.time_budget_s else None
            )
            lr = lr_at(step, total, cfg.lr, cfg.warmup_steps, time_fraction)
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast_for(device, cfg.precision):
                logits, edges = model(x)
            loss, parts = irsam_loss(logits, edges, y, mask_bce_weight=cfg.mask_bce_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(parts["loss"])
            yield TrainEvent("step", epoch, step, total, parts["loss"], lr, parts)
            budget_over = (
                cfg.time_budget_s is not None and time.perf_counter() - t0 > cfg.time_budget_s
            )
            if step >= total or budget_over:
                stop = True
                break
        metrics = validate(model, val_set, device, cfg.precision) if val_set else {}
        metrics["train_loss"] = float(np.mean(losses)) if losses else float("nan")
        wall = time.perf_counter() - t0
        meta = {
            "epoch": epoch,
            "step": step,
            "val": metrics,
            "seed": cfg.seed,
            "data_manifest_sha256": manifest,
            "dataset": str(cfg.dataset),
            "wall_time_s": wall,
            "train_config": {k: v for k, v in asdict(cfg).items() if k != "config"},
            "val_names": val_names,
            "mode": model.config.mode,
        }
        save_checkpoint(model, out / "last.pt", metadata=meta)
        improved = metrics.get("iou", -1.0) > best_iou
        if improved or not (out / "best.pt").is_file():
            best_iou = max(best_iou, metrics.get("iou", -1.0))
            save_checkpoint(model, out / "best.pt", metadata=meta)
        state = {
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "step": step,
            "best_iou": float(best_iou),
            "elapsed": float(wall),
        }
        atomic_torch_save(state, out / "last_state.pt")
        yield TrainEvent(
            "epoch", epoch, step, total, metrics["train_loss"], lr, metrics, str(out / "last.pt")
        )
    yield TrainEvent("done", step=step, total_steps=total, checkpoint=str(out / "best.pt"))
