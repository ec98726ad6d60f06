"""Training loop as a generator of events (a tqdm CLI and a napari worker both drive it).

Recipe (spec §6 with documented changes): loss 5·BCE(edge) + soft-IoU; AdamW (lr 1e-4 by default,
weight decay 0); learning rate with a linear warm-up then a cosine decay to 0 over the whole run
(the release's ``CosineAnnealingLR(T_max=50)`` stepped per epoch restarts every 100 epochs — not
reproduced); flip + scale jitter; batch 4. The best checkpoint is chosen on a validation split
carved from the *training* names (never the test split). Every epoch writes ``last.pt`` (our
checkpoint format, atomically) and ``last_state.pt`` (optimizer, step, RNG) so a run resumes where
it stopped; ``best.pt`` follows the best validation IoU.

Batches come from a ``torch.utils.data.DataLoader`` (``workers`` processes decode and augment
ahead of the model; pinned memory and non-blocking copies on CUDA), see ``training.loader``.
Under ``torchrun`` with several processes the run is data-parallel (``training.distributed``):
each process trains on its share of every global batch of ``batch_size``; rank 0 alone
validates and writes checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.dataset import ConcatIRSTD, IRSTDDataset, read_split, split_train_val
from ..model import build_irsam, get_config, load_checkpoint
from ..model.checkpoint import atomic_torch_save, read_checkpoint, save_checkpoint
from ..model.device import (
    autocast_for,
    check_precision,
    import_dynamo_without_triton,
    select_device,
)
from ..model.weights import resolve_weights
from . import distributed
from .distributed import DistContext
from .loader import AugmentSpec, EpochBatches, TrainSamples, make_loader, resolve_stream
from .losses import irsam_loss
from .validate import native_logits, validate  # noqa: F401  (native_logits: public here)


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
    seed: int = 0  #: held-out names and model initialisation (keep it to compare runs)
    #: sample order and augmentation; None = ``seed``. A warm-started continuation sets another
    #: value to see new orders and crops while keeping the same held-out names
    order_seed: int | None = None
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
    #: DataLoader worker processes decoding and augmenting ahead of the model (0 = in the
    #: training process; a few per GPU on CUDA machines)
    workers: int = 0
    #: augmentation randomness (see ``training.loader``): "epoch" = one generator per epoch,
    #: bit-identical to earlier versions (workers=0, one process only); "sample" = one per
    #: sample, the same for any number of workers or processes; None = "epoch" when possible
    augment_stream: str | None = None


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


def split_datasets(cfg: TrainConfig):
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


@dataclass
class _Run:
    """The state of one training run, shared by its steps."""

    cfg: TrainConfig
    out: Path
    device: torch.device
    dist: DistContext
    model: torch.nn.Module  #: the IRSAM model (what is saved)
    net: torch.nn.Module  #: what trains: the model, or its DDP wrapper
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    geometry: str
    val_set: Any
    val_names: list[str]
    manifest: str
    samples: TrainSamples
    batches: EpochBatches
    loader: Any
    stream: str
    total: int
    start_epoch: int = 0
    step: int = 0
    best: float = -float("inf")
    t0: float = 0.0
    cpu0: float = 0.0
    stop: bool = False
    lr: float = 0.0


def _setup(cfg: TrainConfig, ctx: DistContext, device_name: str) -> _Run:
    """Data, model, optimizer, loader; resumes from ``out/last*.pt`` when asked."""
    check_precision(cfg.precision)
    out = Path(cfg.out)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    device = select_device(device_name)
    full, train_set, val_set, val_names = split_datasets(cfg)
    torch.manual_seed(cfg.seed)
    model = _build(cfg).to(device)
    geometry = cfg.geometry or ("native" if model.config.mask_head == "fine" else "squash")
    if geometry not in ("squash", "native"):
        raise ValueError(f"geometry must be 'squash' or 'native', got {geometry!r}.")
    stream = resolve_stream(cfg.augment_stream, cfg.workers, ctx.world)
    import_dynamo_without_triton()  # before torch.optim imports it (napari + llvmpipe crash)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # fp16 gradients underflow without loss scaling (bf16 has fp32's range and needs none)
    scaler = torch.amp.GradScaler(
        device.type, enabled=cfg.precision == "fp16" and device.type == "cuda"
    )
    steps_per_epoch = max(1, len(train_set) // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    spec = AugmentSpec(geometry, model.image_size, cfg.vflip, cfg.target_crop)
    samples = TrainSamples(train_set, spec, cfg.seed if cfg.order_seed is None else cfg.order_seed)
    batches = EpochBatches(cfg.batch_size, steps_per_epoch, ctx.rank, ctx.world)
    run = _Run(
        cfg,
        out,
        device,
        ctx,
        model,
        model,
        opt,
        scaler,
        geometry,
        val_set,
        val_names,
        full.manifest_sha256(),
        samples,
        batches,
        make_loader(samples, batches, cfg.workers, device),
        stream,
        total,
    )
    _resume(run)
    run.net = distributed.wrap(model, ctx, device)  # after loading: DDP copies rank 0's weights
    return run


def _resume(run: _Run) -> None:
    """Continue from ``last.pt`` + ``last_state.pt`` (weights, optimizer, step, RNG, budgets)."""
    out, cfg = run.out, run.cfg
    elapsed = cpu_used = 0.0
    if cfg.resume and (out / "last.pt").is_file() and (out / "last_state.pt").is_file():
        load_checkpoint(run.model, out / "last.pt")
        state = torch.load(out / "last_state.pt", map_location="cpu", weights_only=True)
        run.opt.load_state_dict(state["optimizer"])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if "scaler" in state:
            run.scaler.load_state_dict(state["scaler"])
        run.start_epoch, run.step = int(state["epoch"]) + 1, int(state["step"])
        run.best, elapsed = float(state.get("best_score", -float("inf"))), float(state["elapsed"])
        cpu_used = float(state.get("cpu", 0.0))
    run.t0 = time.perf_counter() - elapsed
    run.cpu0 = time.process_time() - cpu_used


def _budget_fraction(run: _Run) -> float | None:
    """How far along the wall-clock / CPU budgets are (the further one), None without one."""
    cfg, fractions = run.cfg, []
    if cfg.time_budget_s:
        fractions.append((time.perf_counter() - run.t0) / cfg.time_budget_s)
    if cfg.cpu_budget_s:
        fractions.append((time.process_time() - run.cpu0) / cfg.cpu_budget_s)
    return max(fractions) if fractions else None


def _train_step(run: _Run, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """One optimizer step on a batch (this process's share of it); returns the loss parts."""
    cfg, ctx = run.cfg, run.dist
    run.lr = lr_at(run.step, run.total, cfg.lr, cfg.warmup_steps, _budget_fraction(run))
    for g in run.opt.param_groups:
        g["lr"] = run.lr
    non_blocking = run.device.type == "cuda"
    x, y = x.to(run.device, non_blocking=non_blocking), y.to(run.device, non_blocking=non_blocking)
    with autocast_for(run.device, cfg.precision):
        logits, edges = run.net(x)
    sync = {"all_sum": ctx.all_sum, "world": ctx.world} if ctx.active else {}
    loss, parts = irsam_loss(logits, edges, y, mask_bce_weight=cfg.mask_bce_weight, **sync)
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()  # a pass-through unless fp16 on CUDA
    run.scaler.step(run.opt)
    run.scaler.update()
    run.step += 1
    if ctx.active:  # report the global batch's loss (its BCE terms are per-process means)
        keys = sorted(parts)
        mean = ctx.all_sum(torch.tensor([parts[k] for k in keys], dtype=torch.float64))
        parts = {k: float(v) / ctx.world for k, v in zip(keys, mean)}
    return parts


def _train_epoch(run: _Run, epoch: int) -> Iterator[TrainEvent]:
    """Step events of one epoch; sets ``run.stop`` at the step limit or a spent budget."""
    cfg = run.cfg
    rng = np.random.default_rng([run.samples.seed, epoch])  # per-epoch stream: resumable
    run.batches.set_epoch(epoch, rng.permutation(len(run.samples)))
    run.samples.epoch_rng = rng if run.stream == "epoch" else None
    run.model.train()
    for x, y in run.loader:
        parts = _train_step(run, x, y)
        yield TrainEvent("step", epoch, run.step, run.total, parts["loss"], run.lr, parts)
        budget_over = (
            cfg.time_budget_s is not None and time.perf_counter() - run.t0 > cfg.time_budget_s
        ) or (cfg.cpu_budget_s is not None and time.process_time() - run.cpu0 > cfg.cpu_budget_s)
        if run.dist.any(run.step >= run.total or budget_over):
            run.stop = True
            break


def _end_epoch(run: _Run, epoch: int, losses: list[float]) -> TrainEvent:
    """Validate, write ``last.pt`` / ``best.pt`` / ``last_state.pt`` (rank 0 only)."""
    cfg, out = run.cfg, run.out
    metrics: dict[str, Any] = {}
    if run.dist.is_main:
        if run.val_set:
            metrics = validate(run.model, run.val_set, run.device, cfg.precision, run.geometry)
        metrics["train_loss"] = float(np.mean(losses)) if losses else float("nan")
        wall = time.perf_counter() - run.t0
        meta = {
            "epoch": epoch,
            "step": run.step,
            "val": metrics,
            "seed": cfg.seed,
            "data_manifest_sha256": run.manifest,
            "dataset": str(cfg.dataset),
            "wall_time_s": wall,
            "cpu_time_s": time.process_time() - run.cpu0,
            "geometry": run.geometry,
            "train_config": {k: v for k, v in asdict(cfg).items() if k != "config"},
            "val_names": run.val_names,
            "mode": run.model.config.mode,
            "processes": run.dist.world,
        }
        save_checkpoint(run.model, out / "last.pt", metadata=meta)
        # the best checkpoint needs the fewest annotator corrections on the validation part
        score = -metrics["effort"]["actions_per_100"] if "effort" in metrics else -1e9
        score = score if np.isfinite(score) else -1e9
        if score > run.best or not (out / "best.pt").is_file():
            run.best = max(run.best, score)
            save_checkpoint(run.model, out / "best.pt", metadata=meta)
        state = {
            "optimizer": run.opt.state_dict(),
            "epoch": epoch,
            "step": run.step,
            "best_score": float(run.best),
            "elapsed": float(wall),
            "cpu": float(time.process_time() - run.cpu0),
            "torch_rng": torch.get_rng_state(),
            "scaler": run.scaler.state_dict(),
        }
        atomic_torch_save(state, out / "last_state.pt")
    else:
        metrics["train_loss"] = float(np.mean(losses)) if losses else float("nan")
    run.dist.barrier()  # the others wait for rank 0's validation and files
    return TrainEvent(
        "epoch",
        epoch,
        run.step,
        run.total,
        metrics["train_loss"],
        run.lr,
        metrics,
        str(out / "last.pt"),
    )


def train(cfg: TrainConfig) -> Iterator[TrainEvent]:
    """Run (or resume) training; yields events. Raises ValueError/FileNotFoundError on bad input.

    Launched by ``torchrun`` with ``WORLD_SIZE`` > 1, every process runs this and joins the
    process group (see ``training.distributed``); only rank 0 writes files."""
    ctx, device_name = distributed.setup(cfg.device)
    try:
        run = _setup(cfg, ctx, device_name)
        yield TrainEvent("start", run.start_epoch, run.step, run.total)
        for epoch in range(run.start_epoch, cfg.epochs):
            if run.stop or run.step >= run.total:
                break
            losses: list[float] = []
            for ev in _train_epoch(run, epoch):
                losses.append(ev.loss)
                yield ev
            yield _end_epoch(run, epoch, losses)
        yield TrainEvent(
            "done", step=run.step, total_steps=run.total, checkpoint=str(run.out / "best.pt")
        )
    finally:
        ctx.close()
