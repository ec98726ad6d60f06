import numpy as np
import pytest

from napari_irsam.classical import CLASSICAL_DETECTORS, detect


def _noise_with_target(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(1000, 10, (96, 128))
    f[40:43, 70:73] += 250  # SNR 25
    return f.astype(dtype)


@pytest.mark.parametrize("name", list(CLASSICAL_DETECTORS))
def test_finds_a_bright_3x3_target(name):
    det = detect(name, _noise_with_target())
    ys, xs = np.nonzero(det.mask)
    assert len(ys) > 0
    assert abs(ys.mean() - 41) < 2 and abs(xs.mean() - 71) < 2
    assert det.mask[41, 71] and det.saliency.dtype == np.float32


@pytest.mark.parametrize("name", list(CLASSICAL_DETECTORS))
def test_quiet_on_flat_input_untouched_and_offset_invariant(name):
    assert not detect(name, np.full((32, 32), 7.0)).mask.any()
    f = _noise_with_target(seed=3)
    f[0, 0] = np.nan  # replaced by the median inside the detector, not in the caller's frame
    before = f.copy()
    det = detect(name, f)
    np.testing.assert_array_equal(f, before)
    # a background level added to the whole frame changes neither saliency nor detections
    shifted = detect(name, f + np.float32(500))
    scale = float(det.saliency.max())
    np.testing.assert_allclose(shifted.saliency, det.saliency, atol=1e-3 * scale)
    assert np.array_equal(shifted.mask, det.mask) and det.mask.any()


#: saliency at a single pixel 90 above a flat background of 10, written out from each definition
#: (module docstring): the top-hat opening and the line medians remove the pixel (S = 90); MPCM's
#: best scale is l = 3 (m₀ = 10 + 90/9, every neighbour patch 10: S = (90/9)²); the frame is
#: large enough for the adaptive threshold mean + k·std to stay below that peak
BY_HAND = {"tophat": 90.0, "maxmedian": 90.0, "mpcm": (90.0 / 9) ** 2}


@pytest.mark.parametrize("name", list(CLASSICAL_DETECTORS))
def test_saliency_of_one_bright_pixel_by_hand(name):
    f = np.full((81, 81), 10.0, np.float32)
    f[40, 40] = 100.0
    det = detect(name, f)
    assert det.saliency[40, 40] == pytest.approx(BY_HAND[name], rel=1e-4)
    assert det.saliency.max() == det.saliency[40, 40] and det.mask[40, 40]


@pytest.mark.parametrize("name", list(CLASSICAL_DETECTORS))
def test_dtypes_nan_and_rgb(name):
    u16 = _noise_with_target(np.uint16)
    assert detect(name, u16).mask[41, 71]
    f = _noise_with_target()
    f[0, 0] = np.nan
    assert np.isfinite(detect(name, f).saliency).all()
    rgb = np.repeat(_noise_with_target()[..., None], 3, axis=2)
    assert detect(name, rgb).mask[41, 71]


def test_bad_input():
    with pytest.raises(ValueError, match="Unknown detector"):
        detect("yolo", np.zeros((8, 8)))
    with pytest.raises(ValueError, match="2-D frame"):
        detect("tophat", np.zeros(8))
    with pytest.raises(ValueError, match="real numbers"):
        detect("tophat", np.zeros((8, 8), complex))


@pytest.mark.parametrize("name", list(CLASSICAL_DETECTORS))
def test_quiet_on_pure_noise_and_all_nan(name):
    noise = np.random.default_rng(5).normal(500, 10, (128, 128)).astype(np.float32)
    assert detect(name, noise).mask.mean() < 1e-3
    assert not detect(name, np.full((16, 16), np.nan)).mask.any()


def test_tophat_square_footprint_and_radius():
    f = _noise_with_target()
    det = detect("tophat", f, footprint="square", radius=3)
    assert det.mask[41, 71] and det.saliency[41, 71] > 100
    # a footprint narrower than the target keeps the target in the opening: no detection there
    assert detect("tophat", f, radius=1).saliency[41, 71] < 30


def test_bad_parameters():
    f = _noise_with_target()
    with pytest.raises(ValueError, match="no parameter sigma"):
        detect("tophat", f, sigma=2)
    with pytest.raises(ValueError, match="radius"):
        detect("tophat", f, radius=0)
    with pytest.raises(ValueError, match="footprint"):
        detect("tophat", f, footprint="hexagon")
    with pytest.raises(ValueError, match="half"):
        detect("maxmedian", f, half=1.5)
    with pytest.raises(ValueError, match="scales"):
        detect("mpcm", f, scales=())
    with pytest.raises(ValueError, match="k must"):
        detect("mpcm", f, k=float("nan"))
