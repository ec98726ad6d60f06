"""What one exported sample is — its stored pixels, file name and content key — and the checks
of the folder an export writes to (numpy only; PNGs are decoded with imageio when needed).

Used by :mod:`napari_irsam.data.export`; ``check_target`` and ``is_non_empty`` also by the Export
widget before any work starts.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np


def pixel_key(source: str, image: np.ndarray, mask: np.ndarray) -> str:
    """sha256 of a sample's content: its source, stored pixels (dtype, shape, values) and mask
    (> 0), whatever the PNG encoder makes of them."""
    img = np.ascontiguousarray(image)
    img = img.astype(img.dtype.newbyteorder("<"), copy=False)  # 16-bit: one byte order
    msk = np.asarray(mask) > 0
    h = hashlib.sha256(f"napari-irsam-sample-1\0{source}\0".encode())
    h.update(f"{img.dtype.name}{img.shape}|{msk.shape}\0".encode())
    h.update(img.tobytes())
    h.update(np.packbits(msk).tobytes())
    return h.hexdigest()


def known_keys(folder: Path, samples: list[dict[str, Any]]) -> set[str]:
    """:func:`pixel_key` of every sample exported before; older manifests lack the key, so their
    PNGs are decoded (a missing or damaged file cannot be compared and is passed over)."""
    import imageio.v3 as iio

    keys = set()
    for s in samples:
        key = s.get("pixels_sha256")
        if key is None:
            try:
                img = iio.imread(folder / "images" / f"{s['name']}.png")
                msk = iio.imread(folder / "masks" / f"{s['name']}.png")
            except Exception:  # decoders raise many types
                continue
            key = pixel_key(str(s.get("source", "")), img, msk)
        keys.add(key)
    return keys


def storable_image(frame: np.ndarray) -> np.ndarray:
    if frame.dtype in (np.uint8, np.uint16):
        return frame
    if np.issubdtype(frame.dtype, np.integer) and frame.min() >= 0 and frame.max() < 2**16:
        return frame.astype(np.uint16)
    from ..preprocess import to_model_range

    return to_model_range(frame, "percentile")[..., 0].astype(np.uint8)


def image_format(arr: np.ndarray) -> str:
    """``"png8"`` or ``"png16"``: what :func:`storable_image` output is written as."""
    return "png16" if arr.dtype == np.uint16 else "png8"


def safe_name(name: str) -> str:
    """A file stem that stays one file in images/ and one line in a split file."""
    name = re.sub(r"[\\/\r\n\t:]", "_", str(name)).strip()
    if Path(name).suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"):
        name = name[: -len(Path(name).suffix)] + "_" + Path(name).suffix[1:]  # read_split strips it
    return name.lstrip(".") or "frame"


def is_non_empty(out: str | os.PathLike[str]) -> bool:
    """True when ``out`` exists and is not an empty folder (an export there needs a choice)."""
    out = Path(out)
    return out.exists() and (not out.is_dir() or any(out.iterdir()))


def check_target(out: str | os.PathLike[str], if_exists: str = "error") -> Path:
    """The folder an export to ``out`` would write to; a one-sentence ``ValueError`` if none."""
    if not str(out).strip():
        raise ValueError("Choose an output folder for the export.")
    out = Path(out).expanduser()
    if if_exists not in ("error", "append", "new"):
        raise ValueError(f"if_exists must be 'error', 'append' or 'new', got {if_exists!r}.")
    if not out.parent.is_dir():
        raise ValueError(f"Cannot export to {out}: its parent folder does not exist.")
    if out.exists() and not out.is_dir():
        raise ValueError(f"Cannot export to {out}: it is a file, not a folder.")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ValueError(f"Cannot export to {out}: the folder is not writable.")
    if out.exists() and any(out.iterdir()):
        if if_exists == "error":
            raise ValueError(f"{out} is not empty; choose 'append' or a new folder.")
        if if_exists == "new":
            i = 2
            while Path(f"{out}_{i}").exists():
                i += 1
            return Path(f"{out}_{i}")
        if not (out / "manifest.json").is_file():
            raise ValueError(
                f"{out} is not empty and is not a napari-irsam export (no manifest.json), so "
                "nothing can be appended to it; choose a new folder."
            )
    return out
