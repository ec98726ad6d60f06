"""Grow a small-target mask from one click, or refuse when nothing stands out (numpy/scipy only).

The rule: local contrast against a background annulus, then region growing (no fixed shape).
Distances are in pixels (px), levels in image units, σ is the local background noise.

1. **Valid click.** The clicked pixel must lie inside the image, be finite (not NaN/inf) and not
   be labelled yet. Non-finite and labelled pixels never count as background and never join a
   target.
2. **Snap.** Within ``snap`` px of the click (a square: ±2 px per axis by default) the seed is
   the pixel with the brightest 3 × 3 mean, then the single brightest pixel within 1 px of it
   (``polarity="dark"``: darkest, for cold targets; ``"auto"``: whichever deviates more from the
   annulus median). A click a pixel or two off thus lands on the target's peak.
3. **Background.** The annulus ``r_in ≤ d ≤ r_in + max(4, r_in / 2)`` around the seed (Euclidean
   distance; ``r_in`` starts at ``ring`` = 4 px). Pixels more than 3 σ off its median are left
   out (another object, the edge of a cloud bank), a plane is fitted to the rest by least squares
   and refitted without the pixels more than 3 σ off the plane (so a sky gradient is not taken
   for contrast). σ is 1.4826 × the median absolute residual (MAD), at least ``sigma_floor`` ×
   the 5–95 % spread of the kept residuals / 3.29 (textured clutter with heavy tails counts as
   noise), and at least 0.5 for integer data (flat 8-bit sky has a MAD of 0).
4. **Grow.** A pixel joins the target when its contrast to the plane is at least
   ``T = max(frac · c, k_grow · σ)`` (``c``: the seed's contrast; ``frac`` = 0.3: annotators
   outline a blurred target down to about a third of its peak) and it is 8-connected to the seed
   through such pixels inside the disc ``d < r_in``. With an IRSAM probability map, pixels with at
   least half of the probability peak near the seed (when that peak is ≥ ``prob_floor``) also
   qualify.
5. **Stands out?** Two signal-to-noise ratios against the annulus: ``snr`` — the 3 × 3 mean at
   the peak (a matched filter for a target of a few px; noise: the same fit on the 3 × 3-mean
   image, at least σ / 3) must reach ``k`` = 7, and ``snr_peak`` — the peak pixel alone, c / σ —
   must reach ``k_peak`` = 4.
6. **Larger targets.** If the region reaches the annulus (a pixel at ``d ≥ r_in − 1.5``) or the
   test fails, ``r_in`` grows 1.5× (4, 6, 9, 14, 20 px) and steps 3–6 repeat: the annulus leaves
   a target larger than itself. The first ``r_in`` whose region stays inside and passes wins.
7. **Refusals** (:class:`NoTargetError`, one line for the annotator): no ``r_in`` passed
   (*nothing stands out*, with the best SNR), the region reaches the annulus up to ``max_ring``
   (*nothing small*: a cloud edge, a building), it touches the image border (``border=False``),
   it is larger than ``max_area`` px, or fewer than 8 background pixels are usable.

``k``, ``k_peak``, ``frac`` and ``sigma_floor`` were tuned on the SIRST trainval split only
(``benchmarks/bench_grow.py``; numbers in docs/review.md, "Click-to-grow, measured").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_EIGHT = np.ones((3, 3), bool)
_POLARITIES = ("bright", "dark", "auto")


class NoTargetError(ValueError):
    """The click is not on something that stands out from its local background."""


@dataclass
class GrowResult:
    mask: np.ndarray  #: (H, W) bool, the grown target
    seed: tuple[int, int]  #: (row, col) after snapping, px
    threshold: float  #: contrast threshold used, image units
    background: float  #: background level at the seed (plane fit), image units
    noise: float  #: background noise σ, image units
    window: int  #: final inner radius of the background annulus, px
    bright: bool  #: True for a target brighter than its background
    snr: float = 0.0  #: 3 × 3-mean contrast at the peak / its noise (the ``k`` test)
    snr_peak: float = 0.0  #: peak-pixel contrast / σ (the ``k_peak`` test)


def _plane_fit(
    values: np.ndarray, dy: np.ndarray, dx: np.ndarray, integer: bool, sigma_floor: float
) -> tuple[np.ndarray, float]:
    """Robust plane through annulus ``values`` at offsets (dy, dx) px → (coefficients, σ).

    Pixels more than 3 MAD-σ off the median are left out (a step is not a slope), then least
    squares, refitted without the pixels more than 3 MAD-σ off the plane, up to three times.
    σ (image units): the MAD-σ of the kept residuals, at least ``sigma_floor`` × their 5–95 %
    spread / 3.29 (the σ of a Gaussian with that spread) and at least 0.5 for integer data.
    """
    a = np.stack([np.ones_like(dy), dy, dx], axis=1)
    floor = 0.5 if integer else 0.0
    med = float(np.median(values))
    keep = np.abs(values - med) <= 3 * max(1.4826 * float(np.median(np.abs(values - med))), floor)
    if keep.sum() < 8:
        keep[:] = True
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(a[keep], values[keep], rcond=None)
        resid = values - a @ coef
        centre = float(np.median(resid[keep]))
        mad = max(1.4826 * float(np.median(np.abs(resid[keep] - centre))), floor)
        new = np.abs(resid - centre) <= 3 * mad
        if new.sum() < 8 or np.array_equal(new, keep):
            break
        keep = new
    spread = float(np.subtract(*np.percentile(resid[keep], [95, 5]))) / 3.29
    return coef, max(mad, sigma_floor * spread)


def _snap(
    crop: np.ndarray,
    free: np.ndarray,
    mean3: np.ndarray,
    at: tuple[int, int],
    snap: int,
    polarity: str,
    median: float,
) -> tuple[tuple[int, int], tuple[int, int], bool]:
    """Seed near ``at`` (crop coords) → (peak pixel, 3 × 3-mean peak, bright?); see the rule."""
    dev = mean3 - median
    score = {"bright": dev, "dark": -dev, "auto": np.abs(dev)}[polarity]
    s0, s1 = max(at[0] - snap, 0), min(at[0] + snap + 1, crop.shape[0])
    t0, t1 = max(at[1] - snap, 0), min(at[1] + snap + 1, crop.shape[1])
    box = np.where(free[s0:s1, t0:t1], score[s0:s1, t0:t1], -np.inf)
    i, j = np.unravel_index(int(np.argmax(np.nan_to_num(box, nan=-np.inf))), box.shape)
    mr, mc = s0 + int(i), t0 + int(j)
    bright = polarity == "bright" or (polarity == "auto" and bool(dev[mr, mc] >= 0))
    u0, v0 = max(mr - 1, 0), max(mc - 1, 0)
    near = crop[u0 : mr + 2, v0 : mc + 2] * (1.0 if bright else -1.0)
    near = np.where(free[u0 : mr + 2, v0 : mc + 2], near, -np.inf)
    i, j = np.unravel_index(int(np.argmax(near)), near.shape)
    return (u0 + int(i), v0 + int(j)), (mr, mc), bright


def grow_target(
    image: np.ndarray,
    click: tuple[float, float],
    prob: np.ndarray | None = None,
    occupied: np.ndarray | None = None,
    *,
    snap: int = 2,
    k: float = 7.0,
    k_peak: float = 4.0,
    frac: float = 0.3,
    k_grow: float = 2.0,
    sigma_floor: float = 1.0,
    ring: int = 4,
    max_ring: int = 20,
    max_area: int = 400,
    prob_floor: float = 0.05,
    polarity: str = "bright",
    border: bool = False,
) -> GrowResult:
    """Grow the target under ``click`` in an (H, W) ``image``, or refuse; see the module rule.

    Args:
        image: (H, W) frame, any real dtype (RGB must be converted to grey first); NaN/inf
            pixels are missing data.
        click: (row, col) in px of the frame; rounded to the nearest pixel.
        prob: optional (H, W) IRSAM probability in [0, 1] (widens faint targets).
        occupied: optional (H, W) bool, pixels already labelled (never taken, not background).
        snap: half-size in px of the square searched for the peak around the click.
        k: minimum SNR of the 3 × 3 mean at the peak against the annulus.
        k_peak: minimum SNR of the peak pixel alone.
        frac: fraction of the seed's contrast a pixel needs to join the target.
        k_grow: minimum contrast in σ a pixel needs to join the target.
        sigma_floor: σ is at least this × the annulus's Gaussian-equivalent spread; 0 disables.
        ring, max_ring: first and largest inner radius of the background annulus, px.
        max_area: largest target, px.
        prob_floor: probability peak below which ``prob`` is ignored.
        polarity: ``"bright"`` (hot targets, the infrared case), ``"dark"`` or ``"auto"``.
        border: allow regions that touch the image border.
    Raises:
        NoTargetError: a one-line reason (see the module rule, step 7).
    """
    if polarity not in _POLARITIES:
        raise ValueError(f"polarity must be one of {_POLARITIES}, got {polarity!r}.")
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"Expected a (H, W) image, got shape {img.shape}.")
    h, w = img.shape
    r, c = (int(round(float(v))) for v in click)
    if not (0 <= r < h and 0 <= c < w):
        raise NoTargetError(f"The click ({r}, {c}) is outside the {h}×{w} image.")
    if occupied is not None and bool(np.asarray(occupied)[r, c]):
        raise NoTargetError(f"Pixel ({r}, {c}) already belongs to a target.")
    if not np.isfinite(img[r, c]):
        raise NoTargetError(f"No image data at ({r}, {c}) (NaN or inf there); nothing added.")
    # everything happens in a crop around the click
    half = max_ring + max(4, max_ring // 2) + snap + 2
    r0, r1, c0, c1 = max(r - half, 0), min(r + half + 1, h), max(c - half, 0), min(c + half + 1, w)
    crop = img[r0:r1, c0:c1].astype(np.float64)
    valid = np.isfinite(crop)
    free = valid if occupied is None else valid & ~np.asarray(occupied, bool)[r0:r1, c0:c1]
    crop = np.where(valid, crop, 0.0)
    integer = bool(np.all(crop[valid] == np.round(crop[valid])))
    yy, xx = np.mgrid[r0:r1, c0:c1]

    def annulus(at: tuple[int, int], rin: float) -> tuple[np.ndarray, np.ndarray]:
        d = np.hypot(yy - (at[0] + r0), xx - (at[1] + c0))
        return d, free & (d >= rin) & (d <= rin + max(4, rin / 2))

    def too_little() -> NoTargetError:
        return NoTargetError(f"Too little background around ({r}, {c}) to judge a target.")

    num = ndimage.uniform_filter(np.where(free, crop, 0.0), 3, mode="constant")
    den = ndimage.uniform_filter(free.astype(np.float64), 3, mode="constant")
    mean3 = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    median = 0.0
    if polarity == "auto":
        ann = annulus((r - r0, c - c0), ring)[1]
        if ann.sum() < 8:
            raise too_little()
        median = float(np.median(crop[ann]))
    (sr, sc), (mr, mc), bright = _snap(crop, free, mean3, (r - r0, c - c0), snap, polarity, median)
    sign = 1.0 if bright else -1.0

    extra = np.zeros_like(free)
    if prob is not None:
        p = np.nan_to_num(np.asarray(prob, np.float64)[r0:r1, c0:c1])
        p_peak = float(
            p[max(sr - snap, 0) : sr + snap + 1, max(sc - snap, 0) : sc + snap + 1].max()
        )
        if p_peak >= prob_floor:
            extra = (p >= 0.5 * p_peak) & free

    dy, dx = (yy - (sr + r0)).astype(np.float64), (xx - (sc + c0)).astype(np.float64)
    rin, low, found = float(ring), None, False
    while True:
        d, ann = annulus((sr, sc), rin)
        if ann.sum() < 8:
            raise too_little()
        coef, sigma = _plane_fit(crop[ann], dy[ann], dx[ann], integer, sigma_floor)
        sigma = max(sigma, 1e-12)
        signed = sign * (crop - (coef[0] + coef[1] * dy + coef[2] * dx))
        peak = float(signed[sr, sc])
        thr = max(frac * peak, k_grow * sigma)
        ok = ((signed >= thr) | extra) & free & (d < rin)
        ok[sr, sc] = True
        lab, _ = ndimage.label(ok, structure=_EIGHT)
        region = lab == lab[sr, sc]
        touches = bool((d[region] >= rin - 1.5).any())
        coef3, sigma3 = _plane_fit(mean3[ann], dy[ann], dx[ann], False, sigma_floor)
        sigma3 = max(sigma3, sigma / 3)  # a 3 × 3 mean of white noise has σ / 3
        base3 = coef3[0] + coef3[1] * dy[mr, mc] + coef3[2] * dx[mr, mc]
        snr, snr_peak = float(sign * (mean3[mr, mc] - base3)) / sigma3, peak / sigma
        if not touches and snr >= k and snr_peak >= k_peak:
            found = True
            break
        if not touches and (low is None or snr > low[0]):
            low = (snr, snr_peak)
        if rin >= max_ring:
            break
        rin = min(float(np.ceil(rin * 1.5)), float(max_ring))
    if not found and low is not None:
        why = (
            f"contrast {max(low[0], 0):.1f} σ of the local background, below {k:g} σ"
            if low[0] < k
            else f"peak pixel {max(low[1], 0):.1f} σ above the local background, below {k_peak:g} σ"
        )
        raise NoTargetError(
            f"Nothing stands out at ({r}, {c}): {why}. Paint it by hand if it is a target."
        )
    if not found:
        raise NoTargetError(
            f"Nothing small stands out at ({r}, {c}): the {'bright' if bright else 'dark'} region "
            f"runs on beyond {max_ring} px (clutter, an edge?). Paint it by hand if it is a target."
        )
    rows, cols = np.nonzero(region)
    rows, cols = rows + r0, cols + c0
    if not border and (
        rows.min() == 0 or cols.min() == 0 or rows.max() == h - 1 or cols.max() == w - 1
    ):
        raise NoTargetError(
            f"The region at ({r}, {c}) touches the image border, where its background cannot "
            "be judged. Paint it by hand if it is a target."
        )
    if rows.size > max_area:
        raise NoTargetError(f"The region at ({r}, {c}) is {rows.size} px, more than {max_area} px.")
    mask = np.zeros((h, w), bool)
    mask[rows, cols] = True
    return GrowResult(
        mask,
        (sr + r0, sc + c0),
        thr,
        float(coef[0]),
        sigma,
        int(rin),
        bright,
        float(snr),
        float(snr_peak),
    )
