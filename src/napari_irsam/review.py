"""Review state of a labels stack: target statuses, per-frame reviewed flags, edit tracking.

numpy/scipy only (no napari, no Qt); the "Review targets" widget is a thin view on it.

Model
-----
* The labels stack is (N, H, W) integer (a single (H, W) image is N = 1). A *target* is one
  label id inside one frame, keyed ``(frame, id)``; ids are not reused for new targets.
* Status of a target: ``pending`` (from the model, not looked at), ``accepted``, ``rejected``
  (removed from the mask; the record stays so counts and undo work), ``added`` (drawn by the
  annotator: a click-grown target or a new id painted by hand) or ``edited`` (its pixels were
  changed by paint/erase/fill).
* Edits are found by *diffing*: the state keeps, per frame, a CRC of the labels and, per target,
  a fingerprint (area, bbox, hash of its pixel coordinates) of the last known version.
  :meth:`ReviewState.sync_frame` compares a new labels frame to that: ids that appeared are
  ``added``, ids whose pixels changed are ``edited``, ids that vanished are ``rejected``; a target
  whose pixels return exactly to their state before an edit or rejection (napari undo) gets its
  previous status back.
  A target the annotator drew (``added``) and then erased again is dropped: it never existed,
  so it is counted neither as added nor as rejected.
* Marking a frame reviewed accepts its remaining pending targets.
* Frames re-segmented by the model ("Run IRSAM" into a mask under review) are announced with
  :meth:`ReviewState.expect_model_output`; their next sync rebuilds them as fresh ``pending``
  targets (the frame is no longer reviewed) instead of diffing them as hand edits.
  :meth:`ReviewState.protected_frames` lists the frames that hold the annotator's work.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from . import targets_large
from .targets import Target

STATUSES = ("pending", "accepted", "rejected", "added", "edited")
FORMAT_VERSION = 1
#: Run metadata keys that say where a mask came from (every key of
#: :class:`napari_irsam.segment.RunStarted` metadata but the display-only ``has_wpmd``): what a
#: review keeps as its provenance and an export writes to its manifest. ``params`` is set by the
#: classical detectors only. Keep this order: the first six describe one run. ``precision``:
#: "fp32", or the CUDA autocast the masks were computed in. ``temporal``: None, or the temporal
#: consistency parameters (:mod:`napari_irsam.tracks_temporal`). ``tta``: whether the masks
#: averaged each frame with its mirror image (:mod:`napari_irsam.flip_average`).
PROVENANCE_KEYS = (
    "model_id",
    "checkpoint",
    "checkpoint_sha256",
    "config",
    "mode",
    "threshold",
    "min_peak",
    "refine",
    "temperature",
    "device",
    "params",
    "precision",
    "temporal",
    "tta",
)

__all__ = [
    "PROVENANCE_KEYS",
    "STATUSES",
    "ReviewState",
    "Target",
    "as_stack",
    "frame_crc",
]


def frame_crc(frame: np.ndarray) -> int:
    """Cheap content checksum of one (H, W) labels frame."""
    return zlib.crc32(np.ascontiguousarray(frame).view(np.uint8).reshape(-1).data)


def _measure(
    labels: np.ndarray, prob: np.ndarray | None
) -> dict[int, tuple[tuple[float, float], int, tuple[int, int, int, int], float | None, str]]:
    """(H, W) labels → {id: (centroid, area, bbox, peak, fingerprint)} for every id > 0."""
    if labels.shape[0] * labels.shape[1] > targets_large.LARGE_PIXELS:
        return _measure_sparse(*targets_large.foreground(labels, prob))
    out = {}
    lab = np.asarray(labels)
    if not lab.any():
        return out
    ids = np.unique(lab)
    ids = ids[ids > 0]
    sparse = bool(ids[-1] > 4 * len(ids) + 1024)  # huge ids: find_objects would list each id
    dense = np.searchsorted(np.concatenate([[0], ids]), lab) if sparse else lab.astype(np.int64)
    for i, sl in enumerate(ndimage.find_objects(dense), start=1):
        if sl is None:
            continue
        sub = dense[sl] == i
        tid = int(ids[i - 1]) if sparse else i
        rr, cc = np.nonzero(sub)
        rr = rr + sl[0].start
        cc = cc + sl[1].start
        bbox = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
        coords = np.stack([rr, cc]).astype(np.int32).tobytes()
        fp = hashlib.blake2b(coords, digest_size=8).hexdigest()
        peak = None if prob is None else float(np.asarray(prob)[sl][sub].max())
        out[tid] = ((float(rr.mean()), float(cc.mean())), int(rr.size), bbox, peak, fp)
    return out


def _measure_sparse(
    ids: np.ndarray, rr: np.ndarray, cc: np.ndarray, vals: np.ndarray | None
) -> dict[int, tuple[tuple[float, float], int, tuple[int, int, int, int], float | None, str]]:
    """:func:`_measure` from the foreground pixels of a frame in raster order (ids, rows, cols,
    scores): the same records, for frames too large for whole-frame temporaries."""
    out = {}
    order = np.argsort(ids, kind="stable")  # stable: each target's pixels stay in raster order
    ids, rr, cc = ids[order], rr[order], cc[order]
    vals = None if vals is None else vals[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if ids.size else np.array([], int)
    for a, b in zip(starts, np.r_[starts[1:], ids.size].astype(int)):
        r, c = rr[a:b], cc[a:b]
        bbox = (int(r.min()), int(c.min()), int(r.max()) + 1, int(c.max()) + 1)
        fp = hashlib.blake2b(np.stack([r, c]).astype(np.int32).tobytes(), digest_size=8)
        peak = None if vals is None else float(vals[a:b].max())
        out[int(ids[a])] = (
            (float(r.mean()), float(c.mean())),
            int(b - a),
            bbox,
            peak,
            fp.hexdigest(),
        )
    return out


@dataclass
class ReviewState:
    """Statuses of every target and the reviewed flag of every frame of an (N, H, W) stack."""

    n_frames: int
    frame_shape: tuple[int, int]
    targets: dict[tuple[int, int], Target] = field(default_factory=dict)
    reviewed: list[bool] = field(default_factory=list)
    crcs: list[int] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    next_id: int = 1
    #: frames whose next sync is fresh model output (see :meth:`expect_model_output`); not saved
    model_frames: set[int] = field(default_factory=set)

    # ---------------------------------------------------------------------------- building
    @classmethod
    def from_labels(
        cls,
        labels: np.ndarray,
        prob: np.ndarray | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> ReviewState:
        """A fresh review of an (N, H, W) or (H, W) labels stack: every target ``pending``."""
        labels = as_stack(labels)
        prob = None if prob is None else as_stack(prob)
        n, h, w = labels.shape
        state = cls(n, (h, w), reviewed=[False] * n, crcs=[0] * n, provenance=provenance or {})
        for f in range(n):
            state._ingest(f, labels[f], None if prob is None else prob[f], status="pending")
        state.next_id = int(labels.max(initial=0)) + 1
        return state

    def _ingest(self, frame: int, labels: np.ndarray, prob: np.ndarray | None, status: str) -> None:
        self.crcs[frame] = frame_crc(labels)
        for tid, (cen, area, bbox, peak, fp) in _measure(labels, prob).items():
            self.targets[(frame, tid)] = Target(frame, tid, cen, area, bbox, peak, status, fp)

    # ---------------------------------------------------------------------------- queries
    def frame_targets(self, frame: int) -> list[Target]:
        return [t for t in self.targets.values() if t.frame == frame]

    def sorted_targets(self) -> list[Target]:
        return sorted(self.targets.values(), key=lambda t: (t.frame, t.target_id))

    def counts(self) -> dict[str, int]:
        c = Counter(t.status for t in self.targets.values())
        return {s: c.get(s, 0) for s in STATUSES}

    def progress_line(self) -> str:
        """E.g. ``"12 / 40 frames reviewed, 3 targets added, 5 rejected"``."""
        c = self.counts()
        return (
            f"{sum(self.reviewed)} / {self.n_frames} frames reviewed, "
            f"{c['added']} targets added, {c['rejected']} rejected"
        )

    def next_unreviewed(self, after: int) -> int | None:
        """First unreviewed frame after ``after`` (wrapping around), or None when all are done."""
        for k in range(1, self.n_frames + 1):
            f = (after + k) % self.n_frames
            if not self.reviewed[f]:
                return f
        return None

    def protected_frames(self) -> list[int]:
        """Frames holding the annotator's work: marked reviewed, or with a target that is not
        ``pending`` (accepted, rejected, added or edited)."""
        out = {f for f, r in enumerate(self.reviewed) if r}
        out |= {t.frame for t in self.targets.values() if t.status != "pending"}
        return sorted(out)

    def new_id(self, labels: np.ndarray | None = None) -> int:
        """A label id used by no target of the stack (nor by ``labels``), and never before."""
        top = 0 if labels is None else int(np.asarray(labels).max(initial=0))
        known = max((t.target_id for t in self.targets.values()), default=0)
        self.next_id = max(self.next_id, top + 1, known + 1)
        return self.next_id

    # ---------------------------------------------------------------------------- changes
    def set_status(self, frame: int, target_id: int, status: str) -> Target:
        if status not in STATUSES:
            raise ValueError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
        t = self.targets[(frame, target_id)]
        t.status = status
        return t

    def accept(self, frame: int, target_id: int) -> Target:
        """Accept a target; added/edited targets keep their status (they are already checked)."""
        t = self.targets[(frame, target_id)]
        if t.status in ("pending", "rejected"):
            t.status = "accepted"
        return t

    def mark_reviewed(self, frame: int, reviewed: bool = True) -> list[Target]:
        """Flag a frame; marking it reviewed accepts its pending targets (returned)."""
        self.reviewed[frame] = bool(reviewed)
        done = []
        if reviewed:
            for t in self.frame_targets(frame):
                if t.status == "pending":
                    t.status = "accepted"
                    done.append(t)
        return done

    def expect_model_output(self, frames: Any) -> None:
        """The model is about to rewrite ``frames``: their next :meth:`sync_frame` (or
        :meth:`reset_frame`) rebuilds them as fresh ``pending`` targets."""
        self.model_frames |= {int(f) for f in frames}

    def reset_frame(
        self, frame: int, labels: np.ndarray, prob: np.ndarray | None = None
    ) -> tuple[list[Target], list[Target]]:
        """Replace every record of ``frame`` by ``pending`` targets of ``labels`` (model output);
        the frame is no longer reviewed. Returns (records dropped, records created)."""
        dropped = [self.targets.pop(t.key) for t in self.frame_targets(frame)]
        self.reviewed[frame] = False
        self._ingest(frame, labels, prob, status="pending")
        self.next_id = max(self.next_id, int(np.asarray(labels).max(initial=0)) + 1)
        self.model_frames.discard(frame)
        return dropped, self.frame_targets(frame)

    def sync_frame(
        self, frame: int, labels: np.ndarray, prob: np.ndarray | None = None
    ) -> list[Target]:
        """Diff the (H, W) ``labels`` of ``frame`` against the last known version.

        Returns the targets whose record changed (new, edited, removed or restored); an ``added``
        target that vanished is returned but no longer in :attr:`targets` (dropped). A frame whose
        checksum did not change is skipped in O(H·W) without measuring. A frame announced by
        :meth:`expect_model_output` is rebuilt by :meth:`reset_frame` instead (dropped and new
        records returned).
        """
        if frame in self.model_frames:
            dropped, new = self.reset_frame(frame, labels, prob)
            return dropped + new
        crc = frame_crc(labels)
        if crc == self.crcs[frame]:
            return []
        self.crcs[frame] = crc
        now = _measure(labels, prob)
        changed = []
        for tid, (cen, area, bbox, peak, fp) in now.items():
            t = self.targets.get((frame, tid))
            if t is None:
                t = Target(frame, tid, cen, area, bbox, peak, "added", fp)
                self.targets[t.key] = t
                self.next_id = max(self.next_id, tid + 1)
                changed.append(t)
                continue
            if t.fingerprint == fp and t.status != "rejected":
                continue
            if t.prev_status is not None and fp == t.prev_fingerprint:  # undone: as it was
                t.status, t.prev_status, t.prev_fingerprint = t.prev_status, None, None
            elif t.status == "rejected":
                t.status = "edited"
            elif t.status not in ("added", "edited"):
                t.prev_status, t.prev_fingerprint = t.status, t.fingerprint
                t.status = "edited"
            t.centroid, t.area, t.bbox, t.fingerprint = cen, area, bbox, fp
            if peak is not None or t.peak_score is None:
                t.peak_score = peak if peak is not None else t.peak_score
            changed.append(t)
        for t in self.frame_targets(frame):
            if t.target_id not in now and t.status == "added":  # drawn, then erased again
                del self.targets[t.key]
                changed.append(t)
            elif t.target_id not in now and t.status != "rejected":
                if t.prev_status is None:
                    t.prev_status, t.prev_fingerprint = t.status, t.fingerprint
                t.status = "rejected"
                changed.append(t)
        return changed

    def sync_all(self, labels: np.ndarray, prob: np.ndarray | None = None) -> list[Target]:
        """:meth:`sync_frame` for every frame of an (N, H, W) stack (e.g. after undo of a run)."""
        labels = as_stack(labels)
        prob = None if prob is None else as_stack(prob)
        out = []
        for f in range(self.n_frames):
            out += self.sync_frame(f, labels[f], None if prob is None else prob[f])
        return out

    # ---------------------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "n_frames": self.n_frames,
            "frame_shape": list(self.frame_shape),
            "reviewed": [bool(r) for r in self.reviewed],
            "crcs": [int(c) for c in self.crcs],
            "next_id": int(self.next_id),
            "provenance": self.provenance,
            "counts": self.counts(),
            "targets": [
                {
                    "frame": t.frame,
                    "target_id": t.target_id,
                    "centroid": list(t.centroid),
                    "area": t.area,
                    "bbox": list(t.bbox),
                    "peak_score": t.peak_score,
                    "status": t.status,
                    "fingerprint": t.fingerprint,
                    "prev_status": t.prev_status,
                    "prev_fingerprint": t.prev_fingerprint,
                    "track_id": t.track_id,
                }
                for t in self.sorted_targets()
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReviewState:
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"Unsupported review file version {d.get('format_version')!r}.")
        state = cls(
            int(d["n_frames"]),
            tuple(d["frame_shape"]),
            reviewed=[bool(r) for r in d["reviewed"]],
            crcs=[int(c) for c in d["crcs"]],
            provenance=dict(d.get("provenance", {})),
            next_id=int(d.get("next_id", 1)),
        )
        for r in d["targets"]:
            t = Target(
                int(r["frame"]),
                int(r["target_id"]),
                tuple(r["centroid"]),
                int(r["area"]),
                tuple(r["bbox"]),
                r.get("peak_score"),
                r["status"],
                r.get("fingerprint", ""),
                r.get("prev_status"),
                r.get("prev_fingerprint"),
                r.get("track_id"),
            )
            state.targets[t.key] = t
        return state


def as_stack(arr: np.ndarray) -> np.ndarray:
    """(H, W) → (1, H, W) view; (N, H, W) unchanged; more leading axes are flattened into N."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim < 2:
        raise ValueError(f"Expected a (H, W) or (…, H, W) array, got shape {arr.shape}.")
    return arr.reshape((-1,) + arr.shape[-2:])
