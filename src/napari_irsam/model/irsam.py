"""IRSAM assembly: encoder (TinyViT ± WPMD) + prompt-free prompt encoder + GAD decoder.

Configurations (``CONFIGS``):

* ``release`` — parity with the official release: no WPMD, GAD ``deep``, the 512² input is
  nearest-upsampled 2× to 1024² for the encoder, outputs bilinearly resized to 512².
* ``paper`` — the paper's description: our WPMD (after the patch embedding and after stage 1)
  and GAD ``both`` (early stage-1 + deep features). Same geometry as ``release``.
* ``fast`` — ``paper`` with the encoder at native resolution (no 2× upsampling, 4× fewer
  encoder FLOPs); masks are then predicted at 1/4 of the input size instead of 1/2.
* ``native-fine`` — native-resolution encoder with the full-resolution mask head.
* ``paper-256`` — ``paper`` at a 256² input (old name ``default-fast``, see ``CONFIG_ALIASES``).

The model takes its parts in its constructor (like segment-anything's ``Sam``);
:func:`assemble_irsam` builds them from a configuration, :func:`build_irsam` also loads weights.

All configurations keep the 465 release keys (spec Appendix A); WPMD adds ``image_encoder.wpmd.*``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._sam_modeling import sam_modeling
from .fine_head import FineMaskHead
from .gad import GadMode, GranularityAwareDecoder
from .tiny_vit import EMBED_DIMS, TinyViT
from .wpmd import WPMD

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
#: WPMD insertion levels → channels (0: after patch embedding, 1: after stage 1).
WPMD_LEVEL_CHANNELS = {"0": EMBED_DIMS[0], "1": 160}
PositionEmbeddingRandom = sam_modeling().prompt_encoder.PositionEmbeddingRandom
PromptEncoder = sam_modeling().prompt_encoder.PromptEncoder


@dataclass(frozen=True)
class IRSAMConfig:
    """Everything needed to rebuild a model; stored in our checkpoints' metadata."""

    name: str = "release"
    image_size: int = 512  #: side of the square model input (pixels)
    encoder_scale: int = 2  #: nearest-neighbour upsampling before the encoder (release: 2)
    gad_mode: GadMode = "deep"
    wpmd_levels: tuple[str, ...] = ()
    wpmd_steps: int = 2
    wpmd_lambda: float = 0.2
    #: ``"sam"``: the GAD's logits at 1/4 of the encoder input, resized (release);
    #: ``"fine"``: refined to full input resolution by :class:`FineMaskHead`
    mask_head: str = "sam"
    #: dense positional encoding when the token grid differs from the nominal one
    #: (``image_size·encoder_scale/16``): ``"stretch"`` re-normalises coordinates to the new grid
    #: (SAM), ``"tile"`` repeats the nominal grid's encoding so every position looks like one
    #: seen in training (whole frames of any size)
    pe_mode: str = "stretch"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        """``"release"`` geometry (2× upsample) or ``"native"`` (encoder at input size)."""
        return "release" if self.encoder_scale == 2 else f"native-x{self.encoder_scale}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wpmd_levels"] = list(self.wpmd_levels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IRSAMConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown model configuration fields: {sorted(unknown)}.")
        d = dict(d)
        if "wpmd_levels" in d:
            d["wpmd_levels"] = tuple(str(x) for x in d["wpmd_levels"])
        cfg = cls(**d)
        alias = CONFIG_ALIASES.get(cfg.name)
        if alias is not None and replace(cfg, name=alias) == CONFIGS[alias]:
            return CONFIGS[alias]  # a checkpoint saved under an old name of a named config
        return cfg


CONFIGS: dict[str, IRSAMConfig] = {
    "release": IRSAMConfig(name="release"),
    "paper": IRSAMConfig(name="paper", gad_mode="both", wpmd_levels=("0", "1")),
    "fast": IRSAMConfig(name="fast", gad_mode="both", wpmd_levels=("0", "1"), encoder_scale=1),
    #: the bundled default since issue 10: native-resolution encoder, full-resolution mask head,
    #: frames of any size in one pass
    "native-fine": IRSAMConfig(
        name="native-fine",
        image_size=256,
        encoder_scale=1,
        gad_mode="both",
        wpmd_levels=("0", "1"),
        mask_head="fine",
        pe_mode="tile",
    ),
    #: ``paper`` at a 256² input (encoder input 512²): masks at half the input resolution like
    #: the release, at a quarter of its encoder cost; the bundled default's v1 (issue 6) was
    #: trained as it under the name ``default-fast``, although it is not the ``fast`` geometry
    "paper-256": IRSAMConfig(
        name="paper-256", image_size=256, gad_mode="both", wpmd_levels=("0", "1")
    ),
}

#: old configuration names → current ones (checkpoints saved under an old name keep loading)
CONFIG_ALIASES: dict[str, str] = {"default-fast": "paper-256"}


def get_config(config: str | IRSAMConfig | dict[str, Any]) -> IRSAMConfig:
    """Resolve a configuration name, dict or object."""
    if isinstance(config, IRSAMConfig):
        return config
    if isinstance(config, dict):
        return IRSAMConfig.from_dict(config)
    name = CONFIG_ALIASES.get(config, config)
    if name not in CONFIGS:
        raise ValueError(
            f"Unknown IRSAM configuration {config!r}; choose one of {sorted(CONFIGS)}."
        )
    return CONFIGS[name]


class IRSAMPromptEncoder(PromptEncoder):
    """SAM's prompt encoder plus the unused IRSAM buffer ``pe_layer_2`` (2×32), for key parity."""

    def __init__(self, embed_dim: int = 256, grid: int = 64, input_size: int = 1024) -> None:
        super().__init__(
            embed_dim=embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(input_size, input_size),
            mask_in_chans=16,
        )
        self.pe_layer_2 = PositionEmbeddingRandom(32)

    def no_prompt(
        self, batch: int, hw: tuple[int, int], tile: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense PE (1, 256, h, w) and the broadcast no-mask embedding (B, 256, h, w).

        ``tile``: build the PE of a ``tile``×``tile`` grid and repeat it over h×w (see
        ``IRSAMConfig.pe_mode``); None stretches the PE over h×w as SAM does."""
        if tile is None or (hw[0] == tile and hw[1] == tile):
            pe = self.pe_layer(hw).unsqueeze(0)
        else:
            base = self.pe_layer((tile, tile))
            reps = (-(-hw[0] // tile), -(-hw[1] // tile))
            pe = base.repeat(1, *reps)[:, : hw[0], : hw[1]].unsqueeze(0)
        dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, hw[0], hw[1])
        return pe, dense


@dataclass
class IRSAMOutput:
    """Every output of one forward pass, at the model input size S×S unless stated."""

    mask_logits: torch.Tensor  #: (B, 1, S, S)
    edges: torch.Tensor  #: (B, 1, S, S) probabilities
    embedding: torch.Tensor  #: deep features E, (B, 256, h, w)
    interm: torch.Tensor  #: stage-1 features F₁, (B, 160, h, w)
    wpmd: dict[str, dict[str, torch.Tensor]]  #: level → {"edge", "diffused"}, (B, 1, ·, ·)


class IRSAM(nn.Module):
    """The IRSAM model. ``forward(images)`` is the release's forward (spec §1.2 steps 5–6, §1.5).

    Its parts are passed in, as segment-anything's ``Sam`` takes them; :func:`assemble_irsam`
    builds them from a configuration (and :func:`build_irsam` also loads weights).

    Args:
        image_encoder: TinyViT-5M with the SAM neck, carrying its WPMD blocks (if any).
        prompt_encoder: SAM's prompt encoder (used prompt-free: dense PE + no-mask embedding).
        mask_decoder: the granularity-aware decoder (GAD).
        config: the configuration the parts were built from; it is what checkpoints store, so it
            must describe them (WPMD levels, GAD mode, mask head are checked).
        fine_head: the full-resolution mask head of ``mask_head="fine"`` configurations.
    """

    def __init__(
        self,
        image_encoder: TinyViT,
        prompt_encoder: IRSAMPromptEncoder,
        mask_decoder: GranularityAwareDecoder,
        config: IRSAMConfig,
        fine_head: FineMaskHead | None = None,
        pixel_mean: tuple[float, float, float] = PIXEL_MEAN,
        pixel_std: tuple[float, float, float] = PIXEL_STD,
    ) -> None:
        super().__init__()
        _check_parts(config, image_encoder, mask_decoder, fine_head)
        self.config = config
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.fine_head = fine_head
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(pixel_std).view(1, 3, 1, 1), persistent=False
        )

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images: (B, 3, H, W) float, 0–255 (uint8-truncated, not normalised); H·scale and W·scale
        multiples of 16 (512 for the release). Returns ``(mask_logits, edges)``, each
        (B, 1, H, W); edges are probabilities."""
        out = self.forward_all(images)
        return out.mask_logits, out.edges

    def forward_all(self, images: torch.Tensor) -> IRSAMOutput:
        """Like ``forward`` but also returns the features the UI displays."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"IRSAM expects images of shape (B, 3, H, W), got {tuple(images.shape)}."
            )
        h, w = images.shape[-2:]
        scale = self.config.encoder_scale
        if (h * scale) % 16 or (w * scale) % 16:
            raise ValueError(
                f"IRSAM input sides times the encoder scale ({scale}) must be multiples of 16, "
                f"got {h}×{w}."
            )
        x = (images - self.pixel_mean) / self.pixel_std
        if scale != 1:
            x = F.interpolate(x, size=(h * scale, w * scale), mode="nearest")
        early: dict[str, torch.Tensor] | None = {} if self.fine_head is not None else None
        embedding, interm, wpmd_maps = self.image_encoder.forward_with_maps(x, early)
        grid = (embedding.shape[2], embedding.shape[3])
        tile = self.config.image_size * scale // 16 if self.config.pe_mode == "tile" else None
        pe, dense = self.prompt_encoder.no_prompt(images.shape[0], grid, tile)
        dec = self.mask_decoder.decode(embedding, interm, pe, dense)
        size = (h, w)
        if self.fine_head is not None and early is not None:
            logits = self.fine_head(
                dec.mask_logits, dec.upscaled, early["stem4"], early["stem2"], x
            )
            if logits.shape[-2:] != size:  # encoder_scale > 1: back to the input size
                logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        else:
            logits = F.interpolate(dec.mask_logits, size=size, mode="bilinear", align_corners=False)
        edges = F.interpolate(dec.edges, size=size, mode="bilinear", align_corners=False)
        return IRSAMOutput(logits, edges, embedding, interm.permute(0, 3, 1, 2), wpmd_maps)


def _check_config(config: IRSAMConfig) -> None:
    if config.mask_head not in ("sam", "fine"):
        raise ValueError(f"mask_head must be 'sam' or 'fine', got {config.mask_head!r}.")
    if config.pe_mode not in ("stretch", "tile"):
        raise ValueError(f"pe_mode must be 'stretch' or 'tile', got {config.pe_mode!r}.")
    unknown = [lvl for lvl in config.wpmd_levels if lvl not in WPMD_LEVEL_CHANNELS]
    if unknown:
        raise ValueError(
            f"Unknown WPMD levels {unknown}; choose among {sorted(WPMD_LEVEL_CHANNELS)}."
        )


def _check_parts(
    config: IRSAMConfig,
    image_encoder: TinyViT,
    mask_decoder: GranularityAwareDecoder,
    fine_head: FineMaskHead | None,
) -> None:
    """The configuration must describe the parts (it is what a checkpoint rebuilds from)."""
    _check_config(config)
    levels = tuple(image_encoder.wpmd.keys()) if image_encoder.wpmd is not None else ()
    if sorted(levels) != sorted(config.wpmd_levels):
        raise ValueError(
            f"The encoder's WPMD levels {list(levels)} differ from the configuration's "
            f"{list(config.wpmd_levels)}."
        )
    if mask_decoder.gad_mode != config.gad_mode:
        raise ValueError(
            f"The decoder's GAD mode {mask_decoder.gad_mode!r} differs from the configuration's "
            f"{config.gad_mode!r}."
        )
    if (fine_head is not None) != (config.mask_head == "fine"):
        raise ValueError(
            f"mask_head={config.mask_head!r} needs "
            f"{'a' if config.mask_head == 'fine' else 'no'} fine head."
        )


def irsam_parts(config: str | IRSAMConfig | dict[str, Any]) -> dict[str, Any]:
    """The parts :class:`IRSAM` takes, freshly initialised for ``config``: ``image_encoder``
    (TinyViT with its WPMD blocks), ``prompt_encoder``, ``mask_decoder``, ``fine_head`` and the
    resolved ``config``. Built in a fixed order, so a seeded build is reproducible."""
    cfg = get_config(config)
    _check_config(cfg)
    wpmd = nn.ModuleDict(
        {
            lvl: WPMD(WPMD_LEVEL_CHANNELS[lvl], cfg.wpmd_steps, cfg.wpmd_lambda)
            for lvl in cfg.wpmd_levels
        }
    )
    return {
        "image_encoder": TinyViT(wpmd_blocks=wpmd),
        "prompt_encoder": IRSAMPromptEncoder(),
        "mask_decoder": GranularityAwareDecoder(cfg.gad_mode),
        "fine_head": FineMaskHead() if cfg.mask_head == "fine" else None,
        "config": cfg,
    }


def assemble_irsam(config: str | IRSAMConfig | dict[str, Any] = "release") -> IRSAM:
    """A freshly initialised IRSAM (train mode) for ``config``: its parts, then the model."""
    return IRSAM(**irsam_parts(config))


def build_irsam(
    config: str | IRSAMConfig | dict[str, Any] = "release",
    checkpoint: Any = None,
    strict: bool | None = None,
) -> IRSAM:
    """Build an IRSAM model, optionally loading weights.

    Args:
        config: ``"release"``, ``"paper"``, ``"fast"``, an :class:`IRSAMConfig` or its dict.
            When ``checkpoint`` is one of our own checkpoints and ``config`` is left at its
            default, the checkpoint's stored configuration is used.
        checkpoint: a path, a state dict, or one of our checkpoint dicts (see
            :func:`napari_irsam.model.checkpoint.load_checkpoint`).
        strict: passed to ``load_checkpoint``.

    Returns the model in eval mode.
    """
    from .checkpoint import load_checkpoint, read_checkpoint

    cfg = get_config(config)
    loaded = None
    if checkpoint is not None:
        loaded = read_checkpoint(checkpoint)
        if loaded.config is not None and config == "release":
            cfg = IRSAMConfig.from_dict(loaded.config)
    model = assemble_irsam(cfg)
    if loaded is not None:
        load_checkpoint(model, loaded, strict=strict)
    model.eval()
    return model


def with_overrides(config: IRSAMConfig, **changes: Any) -> IRSAMConfig:
    """A copy of ``config`` with some fields changed."""
    return replace(config, **changes)
