"""Data-parallel training across processes (``torchrun``), torch.distributed only.

``torchrun --nproc-per-node=N -m napari_irsam train …`` starts N copies of ``train``; each reads
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the environment, joins the process group (NCCL on
CUDA, gloo on the CPU) and trains a :class:`~torch.nn.parallel.DistributedDataParallel` replica on
its share of every global batch. The result equals one process training on the same global batch
(up to float summation order), because everything that couples the samples of a batch is made
global:

* gradients: DDP averages them over the processes;
* BatchNorm statistics (TinyViT's convolutions): synchronised — ``torch.nn.SyncBatchNorm`` on
  CUDA, :class:`CPUSyncBatchNorm` on the CPU (torch's supports GPUs only);
* the soft-IoU loss, a ratio of sums over the whole batch: its sums are all-reduced
  (:func:`napari_irsam.training.losses.soft_iou_loss`).

Only rank 0 validates and writes checkpoints and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    """Where this process stands; ``world == 1`` for ordinary single-process training."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  #: this context created the process group (and destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum of a (detached) tensor over all processes; the tensor itself when alone."""
        if not self.active:
            return t
        t = t.detach().clone()
        dist.all_reduce(t)
        return t

    def any(self, flag: bool) -> bool:
        """True on every process when ``flag`` is true on one (e.g. a time budget ran out)."""
        if not self.active:
            return flag
        return bool(self.all_sum(torch.tensor([float(flag)])).item() > 0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def env_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def setup(device_request: str) -> tuple[DistContext, str]:
    """Join the process group when launched by torchrun with ``WORLD_SIZE`` > 1.

    Returns the context and the device to use: on CUDA each process takes ``cuda:LOCAL_RANK``
    (unless ``device_request`` names the CPU); otherwise ``device_request`` unchanged.
    """
    world = env_world_size()
    if world <= 1:
        return DistContext(), device_request
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and str(device_request) in ("auto", "cuda")
    device = f"cuda:{local}" if use_cuda else device_request
    backend = "nccl" if use_cuda else "gloo"
    owns = not dist.is_initialized()
    if owns:
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistContext(rank, world, local, backend, owns), device


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch (all processes).

    Mean and biased variance come from all-reduced per-channel sums (two passes, for accuracy);
    gradients flow through the all-reduce (``torch.distributed.nn``), so each process gets its
    share of the global batch's gradient. Running statistics update as ``BatchNorm2d``'s do (the
    unbiased variance, ``momentum``). Outside training, or alone, it is plain ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        n_local = torch.tensor(
            [x.shape[0] * x.shape[2] * x.shape[3]], dtype=x.dtype, device=x.device
        )
        n = all_reduce(n_local.clone())
        mean = all_reduce(x.sum(dim=(0, 2, 3))) / n
        centred = x - mean[None, :, None, None]
        var = all_reduce((centred * centred).sum(dim=(0, 2, 3))) / n
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                unbiased = var.detach() * (n / (n - 1).clamp(min=1))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        return y


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm2d by its synchronised form (same parameters and buffers, so the
    state dict keys and values do not change)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in list(model.named_children()):
        if type(child) is nn.BatchNorm2d:
            sync = CPUSyncBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            sync.weight, sync.bias = child.weight, child.bias
            sync.running_mean, sync.running_var = child.running_mean, child.running_var
            sync.num_batches_tracked = child.num_batches_tracked
            sync.train(child.training)
            setattr(model, name, sync)
        else:
            sync_batchnorm(child, device)
    return model


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """The model DDP trains (itself when alone). Parameters the forward never uses (SAM's
    prompt embeddings, TinyViT's classification head kept for key parity) are allowed."""
    if not ctx.active:
        return model
    model = sync_batchnorm(model, device)
    return nn.parallel.DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True,
    )


__all__ = ["CPUSyncBatchNorm", "DistContext", "setup", "sync_batchnorm", "wrap"]
