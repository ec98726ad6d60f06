"""Flip test-time augmentation: the model sees a batch and its mirror image, logits are averaged.

Training mirrors frames left–right (``training.augment``), so the mirrored view is one the model
was taught to read; averaging the two views' logits removes answers that only one view gives
(isolated false alarms, ragged target borders) for twice the compute. Torch only.
"""

from __future__ import annotations

import torch

from .model.irsam import IRSAM, IRSAMOutput


def forward(model: IRSAM, x: torch.Tensor, flip: bool = False) -> IRSAMOutput:
    """``model.forward_all(x)``, or with ``flip`` the mean of it and its left–right mirror.

    Args:
        x: (B, 3, H, W) float, 0–255, as :meth:`IRSAM.forward_all` takes it.
        flip: also run the mirrored batch (one pass of 2B) and average mask logits and edge
            probabilities, each (B, 1, H, W), in the original orientation. The display features
            (embedding, stage-1 features, WPMD maps) are those of the unmirrored view.
    """
    if not flip:
        return model.forward_all(x)
    n = x.shape[0]
    out = model.forward_all(torch.cat([x, x.flip(-1)]))

    def mean(t: torch.Tensor) -> torch.Tensor:
        return (t[:n].float() + t[n:].float().flip(-1)) / 2

    wpmd = {level: {k: v[:n] for k, v in maps.items()} for level, maps in out.wpmd.items()}
    return IRSAMOutput(
        mean(out.mask_logits), mean(out.edges), out.embedding[:n], out.interm[:n], wpmd
    )
