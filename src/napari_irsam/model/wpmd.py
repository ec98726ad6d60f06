r"""Wavelet-based Perona–Malik Diffusion (WPMD): **our documented design**, not the authors'.

The IRSAM paper describes WPMD only in words (a Perona–Malik diffusion whose gradient term is
replaced by a wavelet transform, inserted at several encoder levels); the official release
contains no WPMD at all (spec §2.2). This module is the design of spec §2.5, option B.

For a feature map :math:`x \in \mathbb{R}^{B\times C\times H\times W}`:

1. **Edge strength from an undecimated one-level Haar DWT.** With the 2×2 neighbourhood
   :math:`(a, b; c, d)` at every pixel (replicate padding at the bottom/right border)

   .. math::
      LH = \tfrac12(a + b - c - d),\quad HL = \tfrac12(a - b + c - d),\quad
      HH = \tfrac12(a - b - c + d),\qquad s = \sqrt{LH^2 + HL^2 + HH^2 + \epsilon}

   computed per channel by a fixed (non-trainable) depthwise convolution. ``s`` plays the role of
   :math:`|\nabla u|` in Perona–Malik.
2. **Conductance** :math:`g = 1 / (1 + (s/k)^2)` with a learnable per-channel
   :math:`k = \mathrm{softplus}(\kappa) > 0` (initialised to ``k_init``).
3. **T explicit diffusion steps** (4-neighbourhood, zero flux at the border):

   .. math::
      u^{t+1} = u^t + \lambda \sum_{n \in \{N,S,E,W\}} \tfrac12 (g_p + g_n)\,(u_n - u_p),
      \qquad u^0 = x,\; 0 < \lambda \le 0.25

   using the symmetric (face) conductance, so the scheme conserves the mean and is stable for
   :math:`\lambda \le 1/4` because :math:`g \in (0, 1]`. ``g`` is recomputed from ``u^t`` each step.
4. **Zero-initialised residual:** :math:`y = x + \gamma \odot P(u^T)` with a 1×1 convolution
   :math:`P` and a per-channel scale :math:`\gamma` initialised to 0, so a model initialised
   from ``mobile_sam.pt`` or a release checkpoint produces exactly the release features.

The block returns ``y`` and a dict of display maps: ``"edge"`` — the edge strength of the input
averaged over channels, (B, 1, H, W); ``"diffused"`` — :math:`u^T` averaged over channels,
(B, 1, H, W). Parameters per block: :math:`C^2 + 3C` (1×1 projection, bias, k, γ).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def haar_detail_energy(u: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Undecimated Haar detail magnitude s = √(LH² + HL² + HH² + eps), (B, C, H, W) → same."""
    c = u.shape[1]
    kernels = u.new_tensor(
        [
            [[0.5, 0.5], [-0.5, -0.5]],  # LH: difference between rows
            [[0.5, -0.5], [0.5, -0.5]],  # HL: difference between columns
            [[0.5, -0.5], [-0.5, 0.5]],  # HH: diagonal
        ]
    )
    weight = kernels.repeat(c, 1, 1).unsqueeze(1)  # (3C, 1, 2, 2)
    padded = F.pad(u, (0, 1, 0, 1), mode="replicate")
    detail = F.conv2d(padded, weight, groups=c)  # (B, 3C, H, W), channel-major triples
    b, _, h, w = detail.shape
    return torch.sqrt(detail.view(b, c, 3, h, w).pow(2).sum(2) + eps)


def pm_step(u: torch.Tensor, g: torch.Tensor, lam: float) -> torch.Tensor:
    """One explicit Perona–Malik step with symmetric face conductances and zero border flux."""
    # Differences to the right/bottom neighbour; the flux out of the border is zero.
    du_x = u[..., :, 1:] - u[..., :, :-1]
    du_y = u[..., 1:, :] - u[..., :-1, :]
    flux_x = 0.5 * (g[..., :, 1:] + g[..., :, :-1]) * du_x  # (B, C, H, W-1)
    flux_y = 0.5 * (g[..., 1:, :] + g[..., :-1, :]) * du_y  # (B, C, H-1, W)
    div = F.pad(flux_x, (0, 1)) - F.pad(flux_x, (1, 0))
    div = div + F.pad(flux_y, (0, 0, 0, 1)) - F.pad(flux_y, (0, 0, 1, 0))
    return u + lam * div


class WPMD(nn.Module):
    """Residual WPMD block on a (B, C, H, W) feature map; see the module docstring."""

    def __init__(
        self, channels: int, steps: int = 2, lam: float = 0.2, k_init: float = 1.0
    ) -> None:
        super().__init__()
        if not 0.0 < lam <= 0.25:
            raise ValueError(
                f"WPMD step size lambda must be in (0, 0.25] for stability, got {lam}."
            )
        if steps < 1:
            raise ValueError(f"WPMD needs at least one diffusion step, got {steps}.")
        self.steps = steps
        self.lam = lam
        # softplus^-1(k_init) so that k starts at k_init.
        kappa = torch.full((channels,), float(torch.log(torch.expm1(torch.tensor(k_init)))))
        self.kappa = nn.Parameter(kappa)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(channels))

    @property
    def k(self) -> torch.Tensor:
        """Per-channel conductance scale k > 0, shape (C,)."""
        return F.softplus(self.kappa)

    def conductance(self, s: torch.Tensor) -> torch.Tensor:
        """g = 1 / (1 + (s/k)²) ∈ (0, 1], same shape as s."""
        k = self.k.view(1, -1, 1, 1).to(s.dtype)
        return 1.0 / (1.0 + (s / k).pow(2))

    def diffuse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the T steps; returns (u^T, edge strength of x), both (B, C, H, W)."""
        u = x
        edge0 = None
        for _ in range(self.steps):
            s = haar_detail_energy(u)
            if edge0 is None:
                edge0 = s
            u = pm_step(u, self.conductance(s), self.lam)
        assert edge0 is not None
        return u, edge0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        u, edge = self.diffuse(x)
        y = x + self.gamma.view(1, -1, 1, 1) * self.proj(u)
        maps = {
            "edge": edge.mean(1, keepdim=True).detach(),
            "diffused": u.mean(1, keepdim=True).detach(),
        }
        return y, maps
