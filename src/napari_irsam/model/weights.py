"""Weights registry: the bundled ``default`` checkpoint, ``mobile_sam`` (downloaded with pooch when
online), and user checkpoint files.

The cache folder is ``$NAPARI_IRSAM_CACHE`` or the platform cache dir (``pooch.os_cache``).
Nothing is downloaded unless a user asks for ``mobile_sam`` and it is not cached yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import CheckpointError, file_sha256

CACHE_ENV = "NAPARI_IRSAM_CACHE"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class WeightsEntry:
    """A known checkpoint."""

    name: str
    filename: str
    sha256: str | None  #: None only while a bundled file has not been produced yet
    url: str | None = None  #: download address, for entries that are not bundled
    config: str = "release"  #: configuration to build when the file carries none
    description: str = ""


MOBILE_SAM = WeightsEntry(
    name="mobile_sam",
    filename="mobile_sam.pt",
    sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
    url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
    config="release",
    description="MobileSAM (Apache-2.0) encoder/decoder; IRSAM-only parts untrained.",
)


def _bundled_registry() -> dict[str, WeightsEntry]:
    """Entries for checkpoints shipped inside the package (``weights/*.pt`` + ``registry.json``)."""
    import json

    reg = BUNDLED_DIR / "registry.json"
    if not reg.is_file():
        return {}
    entries = {}
    for item in json.loads(reg.read_text()):
        entries[item["name"]] = WeightsEntry(**item)
    return entries


def registry() -> dict[str, WeightsEntry]:
    """All known named checkpoints."""
    return {**_bundled_registry(), MOBILE_SAM.name: MOBILE_SAM}


def cache_dir() -> Path:
    """Where downloaded weights live (``$NAPARI_IRSAM_CACHE`` overrides)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("napari-irsam"))


def bundled_default() -> Path | None:
    """Path of the bundled ``default`` checkpoint, or None when this build has none."""
    entry = _bundled_registry().get("default")
    if entry is None:
        return None
    path = BUNDLED_DIR / entry.filename
    return path if path.is_file() else None


def resolve_weights(name_or_path: str | os.PathLike[str], download: bool = True) -> Path:
    """Turn ``"default"``, ``"mobile_sam"`` or a file path into a verified local path.

    Raises:
        CheckpointError: unknown name, checksum mismatch, or a file that cannot be fetched
            (the message says where to put it when offline).
    """
    name = str(name_or_path)
    entries = registry()
    if name == "default" and name not in entries:
        raise CheckpointError(
            "This installation has no bundled default checkpoint yet; give a checkpoint file, "
            "mobile_sam, or a classical detector (tophat, maxmedian, mpcm)."
        )
    if name not in entries:
        path = Path(name).expanduser()
        if path.is_file():
            return path
        raise CheckpointError(
            f"{name!r} is neither a checkpoint file nor a known model ({', '.join(sorted(entries))})."
        )
    entry = entries[name]
    if entry.url is None:  # bundled
        path = BUNDLED_DIR / entry.filename
        if not path.is_file():
            raise CheckpointError(
                f"The bundled {name!r} checkpoint is missing from this installation."
            )
    else:
        path = cache_dir() / entry.filename
        if not path.is_file():
            if not download:
                raise CheckpointError(
                    f"{entry.filename} is not cached; put it at {path} or allow the download."
                )
            path = _download(entry)
    if entry.sha256 and file_sha256(path) != entry.sha256:
        raise CheckpointError(f"{path} does not match the sha256 registered for {name!r}.")
    return path


def _download(entry: WeightsEntry) -> Path:
    import pooch

    target = cache_dir()
    try:
        fetched = pooch.retrieve(
            entry.url,
            known_hash=f"sha256:{entry.sha256}",
            fname=entry.filename,
            path=target,
            progressbar=False,
        )
    except Exception as exc:  # network errors come in many types
        raise CheckpointError(
            f"Could not download {entry.filename} ({exc.__class__.__name__}); without internet, "
            f"download it elsewhere from {entry.url} and put it at {target / entry.filename}."
        ) from exc
    return Path(fetched)


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of a loaded model, recorded in layer metadata and exports."""

    model_id: str  #: registry name or file name
    path: str
    sha256: str
    config: str  #: configuration name
    mode: str  #: geometry mode of the configuration ("release" or "native-xN")
    kind: str  #: what load_checkpoint recognised

    def as_metadata(self) -> dict[str, str]:
        return {
            "model_id": self.model_id,
            "checkpoint": self.path,
            "checkpoint_sha256": self.sha256,
            "config": self.config,
            "mode": self.mode,
        }


def load_model(name_or_path: str | os.PathLike[str] = "default", config: str | None = None):
    """Build an IRSAM model from a registry name or a checkpoint file.

    Our checkpoints carry their configuration; for plain state dicts ``config`` (or the registry
    entry's, or ``"release"``) is used. Returns ``(model, ModelInfo)``.
    """
    from .calibration import Calibration
    from .checkpoint import load_checkpoint, read_checkpoint
    from .irsam import assemble_irsam

    path = resolve_weights(name_or_path)
    loaded = read_checkpoint(path)
    entry = registry().get(str(name_or_path))
    cfg = loaded.config or (config or (entry.config if entry else "release"))
    model = assemble_irsam(cfg)
    kind = load_checkpoint(model, loaded).kind
    model.eval()
    model.calibration = Calibration.from_metadata(loaded.metadata)
    info = ModelInfo(
        model_id=str(name_or_path) if entry else path.name,
        path=str(path),
        sha256=loaded.sha256 or file_sha256(path),
        config=model.config.name,
        mode=model.config.mode,
        kind=kind,
    )
    return model, info
