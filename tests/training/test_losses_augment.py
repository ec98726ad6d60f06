import numpy as np
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
    loss, parts = irsam_loss(good, torch.sigmoid(good), t)
    assert set(parts) == {"loss", "edge_bce", "soft_iou"} and loss.item() == parts["loss"]


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
