"""Predictor numbers that stand-in models make checkable by hand: how overlapping tiles are
blended, one PCA colouring per call, and the probability threshold of the mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_irsam.inference import Predictor
from napari_irsam.model import IRSAMOutput


def _output(logits: torch.Tensor, feats: torch.Tensor) -> IRSAMOutput:
    b, _, h, w = logits.shape
    edge = torch.full((b, 1, h // 4, w // 4), 0.5)
    return IRSAMOutput(
        logits, torch.sigmoid(logits), feats, feats, {"0": {"edge": edge, "diffused": edge}}
    )


class ConstantPerTile(torch.nn.Module):
    """Tile k (in the order the Predictor sends them) gets the constant logit ``values[k]``."""

    def __init__(self, values: list[float], size: int = 32) -> None:
        super().__init__()
        self.image_size, self.values, self.calls = size, values, 0

    def forward_all(self, x: torch.Tensor) -> IRSAMOutput:
        b, _, h, w = x.shape
        logits = torch.cat(
            [torch.full((1, 1, h, w), self.values[self.calls + i]) for i in range(b)]
        )
        self.calls += b
        return _output(logits, torch.zeros(b, 4, h, w))


def test_two_tiles_blend_as_a_linear_ramp_across_their_overlap():
    """A 32×48 frame, 32² tiles overlapping by 16 px: tile 0 covers columns 0–31 (logit −2),
    tile 1 columns 16–47 (logit +2). Each tile's weight ramps over 16 px from its edges
    (``blend_window``), and in the overlap the two ramps sum to 1, so the blended logit goes
    linearly from −2 to +2: at column c, −2 + 4·(c − 15.5)/16. Flat weights would give a step
    to the mean (0) instead."""
    model = ConstantPerTile([-2.0, 2.0])
    frame = np.zeros((32, 48), np.uint8)
    pred = Predictor(
        model, "cpu", geometry="tile", overlap=16, batch_size=1, maps=()
    ).predict_frame(frame)
    assert model.calls == 2
    p = pred.prob.astype(np.float64)
    logit = np.log(p / (1 - p))
    cols = np.arange(48)
    expected = np.clip(-2.0 + 4.0 * (cols - 15.5) / 16.0, -2.0, 2.0)
    for row in (0, 15, 31):  # one row of tiles: every row blends the same way
        np.testing.assert_allclose(logit[row], expected, atol=1e-4)
    assert np.all(np.diff(logit[0, 16:32]) > 0.2)  # strictly rising across the overlap


class PixelFeatures(torch.nn.Module):
    """Logits and features are per-pixel functions of the pixel value v: equal pixels give equal
    features wherever and in whichever frame they are (four independent curves of v, so the PCA
    has three well-defined components)."""

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.image_size = size

    def forward_all(self, x: torch.Tensor) -> IRSAMOutput:
        v = x[:, :1] / 255.0
        feats = torch.cat([v, v**2, torch.sqrt(v), (1 - v) ** 3], dim=1)
        return _output((x[:, :1] - 100.0) / 10.0, feats)


def test_pca_colours_mean_the_same_in_every_frame_of_a_call():
    """Two frames sent in two batches: the right halves are equal, the left halves differ (so a
    PCA fitted on each batch would differ). Equal pixels must get equal colours."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32)).astype(np.uint8)
    b = a.copy()
    b[:, :16] = rng.integers(200, 256, (32, 16))  # a much brighter left half
    preds = Predictor(PixelFeatures(), "cpu", geometry="tile", batch_size=1).predict(
        np.stack([a, b])
    )
    for attr in ("granularity_local", "granularity_global"):
        ca, cb = getattr(preds[0], attr), getattr(preds[1], attr)
        assert ca.shape == (32, 32, 3) and ca.std() > 0.05  # real colours, not a flat map
        np.testing.assert_allclose(cb[:, 16:], ca[:, 16:], atol=1e-5, err_msg=attr)


@pytest.mark.parametrize(("threshold", "first_pixel_value"), [(0.9, 122), (0.5, 101), (0.3, 92)])
def test_mask_is_probability_above_the_threshold(threshold, first_pixel_value):
    """PixelFeatures' probability is σ((v − 100)/10): above ``threshold`` exactly when
    v > 100 + 10·logit(threshold), i.e. from v = 122 (0.9), 101 (0.5), 92 (0.3) on."""
    frame = np.arange(256, dtype=np.uint8).reshape(16, 16)
    pred = Predictor(PixelFeatures(16), "cpu", geometry="tile", threshold=threshold).predict_frame(
        frame
    )
    assert np.array_equal(pred.mask, pred.prob > threshold)
    assert np.array_equal(pred.mask, frame >= first_pixel_value)
