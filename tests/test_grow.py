"""Click-to-grow: refuses where nothing stands out, grows what annotators draw (hand-made scenes)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_irsam.grow import NoTargetError, grow_target


def _background(shape=(64, 96), noise=3.0, seed=0, slope=0.3):
    """A sloped background (image units) with Gaussian noise of ``noise`` (σ)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return 100 + slope * xx + rng.normal(0, noise, shape)


def _gaussian(shape, centre, sigma, amp):
    """A Gaussian point target (PSF of ``sigma`` px, peak ``amp``)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return amp * np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2))


def _disc(shape, centre, radius, amp):
    """A flat-topped extended target with a 1-px soft edge; its mask is the pixels ≥ amp / 2."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot(yy - centre[0], xx - centre[1])
    return amp * np.clip(radius + 0.5 - d, 0, 1)


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_click_on_pure_noise_is_refused_with_one_sentence():
    img = _background(noise=3.0, seed=1)
    with pytest.raises(NoTargetError, match="Nothing stands out") as info:
        grow_target(img, (30, 40))
    assert "\n" not in str(info.value) and "below" in str(info.value)
    # and almost never anywhere on the frame: a noise maximum is not a target
    rng = np.random.default_rng(2)
    added = 0
    for r, c in zip(rng.integers(5, 59, 100), rng.integers(5, 91, 100)):
        try:
            grow_target(img, (r, c))
            added += 1
        except NoTargetError:
            pass
    assert added <= 1


def test_flat_integer_sky_is_refused():
    """8-bit flat sky has a MAD of 0: a 1-level bump must not count as infinite SNR."""
    img = np.full((48, 48), 120, np.uint8)
    img[24, 24] = 121
    with pytest.raises(NoTargetError, match="Nothing stands out"):
        grow_target(img, (24, 24))


def test_nan_click_is_refused_and_nan_never_joins_a_target():
    img = _background(noise=2.0) + _gaussian((64, 96), (30, 40), 1.5, 60)
    img[:, 10:14] = np.nan  # a dead band
    with pytest.raises(NoTargetError, match="NaN"):
        grow_target(img, (30, 12))
    img[31, 41] = np.nan  # a dead pixel on the target itself
    res = grow_target(img, (30, 40))
    assert res.mask.any() and not res.mask[31, 41]
    assert not np.isnan(img[res.mask]).any()


def test_gaussian_target_is_grown_to_its_annotated_extent():
    """SIRST annotators outline a blurred target down to about 30 % of its peak contrast (the
    level ``frac`` was tuned to): IoU with that extent ≥ 0.7 on a noisy, sloped background."""
    shape, centre = (64, 96), (32, 48)
    target = _gaussian(shape, centre, 1.8, 50)
    img = _background(noise=2.5, seed=3) + target
    res = grow_target(img, centre)
    assert res.bright and res.seed == centre
    assert _iou(res.mask, target >= 0.3 * 50) >= 0.7


def test_extended_target_is_grown_whole():
    shape, centre = (80, 80), (40, 40)
    target = _disc(shape, centre, 6, 40)  # ≈ 120 px, larger than the first annulus
    img = _background(shape, noise=3.0, seed=4) + target
    res = grow_target(img, (42, 39))  # a click inside, not on the centre
    assert _iou(res.mask, target >= 20) >= 0.8
    assert res.window > 6  # the annulus moved out of the target


@pytest.mark.parametrize("offset", [(2, 2), (-2, 1), (0, -2)])
def test_click_two_pixels_off_snaps_to_the_target(offset):
    shape, centre = (64, 96), (30, 50)
    target = _gaussian(shape, centre, 1.0, 40)
    img = _background(noise=2.0, seed=5) + target
    exact = grow_target(img, centre)
    off = grow_target(img, (centre[0] + offset[0], centre[1] + offset[1]))
    assert off.seed == centre
    assert np.array_equal(off.mask, exact.mask)
    assert exact.mask[target >= 0.5 * 40].all()


def test_size_follows_the_target_not_a_fixed_disc():
    shape = (64, 96)
    img = (
        _background(noise=2.0, seed=6)
        + _gaussian(shape, (32, 24), 1.0, 40)
        + _gaussian(shape, (32, 72), 2.5, 40)
    )
    small = grow_target(img, (32, 24)).mask.sum()
    large = grow_target(img, (32, 72)).mask.sum()
    assert large >= 4 * small  # σ × 2.5 → area × ≈ 6


def test_target_beside_a_cloud_bank_is_still_found():
    """A bright bank filling a quarter of the annulus is left out of the background fit (it is
    not noise, and a step is not a slope)."""
    shape, centre = (64, 64), (10, 10)
    img = _background(shape, noise=3.0, seed=12, slope=0.0)
    img[15:, :] += 300  # cloud bank 5 px below the target
    img += _gaussian(shape, centre, 1.0, 40)
    res = grow_target(img, (11, 10))
    assert res.seed == centre and res.snr > 6 and 3 <= res.mask.sum() <= 15
    assert not res.mask[15:].any()


def test_edges_and_large_clutter_are_refused():
    img = _background(noise=2.0, seed=7)
    img[:, 48:] += 40  # a bright cloud bank: its edge is not a small target
    for click in [(30, 47), (30, 48), (30, 50), (20, 52)]:
        with pytest.raises(NoTargetError, match="Nothing stands out|runs on"):
            grow_target(img, click)


def test_outside_labelled_and_border_clicks_are_refused():
    shape, centre = (64, 96), (32, 48)
    img = _background(noise=2.0, seed=8) + _gaussian(shape, centre, 3.0, 60)
    with pytest.raises(NoTargetError, match="outside"):
        grow_target(img, (70, 5))
    occ = np.zeros(shape, bool)
    occ[:, :48] = True  # the left half of the blob is labelled already
    with pytest.raises(NoTargetError, match="already belongs"):
        grow_target(img, (32, 40), occupied=occ)
    res = grow_target(img, (32, 49), occupied=occ)
    assert res.mask.any() and not (res.mask & occ).any()
    edge = _background(noise=2.0, seed=9) + _gaussian(shape, (0, 30), 1.5, 60)
    with pytest.raises(NoTargetError, match="border"):
        grow_target(edge, (1, 30))
    assert grow_target(edge, (1, 30), border=True).mask[0, 30]


def test_cold_targets_only_when_asked_and_size_cap():
    shape, centre = (64, 96), (32, 48)
    img = _background(noise=2.0, seed=10) - _gaussian(shape, centre, 1.5, 50)
    with pytest.raises(NoTargetError):
        grow_target(img, centre)  # infrared targets are hot by default
    res = grow_target(img, centre, polarity="auto")
    assert not res.bright and _iou(res.mask, _gaussian(shape, centre, 1.5, 50) >= 15) >= 0.6
    with pytest.raises(NoTargetError, match="more than 4 px"):
        grow_target(img, centre, polarity="dark", max_area=4)


def test_probability_widens_a_faint_target():
    shape, centre = (64, 96), (32, 48)
    target = _gaussian(shape, centre, 2.0, 25)
    img = _background(noise=2.0, seed=11) + target
    gt = target >= 0.5 * 25
    prob = np.zeros(shape, np.float32)
    prob[gt] = 0.3  # the model saw the target but below its threshold
    without = grow_target(img, centre, frac=0.7)
    with_prob = grow_target(img, centre, prob=prob, frac=0.7)
    assert with_prob.mask.sum() > without.mask.sum() and with_prob.mask[gt].all()
