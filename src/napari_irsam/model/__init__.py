"""IRSAM model (torch only): TinyViT encoder, WPMD, GAD decoder, checkpoints, devices."""

from .checkpoint import (
    IRSAM_ONLY_KEYS,
    CheckpointError,
    LoadReport,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from .device import available_devices, select_device
from .irsam import (
    CONFIG_ALIASES,
    CONFIGS,
    IRSAM,
    IRSAMConfig,
    IRSAMOutput,
    assemble_irsam,
    build_irsam,
    get_config,
    irsam_parts,
)

__all__ = [
    "CONFIG_ALIASES",
    "CONFIGS",
    "IRSAM",
    "IRSAM_ONLY_KEYS",
    "CheckpointError",
    "IRSAMConfig",
    "IRSAMOutput",
    "LoadReport",
    "assemble_irsam",
    "available_devices",
    "build_irsam",
    "get_config",
    "irsam_parts",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "select_device",
]

from .weights import ModelInfo, bundled_default, load_model, registry, resolve_weights  # noqa: E402

__all__ += ["ModelInfo", "bundled_default", "load_model", "registry", "resolve_weights"]
