"""View helpers of the "Review targets" widget: stepping to a frame, centring the camera on a
target, mapping a click to a frame pixel, which frames a napari paint event touched.

Frame geometry ((…, H, W) layers seen as (N, H, W) stacks) is :mod:`._frames`, re-exported here
for the review modules; names of Run IRSAM's outputs are :mod:`._layers`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ._frames import (  # noqa: F401 (the review modules use them as view.*)
    current_frame,
    data_shape,
    flat,
    grey_frame,
    lead_shape,
    n_frames,
    nd_indices,
)
from ._layers import output_name  # noqa: F401


def same_layer(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same napari layer.

    A widget opened from the Plugins menu gets a ``PublicOnlyProxy`` of the viewer: layers reached
    through it are proxies, layers in events and iterations are not, so ``a is b`` is unreliable.
    ``unique_id`` is public, the same through the proxy, and never reused.
    """
    if a is None or b is None:
        return False
    return getattr(a, "unique_id", object()) == getattr(b, "unique_id", object())


def world_to_frame_pixel(layer: Any, world: Sequence[float]) -> tuple[int, float, float] | None:
    """World position → (flat frame, row, col) in ``layer``; None outside its leading axes."""
    pos = np.asarray(layer.world_to_data(world), float)
    lead = lead_shape(layer)
    idx = [int(round(float(p))) for p in pos[: len(lead)]]
    if any(not 0 <= i < s for i, s in zip(idx, lead, strict=True)):
        return None
    frame = int(np.ravel_multi_index(idx, lead)) if lead else 0
    return frame, float(pos[len(lead)]), float(pos[len(lead) + 1])


def _world_of(layer: Any, frame: int, row: float, col: float) -> np.ndarray:
    lead = lead_shape(layer)
    idx = np.unravel_index(frame, lead) if lead else ()
    return np.asarray(layer.data_to_world([*idx, row, col]), float)


def step_to(viewer: Any, layer: Any, frame: int) -> None:
    """Move the dims sliders to flat frame ``frame`` of ``layer``."""
    lead = lead_shape(layer)
    if not lead:
        return
    world = _world_of(layer, frame, 0.0, 0.0)
    offset = viewer.dims.ndim - len(world)  # napari right-aligns layer axes in the world
    axes = [offset + i for i in range(len(lead))]
    viewer.dims.set_point(axes, [float(v) for v in world[: len(lead)]])


def camera(viewer: Any) -> Any:
    scene = getattr(viewer, "scene", None)  # napari >= 0.9; viewer.camera before
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def centre_on(
    viewer: Any,
    layer: Any,
    frame: int,
    centroid: tuple[float, float],
    bbox: tuple[int, int, int, int],
    min_span: float = 48.0,
) -> None:
    """Centre the 2D camera on a target; zoom so about 6 target sizes (≥ ``min_span`` px) show."""
    step_to(viewer, layer, frame)
    if viewer.dims.ndisplay != 2:
        return
    centre = _world_of(layer, frame, *centroid)[-2:]
    cam = camera(viewer)
    cam.center = (float(centre[0]), float(centre[1]))
    size = max(bbox[2] - bbox[0], bbox[3] - bbox[1], 1)
    span = max(min_span, 6.0 * size) * float(np.max(np.abs(layer.scale[-2:])))
    canvas = getattr(viewer, "canvas", None)
    view = getattr(canvas, "size", None) or getattr(viewer, "_canvas_size", (600, 800))
    view_px = float(min(view)) if min(view) > 0 else 600.0
    cam.zoom = view_px / span


def frames_touched(atoms: Iterable[Any], lead: Sequence[int]) -> set[int] | None:
    """Flat frames changed by the history atoms of a ``Labels.events.paint`` event.

    An atom is napari's masked-paint record (``slice_key`` of slices) or an
    ``(indices, old, new)`` tuple. Returns None when an atom is of an unknown kind.
    """
    lead = tuple(lead)
    if not lead:
        return {0}
    out: set[int] = set()
    for atom in atoms:
        key = getattr(atom, "slice_key", None)
        if key is not None:
            ranges = [range(*sl.indices(n)) for sl, n in zip(key[: len(lead)], lead, strict=True)]
            grid = np.stack(np.meshgrid(*ranges, indexing="ij"), 0).reshape(len(lead), -1)
            out.update(int(f) for f in np.ravel_multi_index(tuple(grid), lead))
        elif isinstance(atom, tuple) and len(atom) == 3:
            idx = tuple(np.atleast_1d(np.asarray(a, np.intp)) for a in atom[0][: len(lead)])
            out.update(int(f) for f in np.unique(np.ravel_multi_index(idx, lead)))
        else:
            return None
    return out


def source_paths(layer: Any) -> list[str]:
    """Files an image layer was read from: the reader's ``source_paths`` or ``layer.source``."""
    paths = list((getattr(layer, "metadata", None) or {}).get("source_paths") or [])
    if not paths:
        path = getattr(getattr(layer, "source", None), "path", None)
        if path:
            paths = [str(path)]
    return [str(p) for p in paths]


def metadata_subset(layer: Any, keys: Sequence[str]) -> dict[str, Any]:
    """The JSON-serialisable entries ``keys`` of a layer's metadata (e.g. run provenance)."""
    out = {}
    for key in keys:
        if key in layer.metadata:
            try:
                json.dumps(layer.metadata[key])
            except (TypeError, ValueError):
                continue
            out[key] = layer.metadata[key]
    return out
