"""Full-resolution mask head: the GAD's coarse logits refined with early encoder features.

A prompt-free SAM head predicts at 1/4 of the encoder input (stride 4). With the encoder at native
resolution that is a 64×64 grid for a 256² frame, on which an oracle that knows the ground truth
reaches only IoU 47 on SIRST (``shared/anchors.md``): 1–30 px targets do not fit. This head keeps the
GAD (its edge-gated hypernetwork logits stay the coarse prediction) and adds a residual decoded
from features the encoder already computes at higher resolution, U-Net style:

==============================  =====================================  ==================
input                           what                                   shape (input H×W)
==============================  =====================================  ==================
``coarse``                      GAD mask logits (edge-gated)           (B, 1, H/4, W/4)
``upscaled``                    GAD upscaled decoder features U        (B, 32, H/4, W/4)
``stem4``                       patch-embedding output (after WPMD 0)  (B, 64, H/4, W/4)
``stem2``                       first patch-embedding conv (+GELU)     (B, 32, H/2, W/2)
``image``                       normalised input image                 (B, 3, H, W)
==============================  =====================================  ==================

Output: logits (B, 1, H, W) = bilinear×4(coarse) + residual. The residual's last bias starts at
the logit of a prior probability (0.01, as in RetinaNet's focal-loss paper) and its weights at 0,
so an untrained head predicts "background" everywhere instead of noise: on frames that are > 99 %
background this is what makes the first training minutes count. ~46 k parameters, ~1.2 GFLOP per
256² frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._sam_modeling import sam_modeling

LayerNorm2d = sam_modeling().common.LayerNorm2d


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    """3×3 conv → LayerNorm2d → GELU, same size."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), LayerNorm2d(cout), nn.GELU())


class FineMaskHead(nn.Module):
    """Refines stride-4 GAD logits to full-resolution logits (see the module docstring).

    Args:
        decoder_dim: channels of U (32 in SAM's decoder).
        stem4_dim: channels of the patch-embedding output (64 for TinyViT-5M).
        stem2_dim: channels of the first patch-embedding conv (32).
        prior: initial target probability of every pixel.
    """

    def __init__(
        self, decoder_dim: int = 32, stem4_dim: int = 64, stem2_dim: int = 32, prior: float = 0.01
    ) -> None:
        super().__init__()
        self.fuse4 = _conv_block(decoder_dim + stem4_dim + 1, 32)
        self.fuse2 = _conv_block(32 + stem2_dim, 24)
        self.fuse1 = _conv_block(24 + 1, 16)
        self.out = nn.Conv2d(16, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, math.log(prior / (1 - prior)))

    def forward(
        self,
        coarse: torch.Tensor,
        upscaled: torch.Tensor,
        stem4: torch.Tensor,
        stem2: torch.Tensor,
        image: torch.Tensor,
    ) -> torch.Tensor:
        """Shapes in the module docstring; returns (B, 1, H, W) logits."""
        h, w = image.shape[-2:]
        f = self.fuse4(torch.cat([upscaled, stem4, coarse], 1))
        f = F.interpolate(f, size=stem2.shape[-2:], mode="bilinear", align_corners=False)
        f = self.fuse2(torch.cat([f, stem2], 1))
        f = F.interpolate(f, size=(h, w), mode="bilinear", align_corners=False)
        f = self.fuse1(torch.cat([f, image.mean(1, keepdim=True)], 1))
        base = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        return base + self.out(f)
