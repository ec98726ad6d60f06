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


def augment_native(
    image: np.ndarray,
    mask: np.ndarray,
    size: int,
    rng: np.random.Generator,
    target_crop: float = 0.5,
    scale_range: tuple[float, float] = (0.75, 1.33),
    scale_prob: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Native-resolution sample for models that see whole frames at inference (no squashing).

    (H, W) uint8 image + bool mask → image (3, S, S) float 0–255 (uint8-truncated) and mask
    (1, S, S) in [0, 1]. Steps: with probability ``scale_prob`` a log-uniform rescale in
    ``scale_range`` (targets change size a little, as with another lens or range); frames smaller
    than S are padded with their median grey (mask 0), so no target is mirrored into unlabelled
    pixels; an S×S crop centred within ±S/4 of a random target pixel with probability
    ``target_crop``, else anywhere; a random flip/transpose of the 8 square symmetries.
    """
    img = torch.from_numpy(image.astype(np.float32))[None]
    msk = torch.from_numpy(mask.astype(np.float32))[None]
    if scale_prob and rng.random() < scale_prob:
        lo, hi = np.log(scale_range[0]), np.log(scale_range[1])
        s = float(np.exp(rng.uniform(lo, hi)))
        hw = (max(2, round(image.shape[0] * s)), max(2, round(image.shape[1] * s)))
        img, msk = _resize(img, hw), _resize(msk, hw)
    h, w = img.shape[1:]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph or pw:
        fill = float(np.median(image))
        top, left = int(rng.integers(0, ph + 1)), int(rng.integers(0, pw + 1))
        pad = (left, pw - left, top, ph - top)
        img, msk = F.pad(img, pad, value=fill), F.pad(msk, pad, value=0.0)
        h, w = img.shape[1:]
    fg = msk[0] > 0.5
    if target_crop and rng.random() < target_crop and bool(fg.any()):
        ys, xs = torch.nonzero(fg, as_tuple=True)
        k = int(rng.integers(len(ys)))
        cy = int(ys[k]) + int(rng.integers(-size // 4, size // 4 + 1))
        cx = int(xs[k]) + int(rng.integers(-size // 4, size // 4 + 1))
        y0 = int(np.clip(cy - size // 2, 0, h - size))
        x0 = int(np.clip(cx - size // 2, 0, w - size))
    else:
        y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    img, msk = img[:, y0 : y0 + size, x0 : x0 + size], msk[:, y0 : y0 + size, x0 : x0 + size]
    if rng.random() >= 0.5:
        img, msk = img.flip(-1), msk.flip(-1)
    if rng.random() >= 0.5:
        img, msk = img.flip(-2), msk.flip(-2)
    if rng.random() >= 0.5:
        img, msk = img.transpose(-1, -2), msk.transpose(-1, -2)
    img = img.clamp(0, 255).to(torch.uint8).float().expand(3, -1, -1).contiguous()
    return img, msk.clamp(0, 1).contiguous()


def pad_to_multiple(image: np.ndarray, multiple: int = 32) -> tuple[np.ndarray, tuple[int, int]]:
    """(H, W) frame → (H', W') padded bottom/right with its median grey to multiples of
    ``multiple`` (the native model's stride 16, and 32 keeps every window split even); returns
    the padded frame and the original (H, W)."""
    h, w = image.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return image, (h, w)
    fill = np.median(image).astype(image.dtype)
    return np.pad(image, ((0, ph), (0, pw)), constant_values=fill), (h, w)
