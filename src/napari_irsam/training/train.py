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

from ..data.dataset import ConcatIRSTD, IRSTDDataset, read_split, split_train_val
from ..effort import EffortAccumulator
from ..metrics import MetricAccumulator
from ..model import build_irsam, get_config, load_checkpoint
from ..model.checkpoint import atomic_torch_save, read_checkpoint, save_checkpoint
from ..model.device import (
    autocast_for,
    block_triton_without_cuda,
    check_precision,
    select_device,
)
from ..model.weights import resolve_weights
from .augment import augment, augment_native, eval_tensor, pad_to_multiple
from .losses import irsam_loss


@dataclass
class TrainConfig:
    """Everything a run depends on (stored in the checkpoints' metadata)."""

    dataset: str | list[str]  #: one IRSTD folder, or several trained on together
    out: str
    #: training split per dataset (file or name under splits/); None = all images
    split: str | list[str | None] | None = None
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
    #: stop after this much CPU time of the training process (all threads), a budget that does
    #: not depend on what else the machine runs: "equal CPU minutes" for ablations
    cpu_budget_s: float | None = None
    #: "squash" (spec §6: whole frame resized to S², scale jitter) or "native" (S² crops at the
    #: frame's own resolution); None = "native" for full-resolution mask heads, else "squash"
    geometry: str | None = None
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
    if isinstance(config, str) and config.lstrip().startswith("{"):
        import json

        config = json.loads(config)
    if config is None:
        config = loaded.config if loaded is not None and loaded.config else "paper"
    model_cfg = get_config(config)
    if cfg.size is not None:
        model_cfg = type(model_cfg).from_dict({**model_cfg.to_dict(), "image_size": cfg.size})
    model = build_irsam(model_cfg)
    if loaded is not None:
        load_checkpoint(model, loaded, strict=False)
    return model


def native_logits(model, image: np.ndarray, device: torch.device, precision: str = "fp32"):
    """Whole-frame forward at native resolution: (H, W) uint8 → (H, W) float32 logits."""
    padded, (h, w) = pad_to_multiple(image, 32)
    x = torch.from_numpy(padded.astype(np.float32))[None, None].expand(1, 3, -1, -1)
    with autocast_for(device, precision):
        logits, _ = model(x.to(device))
    return logits[0, 0, :h, :w].float().cpu().numpy()


@torch.inference_mode()
def validate(
    model, data, device: torch.device, precision: str = "fp32", geometry: str = "squash"
) -> dict:
    """Corrected-mode metrics at each image's native size; ``geometry`` as in training."""
    model.eval()
    acc, effort = MetricAccumulator("corrected"), EffortAccumulator()
    for i in range(len(data)):
        s = data[i]
        if geometry == "native":
            logits = native_logits(model, s.image, device, precision)
        else:
            x = eval_tensor(s.image, model.image_size)[None].to(device)
            with autocast_for(device, precision):
                out, _ = model(x)
            logits = (
                F.interpolate(
                    out.float(), size=s.image.shape, mode="bilinear", align_corners=False
                )[0, 0]
                .cpu()
                .numpy()
            )
        acc.update(logits > 0, s.mask)
        effort.update(logits > 0, s.mask, 1.0 / (1.0 + np.exp(-logits.astype(np.float64))))
    return {**acc.compute(), "effort": effort.compute()}


def _datasets(cfg: TrainConfig):
    """(full, train, val) datasets; validation names are carved from the training names."""
    roots = [cfg.dataset] if isinstance(cfg.dataset, (str, Path)) else list(cfg.dataset)
    splits = cfg.split if isinstance(cfg.split, (list, tuple)) else [cfg.split] * len(roots)
    if len(splits) != len(roots):
        raise ValueError(f"Got {len(roots)} datasets but {len(splits)} splits.")
    fulls = [
        IRSTDDataset(r, names=read_split(r, sp) if sp else None, cache=True)
        for r, sp in zip(roots, splits)
    ]
    full = ConcatIRSTD(fulls) if len(fulls) > 1 else fulls[0]
    train_names, val_names = split_train_val(full.names, cfg.val_fraction, cfg.seed)
    if len(fulls) == 1:
        train_set = IRSTDDataset(roots[0], names=train_names, cache=True)
        val_set = IRSTDDataset(roots[0], names=val_names, cache=True) if val_names else None
        return full, train_set, val_set, val_names

    def subset(names: list[str]) -> ConcatIRSTD:
        keep = set(names)
        return ConcatIRSTD(
            [
                IRSTDDataset(
                    p.root, names=[n for n in p.names if f"{p.root.name}/{n}" in keep], cache=True
                )
                for p in fulls
            ]
        )

    return full, subset(train_names), (subset(val_names) if val_names else None), val_names


def train(cfg: TrainConfig) -> Iterator[TrainEvent]:
    """Run (or resume) training; yields events. Raises ValueError/FileNotFoundError on bad input."""
    check_precision(cfg.precision)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = select_device(cfg.device)
    full, train_set, val_set, val_names = _datasets(cfg)
    manifest = full.manifest_sha256()

    torch.manual_seed(cfg.seed)
    model = _build(cfg).to(device)
    geometry = cfg.geometry or ("native" if model.config.mask_head == "fine" else "squash")
    if geometry not in ("squash", "native"):
        raise ValueError(f"geometry must be 'squash' or 'native', got {geometry!r}.")
    block_triton_without_cuda()  # before torch.optim imports torch._dynamo (see its docstring)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # fp16 gradients underflow without loss scaling (bf16 has fp32's range and needs none)
    scaler = torch.amp.GradScaler(
        device.type, enabled=cfg.precision == "fp16" and device.type == "cuda"
    )
    steps_per_epoch = max(1, len(train_set) // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    start_epoch, step, best, elapsed, cpu_used = 0, 0, -float("inf"), 0.0, 0.0
    if cfg.resume and (out / "last.pt").is_file() and (out / "last_state.pt").is_file():
        load_checkpoint(model, out / "last.pt")
        state = torch.load(out / "last_state.pt", map_location="cpu", weights_only=True)
        opt.load_state_dict(state["optimizer"])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        best, elapsed = float(state.get("best_score", -float("inf"))), float(state["elapsed"])
        cpu_used = float(state.get("cpu", 0.0))
    yield TrainEvent("start", start_epoch, step, total)

    t0 = time.perf_counter() - elapsed
    cpu0 = time.process_time() - cpu_used
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
            samples = [train_set[int(i)] for i in idx]
            if geometry == "native":
                pairs = [
                    augment_native(s.image, s.mask, model.image_size, rng, cfg.target_crop)
                    for s in samples
                ]
            else:
                pairs = [
                    augment(
                        s.image,
                        s.mask,
                        model.image_size,
                        rng,
                        vflip=cfg.vflip,
                        target_crop=cfg.target_crop,
                    )
                    for s in samples
                ]
            x = torch.stack([p[0] for p in pairs]).to(device)
            y = torch.stack([p[1] for p in pairs]).to(device)
            fractions = []
            if cfg.time_budget_s:
                fractions.append((time.perf_counter() - t0) / cfg.time_budget_s)
            if cfg.cpu_budget_s:
                fractions.append((time.process_time() - cpu0) / cfg.cpu_budget_s)
            time_fraction = max(fractions) if fractions else None
            lr = lr_at(step, total, cfg.lr, cfg.warmup_steps, time_fraction)
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast_for(device, cfg.precision):
                logits, edges = model(x)
            loss, parts = irsam_loss(logits, edges, y, mask_bce_weight=cfg.mask_bce_weight)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # a pass-through unless fp16 on CUDA
            scaler.step(opt)
            scaler.update()
            step += 1
            losses.append(parts["loss"])
            yield TrainEvent("step", epoch, step, total, parts["loss"], lr, parts)
            budget_over = (
                cfg.time_budget_s is not None and time.perf_counter() - t0 > cfg.time_budget_s
            ) or (cfg.cpu_budget_s is not None and time.process_time() - cpu0 > cfg.cpu_budget_s)
            if step >= total or budget_over:
                stop = True
                break
        metrics = validate(model, val_set, device, cfg.precision, geometry) if val_set else {}
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
            "cpu_time_s": time.process_time() - cpu0,
            "geometry": geometry,
            "train_config": {k: v for k, v in asdict(cfg).items() if k != "config"},
            "val_names": val_names,
            "mode": model.config.mode,
        }
        save_checkpoint(model, out / "last.pt", metadata=meta)
        # the best checkpoint needs the fewest annotator corrections on the validation part
        score = -metrics["effort"]["actions_per_100"] if "effort" in metrics else -1e9
        score = score if np.isfinite(score) else -1e9
        improved = score > best
        if improved or not (out / "best.pt").is_file():
            best = max(best, score)
            save_checkpoint(model, out / "best.pt", metadata=meta)
        state = {
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "step": step,
            "best_score": float(best),
            "elapsed": float(wall),
            "cpu": float(time.process_time() - cpu0),
            "torch_rng": torch.get_rng_state(),
            "scaler": scaler.state_dict(),
        }
        atomic_torch_save(state, out / "last_state.pt")
        yield TrainEvent(
            "epoch", epoch, step, total, metrics["train_loss"], lr, metrics, str(out / "last.pt")
        )
    yield TrainEvent("done", step=step, total_steps=total, checkpoint=str(out / "best.pt"))
