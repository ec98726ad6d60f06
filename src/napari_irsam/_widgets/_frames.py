"""A napari layer seen as a stack of frames: the one geometry helper of the widgets.

A layer's data is (…, H, W) (or (…, H, W, C) for an RGB image). Its leading axes are flattened in
C order, so frame ``i`` is the same frame in the image, the mask and every output layer of
"Run IRSAM", "Review targets" and "Export training set".

Everything here is **lazy**: shapes come from ``layer.data.shape`` and frames are read one at a
time with ``data[idx]`` (a dask- or zarr-backed stack is never loaded whole; ``np.asarray`` is
only ever applied to one frame). :func:`flat` is the exception, for in-memory layers the widgets
write to (masks and output maps), and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def data_shape(layer: Any) -> tuple[int, ...]:
    """(…, H, W) of a layer's data (the channel axis of an RGB image left out)."""
    shape = layer.data.shape[:-1] if getattr(layer, "rgb", False) else layer.data.shape
    return tuple(int(s) for s in shape)


def lead_shape(layer: Any) -> tuple[int, ...]:
    """The leading (non-spatial) axes of a layer, e.g. (T,) or (T, Z); () for one frame."""
    return data_shape(layer)[:-2]


def frame_hw(layer: Any) -> tuple[int, int]:
    """(H, W) of one frame."""
    shape = data_shape(layer)
    return int(shape[-2]), int(shape[-1])


def n_frames(layer: Any) -> int:
    """Number of frames N = product of the leading axes (1 for a single image)."""
    return int(np.prod(lead_shape(layer), dtype=np.int64))


def frame_index(lead: Sequence[int], frame: int) -> tuple[int, ...]:
    """Flat frame number → index tuple into the leading axes."""
    return tuple(int(i) for i in np.unravel_index(int(frame), tuple(lead))) if lead else ()


class FrameStack:
    """(N, H, W[, C]) view of a layer's data that reads frames on demand (numpy, dask, zarr).

    ``stack[i]`` is one frame as a numpy array; ``stack[[i, j]]`` stacks the chosen frames;
    ``shape`` and ``dtype`` never read pixels. What :func:`napari_irsam.segment.segment_stack`
    and the export need, without reshaping (zarr arrays cannot) or loading the whole stack.
    """

    def __init__(self, layer: Any) -> None:
        self.data = layer.data
        self.lead = lead_shape(layer)
        tail = tuple(int(s) for s in layer.data.shape[len(self.lead) :])
        self.shape: tuple[int, ...] = (n_frames(layer), *tail)
        self.dtype = layer.data.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def frame(self, i: int) -> np.ndarray:
        if not 0 <= int(i) < self.shape[0]:
            raise IndexError(f"frame {i} is outside the stack of {self.shape[0]} frame(s)")
        return np.asarray(self.data[frame_index(self.lead, i)])

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.frame(int(key))
        if isinstance(key, slice):
            key = range(*key.indices(self.shape[0]))
        picked = [self.frame(int(i)) for i in key]
        if not picked:
            return np.zeros((0, *self.shape[1:]), self.dtype)
        return np.stack(picked)

    def snapshot(self, indices: Any) -> np.ndarray:
        """A copy of frames ``indices``, filled frame by frame into an array that is
        disk-backed when large (:func:`~napari_irsam.data.lazy.new_output_array`): a stable
        copy for a background export while the annotator keeps painting, without holding the
        frames twice (``np.stack`` of a list does) or in memory at all when big."""
        from ..data.lazy import new_output_array

        indices = [int(i) for i in indices]
        out = new_output_array((len(indices), *self.shape[1:]), self.dtype)
        for k, i in enumerate(indices):
            out[k] = self.frame(i)
        return out


def flat(layer: Any) -> np.ndarray:
    """(N, H, W[, C]) numpy view of an **in-memory** layer (masks, output maps: written to in
    place). Non-numpy data is converted whole; use :class:`FrameStack` to read big stacks."""
    tail = frame_hw(layer) + ((layer.data.shape[-1],) if getattr(layer, "rgb", False) else ())
    return np.asarray(layer.data).reshape((n_frames(layer), *tail))


def grey_frame(layer: Any, frame: int) -> np.ndarray:
    """Frame ``frame`` of an image layer as (H, W) float32 (RGB → BT.601 luminance)."""
    arr = np.asarray(layer.data[frame_index(lead_shape(layer), frame)])
    if getattr(layer, "rgb", False):
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return arr.astype(np.float32, copy=False)


def nd_indices(
    lead: Sequence[int], frame: int, rr: np.ndarray, cc: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Fancy indices into (…, H, W) data for pixels (rr, cc) of flat frame ``frame``."""
    idx = frame_index(lead, frame)
    return tuple(np.full(rr.shape, i, np.intp) for i in idx) + (rr, cc)


def current_frame(viewer: Any, layer: Any) -> int:
    """The flat frame of ``layer`` that the dims sliders show."""
    lead = lead_shape(layer)
    if not lead:
        return 0
    pos = layer.world_to_data(viewer.dims.point)[: len(lead)]
    idx = tuple(int(np.clip(round(float(p)), 0, s - 1)) for p, s in zip(pos, lead, strict=True))
    return int(np.ravel_multi_index(idx, lead))
