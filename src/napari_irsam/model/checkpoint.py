"""Reading, checking, loading and saving IRSAM checkpoints.

Accepted inputs (always read with ``torch.load(..., weights_only=True)``):

* an official IRSAM state dict (465 keys, spec Appendix A) — loaded strictly;
* ``mobile_sam.pt`` — loaded with exactly the 26 IRSAM-only keys missing (spec §5.2); any other
  missing or unexpected key is an error that names the keys;
* our own checkpoints: ``{"format": "napari-irsam-checkpoint", "config", "state_dict",
  "metadata", "weights_sha256"}``; the weights hash is verified on load.

A model with WPMD blocks also accepts the first two kinds with its ``image_encoder.wpmd.*`` keys
missing: they keep their zero-initialised residual, so features equal the release's.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "napari-irsam-checkpoint"
FORMAT_VERSION = 1

#: Keys an IRSAM model has and mobile_sam.pt lacks (spec §5.2).
IRSAM_ONLY_KEYS: frozenset[str] = frozenset(
    [
        "mask_decoder.edge_token.weight",
        "prompt_encoder.pe_layer_2.positional_encoding_gaussian_matrix",
    ]
    + [f"mask_decoder.edge_mlp.layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")]
    + [
        f"mask_decoder.{m}.{i}.{p}"
        for m in ("compress_vit_feat", "embedding_encoder", "embedding_maskfeature")
        for i in (0, 1, 3)
        for p in ("weight", "bias")
    ]
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one sentence for the user."""


@dataclass
class LoadedCheckpoint:
    """A checkpoint read from disk or memory, not yet applied to a model."""

    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = "<state dict>"
    sha256: str | None = None  #: sha256 of the file, or of the weights for in-memory dicts


@dataclass
class LoadReport:
    """What ``load_checkpoint`` did."""

    kind: str  #: "irsam" | "irsam-without-wpmd" | "mobile_sam" | "napari-irsam" | "partial"
    missing: list[str]
    unexpected: list[str]
    sha256: str | None
    metadata: dict[str, Any]
    source: str


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Hex sha256 over (key, dtype, shape, bytes) of every tensor, in sorted key order."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refused to load {path.name}: it is not a plain PyTorch weights file, and loading it "
            "any other way could run code from the file."
        ) from exc
    except Exception as exc:  # torch raises many types on junk bytes (RuntimeError, IndexError, …)
        raise CheckpointError(
            f"{path.name} is not a PyTorch checkpoint ({exc.__class__.__name__})."
        ) from exc


def _as_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source} does not contain a state dict of tensors.")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{source} does not contain a state dict of tensors (bad entries: {bad[:3]})."
        )
    return dict(obj)


def read_checkpoint(
    src: str | os.PathLike[str] | Mapping[str, Any] | LoadedCheckpoint,
) -> LoadedCheckpoint:
    """Read a checkpoint file or dict without applying it; see the module docstring."""
    if isinstance(src, LoadedCheckpoint):
        return src
    sha = None
    if isinstance(src, (str, os.PathLike)):
        path = Path(src).expanduser()
        if not path.is_file():
            raise CheckpointError(f"Checkpoint file not found: {path}.")
        source = str(path)
        sha = file_sha256(path)
        obj = _torch_load(path)
    elif isinstance(src, Mapping):
        source, obj = "<state dict>", src
    else:
        raise CheckpointError(
            f"A checkpoint must be a path or a state dict, not {type(src).__name__}."
        )

    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        sd = _as_state_dict(obj.get("state_dict"), source)
        expected = obj.get("weights_sha256")
        if expected and weights_sha256(sd) != expected:
            raise CheckpointError(
                f"{Path(source).name} is corrupted: its weights do not match their sha256."
            )
        return LoadedCheckpoint(
            sd,
            dict(obj.get("config") or {}),
            dict(obj.get("metadata") or {}),
            source,
            sha or expected,
        )
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for wrapper in ("model", "state_dict"):  # common third-party wrappers
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    sd = _as_state_dict(obj, source)
    return LoadedCheckpoint(sd, None, {}, source, sha or weights_sha256(sd))


def _fmt_keys(keys: list[str], n: int = 6) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_checkpoint(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Any] | LoadedCheckpoint,
    strict: bool | None = None,
) -> LoadReport:
    """Load weights into ``model`` after checking keys and shapes.

    Args:
        strict: ``None`` (default) applies the rules of the module docstring; ``True`` requires an
            exact key match; ``False`` loads whatever matches and reports the rest.

    Raises:
        CheckpointError: unreadable file, refused pickle, wrong keys or shapes.
    """
    ckpt = read_checkpoint(path_or_state_dict)
    sd = ckpt.state_dict
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shape_bad = [
        f"{k} {tuple(sd[k].shape)}≠{tuple(own[k].shape)}"
        for k in sorted(set(own) & set(sd))
        if sd[k].shape != own[k].shape
    ]
    name = Path(ckpt.source).name
    if shape_bad:
        raise CheckpointError(
            f"{name} does not fit this model: wrong shapes for {_fmt_keys(shape_bad, 4)}."
        )

    wpmd_keys = {k for k in own if k.startswith("image_encoder.wpmd.")}
    missing_set = set(missing)
    if ckpt.config is not None:
        kind = "napari-irsam"
        allowed: set[str] = set()
    elif not missing and not unexpected:
        kind, allowed = "irsam", set()
    elif missing_set == wpmd_keys:
        kind, allowed = "irsam-without-wpmd", wpmd_keys
    elif missing_set == IRSAM_ONLY_KEYS | wpmd_keys:
        kind, allowed = "mobile_sam", IRSAM_ONLY_KEYS | wpmd_keys
    else:
        kind, allowed = "partial", set()
    if strict:
        allowed = set()
    if strict is not False:
        bad_missing = sorted(missing_set - allowed)
        if bad_missing or unexpected:
            parts = []
            if bad_missing:
                parts.append(f"missing {_fmt_keys(bad_missing)}")
            if unexpected:
                parts.append(f"unexpected {_fmt_keys(unexpected)}")
            raise CheckpointError(f"{name} does not match this IRSAM model: {'; '.join(parts)}.")
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return LoadReport(kind, missing, unexpected, ckpt.sha256, ckpt.metadata, ckpt.source)


def make_checkpoint(
    model: nn.Module, metadata: Mapping[str, Any] | None = None, half: bool = False
) -> dict[str, Any]:
    """Our checkpoint dict for ``model`` (config, state dict, metadata, weights hash).

    ``half=True`` stores floating-point *parameters* as float16 (buffers such as BatchNorm
    statistics and positional-encoding frequencies stay float32).
    """
    params = {k for k, _ in model.named_parameters()}
    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu").clone()
        if half and k in params and v.is_floating_point():
            v = v.half()
        sd[k] = v
    config = model.config.to_dict() if hasattr(model, "config") else {}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "state_dict": sd,
        "metadata": plain(dict(metadata or {})),
        "weights_sha256": weights_sha256(sd),
    }


def plain(obj: Any) -> Any:
    """Metadata as plain Python (dict/list/str/int/float/bool/None), loadable with weights_only."""
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return str(obj)
    return obj


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> str:
    """``torch.save`` to memory, then written atomically (temporary file, fsync, rename: the one
    atomic writer, :func:`napari_irsam.data.io.atomic_write_bytes`). Returns the sha256."""
    from ..data.io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
    half: bool = False,
) -> str:
    """Write our checkpoint format atomically; returns the file's sha256."""
    return atomic_torch_save(make_checkpoint(model, metadata, half), path)
