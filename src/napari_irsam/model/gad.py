"""Granularity-Aware Decoder (GAD): SAM's mask decoder + IRSAM's edge token (spec §3).

Built on ``segment_anything``'s :class:`MaskDecoder` (two-way transformer, IoU/mask tokens,
output upscaling, hypernetwork MLPs); the IRSAM additions are written here:

* ``edge_token`` (1, 256) and ``edge_mlp`` (256→256→256→32),
* granularity path G (B, 32, 4h, 4w) from the deep embedding (``embedding_encoder``, release),
  the stage-1 "shallow" features (``compress_vit_feat``) or both (paper text),
* ``embedding_maskfeature`` (two 3×3 *transposed* convs, kept transposed for key compatibility),
* edge gating of the mask logits: ``M ← M · (1 + σ(edge))``.

With an embedding grid h×w (64×64 in the release) the outputs are at 4h×4w (256×256).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ._sam_modeling import sam_modeling

_sam = sam_modeling()
LayerNorm2d = _sam.common.LayerNorm2d
MLP, MaskDecoder = _sam.mask_decoder.MLP, _sam.mask_decoder.MaskDecoder
TwoWayTransformer = _sam.transformer.TwoWayTransformer

GadMode = Literal["deep", "shallow", "both"]
INTERM_CHANNELS = 160


def _upscale_x4(cin: int, mid: int, cout: int) -> nn.Sequential:
    """ConvT(k2,s2) → LN2d → GELU → ConvT(k2,s2): (B, cin, h, w) → (B, cout, 4h, 4w)."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, mid, kernel_size=2, stride=2),
        LayerNorm2d(mid),
        nn.GELU(),
        nn.ConvTranspose2d(mid, cout, kernel_size=2, stride=2),
    )


@dataclass
class DecoderOutput:
    """All GAD outputs for a batch; spatial size 4h×4w of the embedding grid h×w."""

    mask_logits: torch.Tensor  #: (B, 1, 4h, 4w), edge-gated single-mask logits
    edges: torch.Tensor  #: (B, 1, 4h, 4w), edge probability in (0, 1)
    granularity_local: torch.Tensor | None  #: (B, 32, 4h, 4w) compress_vit_feat(F₁) or None
    granularity_global: torch.Tensor  #: (B, 32, 4h, 4w) embedding_encoder(E)
    upscaled: torch.Tensor  #: (B, 32, 4h, 4w) output_upscaling of the transformer's image tokens


class GranularityAwareDecoder(MaskDecoder):
    """SAM mask decoder with IRSAM's edge token and granularity features (keys per spec App. A)."""

    def __init__(self, gad_mode: GadMode = "deep", transformer_dim: int = 256) -> None:
        super().__init__(
            transformer_dim=transformer_dim,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=transformer_dim, mlp_dim=2048, num_heads=8
            ),
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        )
        if gad_mode not in ("deep", "shallow", "both"):
            raise ValueError(f"gad_mode must be 'deep', 'shallow' or 'both', got {gad_mode!r}.")
        self.gad_mode = gad_mode
        d = transformer_dim
        self.edge_token = nn.Embedding(1, d)
        self.edge_mlp = MLP(d, d, d // 8, 3)
        self.compress_vit_feat = _upscale_x4(INTERM_CHANNELS, d, d // 8)
        self.embedding_encoder = _upscale_x4(d, d // 4, d // 8)
        self.embedding_maskfeature = nn.Sequential(
            nn.ConvTranspose2d(d // 8, d // 4, 3, 1, 1),
            LayerNorm2d(d // 4),
            nn.GELU(),
            nn.ConvTranspose2d(d // 4, d // 8, 3, 1, 1),
        )

    def decode(
        self,
        image_embeddings: torch.Tensor,
        interm_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        dense_embeddings: torch.Tensor,
    ) -> DecoderOutput:
        """Prompt-free decoding of a batch.

        Args:
            image_embeddings: E, (B, 256, h, w).
            interm_embeddings: F₁ channels-last, (B, h, w, 160).
            image_pe: dense positional encoding, (1, 256, h, w).
            dense_embeddings: no-mask embedding broadcast, (B, 256, h, w).

        The release runs this once per image; each image is independent in every layer, so the
        batched call gives the same numbers.
        """
        b, c, h, w = image_embeddings.shape
        g_global = self.embedding_encoder(image_embeddings)
        g_local = None
        if self.gad_mode in ("shallow", "both"):
            g_local = self.compress_vit_feat(interm_embeddings.permute(0, 3, 1, 2))
        if self.gad_mode == "deep":
            granularity = g_global
        elif self.gad_mode == "shallow":
            granularity = g_local
        else:
            granularity = g_global + g_local

        tokens = torch.cat(
            [self.iou_token.weight, self.mask_tokens.weight, self.edge_token.weight], dim=0
        )  # (6, 256): iou, 4 mask tokens, edge
        tokens = tokens.unsqueeze(0).expand(b, -1, -1)
        src = image_embeddings + dense_embeddings
        pos = image_pe.expand(b, -1, -1, -1)
        hs, src = self.transformer(src, pos, tokens)

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        edge_features = self.embedding_maskfeature(upscaled) + granularity
        _, cu, hu, wu = upscaled.shape
        # Only mask token 0 is returned (single-mask output); tokens 1–3 still attend.
        w_mask = self.output_hypernetworks_mlps[0](hs[:, 1, :])  # (B, 32)
        w_edge = self.edge_mlp(hs[:, 1 + self.num_mask_tokens, :])  # (B, 32)
        masks = (w_mask.unsqueeze(1) @ upscaled.view(b, cu, hu * wu)).view(b, 1, hu, wu)
        edge_logits = (w_edge.unsqueeze(1) @ edge_features.view(b, cu, hu * wu)).view(b, 1, hu, wu)
        edges = torch.sigmoid(edge_logits)
        masks = masks * (1.0 + edges)
        return DecoderOutput(masks, edges, g_local, g_global, upscaled)
