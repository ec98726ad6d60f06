"""TinyViT-5M image encoder (the MobileSAM encoder used by IRSAM), written from the spec.

Shapes for the release configuration (input 1024², B = batch):

==============  =====================================  ================================
module          content                                output
==============  =====================================  ================================
patch_embed     Conv-BN 3→32 s2, GELU, Conv-BN 32→64 s2  (B, 64, 256, 256)
layers.0        2 × MBConv(64) + PatchMerging 64→128    tokens (B, 128², 128)
layers.1        2 × TinyViTBlock(128, w=7) + PM →160    tokens (B, 64², 160)  = interm
layers.2        6 × TinyViTBlock(160, w=14) + PM →320   tokens (B, 64², 320)  (stride 1)
layers.3        2 × TinyViTBlock(320, w=7)              tokens (B, 64², 320)
neck            1×1 conv, LN2d, 3×3 conv, LN2d          (B, 256, 64, 64)
==============  =====================================  ================================

Unlike the official code the token grid is not hard-coded: any input whose sides are multiples
of 32 works (the grid is ``H/16 × W/16``), which the native-resolution fast mode relies on.
The attention bias is gathered on every call instead of being cached, so the stale-cache bug of
the release (spec §8.1) cannot happen.

Optional hooks (``wpmd_blocks``) let the paper configuration insert WPMD after the patch
embedding (level 0) and after stage 1 (level 1) without changing any release key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._sam_modeling import sam_modeling

LayerNorm2d = sam_modeling().common.LayerNorm2d
EMBED_DIMS = (64, 128, 160, 320)
DEPTHS = (2, 2, 6, 2)
NUM_HEADS = (2, 4, 5, 10)
WINDOW_SIZES = (7, 7, 14, 7)
#: PatchMerging keeps the resolution (stride 1) when it outputs one of these widths (spec §1.3).
_STRIDE1_OUT_DIMS = (320, 448, 576)


class ConvBN(nn.Sequential):
    """Bias-free Conv2d followed by BatchNorm2d (keys ``c`` and ``bn``)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int = 1,
        stride: int = 1,
        pad: int = 0,
        groups: int = 1,
        bn_weight_init: float = 1.0,
    ) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False))
        bn = nn.BatchNorm2d(cout)
        nn.init.constant_(bn.weight, bn_weight_init)
        nn.init.constant_(bn.bias, 0.0)
        self.add_module("bn", bn)


class PatchEmbed(nn.Module):
    """(B, 3, H, W) → (B, 64, H/4, W/4)."""

    def __init__(self, in_chans: int = 3, embed_dim: int = 64) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            ConvBN(in_chans, embed_dim // 2, 3, 2, 1),
            nn.GELU(),
            ConvBN(embed_dim // 2, embed_dim, 3, 2, 1),
        )

    def forward(
        self, x: torch.Tensor, early: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``early`` (a dict) receives ``"stem2"``: the first conv's output after GELU,
        (B, 32, H/2, W/2)."""
        stem2 = self.seq[1](self.seq[0](x))
        if early is not None:
            early["stem2"] = stem2
        return self.seq[2](stem2)


class MBConv(nn.Module):
    """Inverted residual block; the last GELU comes after the residual add."""

    def __init__(self, dim: int, expand: int = 4) -> None:
        super().__init__()
        hidden = dim * expand
        self.conv1 = ConvBN(dim, hidden, 1)
        self.act1 = nn.GELU()
        self.conv2 = ConvBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = ConvBN(hidden, dim, 1, bn_weight_init=0.0)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.conv1(x))
        y = self.act2(self.conv2(y))
        y = self.conv3(y)
        return self.act3(y + x)


class PatchMerging(nn.Module):
    """(B, cin, H, W) or tokens (B, H·W, cin) → tokens (B, H'·W', cout)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        stride = 1 if cout in _STRIDE1_OUT_DIMS else 2
        self.stride = stride
        self.conv1 = ConvBN(cin, cout, 1)
        self.act = nn.GELU()
        self.conv2 = ConvBN(cout, cout, 3, stride, 1, groups=cout)
        self.conv3 = ConvBN(cout, cout, 1)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        if x.ndim == 3:
            b = x.shape[0]
            x = x.transpose(1, 2).reshape(b, -1, hw[0], hw[1])
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.conv3(x)
        out_hw = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), out_hw


class WindowAttention(nn.Module):
    """TinyViT attention inside one window of w×w tokens with a learned relative bias.

    The ``qkv`` output is laid out per head as ``[q | k | v]`` (spec §1.3), head dim 32.
    The bias for tokens i=(r_i, c_i), j=(r_j, c_j) is ``attention_biases[h, |Δr|·w + |Δc|]``.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = dim // num_heads
        self.scale = self.key_dim**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("attention_bias_idxs", bias_index(window), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B', N, dim) with N = w² → (B', N, dim)."""
        b, n, _ = x.shape
        x = self.norm(x)
        qkv = self.qkv(x).view(b, n, self.num_heads, 3 * self.key_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.key_dim, dim=3)
        bias = self.attention_biases[:, self.attention_bias_idxs]
        attn = (q @ k.transpose(-2, -1)) * self.scale + bias
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, -1)
        return self.proj(out)


def bias_index(window: int) -> torch.Tensor:
    """(w², w²) long tensor: index of the relative-offset bias, |Δr|·w + |Δc|."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ).flatten(1)  # (2, w²), raster order
    delta = (coords[:, :, None] - coords[:, None, :]).abs()
    return delta[0] * window + delta[1]


class TokenMLP(nn.Module):
    """LayerNorm → Linear dim→4dim → GELU → Linear 4dim→dim (keys norm, fc1, fc2)."""

    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention (+residual) → depthwise Conv-BN (no residual) → MLP (+residual)."""

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.attn = WindowAttention(dim, num_heads, window)
        self.local_conv = ConvBN(dim, dim, 3, 1, 1, groups=dim)
        self.mlp = TokenMLP(dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """x: tokens (B, H·W, C) → (B, H·W, C)."""
        h, w = hw
        b, n, c = x.shape
        ws = self.window
        grid = x.view(b, h, w, c)
        pad_b, pad_r = (-h) % ws, (-w) % ws
        if pad_b or pad_r:  # zero padding; padded tokens are not masked (as released)
            grid = F.pad(grid, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        win = grid.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        win = self.attn(win)
        grid = win.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
        x = x + grid[:, :h, :w].reshape(b, n, c)
        x = x.transpose(1, 2).reshape(b, c, h, w)
        x = self.local_conv(x).view(b, c, n).transpose(1, 2)
        return x + self.mlp(x)


class ConvStage(nn.Module):
    """Stage 0: MBConv blocks on (B, C, H, W), then PatchMerging to tokens."""

    def __init__(self, dim: int, depth: int, out_dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim) for _ in range(depth))
        self.downsample = PatchMerging(dim, out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x, (x.shape[2], x.shape[3]))


class AttentionStage(nn.Module):
    """Stages 1–3: TinyViT blocks on tokens, then an optional PatchMerging."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, window: int, out_dim: int | None
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TinyViTBlock(dim, num_heads, window) for _ in range(depth))
        self.downsample = PatchMerging(dim, out_dim) if out_dim is not None else None

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        for blk in self.blocks:
            x = blk(x, hw)
        if self.downsample is not None:
            x, hw = self.downsample(x, hw)
        return x, hw


class TinyViT(nn.Module):
    """TinyViT-5M with the SAM neck.

    ``forward(x)`` takes the normalised image (B, 3, H, W), H and W multiples of 32, and returns
    ``(embedding (B, 256, H/16, W/16), interm (B, H/16, W/16, 160) channels-last)``, as the
    release does. ``forward_with_maps`` also returns the WPMD maps when WPMD blocks are present.
    """

    def __init__(
        self,
        wpmd_blocks: nn.ModuleDict | None = None,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        d = EMBED_DIMS
        self.patch_embed = PatchEmbed(3, d[0])
        self.layers = nn.ModuleList([ConvStage(d[0], DEPTHS[0], d[1])])
        for i in range(1, 4):
            out = d[i + 1] if i < 3 else None
            self.layers.append(AttentionStage(d[i], DEPTHS[i], NUM_HEADS[i], WINDOW_SIZES[i], out))
        # norm_head/head are never called; kept so that checkpoint keys match (spec §1.3).
        self.norm_head = nn.LayerNorm(d[-1])
        self.head = nn.Linear(d[-1], 1000)
        self.neck = nn.Sequential(
            nn.Conv2d(d[-1], out_chans, 1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )
        self.wpmd = wpmd_blocks if wpmd_blocks is not None and len(wpmd_blocks) else None
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding, interm, _ = self.forward_with_maps(x)
        return embedding, interm

    def forward_with_maps(
        self, x: torch.Tensor, early: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, dict[str, torch.Tensor]]]:
        """Like ``forward`` plus ``{level: {"edge": …, "diffused": …}}`` from WPMD blocks.

        When ``early`` is a dict it receives the high-resolution features a fine mask head uses:
        ``"stem2"`` (B, 32, H/2, W/2), the first patch-embedding conv after its GELU, and
        ``"stem4"`` (B, 64, H/4, W/4), the patch embedding after WPMD level 0."""
        maps: dict[str, dict[str, torch.Tensor]] = {}
        x = self._apply_wpmd("0", self.patch_embed(x, early), maps)
        if early is not None:
            early["stem4"] = x
        tokens, hw = self.layers[0](x)
        tokens, hw = self.layers[1](tokens, hw)
        b = tokens.shape[0]
        feat1 = tokens.transpose(1, 2).reshape(b, -1, hw[0], hw[1])
        feat1 = self._apply_wpmd("1", feat1, maps)
        interm = feat1.permute(0, 2, 3, 1)  # channels-last, as released
        tokens = feat1.flatten(2).transpose(1, 2)
        tokens, hw = self.layers[2](tokens, hw)
        tokens, hw = self.layers[3](tokens, hw)
        grid = tokens.transpose(1, 2).reshape(b, -1, hw[0], hw[1])
        return self.neck(grid), interm, maps

    def _apply_wpmd(
        self, level: str, x: torch.Tensor, maps: dict[str, dict[str, torch.Tensor]]
    ) -> torch.Tensor:
        if self.wpmd is None or level not in self.wpmd:
            return x
        out, block_maps = self.wpmd[level](x)
        maps[level] = block_maps
        return out
