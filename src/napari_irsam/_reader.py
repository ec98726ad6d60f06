"""napari reader for infrared frames: TIFF stacks (8/16/32-bit, float), PNG/BMP/JPG, folders.

Thin over :mod:`napari_irsam.data.io`: headers are checked first (a frame over the pixel limit is
refused with one notification, nothing is allocated), big stacks open lazily (memmap / dask), and a
folder of frames of different sizes opens as one layer per size, with a notification saying so.
A ``<name>.zarr`` mask store written by ``napari-irsam predict`` for a very large frame opens as a
Labels layer backed by the store itself: painting edits the file on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .data.io import (
    DISPLAY_PERCENTILES,
    FrameStack,
    is_image_file,
    percentile_limits,
    read_frame_groups,
)
from .data.thermal import stack_warnings

LayerData = tuple[Any, dict[str, Any], str]
#: npe2's "read, but no layers" value: a refused file is a notification, not an exception
NO_LAYERS: list[Any] = [(None,)]


def _supported(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return p.is_dir() or is_image_file(p)


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return a reader for a supported path (file, folder or list of files), else None."""
    from .data.mask_store import is_mask_store

    if not isinstance(path, list) and is_mask_store(path):
        return read_mask_store
    paths = path if isinstance(path, list) else [path]
    if not paths or not all(_supported(p) for p in paths):
        return None
    return read_infrared


def read_mask_store(path: str) -> list[LayerData]:
    """A ``predict`` mask store → one Labels layer on the (writable) zarr array: 255 = target."""
    from .data.mask_store import open_mask_zarr

    z = open_mask_zarr(path)
    meta = {"name": f"{Path(path).stem} mask", "metadata": {"source_paths": [str(path)]}}
    return [(z, meta, "labels")]


def _notify(message: str, error: bool = False) -> None:
    from napari.utils.notifications import show_error, show_info

    (show_error if error else show_info)(message)


def _layer(stack: FrameStack, name: str) -> LayerData:
    """One image layer of a stack, with IR-aware contrast (from a sample if it is lazy)."""
    data = stack.data[0] if stack.data.shape[0] == 1 else stack.data
    lo, hi = percentile_limits(data[..., :3] if stack.rgb else data, *DISPLAY_PERCENTILES)
    meta: dict[str, Any] = {
        "name": name,
        "rgb": stack.rgb,
        "metadata": {
            "source_paths": stack.paths,
            "dtype": stack.dtype,
            "frame_names": stack.frame_names,
            **stack.metadata,  # "thermal": camera parameters and timestamps (data.thermal)
        },
    }
    if not stack.rgb:
        meta.update(colormap="gray", contrast_limits=(lo, hi))
    return (data, meta, "image")


def read_layers(path: str | list[str]) -> list[LayerData]:
    """The layers of ``path``; errors are one-sentence ``ValueError``/``FileNotFoundError``."""
    target = (
        path
        if isinstance(path, list) and len(path) > 1
        else (path[0] if isinstance(path, list) else path)
    )
    groups = read_frame_groups(target)
    for warning in [w for g in groups for w in stack_warnings(g)]:  # DJI, cut-short recording
        _notify(warning)
    is_dir = not isinstance(target, list) and Path(str(target)).is_dir()
    first = Path(groups[0].paths[0])
    name = first.parent.name if is_dir else first.stem
    if len(groups) == 1:
        return [_layer(groups[0], name)]
    sizes = []
    layers = []
    for g in groups:
        h, w = g.data.shape[1:3]
        sizes.append(f"{w}×{h} ({len(g.frame_names)} frame(s))")
        layers.append(_layer(g, f"{name} [{w}×{h}]"))
    where = f"The folder {name}" if is_dir else "These files"
    _notify(
        f"{where} holds frames of {len(groups)} sizes, opened as {len(groups)} layers: "
        f"{', '.join(sizes)}."
    )
    return layers


def read_infrared(path: str | list[str]) -> list[LayerData]:
    """Read frames as image layers; a file that cannot be opened (missing, unreadable, over the
    pixel limit) is one error notification and no layer, never a traceback."""
    try:
        return read_layers(path)
    except (ValueError, OSError) as exc:
        _notify(str(exc), error=True)
        return NO_LAYERS
