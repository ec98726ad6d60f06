"""Training batches through a ``torch.utils.data.DataLoader``: decoding and augmentation run in
worker processes (``workers``) while the model trains, batches land in pinned memory on CUDA.

Randomness, so that a run is reproducible and resumable:

* the epoch's sample order is ``np.random.default_rng([seed, epoch]).permutation(n)``;
* ``stream="epoch"``: the augmentations then draw from that same generator, sample after sample
  in order — exactly what training did before the DataLoader, so results are bit-identical to
  earlier versions; it needs ``workers=0`` and one process (a shared generator cannot be split);
* ``stream="sample"``: the sample at position ``p`` of epoch ``e`` draws from its own
  ``default_rng([seed, e, p])``, so the batches are the same whatever the number of workers or
  of processes (distributed training shards each global batch by position).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .augment import augment, augment_native

#: one sample request: (epoch, position in the epoch's order, dataset index)
Item = tuple[int, int, int]
STREAMS = ("epoch", "sample")


@dataclass(frozen=True)
class AugmentSpec:
    """How a training sample is made (see :mod:`.augment`)."""

    geometry: str  #: "squash" or "native"
    size: int  #: model input side S (pixels)
    vflip: bool = False
    target_crop: float = 0.0


class TrainSamples(Dataset):
    """Decoded, augmented training pairs: ``samples[(epoch, position, index)]`` → image
    (3, S, S) float 0–255 and mask (1, S, S) in [0, 1] (see :func:`.augment.augment`)."""

    def __init__(self, data, spec: AugmentSpec, seed: int) -> None:
        self.data = data
        self.spec = spec
        self.seed = seed
        #: the epoch's shared generator for ``stream="epoch"`` (main process only); None means
        #: one generator per sample
        self.epoch_rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, item: Item) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, position, index = item
        rng = self.epoch_rng
        if rng is None:
            rng = np.random.default_rng([self.seed, epoch, position])
        s = self.data[index]
        spec = self.spec
        if spec.geometry == "native":
            return augment_native(s.image, s.mask, spec.size, rng, spec.target_crop)
        return augment(
            s.image, s.mask, spec.size, rng, vflip=spec.vflip, target_crop=spec.target_crop
        )


class EpochBatches(Sampler[list[Item]]):
    """The batches of one epoch (call :meth:`set_epoch` first): global batch ``b`` holds the
    positions ``b·B … b·B + B − 1`` of the epoch's order; process ``rank`` of ``world`` takes
    every ``world``-th of them (``B / world`` samples). The last incomplete batch is dropped."""

    def __init__(self, batch_size: int, steps: int, rank: int = 0, world: int = 1) -> None:
        if batch_size % world:
            raise ValueError(
                f"The batch size ({batch_size}) must be a multiple of the number of processes "
                f"({world}): it is the global batch, split evenly between them."
            )
        self.batch_size, self.steps, self.rank, self.world = batch_size, steps, rank, world
        self.epoch = 0
        self.order: np.ndarray = np.zeros(0, dtype=np.int64)

    def set_epoch(self, epoch: int, order: np.ndarray) -> None:
        self.epoch, self.order = epoch, np.asarray(order)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[Item]]:
        bs = self.batch_size
        for b in range(self.steps):
            positions = range(b * bs + self.rank, (b + 1) * bs, self.world)
            yield [(self.epoch, p, int(self.order[p])) for p in positions]


def collate(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """[(image, mask)] → images (B, 3, S, S), masks (B, 1, S, S)."""
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def make_loader(
    samples: TrainSamples, batches: EpochBatches, workers: int, device: torch.device
) -> DataLoader:
    """A DataLoader over ``batches``; workers stay alive across epochs (their decoded-image
    caches too); pinned memory on CUDA so that ``.to(device, non_blocking=True)`` overlaps."""
    if workers < 0:
        raise ValueError(f"workers must be 0 or more, got {workers}.")
    return DataLoader(
        samples,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )


def resolve_stream(stream: str | None, workers: int, world: int) -> str:
    """``None`` → ``"epoch"`` for one process without workers (bit-identical to earlier
    versions), else ``"sample"``; an explicit ``"epoch"`` with workers or several processes is
    refused (its generator cannot be shared)."""
    if stream is None:
        return "epoch" if workers == 0 and world == 1 else "sample"
    if stream not in STREAMS:
        raise ValueError(f"augment_stream must be 'epoch' or 'sample', got {stream!r}.")
    if stream == "epoch" and (workers > 0 or world > 1):
        raise ValueError(
            "augment_stream 'epoch' needs workers=0 and one process; use 'sample' (the default "
            "then)."
        )
    return stream
