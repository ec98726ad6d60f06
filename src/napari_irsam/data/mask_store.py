"""Masks of very large frames as zarr stores: chunked, compressed, written band by band.

A 20,000² mask is 400 MB as a bool array and a PNG encoder needs all of it (plus its own
buffers) in memory; a zarr array of 1024² chunks is written one band of chunk rows at a time from
a memmap, compresses a sparse mask to a few MB and is read by napari (and dask, and zarr-python)
window by window. ``napari-irsam predict`` writes ``OUT/<name>.zarr`` instead of ``<name>.png``
for frames over :data:`~napari_irsam.targets_large.LARGE_PIXELS`; the plugin's reader opens it as
a Labels layer whose painting goes straight to the store.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 1024
#: attribute that marks a store as one of ours (and says what the values mean)
ATTR = "napari_irsam"


def write_mask_zarr(
    path: str | os.PathLike[str], mask: Any, chunk: int = CHUNK, attrs: dict | None = None
) -> Path:
    """(H, W) mask (bool/0-1/0-255; numpy, memmap, zarr) → zarr array at ``path`` with 0/255
    uint8 values, written atomically: into ``.<name>.partial`` first, renamed when complete."""
    import zarr

    path = Path(path)
    h, w = (int(s) for s in mask.shape[:2])
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    z = zarr.open_array(
        str(tmp), mode="w", shape=(h, w), chunks=(chunk, chunk), dtype="uint8", fill_value=0
    )
    z.attrs[ATTR] = {"kind": "mask", "values": "0 background, 255 target", **(attrs or {})}
    for r0 in range(0, h, chunk):
        band = np.asarray(mask[r0 : r0 + chunk])
        if band.any():  # all-zero chunks are never written: zarr returns the fill value
            z[r0 : r0 + band.shape[0]] = np.where(band > 0, 255, 0).astype(np.uint8)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def is_mask_store(path: str | os.PathLike[str]) -> bool:
    """True for a directory holding a zarr array written by :func:`write_mask_zarr`."""
    p = Path(path)
    if not p.is_dir() or not ((p / "zarr.json").is_file() or (p / ".zarray").is_file()):
        return False
    try:
        import zarr

        return ATTR in zarr.open_array(str(p), mode="r").attrs
    except Exception:  # noqa: BLE001 (not an array, or not readable: not ours)
        return False


def open_mask_zarr(path: str | os.PathLike[str], writable: bool = True) -> Any:
    """The (H, W) uint8 zarr array of a mask store (``r+`` so edits are saved as they happen)."""
    import zarr

    return zarr.open_array(str(path), mode="r+" if writable else "r")
