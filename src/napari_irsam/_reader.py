"""napari reader for infrared frames: TIFF stacks (8/16/32-bit, float), PNG/BMP/JPG, folders."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .data.io import DISPLAY_PERCENTILES, is_image_file, percentile_limits, read_frames

LayerData = tuple[Any, dict[str, Any], str]


def _supported(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return p.is_dir() or is_image_file(p)


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return a reader for a supported path (file, folder or list of files), else None."""
    paths = path if isinstance(path, list) else [path]
    if not paths or not all(_supported(p) for p in paths):
        return None
    return read_infrared


def read_infrared(path: str | list[str]) -> list[LayerData]:
    """Read frames as one image layer with IR-aware contrast; errors are one-sentence ValueErrors."""
    target = (
        path
        if isinstance(path, list) and len(path) > 1
        else (path[0] if isinstance(path, list) else path)
    )
    stack = read_frames(target)
    data = stack.data[0] if stack.data.shape[0] == 1 else stack.data
    lo, hi = percentile_limits(data[..., :3] if stack.rgb else data, *DISPLAY_PERCENTILES)
    first = Path(stack.paths[0])
    name = first.parent.name if Path(str(target)).is_dir() else first.stem
    meta: dict[str, Any] = {
        "name": name,
        "rgb": stack.rgb,
        "metadata": {
            "source_paths": stack.paths,
            "dtype": stack.dtype,
            "frame_names": stack.frame_names,
        },
    }
    if not stack.rgb:
        meta.update(colormap="gray", contrast_limits=(lo, hi))
    return [(data, meta, "image")]
