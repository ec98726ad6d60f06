"""Training augmentation (spec §6 order, seeded): resize to S², horizontal flip (p = ½), large-scale
jitter s ∈ [0.8, 1.5): resize to round(S·s), random S² crop when larger, pad bottom/right (image 128,
mask 0) when smaller. Optional ``target_crop``: with probability p, crop S² around a random target at
native resolution instead of resizing the whole frame, which keeps 1–3 px targets visible.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]


def augment(
    image: np.ndarray,
    mask: np.ndarray,
    size: int,
    rng: np.random.Generator,
    jitter: tuple[float, float] = (0.8, 1.5),
    vflip: bool = False,
    target_crop: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W) uint8 image + bool mask → image (3, S, S) float 0–255 (uint8-truncated) and mask
    (1, S, S) float in [0, 1] (soft after bilinear resizing)."""
    img = torch.from_numpy(image.astype(np.float32))[None]
    msk = torch.from_numpy(mask.astype(np.float32))[None]
    h, w = image.shape
    if target_crop and mask.any() and rng.random() < target_crop and min(h, w) >= size // 2:
        ys, xs = np.nonzero(mask)
        k = rng.integers(len(ys))
        cy = int(np.clip(ys[k] + rng.integers(-size // 4, size // 4 + 1), 0, h - 1))
        cx = int(np.clip(xs[k] + rng.integers(-size // 4, size // 4 + 1), 0, w - 1))
        y0, x0 = max(0, min(cy - size // 2, h - size)), max(0, min(cx - size // 2, w - size))
        img, msk = img[:, y0 : y0 + size, x0 : x0 + size], msk[:, y0 : y0 + size, x0 : x0 + size]
        img, msk = _pad_to(img, msk, size)
    else:
        img, msk = _resize(img, (size, size)), _resize(msk, (size, size))
        s = rng.uniform(*jitter)
        new = int(round(size * s))
        img, msk = _resize(img, (new, new)), _resize(msk, (new, new))
        if new > size:
            y0, x0 = rng.integers(0, new - size + 1, 2)
            img, msk = (
                img[:, y0 : y0 + size, x0 : x0 + size],
                msk[:, y0 : y0 + size, x0 : x0 + size],
            )
        else:
            img, msk = _pad_to(img, msk, size)
    if rng.random() >= 0.5:
        img, msk = img.flip(-1), msk.flip(-1)
    if vflip and rng.random() >= 0.5:
        img, msk = img.flip(-2), msk.flip(-2)
    img = img.clamp(0, 255).to(torch.uint8).float().expand(3, -1, -1).contiguous()
    return img, msk.clamp(0, 1).contiguous()


def _pad_to(img: torch.Tensor, msk: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    ph, pw = size - img.shape[1], size - img.shape[2]
    if ph > 0 or pw > 0:
        img = F.pad(img, (0, max(pw, 0), 0, max(ph, 0)), value=128.0)
        msk = F.pad(msk, (0, max(pw, 0), 0, max(ph, 0)), value=0.0)
    return img, msk


def eval_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """(H, W) uint8 → (3, S, S) float, the release's squash pre-processing (bilinear + truncation)."""
    img = _resize(torch.from_numpy(image.astype(np.float32))[None], (size, size))
    return img.to(torch.uint8).float().expand(3, -1, -1).contiguous()
