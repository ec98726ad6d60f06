"""Temporal consistency for the pre-segmentation of a recording (numpy; no napari, no Qt).

A real target moves smoothly and is seen on most frames; a flicker (glint, noise burst, bird)
is seen once. So, for every frame, the detections of the frames around it — ``window`` frames
each side, in processing order — are linked into tracks (:func:`napari_irsam.tracks.link_positions`,
constant-velocity motion model, gaps bridged). A detection on a track with at least ``min_hits``
detections in that window (itself included) is *on a plausible track* and keeps its score; any
other detection is *isolated*: its score (the probability, or a classical detector's saliency,
over its pixels) is multiplied by ``weight``, and it is dropped from the mask when its weighted
peak falls below the threshold (IRSAM: the run's probability threshold; a classical detector:
its adaptive threshold of that frame, read back as the least saliency inside its mask).

Near the ends of a run the window is cut short; ``min_hits`` is then capped at the frames the
window holds, and a run of a single frame is left as it is (there is no evidence either way).

:class:`TemporalSegmenter` wraps any :class:`~napari_irsam.segment.Segmenter`: frames come out
in the same order, each as soon as the ``window`` frames after it are done (so a widget shows
results with a delay of ``window`` frames, and Cancel keeps what was finished).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from scipy import ndimage

from .tracks import TrackParams, link_positions


@dataclass(frozen=True)
class TemporalParams:
    """Temporal consistency parameters (frames, px)."""

    window: int = 3  #: frames on each side linked with each frame
    min_hits: int = 3  #: detections a plausible track has in the window (this one included)
    weight: float = 0.5  #: score multiplier of an isolated detection
    link: TrackParams = field(default_factory=TrackParams)

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)


def _components(mask: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """8-connected labels, count and (n, 2) centroids (row, col) of an (H, W) mask."""
    lab, n = ndimage.label(np.asarray(mask, bool), structure=np.ones((3, 3), bool))
    if n == 0:
        return lab, 0, np.zeros((0, 2))
    cen = np.array(ndimage.center_of_mass(np.ones(lab.shape), lab, range(1, n + 1)), float)
    return lab, n, cen.reshape(n, 2)


def isolated_detections(
    centroids: list[np.ndarray], centre: int, params: TemporalParams = TemporalParams()
) -> np.ndarray:
    """Which detections of frame ``centre`` are isolated (bool, one per detection).

    ``centroids[t]`` is the (k_t, 2) array of detection centroids of the t-th frame of the
    window (the frames around ``centre``, in order; ``centre`` indexes this list).
    """
    k = len(centroids[centre])
    if k == 0 or len(centroids) < 2:
        return np.zeros(k, bool)
    ids = link_positions(centroids, params.link)
    all_ids = np.concatenate(ids)
    counts = {int(i): int(c) for i, c in zip(*np.unique(all_ids, return_counts=True))}
    need = min(params.min_hits, len(centroids))
    return np.array([counts[int(i)] < need for i in ids[centre]], bool)


def apply_weights(
    prob: np.ndarray,
    mask: np.ndarray,
    isolated: np.ndarray,
    labels: np.ndarray,
    weight: float,
    threshold: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Down-weight the isolated components of one frame: ``(prob', mask')``.

    ``labels``: the (H, W) component labels of ``mask`` (ids 1..k, ``isolated[i-1]`` for id i);
    ``threshold``: a component whose weighted peak is below it leaves the mask (None: the least
    score inside the mask, a classical detector's adaptive threshold)."""
    prob = np.array(prob, np.float32, copy=True)
    mask = np.array(mask, bool, copy=True)
    if not isolated.any():
        return prob, mask
    thr = threshold
    if thr is None:
        thr = float(prob[mask].min()) if mask.any() else 0.0
    down = np.isin(labels, np.flatnonzero(isolated) + 1)
    prob[down] *= np.float32(weight)
    peaks = ndimage.maximum(prob, labels, np.flatnonzero(isolated) + 1)
    for i, peak in zip(np.flatnonzero(isolated) + 1, np.atleast_1d(peaks)):
        if peak < thr:
            mask[labels == i] = False
    return prob, mask


class TemporalSegmenter:
    """A :class:`~napari_irsam.segment.Segmenter` whose isolated detections are down-weighted
    (see the module docstring); ``metadata["temporal"]`` records the parameters."""

    def __init__(self, inner: Any, params: TemporalParams = TemporalParams()) -> None:
        self.inner = inner
        self.params = params
        self.outputs = tuple(inner.outputs)
        self.metadata = {**inner.metadata, "temporal": params.as_metadata()}

    def iter_frames(
        self, frames: np.ndarray, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[int, Any]]:
        w = int(self.params.window)
        n = int(frames.shape[0])
        outs: dict[int, Any] = {}  # finished, not yet yielded
        comps: dict[int, tuple[np.ndarray, int, np.ndarray]] = {}
        order: list[int] = []  # positions in the order the inner segmenter finished them
        emitted = 0
        for pos, out in self.inner.iter_frames(frames, should_stop):
            outs[pos] = out
            comps[pos] = _components(out.mask)
            order.append(pos)
            while emitted < len(order) and (
                len(order) - 1 - emitted >= w or len(order) == n
            ):  # the frame's window (w finished frames after it) is complete
                yield self._emit(order, emitted, outs, comps)
                emitted += 1
        while emitted < len(order):  # stopped early: finish what was done
            yield self._emit(order, emitted, outs, comps)
            emitted += 1

    def _emit(
        self,
        order: list[int],
        k: int,
        outs: dict[int, Any],
        comps: dict[int, tuple[np.ndarray, int, np.ndarray]],
    ) -> tuple[int, Any]:
        w = int(self.params.window)
        lo, hi = max(k - w, 0), min(k + w + 1, len(order))
        window = order[lo:hi]
        pos = order[k]
        labels, _, _ = comps[pos]
        isolated = isolated_detections([comps[q][2] for q in window], k - lo, self.params)
        out = outs.pop(pos)
        if k - w >= 0:  # the oldest frame of this window is in no later one
            comps.pop(order[k - w], None)
        if not isolated.any():
            return pos, out
        threshold = self.inner.metadata.get("threshold")
        prob, mask = apply_weights(
            out.prob, out.mask, isolated, labels, self.params.weight, threshold
        )
        return pos, replace(out, prob=prob, mask=mask)
