"""Click-to-grow: adaptive local contrast + 8-connected region growing."""

from __future__ import annotations

import numpy as np
import pytest

from napari_irsam.grow import NoTargetError, grow_target


def _scene(sigmas=(1.0, 2.0), amp=40.0, noise=3.0, seed=0):
    """Gaussian point targets on a noisy, sloped background; returns image, centres, GT masks."""
    rng = np.random.default_rng(seed)
    h, w = 64, 96
    yy, xx = np.mgrid[:h, :w]
    img = 100 + 0.3 * xx + rng.normal(0, noise, (h, w))
    centres, gts = [], []
    for i, s in enumerate(sigmas):
        cy, cx = 32, 24 + 48 * i
        g = amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
        img += g
        centres.append((cy, cx))
        gts.append(np.abs(g) >= abs(amp) / 2)  # the half-maximum extent
    return img.astype(np.float32), centres, gts


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_size_follows_the_target_not_a_fixed_disc():
    img, centres, gts = _scene()
    small = grow_target(img, (centres[0][0] + 1, centres[0][1] - 1))  # a pixel off
    large = grow_target(img, centres[1])
    assert small.seed == centres[0]  # snapped to the peak
    assert small.mask[gts[0]].all() and small.mask.sum() <= 3 * gts[0].sum()
    assert _iou(large.mask, gts[1]) >= 0.7
    assert large.mask.sum() >= 2.5 * small.mask.sum()  # σ ×2 → half-max area ≈ ×4


def test_background_click_is_refused_with_a_sentence():
    img, _, _ = _scene()
    with pytest.raises(NoTargetError, match="Nothing stands out"):
        grow_target(img, (5, 50))
    with pytest.raises(NoTargetError, match="outside"):
        grow_target(img, (70, 5))


def test_labelled_pixels_are_never_taken_and_cap_holds():
    img, centres, gts = _scene(sigmas=(3.0,), amp=60)
    occ = np.zeros(img.shape, bool)
    occ[:, : centres[0][1]] = True  # left half of the blob already labelled
    res = grow_target(img, (centres[0][0], centres[0][1] + 1), occupied=occ)
    assert not (res.mask & occ).any() and res.mask.any()
    capped = grow_target(img, centres[0], max_area=9)
    assert 0 < capped.mask.sum() <= 9 and capped.mask[centres[0]]


def test_dark_target_and_probability_widen_faint_target():
    img, centres, gts = _scene(sigmas=(1.5,), amp=-40)
    res = grow_target(img, centres[0])
    assert not res.bright and _iou(res.mask, gts[0]) >= 0.6
    faint, centres, gts = _scene(sigmas=(2.0,), amp=14, noise=3.0, seed=3)
    prob = np.zeros(faint.shape, np.float32)
    prob[gts[0]] = 0.3  # the model saw the target but below its threshold
    without = grow_target(faint, centres[0], k=2.0)
    with_prob = grow_target(faint, centres[0], prob=prob, k=2.0)
    assert with_prob.mask.sum() >= without.mask.sum()
    assert _iou(with_prob.mask, gts[0]) >= 0.8
