"""napari writers for Labels layers: a TIFF (stack) or a folder of 0/255 PNG masks (IRSTD)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .data.io import write_mask_png_folder, write_mask_tiff


def write_labels_tiff(path: str, data: Any, meta: dict) -> list[str]:
    """Write label values unchanged to a TIFF (one page per frame)."""
    return [write_mask_tiff(np.asarray(data), path)]


def write_labels_png_folder(path: str, data: Any, meta: dict) -> list[str]:
    """Write ``<path>/<frame name>.png`` per frame, 255 where any label is set."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    names = (meta.get("metadata") or {}).get("frame_names")
    if not names or len(names) != len(arr):
        names = [f"frame_{i:04d}" for i in range(len(arr))]
    folder = Path(path)
    if folder.suffix:  # napari may pass "name.ext"; the folder is the name without it
        folder = folder.with_suffix("")
    return write_mask_png_folder(arr, folder, names)
