"""Targets of very large frames, band by band: no whole-frame temporaries (numpy/scipy only).

:func:`napari_irsam.targets.extract_targets` and :func:`napari_irsam.segment.label_targets` make
several whole-frame copies (an int64 labels image, comparison masks): ≈ 20 B per pixel, 8 GB for a
20,000² frame. Here a frame (a numpy array, a memmap or anything that slices into one) is read in
bands of ``band_rows`` rows:

* **mask → components**: each band is labelled on its own (8-connectivity, ``scipy.ndimage``), its
  provisional ids offset so they grow in raster order across bands; components that touch across
  a band border are merged by propagating the smallest id. Because provisional ids grow
  in raster order, numbering the merged components by their smallest id gives exactly the ids
  :func:`~napari_irsam.targets.relabel_components` gives the whole frame (1, 2, … by first pixel).
* **per-target records**: area, centroid, bbox and peak score are sums/minima/maxima over the
  foreground pixels of each band, merged by final id: the same numbers ``regionprops`` gives.
* **labels output**: a second pass relabels each band (the same deterministic labelling) and
  writes the final ids into ``out`` — a memmap or zarr array stays on disk.

Memory: one band (``band_rows`` × W labels, int32) plus the foreground pixels of that band, plus a
few numbers per provisional component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

#: frames of more pixels than this take the band-by-band path (the ordinary one is faster below)
LARGE_PIXELS = 4096 * 4096
BAND_ROWS = 1024
_STRUCT = np.ones((3, 3), bool)


@dataclass
class _Agg:
    """Per-id sums and extremes, grown as ids appear (index = id)."""

    area: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    sum_r: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float64))
    sum_c: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float64))
    bbox: np.ndarray = field(
        default_factory=lambda: np.array([[np.iinfo(np.int64).max] * 2 + [-1, -1]], np.int64)
    )
    peak: np.ndarray = field(default_factory=lambda: np.full(1, -np.inf, np.float64))

    def grow(self, n: int) -> None:
        extra = n + 1 - len(self.area)
        if extra <= 0:
            return
        self.area = np.concatenate([self.area, np.zeros(extra, np.int64)])
        self.sum_r = np.concatenate([self.sum_r, np.zeros(extra)])
        self.sum_c = np.concatenate([self.sum_c, np.zeros(extra)])
        big = np.iinfo(np.int64).max
        self.bbox = np.concatenate([self.bbox, np.tile([[big, big, -1, -1]], (extra, 1))])
        self.peak = np.concatenate([self.peak, np.full(extra, -np.inf)])

    def add(self, ids: np.ndarray, rows: np.ndarray, cols: np.ndarray, vals: Any) -> None:
        """Foreground pixels (frame coordinates) with their ids; ``vals`` their scores or None."""
        if ids.size == 0:
            return
        self.grow(int(ids.max()))
        n = len(self.area)
        self.area += np.bincount(ids, minlength=n)
        self.sum_r += np.bincount(ids, weights=rows, minlength=n)
        self.sum_c += np.bincount(ids, weights=cols, minlength=n)
        np.minimum.at(self.bbox[:, 0], ids, rows)
        np.minimum.at(self.bbox[:, 1], ids, cols)
        np.maximum.at(self.bbox[:, 2], ids, rows + 1)
        np.maximum.at(self.bbox[:, 3], ids, cols + 1)
        if vals is not None:
            np.maximum.at(self.peak, ids, vals.astype(np.float64))

    def merged(self, final: np.ndarray, n_final: int) -> _Agg:
        """Sums over provisional ids mapped to ``final`` ids (0 = background, dropped)."""
        out = _Agg()
        out.grow(n_final)
        keep = final > 0
        f = final[keep]
        out.area = np.bincount(f, weights=self.area[keep], minlength=n_final + 1).astype(np.int64)
        out.sum_r = np.bincount(f, weights=self.sum_r[keep], minlength=n_final + 1)
        out.sum_c = np.bincount(f, weights=self.sum_c[keep], minlength=n_final + 1)
        for k, fn in ((0, np.minimum), (1, np.minimum), (2, np.maximum), (3, np.maximum)):
            fn.at(out.bbox[:, k], f, self.bbox[keep, k])
        np.maximum.at(out.peak, f, self.peak[keep])
        return out


def _bands(h: int, band_rows: int) -> range:
    return range(0, h, max(1, int(band_rows)))


def _read(arr: Any, r0: int, r1: int) -> np.ndarray:
    return np.asarray(arr[r0:r1])


def _scan(mask: Any, prob: Any, band_rows: int) -> tuple[_Agg, np.ndarray, list[int]]:
    """Pass 1 over a mask: provisional stats, the provisional → final id map, band offsets."""
    h = int(mask.shape[0])
    agg, offsets, offset = _Agg(), [], 0
    pairs: list[np.ndarray] = []
    prev_last: np.ndarray | None = None
    for r0 in _bands(h, band_rows):
        r1 = min(h, r0 + band_rows)
        lab, n = ndimage.label(_read(mask, r0, r1) > 0, structure=_STRUCT)
        offsets.append(offset)
        rr, cc = np.nonzero(lab)
        ids = lab[rr, cc].astype(np.int64) + offset
        vals = None if prob is None else _read(prob, r0, r1)[rr, cc]
        agg.add(ids, rr.astype(np.int64) + r0, cc.astype(np.int64), vals)
        first = np.where(lab[0] > 0, lab[0].astype(np.int64) + offset, 0)
        if prev_last is not None:
            for dx in (-1, 0, 1):  # 8-connectivity across the border
                a = prev_last[max(0, -dx) : len(prev_last) - max(0, dx)]
                b = first[max(0, dx) : len(first) - max(0, -dx)]
                both = (a > 0) & (b > 0)
                if both.any():
                    pairs.append(np.stack([a[both], b[both]], 1))
        prev_last = np.where(lab[-1] > 0, lab[-1].astype(np.int64) + offset, 0)
        offset += int(n)
    roots = np.arange(offset + 1, dtype=np.int64)
    if pairs:
        a, b = np.unique(np.concatenate(pairs), axis=0).T
        # min-label propagation: every id takes the smallest id it touches (the component's
        # first pixel), until nothing changes; pointer jumping makes it converge fast
        while True:
            lo = np.minimum(roots[a], roots[b])
            new = roots.copy()
            np.minimum.at(new, a, lo)
            np.minimum.at(new, b, lo)
            new = new[new]
            if np.array_equal(new, roots):
                break
            roots = new
    is_root = (roots == np.arange(offset + 1)) & (np.arange(offset + 1) > 0)
    final_of_root = np.zeros(offset + 1, np.int64)
    final_of_root[is_root] = np.arange(1, int(is_root.sum()) + 1)
    return agg, final_of_root[roots], offsets


def label_large(
    mask: Any, out: Any = None, first_id: int = 1, band_rows: int = BAND_ROWS
) -> tuple[Any, int]:
    """(H, W) mask → (labels, number of components): 8-connected components numbered
    ``first_id, first_id + 1, …`` in raster order of their first pixel, written into ``out``
    (an (H, W) int32 array, memmap or zarr array; a new in-memory array when None)."""
    h, w = (int(s) for s in mask.shape[:2])
    _, final, offsets = _scan(mask, None, band_rows)
    n = int(final.max()) if final.size else 0
    if out is None:
        out = np.zeros((h, w), np.int32)
    shift = np.where(final > 0, final + (first_id - 1), 0).astype(np.int32)
    for k, r0 in enumerate(_bands(h, band_rows)):
        r1 = min(h, r0 + band_rows)
        lab, _ = ndimage.label(_read(mask, r0, r1) > 0, structure=_STRUCT)
        band = np.zeros(lab.shape, np.int32)
        fg = lab > 0
        band[fg] = shift[lab[fg].astype(np.int64) + offsets[k]]
        out[r0:r1] = band
    return out, n


def drop_weak_targets(mask: Any, prob: Any, min_peak: float, band_rows: int = BAND_ROWS) -> int:
    """Clear, in place, every 8-connected target of an (H, W) bool ``mask`` whose peak ``prob``
    is below ``min_peak`` (hysteresis: a target needs one confident pixel). Works band by band,
    so memmaps and zarr arrays stay on disk. Returns the number of targets removed."""
    agg, final, offsets = _scan(mask, prob, band_rows)
    n = int(final.max()) if final.size else 0
    peak = agg.merged(final, n).peak
    weak = np.flatnonzero(peak[1:] < min_peak) + 1
    if weak.size == 0:
        return 0
    drop = np.zeros(n + 1, bool)
    drop[weak] = True
    for k, r0 in enumerate(_bands(int(mask.shape[0]), band_rows)):
        r1 = min(int(mask.shape[0]), r0 + band_rows)
        band = _read(mask, r0, r1) > 0
        lab, _ = ndimage.label(band, structure=_STRUCT)
        fg = lab > 0
        ids = np.zeros(lab.shape, np.int64)
        ids[fg] = final[lab[fg].astype(np.int64) + offsets[k]]
        if drop[ids].any():
            mask[r0:r1] = band & ~drop[ids]
    return int(weak.size)


def threshold_targets(prob: np.ndarray, threshold: float, min_peak: float = 0.0) -> np.ndarray:
    """(H, W) probabilities → (H, W) bool mask: ``prob > threshold``, then the targets whose peak
    is below ``min_peak`` removed (:func:`drop_weak_targets`)."""
    mask = prob > threshold
    if min_peak > threshold:
        drop_weak_targets(mask, prob, min_peak)
    return mask


def large_frame_targets(
    mask_or_labels: Any, prob: Any = None, is_mask: bool = True, band_rows: int = BAND_ROWS
) -> list[tuple[int, tuple[float, float], int, tuple[int, int, int, int], float | None]]:
    """``(id, centroid (row, col), area, bbox, peak)`` per target of one (H, W) frame, ordered by
    id: components of a mask (ids as :func:`label_large` numbers them from 1), or the ids of a
    labels image (an id with several pieces is one record). ``peak`` is None without ``prob``."""
    if is_mask:
        agg, final, _ = _scan(mask_or_labels, prob, band_rows)
        n = int(final.max()) if final.size else 0
        agg = agg.merged(final, n)
    else:  # a labels image: its ids are already global
        agg = _Agg()
        agg.add(*foreground(mask_or_labels, prob, band_rows))
    records = []
    for i in np.flatnonzero(agg.area):
        a = int(agg.area[i])
        peak = None if prob is None else float(agg.peak[i])
        records.append(
            (
                int(i),
                (float(agg.sum_r[i] / a), float(agg.sum_c[i] / a)),
                a,
                tuple(int(v) for v in agg.bbox[i]),
                peak,
            )
        )
    return records


def is_mask_like(arr: Any, band_rows: int = BAND_ROWS) -> bool:
    """True when every value of a large (H, W) array is 0, 1 or 255 (read band by band)."""
    if np.dtype(arr.dtype) == bool:
        return True
    for r0 in _bands(int(arr.shape[0]), band_rows):
        b = _read(arr, r0, r0 + band_rows)
        if not ((b == 0) | (b == 1) | (b == 255)).all():
            return False
    return True


def finite_range(arr: Any, band_rows: int = BAND_ROWS) -> tuple[float, float] | None:
    """(min, max) of the finite values of a large array, read band by band; None if none."""
    lo, hi = np.inf, -np.inf
    for r0 in _bands(int(arr.shape[0]), band_rows):
        b = _read(arr, r0, r0 + band_rows)
        f = b[np.isfinite(b)]
        if f.size:
            lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
    return None if lo > hi else (lo, hi)


def foreground(
    labels: Any, prob: Any = None, band_rows: int = BAND_ROWS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(ids, rows, cols, scores or None) of every non-zero pixel of a large (H, W) labels image,
    in raster order, read band by band (memory: the foreground only)."""
    parts: list[tuple[np.ndarray, ...]] = []
    for r0 in _bands(int(labels.shape[0]), band_rows):
        band = _read(labels, r0, r0 + band_rows)
        rr, cc = np.nonzero(band)
        vals = None if prob is None else _read(prob, r0, r0 + band_rows)[rr, cc]
        parts.append(
            (band[rr, cc].astype(np.int64), rr.astype(np.int64) + r0, cc.astype(np.int64), vals)
        )
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    rr = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    cc = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    vals = None if prob is None or not parts else np.concatenate([p[3] for p in parts])
    return ids, rr, cc, vals
