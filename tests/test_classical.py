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
def test_quiet_on_flat_and_deterministic(name):
    assert not detect(name, np.full((32, 32), 7.0)).mask.any()
    f = _noise_with_target(seed=3)
    np.testing.assert_array_equal(detect(name, f).saliency, detect(name, f).saliency)


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
