"""Connected components → targets (numpy/scipy/scikit-image only).

A *target* is an 8-connected component of a binary mask (inside one frame, never across frames),
or one label id of an integer labels image. Coordinates are pixels of the frame, (row, col).

Mask or labels? ``bool`` arrays, and numeric arrays whose values are all in {0, 1, 255}, are
masks (so a 0/255 PNG mask is split into components); other integer arrays are labels images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from . import targets_large
from .targets_large import is_mask_like, large_frame_targets

#: 8-connectivity inside a frame, nothing across frames
_STRUCT_2D = np.ones((3, 3), bool)


@dataclass
class Target:
    """One target — of a mask read once (:func:`extract_targets`) or of a review
    (:class:`napari_irsam.review.ReviewState`, which also fills the edit-tracking fields);
    coordinates in pixels of its frame, (row, col)."""

    frame: int
    target_id: int
    centroid: tuple[float, float]
    area: int
    bbox: tuple[int, int, int, int]  #: (min_row, min_col, max_row, max_col), max exclusive
    peak_score: float | None = None  #: max probability inside the target, when known
    status: str = "pending"
    fingerprint: str = ""  #: review: hash of the pixel coordinates of the last known version
    prev_status: str | None = None  #: review: status before an edit/rejection (restored on undo)
    prev_fingerprint: str | None = None  #: review: fingerprint before that edit/rejection
    track_id: int | None = None  #: the track it is on (:mod:`napari_irsam.tracks`), once linked

    @property
    def key(self) -> tuple[int, int]:
        return (self.frame, self.target_id)

    def as_dict(self) -> dict:
        return asdict(self)


def relabel_components(mask: np.ndarray) -> np.ndarray:
    """(N, H, W) or (H, W) mask → int32 labels: one id per 8-connected component per frame,
    ids unique across the whole stack (frame 0 gets 1..k₀, frame 1 continues from k₀+1, …)."""
    arr = np.asarray(mask) > 0
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"Expected a (H, W) or (N, H, W) mask, got shape {np.shape(mask)}.")
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = _STRUCT_2D  # connect within a frame only
    labels, _ = ndimage.label(arr, structure=structure)
    labels = labels.astype(np.int32)
    return labels[0] if squeeze else labels


def extract_targets(
    mask_or_labels: np.ndarray, prob: np.ndarray | None = None, frame_offset: int = 0
) -> list[Target]:
    """Target records of a (H, W) or (N, H, W) mask or labels image.

    A boolean (or 0/1, 0/255) mask is split into 8-connected components, numbered per frame from 1
    in raster order; an integer labels image keeps its ids (one record per id per frame, even when
    an id has several pieces). ``prob`` (same shape, e.g. probabilities in [0, 1]) gives each
    target's ``peak_score`` (max inside the target); without it ``peak_score`` is None.
    ``frame_offset`` is added to the frame index (for stacks processed in chunks).
    Records are ordered by frame, then id. Frames over
    :data:`~napari_irsam.targets_large.LARGE_PIXELS` are read band by band (same records, no
    whole-frame copies; ``mask_or_labels`` and ``prob`` may then be memmaps or zarr arrays).
    """
    shape = tuple(getattr(mask_or_labels, "shape", np.shape(mask_or_labels)))
    if len(shape) in (2, 3) and shape[-2] * shape[-1] > targets_large.LARGE_PIXELS:
        return _large_targets(mask_or_labels, prob, frame_offset)
    arr = np.asarray(mask_or_labels)
    if arr.ndim == 2:
        arr = arr[None]
        prob = None if prob is None else np.asarray(prob)[None]
    if arr.ndim != 3:
        raise ValueError(
            f"Expected a (H, W) or (N, H, W) array, got shape {np.shape(mask_or_labels)}."
        )
    if prob is not None and np.shape(prob) != arr.shape:
        raise ValueError(f"prob has shape {np.shape(prob)} but the mask has {arr.shape}.")
    if arr.dtype == bool:
        is_mask = True
    elif np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating):
        # O(n) checks, no sort: stacks of thousands of frames stay cheap
        is_mask = bool(((arr == 0) | (arr == 1) | (arr == 255)).all())
        if not is_mask and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                "A float array must be a 0/1 mask; threshold probabilities before extracting targets."
            )
        if arr.size and arr.min() < 0:
            raise ValueError("A labels image cannot hold negative ids.")
    else:
        raise ValueError(f"Expected a mask or labels array, got dtype {arr.dtype}.")
    from skimage.measure import regionprops  # lazy: the review widget imports Target only

    records = []
    for i, frame in enumerate(arr):
        labels = relabel_components(frame) if is_mask else frame.astype(np.int64)
        if not labels.any():
            continue
        intensity = None if prob is None else np.asarray(prob[i], np.float32)
        for r in regionprops(labels, intensity_image=intensity):
            peak = float(r.intensity_max) if intensity is not None else None
            records.append(
                Target(
                    frame=i + frame_offset,
                    target_id=int(r.label),
                    centroid=(float(r.centroid[0]), float(r.centroid[1])),
                    area=int(r.area),
                    bbox=tuple(int(v) for v in r.bbox),
                    peak_score=peak,
                )
            )
    return records


def _large_targets(mask_or_labels: Any, prob: Any, frame_offset: int) -> list[Target]:
    """:func:`extract_targets` for (H, W) or (N, H, W) arrays of very large frames."""
    two_d = len(mask_or_labels.shape) == 2
    frames = [mask_or_labels] if two_d else [mask_or_labels[i] for i in range(len(mask_or_labels))]
    records = []
    for i, frame in enumerate(frames):
        if np.issubdtype(np.dtype(frame.dtype), np.complexfloating):
            raise ValueError(f"Expected a mask or labels array, got dtype {frame.dtype}.")
        is_mask = is_mask_like(frame)
        if not is_mask and not np.issubdtype(np.dtype(frame.dtype), np.integer):
            raise ValueError(
                "A float array must be a 0/1 mask; threshold probabilities before extracting targets."
            )
        p = None if prob is None else (prob if two_d else prob[i])
        for tid, centroid, area, bbox, peak in large_frame_targets(frame, p, is_mask):
            records.append(Target(i + frame_offset, tid, centroid, area, bbox, peak_score=peak))
    return records
