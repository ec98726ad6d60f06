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
from .irsam import CONFIGS, IRSAM, IRSAMConfig, IRSAMOutput, build_irsam, get_config

__all__ = [
    "CONFIGS",
    "IRSAM",
    "IRSAM_ONLY_KEYS",
    "CheckpointError",
    "IRSAMConfig",
    "IRSAMOutput",
    "LoadReport",
    "available_devices",
    "build_irsam",
    "get_config",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "select_device",
]

from .weights import ModelInfo, bundled_default, load_model, registry, resolve_weights  # noqa: E402

__all__ += ["ModelInfo", "bundled_default", "load_model", "registry", "resolve_weights"]
