"""Segment one very large frame band by band: no full-frame float copy (torch/numpy only).

The ordinary :class:`~napari_irsam.inference.Predictor` path maps the whole frame to an
(H, W, 3) float32 image, renders a padded uint8 canvas and blends every tile into full-frame
float32 accumulators (≈ 40 B per pixel: 16 GB for a 20,000² frame). Here, for frames over
``Predictor.band_pixels`` that are processed at native resolution (every geometry but
``"squash"`` for frames larger than the model input):

* the intensity stretch's percentiles come from a strided sample of the frame
  (:func:`~napari_irsam.data.io.percentile_limits`), the median padding value from that sample;
* each tile is read from the source (a memmap or a zarr/dask window reads only that window),
  stretched to uint8 and padded on its own;
* tiles run one row of tiles at a time; their blended logits live in a band of ``tile height``
  rows × canvas width, and the rows no later tile touches are turned into probabilities and
  written out before the next row of tiles starts.

The results, the float32 probability map and the bool mask (5 B/px), are written band by band
into arrays that live on disk above :data:`RESULT_BYTES` (:func:`~napari_irsam.data.lazy.
new_output_array`: a memmap of an unlinked file, its pages the kernel's to drop), so a
20,000² frame does not hold 2 GB of results in process memory.
Results equal the ordinary path where the stretch limits agree (uint8 frames, or percentiles that
the sample reproduces); GAD edges, WPMD and granularity maps are not computed (``None``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import flip_average, targets_large
from .data.io import percentile_limits
from .data.lazy import new_output_array
from .model.device import autocast_for
from .preprocess import plan_native, plan_tiles, to_model_range
from .refine import refine_targets

#: result arrays of a banded frame over this many bytes are disk-backed memmaps
RESULT_BYTES = 64 * 2**20
#: tile side for any-size models here: with 1024² tiles (the encoder of the bundled default sees
#: 2048²) a 1100² frame peaked at 1.6 GB of anonymous memory; with 512² tiles a whole 20,000²
#: frame peaked at 0.98 GB (measured, bf16), for 15 % more overlap work
TILE_SIDE = 512


def _window(
    frame: Any,
    y: int,
    x: int,
    th: int,
    tw: int,
    intensity: str,
    limits: tuple[float, float] | None,
    pad: str,
    fill: int,
) -> np.ndarray:
    """The (th, tw, 3) uint8 tile at canvas origin (y, x): read, stretched, truncated, padded."""
    h, w = frame.shape[:2]
    win = np.asarray(frame[y : min(y + th, h), x : min(x + tw, w)])
    tile = to_model_range(win, intensity, limits=limits).astype(np.uint8)
    ph, pw = th - tile.shape[0], tw - tile.shape[1]
    if ph or pw:
        if pad == "median":
            tile = np.pad(tile, ((0, ph), (0, pw), (0, 0)), constant_values=fill)
        else:
            tile = np.pad(tile, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
    return tile


def predict_banded(
    predictor: Any, frame: Any, should_stop: Callable[[], bool] | None = None
) -> Any:
    """One large (H, W) or (H, W, C) frame → a :class:`~napari_irsam.inference.Prediction`
    with ``prob`` and ``mask`` only; ``frame`` may be a numpy array, a memmap or a dask/zarr
    array (only windows are read). Returns None when ``should_stop()`` turned True."""
    from .inference import Prediction

    started = time.perf_counter()
    p = predictor
    frame = _source(frame)
    h, w = (int(s) for s in frame.shape[:2])
    grey_like = frame if frame.ndim == 2 else frame[..., :3]
    uint8 = np.dtype(frame.dtype) == np.uint8
    limits = None
    if p.intensity == "percentile" or (p.intensity == "auto" and not uint8):
        limits = percentile_limits(grey_like, *p.percentiles)
    if p.geometry == "auto" and p.any_size:
        plan = plan_native((h, w), min(p.max_side, TILE_SIDE), p.overlap)
    else:
        plan = plan_tiles((h, w), p.size, p.geometry, p.max_upscale, p.overlap)
    if plan.scaled_hw != (h, w) or plan.squash:
        raise ValueError("Banded segmentation needs a native-resolution plan.")
    fill = 0
    if plan.pad == "median":
        step = max(1, int(np.sqrt(h * w / 1e6)))
        sample = np.asarray(grey_like[::step, ::step])
        fill = int(np.median(to_model_range(sample, p.intensity, limits=limits)[..., 0]))
    th, tw = plan.tile_size(p.size)
    cw = plan.canvas_hw[1]
    ys = sorted({y for y, _ in plan.origins})
    xs = sorted({x for _, x in plan.origins})
    weight = p._weights((th, tw), len(plan.origins) > 1)
    prob = new_output_array((h, w), np.float32, limit=RESULT_BYTES)
    mask = new_output_array((h, w), bool, limit=RESULT_BYTES)
    carry_l = np.zeros((0, cw), np.float32)
    carry_w = np.zeros((0, cw), np.float32)
    for k, y in enumerate(ys):
        band_l = np.zeros((th, cw), np.float32)
        band_w = np.zeros((th, cw), np.float32)
        band_l[: len(carry_l)] += carry_l
        band_w[: len(carry_w)] += carry_w
        for b in range(0, len(xs), p.batch_size):
            if should_stop is not None and should_stop():
                return None
            chunk = xs[b : b + p.batch_size]
            tiles = [
                _window(frame, y, x, th, tw, p.intensity, limits, plan.pad, fill) for x in chunk
            ]
            logits = _forward(p, np.stack(tiles))
            for x, lg in zip(chunk, logits):
                band_l[:, x : x + tw] += lg * weight
                band_w[:, x : x + tw] += weight
        done = (ys[k + 1] if k + 1 < len(ys) else y + th) - y
        rows = slice(y, min(y + done, h))
        n = rows.stop - rows.start
        if n > 0:
            p_rows = p.probability(band_l[:n, :w] / band_w[:n, :w])
            prob[rows] = p_rows
            mask[rows] = p_rows > p.threshold
        carry_l, carry_w = band_l[done:], band_w[done:]
    if p.min_peak > p.threshold:  # targets may span bands: filtered once the frame is whole
        targets_large.drop_weak_targets(mask, prob, p.min_peak)
    if p.refine:  # outlines on the image, band by band into a second disk-backed mask
        out = new_output_array((h, w), bool, limit=RESULT_BYTES)
        mask = refine_targets(frame, mask, p.refine, out=out, band_rows=targets_large.BAND_ROWS)
    return Prediction(
        prob=prob,
        mask=mask,
        edges=None,
        seconds=time.perf_counter() - started,
    )


def _source(frame: Any) -> Any:
    """A dask array of one block (a PNG/JPG is one delayed read) is decoded once, not per tile;
    memmaps and chunked (zarr/TIFF-tile) arrays are read window by window."""
    chunks = getattr(frame, "chunks", None)
    if hasattr(frame, "dask") and chunks is not None and all(len(c) == 1 for c in chunks[:2]):
        return np.asarray(frame)
    return frame


@torch.inference_mode()
def _forward(predictor: Any, tiles: np.ndarray) -> np.ndarray:
    """(B, th, tw, 3) uint8 tiles → (B, th, tw) float32 mask logits."""
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2).to(predictor.device, torch.float32)
    with autocast_for(predictor.device, predictor.precision):
        out = flip_average.forward(predictor.model, x, predictor.tta)
    return out.mask_logits.float()[:, 0].cpu().numpy()
