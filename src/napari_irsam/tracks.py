"""Link per-frame targets into tracks across the frames of a recording (numpy; no napari, no Qt).

A *detection* is one target of one frame (:class:`~napari_irsam.targets.Target`: centroid,
area, peak score). :func:`link_targets` gives every detection a ``track_id`` (1, 2, … in order of
first appearance); a detection nothing links to is a track of its own (length 1).

Linking is trackpy's (Crocker–Grier; BSD-3): each frame, the detections are matched one to one
to the live tracks by the least total squared displacement within ``search_range`` px, solved
exactly per sub-network of nearby candidates. The displacement is measured from each track's
**predicted** position (our :class:`ConstantVelocity` motion model: last position + smoothed
velocity × frames elapsed), so a point target moving several px per frame stays on its track
and two crossing targets keep their ids. A track not detected for up to ``max_gap`` frames stays
alive (trackpy's ``memory``) and continues where the motion model says it should be.
Why trackpy and not laptrack: docs/tracks.md.

Also here: where a track should be on a frame it has no detection (:func:`predict_position`,
used to fill a missed frame), the napari Tracks layer data (:func:`tracks_layer_data`) and
``tracks.csv`` (:func:`write_tracks_csv`: ``frame,track_id,row,col,area,score``).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .targets import Target

#: columns of tracks.csv (frame: 0-based index in the input order; row/col: centroid in px)
CSV_COLUMNS = ("frame", "track_id", "row", "col", "area", "score")
INSTALL_HINT = "Linking targets into tracks needs trackpy: pip install 'napari-irsam[tracks]'."


@dataclass(frozen=True)
class TrackParams:
    """Linking parameters (pixels and frames)."""

    #: largest distance (px) between a track's predicted position and its next detection
    search_range: float = 8.0
    #: frames a track may go undetected and still continue (trackpy's ``memory``)
    max_gap: int = 3
    #: weight of the newest step in the smoothed velocity (1: last step only)
    velocity_smoothing: float = 0.5


@dataclass
class TrackPoint:
    """One detection on a track; (row, col) is the target's centroid in px of its frame."""

    frame: int
    track_id: int
    row: float
    col: float
    area: int
    score: float | None
    target_id: int = 0  #: the target's label id in the mask (0 when not from a labels image)

    def as_row(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "track_id": self.track_id,
            "row": round(self.row, 2),
            "col": round(self.col, 2),
            "area": self.area,
            "score": "" if self.score is None else round(float(self.score), 4),
        }


class ConstantVelocity:
    """trackpy predictor: a track is expected at last position + velocity × frames elapsed.

    The velocity is exponentially smoothed over the track's steps (a new track has none yet, so
    its second detection must lie within ``search_range`` of its first). One instance per
    linking run (it remembers every track's last observation).
    """

    def __init__(self, smoothing: float = 0.5) -> None:
        self.smoothing = float(smoothing)
        self._state: dict[int, tuple[int, np.ndarray, np.ndarray | None]] = {}

    def __call__(self, t1: int, particles: Iterable[Any]) -> list[np.ndarray]:
        out = []
        for p in particles:
            tid = p.track.id
            last = self._state.get(tid)
            vel = None if last is None else last[2]
            if last is None or last[0] != p.t:  # a new observation of this track
                if last is not None:
                    step = (np.asarray(p.pos, float) - last[1]) / max(p.t - last[0], 1)
                    a = self.smoothing
                    vel = step if vel is None else a * step + (1 - a) * vel
                self._state[tid] = (p.t, np.asarray(p.pos, float), vel)
            pos = np.asarray(p.pos, float)
            out.append(pos if vel is None else pos + vel * (t1 - p.t))
        return out


@contextmanager
def _quiet_trackpy():
    """trackpy logs one INFO line per frame to stdout: silence it while we link."""
    logger = logging.getLogger("trackpy")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def link_positions(
    positions: Sequence[np.ndarray], params: TrackParams = TrackParams()
) -> list[np.ndarray]:
    """Link per-frame positions: ``positions[t]`` is a (k_t, 2) array of (row, col) in px of
    frame t (k_t may be 0). Returns one (k_t,) int array of track ids per frame, ids 1, 2, …
    in order of first appearance.

    Raises:
        ImportError: trackpy is not installed (:data:`INSTALL_HINT`).
        ValueError: too many detections crowd together to be linked (one sentence).
    """
    try:
        from trackpy.linking import SubnetOversizeException, link_iter
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    arrays = [np.asarray(p, float).reshape(-1, 2) for p in positions]
    if not arrays:
        return []
    raw: list[list[int]] = []
    try:
        with _quiet_trackpy():
            for _, ids in link_iter(
                enumerate(arrays),
                float(params.search_range),
                memory=int(params.max_gap),
                predictor=ConstantVelocity(params.velocity_smoothing),
                adaptive_stop=0.5,
                adaptive_step=0.9,
            ):
                raw.append(list(ids))
    except SubnetOversizeException as exc:
        raise ValueError(
            "Too many targets crowd together to be linked into tracks; raise the detection "
            "threshold or lower the search range."
        ) from exc
    renumber: dict[int, int] = {}
    out = []
    for ids in raw:
        out.append(np.array([renumber.setdefault(i, len(renumber) + 1) for i in ids], int))
    return out


def link_targets(
    targets: Iterable[Target], n_frames: int | None = None, params: TrackParams = TrackParams()
) -> list[TrackPoint]:
    """Link the targets of a stack (any order; ``Target.frame`` is the time axis) into tracks.

    ``n_frames`` (default: last frame + 1) only matters for frames after the last target.
    Returns one :class:`TrackPoint` per target, ordered by frame then track id.
    """
    targets = list(targets)
    if not targets:
        return []
    n = max(t.frame for t in targets) + 1 if n_frames is None else int(n_frames)
    per_frame: list[list[Target]] = [[] for _ in range(n)]
    for t in targets:
        if not 0 <= t.frame < n:
            raise ValueError(f"Target on frame {t.frame} is outside the {n} frame(s).")
        per_frame[t.frame].append(t)
    ids = link_positions([np.array([t.centroid for t in ts]) for ts in per_frame], params)
    points = [
        TrackPoint(
            t.frame, int(tid), t.centroid[0], t.centroid[1], t.area, t.peak_score, t.target_id
        )
        for ts, frame_ids in zip(per_frame, ids)
        for t, tid in zip(ts, frame_ids)
    ]
    return sorted(points, key=lambda p: (p.frame, p.track_id))


def group_tracks(points: Iterable[TrackPoint]) -> dict[int, list[TrackPoint]]:
    """``{track_id: its points ordered by frame}``."""
    out: dict[int, list[TrackPoint]] = {}
    for p in sorted(points, key=lambda p: (p.track_id, p.frame)):
        out.setdefault(p.track_id, []).append(p)
    return out


def predict_position(track: Sequence[TrackPoint], frame: int) -> tuple[float, float]:
    """Where a track is expected on ``frame`` (px): linear interpolation between its detections
    around a gap; outside its span, extrapolation at the velocity of its last (first) two
    detections; a track of one detection stays where it is."""
    pts = sorted(track, key=lambda p: p.frame)
    if not pts:
        raise ValueError("A track needs at least one detection to predict a position.")
    f = np.array([p.frame for p in pts], float)
    rc = np.array([(p.row, p.col) for p in pts], float)
    if len(pts) == 1:
        return float(rc[0, 0]), float(rc[0, 1])
    if f[0] <= frame <= f[-1]:
        return float(np.interp(frame, f, rc[:, 0])), float(np.interp(frame, f, rc[:, 1]))
    a, b = (0, 1) if frame < f[0] else (-2, -1)
    vel = (rc[b] - rc[a]) / max(f[b] - f[a], 1.0)
    out = rc[a if frame < f[0] else b] + vel * (frame - f[a if frame < f[0] else b])
    return float(out[0]), float(out[1])


def track_gaps(track: Sequence[TrackPoint]) -> list[int]:
    """Frames inside a track's span on which it has no detection (candidates to fill)."""
    frames = sorted({p.frame for p in track})
    if not frames:
        return []
    return sorted(set(range(frames[0], frames[-1] + 1)) - set(frames))


def tracks_layer_data(points: Iterable[TrackPoint]) -> np.ndarray:
    """(M, 4) float array ``[track_id, frame, row, col]``, sorted by track then frame — the data
    of a napari Tracks layer over an (N, H, W) stack."""
    rows = [(p.track_id, p.frame, p.row, p.col) for p in points]
    if not rows:
        return np.zeros((0, 4))
    arr = np.array(rows, float)
    return arr[np.lexsort((arr[:, 1], arr[:, 0]))]


def write_tracks_csv(path: str | os.PathLike[str], points: Iterable[TrackPoint]) -> None:
    """Write ``frame,track_id,row,col,area,score`` (one row per detection, by frame then track)
    atomically."""
    from .data.io import atomic_path

    rows = [p.as_row() for p in sorted(points, key=lambda p: (p.frame, p.track_id))]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def read_tracks_csv(path: str | os.PathLike[str]) -> list[TrackPoint]:
    """Read a tracks.csv written by :func:`write_tracks_csv` (ValueError: one sentence)."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f"{os.fspath(path)} is not a tracks.csv (no column {sorted(missing)[0]!r})."
                )
            return [
                TrackPoint(
                    int(r["frame"]),
                    int(r["track_id"]),
                    float(r["row"]),
                    float(r["col"]),
                    int(float(r["area"])),
                    float(r["score"]) if r["score"] not in ("", None) else None,
                )
                for r in reader
            ]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{os.fspath(path)} has a malformed row ({exc}).") from exc
