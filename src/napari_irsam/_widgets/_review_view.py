"""Layer geometry for the "Review targets" widget: (…, H, W) layers seen as (N, H, W) stacks.

Leading axes are flattened in C order (as "Run IRSAM" does), so frame ``i`` of the review is the
same frame in the image, the mask and the probability layer. Also: stepping the viewer to a frame
and centring the camera on a target, and which frames a napari paint event touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def output_name(title: str, image_name: str) -> str:
    """Name "Run IRSAM" gives its output layers (same as ``_outputs.layer_name``, which is not
    imported here: it would import torch, and this widget never needs it)."""
    return f"{title} [{image_name}]"


def same_layer(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same napari layer.

    A widget opened from the Plugins menu gets a ``PublicOnlyProxy`` of the viewer: layers reached
    through it are proxies, layers in events and iterations are not, so ``a is b`` is unreliable.
    ``unique_id`` is public, the same through the proxy, and never reused.
    """
    if a is None or b is None:
        return False
    return getattr(a, "unique_id", object()) == getattr(b, "unique_id", object())


def data_shape(layer: Any) -> tuple[int, ...]:
    """(…, H, W) of a layer's data (the RGB channel axis of an RGB image left out)."""
    shape = layer.data.shape[:-1] if getattr(layer, "rgb", False) else layer.data.shape
    return tuple(int(s) for s in shape)


def lead_shape(layer: Any) -> tuple[int, ...]:
    return data_shape(layer)[:-2]


def n_frames(layer: Any) -> int:
    return int(np.prod(lead_shape(layer), dtype=np.int64))


def flat(layer: Any) -> np.ndarray:
    """(N, H, W[, C]) view of the layer data (a copy only for non-numpy data)."""
    shape = data_shape(layer)
    tail = shape[-2:] + ((layer.data.shape[-1],) if getattr(layer, "rgb", False) else ())
    return np.asarray(layer.data).reshape((n_frames(layer), *tail))


def grey_frame(layer: Any, frame: int) -> np.ndarray:
    """Frame ``frame`` of an image layer as (H, W) float (RGB → BT.601 luminance)."""
    shape = data_shape(layer)
    lead = shape[:-2]
    idx = np.unravel_index(frame, lead) if lead else ()
    arr = np.asarray(layer.data[tuple(int(i) for i in idx)])
    if getattr(layer, "rgb", False):
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return arr.astype(np.float32, copy=False)


def nd_indices(
    lead: Sequence[int], frame: int, rr: np.ndarray, cc: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Fancy indices into (…, H, W) data for pixels (rr, cc) of flat frame ``frame``."""
    idx = np.unravel_index(frame, tuple(lead)) if lead else ()
    return tuple(np.full(rr.shape, int(i), np.intp) for i in idx) + (rr, cc)


def current_frame(viewer: Any, layer: Any) -> int:
    """The flat frame of ``layer`` the dims slider shows."""
    lead = lead_shape(layer)
    if not lead:
        return 0
    pos = layer.world_to_data(viewer.dims.point)[: len(lead)]
    idx = tuple(int(np.clip(round(float(p)), 0, s - 1)) for p, s in zip(pos, lead, strict=True))
    return int(np.ravel_multi_index(idx, lead))


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
