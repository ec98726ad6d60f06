"""Input checks, intensity mapping and tiling geometry for the predictor (numpy/torch only).

Intensity: the model was trained on 8-bit images (0–255). uint8 frames pass through unchanged;
16-bit, integer and float frames are mapped to 0–255 by a robust percentile stretch (NaN/±inf are
ignored when computing the percentiles and then set to the low end).

Geometry (``mode``):

* ``"squash"`` — the official path: bilinear resize to S×S (aspect ratio not kept), back with
  bilinear; this is the only mode that reproduces the release numerically.
* ``"auto"`` (default) — frames no larger than S are upscaled by at most ``max_upscale`` keeping
  the aspect ratio and padded (symmetric) to S×S; larger frames are tiled at native resolution.
* ``"tile"`` — never rescale: pad small frames, tile large ones.

Tiles of S×S overlap by ``overlap`` pixels and are blended with a linear ramp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .data.io import percentile_limits

GEOMETRIES = ("auto", "squash", "tile")
INTENSITIES = ("auto", "percentile", "none")


def as_frame_stack(frames: np.ndarray, rgb: bool | None = None) -> tuple[np.ndarray, bool]:
    """Validate input and return ``(stack, single)``.

    ``stack`` is (N, H, W) or (N, H, W, C) with C in {3, 4}; ``single`` says the input was one
    frame. ``rgb=None`` treats a trailing axis of 3 or 4 as colour when ``ndim`` is 3 or 4.

    Raises:
        TypeError: not an array of real numbers (bool, complex, object, strings).
        ValueError: 0-d/1-d/5-d input, empty stack, or an empty frame.
    """
    # a lazy stack (data.lazy.LazyFrames, dask, zarr, memmap) is checked by shape and dtype and
    # read frame by frame later, never converted whole here
    lazy = not isinstance(frames, np.ndarray) and all(
        hasattr(frames, a) for a in ("shape", "dtype", "ndim", "__getitem__")
    )
    arr = frames if lazy else np.asarray(frames)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(
            f"Frames must hold real numbers (uint8, uint16, int or float), not {arr.dtype}."
        )
    if arr.ndim < 2 or arr.ndim > 4:
        raise ValueError(
            f"Expected a 2-D frame or a stack of frames, got an array with {arr.ndim} dimension(s)."
        )
    if rgb is None:
        rgb = arr.ndim >= 3 and arr.shape[-1] in (3, 4)
    if rgb and arr.shape[-1] not in (3, 4):
        raise ValueError(
            f"An RGB frame needs 3 or 4 channels in its last axis, got shape {arr.shape}."
        )
    single = arr.ndim == (3 if rgb else 2)
    if single:
        arr = arr[None]
    if arr.ndim != (4 if rgb else 3):
        raise ValueError(f"Cannot interpret an array of shape {np.shape(frames)} as frames.")
    if arr.shape[0] == 0:
        raise ValueError("The stack is empty: there are no frames to segment.")
    if arr.shape[1] < 2 or arr.shape[2] < 2:
        raise ValueError(f"Frames must be at least 2×2 pixels, got {arr.shape[1]}×{arr.shape[2]}.")
    return arr, single


def to_grey(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) → (H, W) float32 luminance (ITU-R BT.601 weights; alpha dropped)."""
    rgb = frame[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_model_range(
    frame: np.ndarray,
    intensity: str = "auto",
    percentiles: tuple[float, float] = (0.5, 99.99),
    limits: tuple[float, float] | None = None,
) -> np.ndarray:
    """One frame (H, W) or (H, W, 3|4) → float32 (H, W, 3) on the 0–255 scale.

    ``limits``: (lo, hi) of the stretch computed elsewhere (a tile of a large frame uses the
    whole frame's), instead of this frame's percentiles."""
    if intensity not in INTENSITIES:
        raise ValueError(f"intensity must be one of {INTENSITIES}, got {intensity!r}.")
    f = frame[..., :3] if frame.ndim == 3 else frame
    if intensity == "none" or (intensity == "auto" and f.dtype == np.uint8):
        out = np.nan_to_num(f.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        out = np.clip(out, 0.0, 255.0)
    else:
        lo, hi = percentile_limits(f, *percentiles) if limits is None else limits
        out = (f.astype(np.float32) - lo) * (255.0 / (hi - lo))
        out = np.clip(np.nan_to_num(out, nan=0.0, posinf=255.0, neginf=0.0), 0.0, 255.0)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return out


def resize_hw(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False, no antialias) of (B, C, H, W) or (H, W) tensors."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.ndim == 2:
        return F.interpolate(x[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class TilePlan:
    """How one frame of (H, W) maps to model tiles of S×S."""

    frame_hw: tuple[int, int]
    scaled_hw: tuple[int, int]  #: frame size after rescaling (before padding)
    canvas_hw: tuple[int, int]  #: padded size that the tiles cover
    origins: tuple[tuple[int, int], ...]  #: top-left corner of each tile in the canvas
    squash: bool = False
    tile_hw: tuple[int, int] | None = None  #: tile size; None = the model's S×S
    pad: str = "symmetric"  #: how the canvas is padded: "symmetric" or "median" (constant)

    def tile_size(self, size: int) -> tuple[int, int]:
        """(th, tw) of this plan's tiles for a model of input side ``size``."""
        return self.tile_hw if self.tile_hw is not None else (size, size)


def tile_overlap(size: int, overlap: int) -> int:
    """The overlap in px actually used between tiles of side ``size``: at most half the tile,
    so a small model input (e.g. 64 px with the default 64 px overlap) still advances by half a
    tile instead of 1 px (which made tens of thousands of tiles per frame)."""
    return max(0, min(int(overlap), int(size) // 2))


def _starts(length: int, size: int, overlap: int) -> list[int]:
    if length <= size:
        return [0]
    stride = max(1, size - tile_overlap(size, overlap))
    starts = list(range(0, length - size, stride))
    return starts + [length - size]


def plan_tiles(
    hw: tuple[int, int], size: int, mode: str = "auto", max_upscale: float = 2.0, overlap: int = 64
) -> TilePlan:
    """Plan the geometry of one frame; see the module docstring."""
    if mode not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {mode!r}.")
    h, w = hw
    if mode == "squash":
        return TilePlan(hw, (size, size), (size, size), ((0, 0),), squash=True)
    scale = 1.0
    if mode == "auto" and max(h, w) <= size:
        scale = min(size / max(h, w), max_upscale)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    ch, cw = max(sh, size), max(sw, size)
    origins = tuple((y, x) for y in _starts(ch, size, overlap) for x in _starts(cw, size, overlap))
    return TilePlan(hw, (sh, sw), (ch, cw), origins)


def plan_native(
    hw: tuple[int, int], max_side: int = 1024, overlap: int = 64, multiple: int = 32
) -> TilePlan:
    """Geometry for models that take frames of any size (tiled positional encoding): the frame
    at its own resolution, padded with its median grey to multiples of ``multiple`` px, in one
    pass when both sides fit in ``max_side``, else in ``max_side`` tiles overlapping by
    ``overlap`` px. Costs scale with the frame's pixels and 1–3 px targets are never resampled."""
    if max_side % multiple:
        raise ValueError(f"max_side must be a multiple of {multiple}, got {max_side}.")
    h, w = hw
    ch, cw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    th, tw = min(ch, max_side), min(cw, max_side)
    origins = tuple((y, x) for y in _starts(ch, th, overlap) for x in _starts(cw, tw, overlap))
    return TilePlan(hw, hw, (ch, cw), origins, tile_hw=(th, tw), pad="median")


def render_canvas(image: np.ndarray, plan: TilePlan) -> np.ndarray:
    """(H, W, 3) float 0–255 → the uint8-truncated, resized and padded canvas (Hc, Wc, 3)."""
    t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    t = resize_hw(t, plan.scaled_hw)
    # uint8 truncation as in the release pre-processing (values are already in 0–255).
    canvas = t[0].to(torch.uint8).permute(1, 2, 0).numpy()
    ph = plan.canvas_hw[0] - plan.scaled_hw[0]
    pw = plan.canvas_hw[1] - plan.scaled_hw[1]
    if (ph or pw) and plan.pad == "median":
        fill = np.median(canvas[..., 0]).astype(np.uint8)
        canvas = np.pad(canvas, ((0, ph), (0, pw), (0, 0)), constant_values=fill)
    elif ph or pw:
        canvas = np.pad(canvas, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
    return canvas


def blend_window(size: int | tuple[int, int], overlap: int) -> np.ndarray:
    """(S, S) — or (th, tw) — float32 weights: a linear ramp over ``overlap`` pixels at each
    side, floor 1e-3."""
    th, tw = (size, size) if isinstance(size, int) else size
    if overlap <= 0:
        return np.ones((th, tw), np.float32)

    def ramp(n: int) -> np.ndarray:
        width = max(1, tile_overlap(n, overlap))
        r = np.minimum(1.0, (np.minimum(np.arange(n), np.arange(n)[::-1]) + 0.5) / width)
        return np.maximum(r, 1e-3).astype(np.float32)

    return np.outer(ramp(th), ramp(tw))
