"""Large frames band by band (napari_irsam.banded) give the ordinary path's results."""

import numpy as np
import pytest

from napari_irsam.inference import Predictor
from test_inference import PixelEcho, _expected_prob


class NoFullReads:
    """A lazy (H, W) frame: windows only; converting it whole fails."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.windows = 0

    def __getitem__(self, key):
        rows, cols = key
        if (rows.stop or 0) - (rows.start or 0) >= self.shape[0] and rows.step in (None, 1):
            if (cols.stop or 0) - (cols.start or 0) >= self.shape[1] and cols.step in (None, 1):
                raise AssertionError("the whole frame was read")
        self.windows += 1
        return self.data[key]

    def __array__(self, *a, **k):
        raise AssertionError("the whole frame was materialised")


@pytest.mark.parametrize(
    ("shape", "geometry"), [((100, 130), "tile"), ((75, 200), "auto"), ((90, 40), "tile")]
)
def test_banded_equals_the_ordinary_path_for_uint8(shape, geometry):
    frame = np.random.default_rng(2).integers(0, 256, shape).astype(np.uint8)
    whole = Predictor(PixelEcho(32), "cpu", geometry=geometry, overlap=8).predict_frame(frame)
    banded_p = Predictor(PixelEcho(32), "cpu", geometry=geometry, overlap=8, band_pixels=0)
    banded = banded_p.predict_frame(frame)
    assert banded.edges is None and whole.edges is not None
    np.testing.assert_allclose(banded.prob, whole.prob, atol=1e-6)
    np.testing.assert_allclose(banded.prob, _expected_prob(frame), atol=1e-5)
    assert np.array_equal(banded.mask, whole.mask)


def test_banded_reads_windows_of_a_lazy_frame():
    rng = np.random.default_rng(3)
    data = rng.integers(1000, 3000, (150, 170)).astype(np.uint16)
    lazy = NoFullReads(data)
    p = Predictor(PixelEcho(32), "cpu", geometry="tile", overlap=8, band_pixels=1000)
    [pred] = list(r.prediction for r in p.iter_predict(_Stack(lazy)))
    assert lazy.windows > 30 and pred.prob.shape == (150, 170)
    ordinary = Predictor(PixelEcho(32), "cpu", geometry="tile", overlap=8).predict_frame(data)
    # percentiles from a sample vs the whole frame: the stretch differs by a hair at most
    assert np.mean(pred.mask != ordinary.mask) < 0.01


class _Stack:
    """One lazy frame seen as an (1, H, W) stack."""

    def __init__(self, frame):
        self.frame = frame
        self.shape, self.dtype, self.ndim = (1, *frame.shape), frame.dtype, 3

    def __getitem__(self, i):
        assert i == 0
        return self.frame


def test_a_stack_of_banded_frames_comes_out_in_order():
    model = PixelEcho(32)
    frames = np.random.default_rng(4).integers(0, 256, (3, 40, 40)).astype(np.uint8)
    p = Predictor(model, "cpu", geometry="tile", overlap=8, band_pixels=1500, batch_size=4)
    got = [r.index for r in p.iter_predict(frames)]
    assert got == [0, 1, 2]
    for r in Predictor(PixelEcho(32), "cpu", geometry="tile", band_pixels=1500).iter_predict(
        frames
    ):
        np.testing.assert_allclose(r.prediction.prob, _expected_prob(frames[r.index]), atol=1e-5)
