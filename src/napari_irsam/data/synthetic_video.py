"""Synthetic infrared *recordings*: moving small targets with ground-truth tracks (numpy/scipy).

One recording is N frames of one scene seen by a jittering camera:

* **Scene**: a static background from :func:`~napari_irsam.data.synthetic.make_background`
  (``sky``, ``cloud``, ``sea``, ``ground``: the clouds' bright rims and the buildings' hot corners
  are the static clutter), drawn on a canvas larger than the frame.
* **Camera**: the frame is a crop of the canvas at an offset that pans slowly and jitters:
  ``offset(t) = drift · t + jitter · ε(t)``, ε ~ N(0, 1) per axis, rounded to whole pixels.
  The pan follows the targets (the background drifts past, the targets stay in view); the
  jitter shakes clutter and targets together, as on a hand-held or vehicle-borne camera.
* **Targets**: ``n_targets`` tracks, alternately *point* (Gaussian PSF, σ 0.6–1.3 px) and
  *extended* (soft ellipse, semi-axis 2–3.5 px, noise-modulated outline; one fixed shape per
  track). Each moves at constant velocity in the scene (speed drawn in ``speed_range`` px/frame,
  random heading) plus a small random acceleration, and bounces off a margin of 8 px inside the
  frame. Each track has one SNR drawn uniformly in ``snr_range``; every frame scales it by
  ``1 + 0.15 ε`` (scintillation). SNR = (peak − μ) / σ against the final frame in a 21 × 21
  window around the target, target excluded (the rule of :func:`make_scene`).
* **Flicker clutter**: ``flicker_rate`` transient hot spots per frame on average (Poisson),
  each a one-frame Gaussian blob (σ 0.6–1.2 px, SNR 4–10) at a random place — glints, bad-pixel
  bursts, birds: what a single-frame detector cannot tell from a target and temporal
  consistency should suppress. They are **not** targets: absent from the ground truth.
* **Sensor**: the same model as single scenes (blur, vignetting, fixed-pattern offsets, read and
  shot noise), with fresh noise every frame.
* **Ground truth**: per-frame labels whose value is the **track id** (1..n), from the same rule as
  single scenes (≥ 50 % of the target's own noise-free peak, plus its brightest pixel), and a
  track table with one row per (frame, track): centroid in px of the frame, area, SNR, kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .synthetic import _local_stats, _sensor, _to_dtype, make_background, target_profile

#: columns of :attr:`Recording.tracks` rows
TRACK_COLUMNS = ("frame", "track_id", "row", "col", "area", "snr", "kind")
_MARGIN = 8.0


@dataclass
class Recording:
    """A generated recording with its ground truth."""

    frames: np.ndarray  #: (N, H, W) uint16 / uint8 / float32 (see ``dtype``)
    labels: np.ndarray  #: (N, H, W) int32, value = track id (1..n), 0 = background
    tracks: list[dict] = field(default_factory=list)  #: one row per (frame, track), TRACK_COLUMNS
    camera: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  #: (N, 2) offset, px
    flickers: list[tuple[int, float, float]] = field(default_factory=list)  #: (frame, row, col)
    background: str = ""

    @property
    def n_tracks(self) -> int:
        return len({r["track_id"] for r in self.tracks})

    def track_array(self) -> np.ndarray:
        """(M, 4) float array ``[track_id, frame, row, col]`` (napari Tracks layer order)."""
        if not self.tracks:
            return np.zeros((0, 4))
        return np.array([[r["track_id"], r["frame"], r["row"], r["col"]] for r in self.tracks])


def _trajectories(
    n_frames: int,
    shape: tuple[int, int],
    n_targets: int,
    speed_range: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """(n_targets, N, 2) positions in frame coordinates (camera at rest), bouncing at a margin."""
    h, w = shape
    lo = np.array([_MARGIN, _MARGIN])
    hi = np.array([h - 1 - _MARGIN, w - 1 - _MARGIN])
    out = np.zeros((n_targets, n_frames, 2))
    for i in range(n_targets):  # a handful of targets: a loop over objects, frames vectorised
        pos = rng.uniform(lo + 4, hi - 4)
        heading = rng.uniform(0, 2 * np.pi)
        vel = rng.uniform(*speed_range) * np.array([np.sin(heading), np.cos(heading)])
        acc = rng.normal(0, 0.05, (n_frames, 2))
        for t in range(n_frames):
            out[i, t] = pos
            vel = vel + acc[t]
            pos = pos + vel
            for ax in range(2):  # bounce off the margin
                if pos[ax] < lo[ax] or pos[ax] > hi[ax]:
                    vel[ax] = -vel[ax]
                    pos[ax] = np.clip(
                        2 * np.clip(pos[ax], lo[ax], hi[ax]) - pos[ax], lo[ax], hi[ax]
                    )
    return out


def _profile(
    shape: tuple[int, int], center: tuple[float, float], kind: str, size: float, seed_or_rng
) -> tuple[tuple[slice, slice], np.ndarray]:
    """A unit-peak target profile computed in a window around ``center`` only:
    ``(window slices of the frame, profile in the window)``."""
    half = 14
    y0, x0 = max(int(center[0]) - half, 0), max(int(center[1]) - half, 0)
    y1, x1 = min(int(center[0]) + half + 1, shape[0]), min(int(center[1]) + half + 1, shape[1])
    rng = (
        seed_or_rng
        if isinstance(seed_or_rng, np.random.Generator)
        else np.random.default_rng(seed_or_rng)
    )
    prof = target_profile((y1 - y0, x1 - x0), (center[0] - y0, center[1] - x0), kind, size, rng)
    return (slice(y0, y1), slice(x0, x1)), prof


def _stamp(img: np.ndarray, win: tuple[slice, slice], prof: np.ndarray, snr: float, gt) -> None:
    """Add ``prof`` (unit peak, in window ``win``) in place so that its peak is ``snr`` σ above
    the local background (a 21 × 21 window, target excluded)."""
    iy, ix = (int(v) for v in np.unravel_index(np.argmax(prof), prof.shape))
    sub = img[win]
    mu, sd = _local_stats(sub, iy, ix, ndimage.binary_dilation(gt, iterations=2))
    sub += max(mu + snr * sd - sub[iy, ix], 0.0) * prof


def make_recording(
    n_frames: int = 100,
    shape: tuple[int, int] = (256, 256),
    n_targets: int = 5,
    seed: int = 0,
    background: str = "cloud",
    snr_range: tuple[float, float] = (2.0, 6.0),
    speed_range: tuple[float, float] = (0.5, 2.5),
    jitter: float = 0.7,
    drift: tuple[float, float] | None = None,
    flicker_rate: float = 1.0,
    noise: float = 0.01,
    dtype: str = "uint16",
) -> Recording:
    """Generate a recording; see the module docstring for the model.

    Args:
        n_frames: N. shape: (H, W) of a frame in px. n_targets: tracks (alternately point and
            extended). seed: everything is drawn from it.
        background: ``sky``, ``cloud``, ``sea``, ``ground`` or ``random``.
        snr_range: per-track SNR, drawn uniformly. speed_range: px/frame.
        jitter: camera shake, σ in px per axis. drift: camera pan in px/frame (default: drawn
            in ±0.3). flicker_rate: mean number of one-frame hot spots per frame (not targets).
        noise: read-noise σ of the sensor (frame values are about 0–1 before ``dtype``).
        dtype: ``"uint16"`` (default: a thermal camera), ``"uint8"`` or ``"float32"``.
    """
    if n_frames < 1 or n_targets < 0:
        raise ValueError("A recording needs at least one frame and a non-negative target count.")
    rng = np.random.default_rng(seed)
    h, w = shape
    drift_v = rng.uniform(-0.3, 0.3, 2) if drift is None else np.asarray(drift, float)
    pan = drift_v[None] * np.arange(n_frames)[:, None]
    offsets = pan + jitter * rng.standard_normal((n_frames, 2))
    offsets = np.round(offsets - offsets.min(0)).astype(int)  # ≥ 0: crops of the canvas
    pad = offsets.max(0)
    kind = (
        str(rng.choice(("sky", "cloud", "sea", "ground"))) if background == "random" else background
    )
    canvas = make_background((h + int(pad[0]), w + int(pad[1])), kind, rng)
    paths = _trajectories(n_frames, shape, n_targets, speed_range, rng)
    kinds = ["point" if i % 2 == 0 else "extended" for i in range(n_targets)]
    sizes = [rng.uniform(0.6, 1.3) if k == "point" else rng.uniform(2.0, 3.5) for k in kinds]
    snrs = rng.uniform(*snr_range, n_targets)
    shape_seeds = rng.integers(0, 2**31, n_targets)
    # the operator pans with the targets (they stay in view) but cannot hold the camera still:
    # a target is seen displaced by the jitter part of the camera motion
    shift = offsets - offsets[0] - np.round(pan)
    frames, labels, rows, flickers = [], [], [], []
    for t in range(n_frames):
        oy, ox = offsets[t]
        img = _sensor(canvas[oy : oy + h, ox : ox + w], rng, 0.5, noise).astype(np.float64)
        lab = np.zeros(shape, np.int32)
        for _ in range(rng.poisson(flicker_rate)):
            cy, cx = rng.uniform(4, h - 4), rng.uniform(4, w - 4)
            win, prof = _profile(shape, (cy, cx), "point", rng.uniform(0.6, 1.2), rng)
            _stamp(img, win, prof, rng.uniform(4.0, 10.0), prof >= 0.5)
            flickers.append((t, float(cy), float(cx)))
        for i in range(n_targets):
            cy, cx = paths[i, t] - shift[t]
            if not (2 <= cy <= h - 3 and 2 <= cx <= w - 3):
                continue  # shaken out of the frame this once
            win, prof = _profile(shape, (cy, cx), kinds[i], sizes[i], int(shape_seeds[i]))
            gt = prof >= 0.5
            gt[np.unravel_index(np.argmax(prof), prof.shape)] = True
            snr = float(snrs[i] * max(1 + 0.15 * rng.standard_normal(), 0.3))
            _stamp(img, win, prof, snr, gt)
            gt &= lab[win] == 0
            lab[win][gt] = i + 1
            rr, cc = np.nonzero(gt)
            rr, cc = rr + win[0].start, cc + win[1].start
            rows.append(
                {
                    "frame": t,
                    "track_id": i + 1,
                    "row": float(rr.mean()),
                    "col": float(cc.mean()),
                    "area": int(rr.size),
                    "snr": snr,
                    "kind": kinds[i],
                }
            )
        frames.append(img)
        labels.append(lab)
    stack = _to_dtype(np.stack(frames), dtype)
    return Recording(stack, np.stack(labels), rows, offsets.astype(float), flickers, kind)
