import math

import numpy as np
import pytest
import torch

from napari_irsam.training.augment import augment, eval_tensor
from napari_irsam.training.losses import irsam_loss, mask_edges, soft_iou_loss


def test_mask_edges_is_the_outline_band():
    m = torch.zeros(1, 1, 9, 9)
    m[..., 3:6, 3:6] = 1
    e = mask_edges(m)[0, 0]
    assert e[4, 4] == 0 and e[3, 3] == 1 and e[2, 2] == 1 and e[0, 0] == 0


def test_soft_iou_loss_bounds():
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2, :2] = 1
    good = torch.where(t > 0, 20.0, -20.0)
    assert soft_iou_loss(good, t) < 1e-6
    assert soft_iou_loss(-good, t) > 0.99


def test_irsam_loss_equals_a_hand_computation():
    """4×4 frame, 2×2 target in the corner. The edge band (3×3 dilation − 3×3 erosion, the border
    not counting as background) is the 3×3 corner minus pixel (0, 0): 8 pixels. With edge
    probability 0.25 everywhere and logits ±2 the three terms are written out by hand."""
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2, :2] = 1
    band = torch.zeros(4, 4)
    band[:3, :3] = 1
    band[0, 0] = 0
    assert torch.equal(mask_edges(t)[0, 0], band)

    logits = torch.where(t > 0, 2.0, -2.0)
    edges = torch.full((1, 1, 4, 4), 0.25)
    edge_bce = (8 * -math.log(0.25) + 8 * -math.log(0.75)) / 16
    p_in, p_out = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(2))
    inter = 4 * p_in
    soft_iou = 1 - (inter + 1e-6) / (4 * p_in + 12 * p_out + 4 - inter + 1e-6)
    mask_bce = (4 * -math.log(p_in) + 12 * -math.log(1 - p_out)) / 16

    loss, parts = irsam_loss(logits, edges, t)
    assert set(parts) == {"loss", "edge_bce", "soft_iou"}
    assert parts["edge_bce"] == pytest.approx(edge_bce, rel=1e-5)
    assert parts["soft_iou"] == pytest.approx(soft_iou, rel=1e-5)
    assert loss.item() == pytest.approx(5 * edge_bce + soft_iou, rel=1e-5)
    assert parts["loss"] == pytest.approx(5 * edge_bce + soft_iou, rel=1e-5)

    loss, parts = irsam_loss(logits, edges, t, edge_weight=2.0, mask_bce_weight=0.5)
    assert parts["mask_bce"] == pytest.approx(mask_bce, rel=1e-5)
    assert loss.item() == pytest.approx(2 * edge_bce + soft_iou + 0.5 * mask_bce, rel=1e-5)
    # the edge term pulls the edge map towards the band: its gradient is negative on the band
    e = edges.clone().requires_grad_(True)
    irsam_loss(logits, e, t)[0].backward()
    assert (e.grad[0, 0][band > 0] < 0).all() and (e.grad[0, 0][band == 0] > 0).all()


def test_augment_shapes_truncation_and_seed():
    img = (np.arange(40 * 30).reshape(40, 30) % 256).astype(np.uint8)
    mask = np.zeros((40, 30), bool)
    mask[10:14, 10:14] = True
    a = augment(img, mask, 32, np.random.default_rng(0))
    b = augment(img, mask, 32, np.random.default_rng(0))
    assert a[0].shape == (3, 32, 32) and a[1].shape == (1, 32, 32)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(a[0], a[0].floor()) and 0 <= a[1].min() and a[1].max() <= 1
    crop = augment(img, mask, 16, np.random.default_rng(1), target_crop=1.0)
    assert crop[1].sum() > 0  # a target-centred crop keeps its target
    assert eval_tensor(img, 16).shape == (3, 16, 16)
