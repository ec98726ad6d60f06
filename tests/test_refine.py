"""Outline refinement on the image's contrast (napari_irsam.refine), hand-made cases."""

import numpy as np
import pytest

from napari_irsam.calibrate import fit_calibration
from napari_irsam.refine import refine_targets


def _scene():
    """A 64² frame: background 10, one 3×3 target of 110 at rows/cols 20–22."""
    img = np.full((64, 64), 10.0, np.float32)
    img[20:23, 20:23] = 110.0
    gt = img > 50
    return img, gt


def test_too_large_outline_shrinks_to_the_target():
    img, gt = _scene()
    pred = np.zeros_like(gt)
    pred[19:24, 19:24] = True  # one pixel too wide all round (25 px for 9)
    out = refine_targets(img, pred, 0.3)
    assert np.array_equal(out, gt)


def test_shifted_outline_moves_onto_the_target_by_one_pixel():
    img, gt = _scene()
    pred = np.zeros_like(gt)
    pred[21:24, 21:24] = True  # shifted one pixel down-right: IoU 4/14
    out = refine_targets(img, pred, 0.3)
    assert np.array_equal(out, gt)


def test_fraction_zero_cold_targets_and_empty_masks_keep_their_shape():
    img, gt = _scene()
    pred = np.zeros_like(gt)
    pred[19:24, 19:24] = True
    assert np.array_equal(refine_targets(img, pred, 0.0), pred)
    assert np.array_equal(refine_targets(-img, pred, 0.3), pred)  # no brighter than background
    assert not refine_targets(img, np.zeros_like(gt), 0.3).any()
    with pytest.raises(ValueError, match="fraction"):
        refine_targets(img, pred, 1.0)


def test_two_bright_spots_under_one_outline_come_apart_and_nothing_is_added():
    img = np.full((40, 40), 0.0, np.float32)
    img[10:12, 10:12] = 100.0
    img[10:12, 13:15] = 100.0
    img[30, 30] = 100.0  # a bright spot the model did not mark stays unmarked
    pred = np.zeros((40, 40), bool)
    pred[10:12, 10:15] = True
    out = refine_targets(img, pred, 0.3)
    assert out.sum() == 8 and not out[10:12, 12].any() and not out[30, 30]


def test_band_by_band_equals_whole_frame():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 5, (300, 90)).astype(np.float32)
    pred = np.zeros(img.shape, bool)
    for r in range(5, 295, 23):  # targets across every band border
        img[r : r + 3, 40:43] += 60
        pred[r - 1 : r + 3, 39:43] = True
    whole = refine_targets(img, pred, 0.3)
    banded = refine_targets(img, pred, 0.3, out=np.zeros_like(pred), band_rows=16)
    assert np.array_equal(whole, banded) and (whole != pred).any()


def test_calibration_picks_a_refinement_when_outlines_are_blurred():
    rng = np.random.default_rng(1)
    imgs, logits, masks = [], [], []
    for _ in range(6):
        img = rng.normal(20, 1, (48, 48)).astype(np.float32)
        gt = np.zeros((48, 48), bool)
        for r, c in rng.integers(6, 40, (2, 2)):
            img[r : r + 3, c : c + 3] = 120
            gt[r : r + 3, c : c + 3] = True
        lg = np.full((48, 48), -8.0, np.float32)
        lg[np.pad(gt, 1)[:-2, :-2] | np.pad(gt, 1)[2:, 2:] | gt] = 8.0  # a blurred, too-wide mask
        imgs.append(img), logits.append(lg), masks.append(gt)
    plain, _ = fit_calibration(logits, masks)
    cal, rows = fit_calibration(logits, masks, images=imgs)
    assert plain.refine == 0.0 and cal.refine > 0.0
    best = next(
        r
        for r in rows
        if (r.threshold, r.min_peak, r.refine) == (cal.threshold, cal.min_peak, cal.refine)
    )
    assert best.iou > 0.99 and best.reshapes == 0
