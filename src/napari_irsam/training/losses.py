"""IRSAM training loss (spec §6): L = 5 · BCE(edge, edges(GT)) + soft-IoU(mask) [+ w · BCE(mask)].

The optional mask BCE term (``mask_bce_weight``, 0 = the spec's loss) gives every pixel a gradient,
which speeds up training from scratch; soft-IoU alone only pulls on the few target pixels.

The edge target is the morphological gradient of the GT mask (3×3 dilation minus 3×3 erosion),
a 1–2 px band on the target outline — the role Canny edges of the binary mask play in the release,
computed in torch so it follows every augmentation exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def mask_edges(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) mask in [0, 1] → (B, 1, H, W) edge band in [0, 1]."""
    dilated = F.max_pool2d(mask, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-mask, 3, stride=1, padding=1)
    return (dilated - eroded).clamp(0, 1)


def soft_iou_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-6,
    all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None,
    world: int = 1,
) -> torch.Tensor:
    """1 − (Σpt + ε)/(Σp + Σt − Σpt + ε) over the whole batch, p = σ(logits).

    Distributed training (``all_sum`` sums a tensor over ``world`` processes, each holding part
    of the batch): the value is that of the *global* batch, and the gradient is this process's
    share of the global gradient times ``world`` (DDP then averages over the processes), so the
    update equals one process training on the whole batch. The ratio of sums does not split into
    a mean of per-process losses, hence this."""
    p = torch.sigmoid(logits)
    inter = (p * target).sum()
    if all_sum is None:
        return 1 - (inter + eps) / (p.sum() + target.sum() - inter + eps)
    psum, tsum = p.sum(), target.sum()
    i_all, p_all, t_all = all_sum(torch.stack([inter, psum, tsum]).detach())
    den = p_all + t_all - i_all + eps
    d_inter = -(den + i_all + eps) / den**2  # ∂loss/∂Σpt (Σpt is also in the denominator)
    d_psum = (i_all + eps) / den**2  # ∂loss/∂Σp
    share = d_inter * (inter - inter.detach()) + d_psum * (psum - psum.detach())  # value 0
    return 1 - (i_all + eps) / den + world * share


def irsam_loss(
    logits: torch.Tensor,
    edges: torch.Tensor,
    target: torch.Tensor,
    edge_weight: float = 5.0,
    mask_bce_weight: float = 0.0,
    all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None,
    world: int = 1,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts. ``logits`` (B,1,H,W), ``edges`` probabilities, ``target`` in [0,1].

    ``all_sum``/``world``: distributed training (see :func:`soft_iou_loss`); the BCE terms are
    means, which DDP's gradient averaging already makes global. The parts are this process's."""
    edge_gt = mask_edges(target)
    bce = F.binary_cross_entropy(edges.float().clamp(1e-6, 1 - 1e-6), edge_gt)
    iou = soft_iou_loss(logits.float(), target, all_sum=all_sum, world=world)
    total = edge_weight * bce + iou
    parts = {"edge_bce": float(bce.detach()), "soft_iou": float(iou.detach())}
    if mask_bce_weight:
        mask_bce = F.binary_cross_entropy_with_logits(logits.float(), target)
        total = total + mask_bce_weight * mask_bce
        parts["mask_bce"] = float(mask_bce.detach())
    parts["loss"] = float(total.detach())
    return total, parts
