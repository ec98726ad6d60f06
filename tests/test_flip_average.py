"""Flip test-time augmentation (napari_irsam.flip_average) through the model and the Predictor."""

import numpy as np
import pytest
import torch

from napari_irsam import flip_average
from napari_irsam.inference import Predictor
from napari_irsam.model import IRSAMConfig, IRSAMOutput, build_irsam
from test_inference import PixelEcho, _expected_prob


class LeftBiased(PixelEcho):
    """PixelEcho plus a left-to-right logit ramp from −2 to +2 across each tile: the ramp is not
    mirror-symmetric, so only the average of a view and its mirror cancels it exactly."""

    def forward_all(self, x: torch.Tensor) -> IRSAMOutput:
        out = super().forward_all(x)
        ramp = torch.linspace(-2.0, 2.0, x.shape[-1]).view(1, 1, 1, -1)
        return IRSAMOutput(out.mask_logits + ramp, out.edges, out.embedding, out.interm, out.wpmd)


@pytest.mark.parametrize("band_pixels", [None, 0])  # ordinary path and band by band
def test_flip_average_cancels_what_is_not_mirror_symmetric(band_pixels):
    frame = np.random.default_rng(4).integers(0, 256, (40, 56)).astype(np.uint8)
    kw = {"geometry": "tile", "overlap": 8, "band_pixels": band_pixels}
    plain = Predictor(LeftBiased(32), "cpu", **kw).predict_frame(frame)
    flipped = Predictor(LeftBiased(32), "cpu", tta=True, **kw).predict_frame(frame)
    np.testing.assert_allclose(flipped.prob, _expected_prob(frame), atol=1e-5)
    assert np.abs(plain.prob - _expected_prob(frame)).max() > 0.05  # the ramp shows without it


def test_flip_average_runs_one_batch_of_both_views():
    model = LeftBiased(32)
    x = torch.rand(3, 3, 32, 32) * 255
    out = flip_average.forward(model, x, flip=True)
    assert model.calls == 1 and out.mask_logits.shape == (3, 1, 32, 32)
    assert flip_average.forward(model, x, flip=False).mask_logits.shape == (3, 1, 32, 32)


def test_flip_average_of_a_real_model_is_the_mean_of_two_passes():
    torch.manual_seed(0)
    model = build_irsam(IRSAMConfig(name="t", image_size=64, wpmd_levels=("0",))).eval()
    x = torch.rand(2, 3, 64, 64) * 255
    with torch.inference_mode():
        both = flip_average.forward(model, x, flip=True)
        a, b = model.forward_all(x), model.forward_all(x.flip(-1))
    expected = (a.mask_logits + b.mask_logits.flip(-1)) / 2
    torch.testing.assert_close(both.mask_logits, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(both.edges, (a.edges + b.edges.flip(-1)) / 2, atol=1e-4, rtol=1e-4)
    # the display features are the unmirrored view's
    torch.testing.assert_close(both.interm, a.interm, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(both.wpmd["0"]["edge"], a.wpmd["0"]["edge"], atol=1e-4, rtol=1e-4)
