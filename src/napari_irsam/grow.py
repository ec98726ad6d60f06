"""Grow a small-target mask from one click (numpy/scipy only).

The rule (adaptive local contrast + region growing; no fixed shape):

1. **Window.** A square window of half-size ``w`` (start ``window``, default 7 → 15×15 px) is
   centred on the click; its *background ring* is the band between the window and a window twice
   as large (pixels already labelled are excluded from it). The background is a plane fitted to
   the ring by least squares (so sloped clutter — sky gradients, cloud edges — is not mistaken for
   contrast) and the noise ``s`` is the ring's robust standard deviation around it (1.4826 × MAD
   of the residuals, floored at 1e-6 of the image range).
2. **Seed.** The click is snapped to the extreme pixel within ``snap`` px (default 2) — the
   brightest, or the darkest when the clicked pixel is below ``b`` (cold targets) — so a click a
   pixel or two off still lands on the target. Its contrast ``c = |I(seed) − b|``.
3. **Threshold.** A pixel belongs to the target when its contrast towards the seed's side is at
   least ``T = max(k·s, frac·c)``: above the noise floor (``k`` = 3 sigmas) and above a fraction of
   the peak contrast (``frac`` = 0.5: the full width at half maximum of a blurred point target).
   If the seed itself is below ``k·s`` there is no target there: :class:`NoTargetError`.
4. **Probability.** With an IRSAM probability map, pixels whose probability is at least half of
   the probability peak near the seed (when that peak is ≥ ``prob_floor``) also qualify; the
   model's response thus widens faint targets that the model saw but did not threshold.
5. **Region growing.** The target is the 8-connected component of qualifying, unlabelled pixels
   that contains the seed. If it touches the window border the window was too small: ``w`` is
   doubled (up to ``max_window``) and steps 1–5 repeat.
6. **Size cap.** If the component is larger than ``max_area`` px, the threshold is raised in steps
   of 10 % of the remaining contrast until it fits; a target that cannot fit → NoTargetError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_EIGHT = np.ones((3, 3), bool)


class NoTargetError(ValueError):
    """The click is not on something that stands out from its local background."""


@dataclass
class GrowResult:
    mask: np.ndarray  #: (H, W) bool, the grown target
    seed: tuple[int, int]  #: (row, col) after snapping
    threshold: float  #: contrast threshold used, image units
    background: float  #: background level b at the click (plane fit)
    noise: float  #: background noise s
    window: int  #: final half-size of the window
    bright: bool  #: True for a target brighter than its background


def _background(
    image: np.ndarray, free: np.ndarray, r: int, c: int, w: int
) -> tuple[np.ndarray, float, tuple[int, int, int, int]]:
    """Plane fitted to the background ring around (r, c) → (plane over the outer box, noise, box).

    The ring is the outer box (half-size 2w) minus the inner window (half-size w), free pixels
    only; the noise is 1.4826 × the median absolute residual.
    """
    h, wd = image.shape
    r0, r1 = max(r - 2 * w, 0), min(r + 2 * w + 1, h)
    c0, c1 = max(c - 2 * w, 0), min(c + 2 * w + 1, wd)
    sub = image[r0:r1, c0:c1]
    ring = free[r0:r1, c0:c1].copy()
    ring[max(r - w - r0, 0) : r + w + 1 - r0, max(c - w - c0, 0) : c + w + 1 - c0] = False
    if ring.sum() < 8:  # the window covers the whole image or everything is labelled
        ring = free[r0:r1, c0:c1] if free[r0:r1, c0:c1].sum() >= 8 else np.ones_like(ring)
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    a = np.stack([np.ones(ring.sum()), yy[ring] - r, xx[ring] - c], axis=1)
    coef, *_ = np.linalg.lstsq(a, sub[ring], rcond=None)
    plane = coef[0] + coef[1] * (yy - r) + coef[2] * (xx - c)
    resid = sub[ring] - plane[ring]
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return plane, noise, (r0, r1, c0, c1)


def grow_target(
    image: np.ndarray,
    click: tuple[float, float],
    prob: np.ndarray | None = None,
    occupied: np.ndarray | None = None,
    *,
    window: int = 7,
    max_window: int = 28,
    snap: int = 2,
    k: float = 3.0,
    frac: float = 0.5,
    prob_floor: float = 0.05,
    max_area: int = 400,
) -> GrowResult:
    """Grow the target under ``click`` (row, col) in an (H, W) ``image``; see the module rule.

    Args:
        image: (H, W) frame, any real dtype (RGB must be converted to grey first).
        prob: optional (H, W) probability in [0, 1] from IRSAM.
        occupied: optional (H, W) bool, pixels already labelled (never taken, not background).
    Raises:
        NoTargetError: the click is outside the image, on a labelled pixel, or on nothing that
            exceeds ``k`` noise sigmas of its local background.
    """
    img = np.asarray(image, np.float64)
    if img.ndim != 2:
        raise ValueError(f"Expected a (H, W) image, got shape {img.shape}.")
    h, wd = img.shape
    r, c = (int(round(v)) for v in click)
    if not (0 <= r < h and 0 <= c < wd):
        raise NoTargetError(f"The click ({r}, {c}) is outside the {h}×{wd} image.")
    free = np.ones_like(img, bool) if occupied is None else ~np.asarray(occupied, bool)
    if not free[r, c]:
        raise NoTargetError(f"Pixel ({r}, {c}) already belongs to a target.")
    span = float(np.ptp(img)) or 1.0
    w = max(int(window), 2)
    while True:
        plane, s, (br0, br1, bc0, bc1) = _background(img, free, r, c, w)
        s = max(s, 1e-6 * span)
        b = float(plane[r - br0, c - bc0])
        bright = img[r, c] >= b
        signed = np.full_like(img, -np.inf)  # contrast towards the target's side, outer box
        diff = img[br0:br1, bc0:bc1] - plane
        signed[br0:br1, bc0:bc1] = diff if bright else -diff
        r0, r1, c0, c1 = (
            max(r - snap, 0),
            min(r + snap + 1, h),
            max(c - snap, 0),
            min(c + snap + 1, wd),
        )
        local = np.where(free[r0:r1, c0:c1], signed[r0:r1, c0:c1], -np.inf)
        dr, dc = np.unravel_index(int(np.argmax(local)), local.shape)
        sr, sc = r0 + int(dr), c0 + int(dc)
        peak = float(signed[sr, sc])
        if peak < k * s:
            raise NoTargetError(
                f"Nothing stands out at ({r}, {c}): contrast {peak / s:.1f} σ of the local "
                f"background, below {k:g} σ. Paint it by hand if it is a target."
            )
        thr = max(k * s, frac * peak)
        wr0, wr1 = max(sr - w, br0), min(sr + w + 1, br1)  # inside the fitted box
        wc0, wc1 = max(sc - w, bc0), min(sc + w + 1, bc1)
        win = signed[wr0:wr1, wc0:wc1]
        extra = np.zeros_like(win, bool)
        if prob is not None:
            p = np.asarray(prob, np.float64)[wr0:wr1, wc0:wc1]
            pr0, pc0 = max(sr - snap - wr0, 0), max(sc - snap - wc0, 0)
            p_peak = float(p[pr0 : sr + snap + 1 - wr0, pc0 : sc + snap + 1 - wc0].max())
            if p_peak >= prob_floor:
                extra = p >= 0.5 * p_peak
        region = _component(win, extra, free[wr0:wr1, wc0:wc1], thr, (sr - wr0, sc - wc0))
        while region.sum() > max_area:
            thr += 0.1 * (peak - thr)
            if peak - thr < 1e-9 * span:
                raise NoTargetError(f"The region at ({r}, {c}) is larger than {max_area} px.")
            extra = np.zeros_like(extra)  # the cap overrules the model's wide response
            region = _component(win, extra, free[wr0:wr1, wc0:wc1], thr, (sr - wr0, sc - wc0))
        touches = (
            (region[0].any() and wr0 > 0)
            or (region[-1].any() and wr1 < h)
            or (region[:, 0].any() and wc0 > 0)
            or (region[:, -1].any() and wc1 < wd)
        )
        if touches and w * 2 <= max_window:
            w *= 2
            continue
        mask = np.zeros((h, wd), bool)
        mask[wr0:wr1, wc0:wc1] = region
        return GrowResult(mask, (sr, sc), thr, b, s, w, bool(bright))


def _component(
    signed: np.ndarray, extra: np.ndarray, free: np.ndarray, thr: float, seed: tuple[int, int]
) -> np.ndarray:
    """The 8-connected component of qualifying free pixels containing ``seed`` (window coords)."""
    ok = ((signed >= thr) | extra) & free
    ok[seed] = True
    lab, _ = ndimage.label(ok, structure=_EIGHT)
    return lab == lab[seed]
