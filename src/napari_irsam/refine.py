"""Redraw each detected target's outline on the image's own contrast (numpy/scipy only).

IRSAM's mask head predicts at a coarser grid than the frame and its upsampled logits blur the
outline of a 3–60 px target; the benchmarks' annotators drew the outline on the image. So, for
every 8-connected target of a model's mask:

1. **Window.** The target grown by ``grow_px`` (8-connected dilation) is where its new outline may
   lie; the ``ring_px`` wide band around that is its background, whose median is the local
   background level ``b`` (image units).
2. **Contrast.** ``c(x) = (I(x) − b) / (p − b)`` with ``p`` the brightest image value inside the
   target: 1 at the peak, 0 at the background level.
3. **Outline.** The pixels of the window with ``c ≥ fraction`` that are 8-connected to a pixel of
   the target make the new target (pieces that touch the old target; the peak always survives).
   A target no brighter than its background (a cold target, a flat patch) keeps its shape.

``fraction`` is fitted per checkpoint on held-out frames with the other calibration parameters
(:mod:`napari_irsam.calibrate`); 0 turns refinement off. It changes outlines only: it can split a
target that covers two nearby bright spots, and never adds a target where the model saw none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

_EIGHT = np.ones((3, 3), bool)
#: default growth of the window around each target (px)
GROW_PX = 1
#: default width of the background ring (px)
RING_PX = 4
#: rows read above and below each band in the band-by-band mode (px)
HALO_PX = 64


def intensity_plane(frame: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) frame → (H, W) float32 intensity (colour channels averaged)."""
    a = np.asarray(frame)
    if a.ndim == 3:
        a = a[..., :3].astype(np.float32).mean(axis=-1)
    if a.ndim != 2:
        raise ValueError(f"Expected an (H, W) or (H, W, C) frame, got shape {a.shape}.")
    return a.astype(np.float32, copy=False)


def refine_targets(
    frame: Any,
    mask: Any,
    fraction: float,
    grow_px: int = GROW_PX,
    ring_px: int = RING_PX,
    out: Any = None,
    band_rows: int | None = None,
) -> Any:
    """(H, W) bool mask → (H, W) bool mask with every target's outline redrawn at ``fraction`` of
    its peak contrast over the local background (module docstring). ``frame``: (H, W[, C]) image
    in any units (raw counts, 8-bit, float); non-finite pixels never join a target.

    ``band_rows``: read ``frame`` and ``mask`` (numpy arrays, memmaps, zarr arrays) in bands of
    this many rows plus a :data:`HALO_PX` halo, writing into ``out`` (an (H, W) bool array, e.g. a
    disk-backed memmap; required then): no whole-frame copy. Each target is redrawn in the band
    holding its first row; one taller than the halo keeps its shape. None: the whole frame at once.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"The refinement fraction must be in [0, 1), got {fraction}.")
    h, w = (int(n) for n in mask.shape[:2])
    if band_rows is None:
        mask = np.asarray(mask, bool)
        if fraction == 0.0 or not mask.any():
            return mask.copy()
        band_rows, halo, out = h, 0, mask.copy()
    elif out is None:
        raise ValueError("Band-by-band refinement needs an output array (out=).")
    else:
        halo = HALO_PX
        for r0 in range(0, h, band_rows):
            out[r0 : r0 + band_rows] = np.asarray(mask[r0 : r0 + band_rows], bool)
        if fraction == 0.0:
            return out
    if tuple(frame.shape[:2]) != (h, w):
        raise ValueError(f"Frame {tuple(frame.shape[:2])} and mask {(h, w)} differ in size.")
    pad = grow_px + ring_px + 1
    for r0 in range(0, h, band_rows):
        top, bottom = max(0, r0 - halo), min(h, r0 + band_rows + halo)
        m = np.asarray(mask[top:bottom], bool)
        if not m.any():
            continue
        image = intensity_plane(frame[top:bottom])
        finite = np.isfinite(image)
        labels, _ = ndimage.label(m, _EIGHT)
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            first = top + sl[0].start
            if not r0 <= first < r0 + band_rows:  # another band's target
                continue
            if (sl[0].start == 0 and top > 0) or (sl[0].stop == m.shape[0] and bottom < h):
                continue  # cut by the halo: keeps its shape
            a0, a1 = max(0, sl[0].start - pad), min(m.shape[0], sl[0].stop + pad)
            b0, b1 = max(0, sl[1].start - pad), min(w, sl[1].stop + pad)
            target = labels[a0:a1, b0:b1] == k
            new = _outline(
                image[a0:a1, b0:b1], finite[a0:a1, b0:b1], target, fraction, grow_px, ring_px
            )
            rows = slice(top + a0, top + a1)
            out[rows, b0:b1] = (np.asarray(out[rows, b0:b1]) & ~target) | new
    return out


def _outline(
    image: np.ndarray,
    finite: np.ndarray,
    target: np.ndarray,
    fraction: float,
    grow_px: int,
    ring_px: int,
) -> np.ndarray:
    """One target's new (h, w) bool outline inside its window (all arrays (h, w))."""
    grown = ndimage.binary_dilation(target, _EIGHT, iterations=grow_px) if grow_px else target
    ring = ndimage.binary_dilation(grown, _EIGHT, iterations=ring_px) & ~grown & finite
    inside = target & finite
    if not ring.any() or not inside.any():
        return target
    background = float(np.median(image[ring]))
    peak = float(image[inside].max())
    if peak <= background:  # cold or flat: nothing to measure an outline against
        return target
    with np.errstate(invalid="ignore"):
        keep = grown & finite & ((image - background) >= fraction * (peak - background))
    pieces, _ = ndimage.label(keep, _EIGHT)
    ids = np.unique(pieces[keep & target])
    return np.isin(pieces, ids[ids > 0])
