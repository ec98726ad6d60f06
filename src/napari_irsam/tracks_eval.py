"""Tracks against ground-truth tracks: recovered tracks, identity switches, review actions
(numpy/scipy only).

Matching: on every frame, ground-truth targets and detections are paired one to one when their
centroids are less than ``max_dist`` px apart (the Pd rule, 3 px), by least total distance
(``linear_sum_assignment``).

* **Recovered whole**: a ground-truth track is recovered whole when at least ``min_share``
  (80 %) of its frames are matched to detections of one single predicted track id.
* **Identity switches** (CLEAR-MOT): a ground-truth track is matched, on some frame, to another
  predicted track id than the one it was last matched to. (The benchmark also reports
  ``motmetrics``' count, which keeps earlier correspondences while they stay within the
  distance; the two can differ by a few.)
* **Review actions**, one action = one key press or click:

  - *frame by frame*: one accept/reject per detection per frame + one add per ground-truth
    target a frame lacks;
  - *by track*: one accept/reject per predicted track; in an accepted track (one whose
    detections mostly match one ground-truth track, its *owner*) one reject per detection that
    is not its owner's; one action per frame of a ground-truth track that no detection of a
    track it owns covers — a **fill** (one key: grow at the predicted position) when the frame
    lies within the span of such a track or ``max_gap`` frames beyond its ends, else an add by
    hand (one click). Splitting a track at an identity switch is counted as these rejects and
    fills (an upper bound).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .tracks import TrackPoint


def match_frame(gt: np.ndarray, det: np.ndarray, max_dist: float = 3.0) -> list[tuple[int, int]]:
    """One-to-one pairs ``(i_gt, i_det)`` of (g, 2) and (d, 2) centroids closer than
    ``max_dist`` px, with the least total distance."""
    gt, det = np.asarray(gt, float).reshape(-1, 2), np.asarray(det, float).reshape(-1, 2)
    if not len(gt) or not len(det):
        return []
    d = np.linalg.norm(gt[:, None] - det[None], axis=2)
    cost = np.where(d < max_dist, d, 1e6)
    r, c = linear_sum_assignment(cost)
    return [(int(i), int(j)) for i, j in zip(r, c) if d[i, j] < max_dist]


def evaluate_tracks(
    gt_rows: Iterable[dict[str, Any]],
    pred: Sequence[TrackPoint],
    max_dist: float = 3.0,
    min_share: float = 0.8,
    max_gap: int = 3,
) -> dict[str, Any]:
    """Compare predicted track points with ground-truth rows (``frame``, ``track_id``, ``row``,
    ``col``; e.g. :attr:`~napari_irsam.data.synthetic_video.Recording.tracks`). See the module
    docstring for every number returned."""
    gt_rows = list(gt_rows)
    gt_by_frame: dict[int, list[dict]] = defaultdict(list)
    for r in gt_rows:
        gt_by_frame[int(r["frame"])].append(r)
    det_by_frame: dict[int, list[TrackPoint]] = defaultdict(list)
    for p in pred:
        det_by_frame[p.frame].append(p)
    # matched[(frame, gt id)] = predicted track id; det_match[(frame, index in det_by_frame)]
    matched: dict[tuple[int, int], int] = {}
    det_gt: dict[int, int] = {}  # id(TrackPoint) → gt id
    for f in sorted(set(gt_by_frame) | set(det_by_frame)):
        g, d = gt_by_frame.get(f, []), det_by_frame.get(f, [])
        pairs = match_frame(
            [(r["row"], r["col"]) for r in g], [(p.row, p.col) for p in d], max_dist
        )
        for i, j in pairs:
            matched[(f, int(g[i]["track_id"]))] = d[j].track_id
            det_gt[id(d[j])] = int(g[i]["track_id"])
    gt_frames: dict[int, list[int]] = defaultdict(list)
    for r in gt_rows:
        gt_frames[int(r["track_id"])].append(int(r["frame"]))
    # recovered whole, identity switches
    whole, switches = 0, 0
    for gid, frames in gt_frames.items():
        ids = [matched[(f, gid)] for f in sorted(frames) if (f, gid) in matched]
        if ids and Counter(ids).most_common(1)[0][1] >= min_share * len(frames):
            whole += 1
        switches += sum(a != b for a, b in zip(ids, ids[1:]))
    # review actions
    by_track: dict[int, list[TrackPoint]] = defaultdict(list)
    for p in pred:
        by_track[p.track_id].append(p)
    owner: dict[int, int | None] = {}
    track_actions = rejects = 0
    for tid, pts in by_track.items():
        votes = Counter(det_gt[id(p)] for p in pts if id(p) in det_gt)
        owner[tid] = votes.most_common(1)[0][0] if votes else None
        track_actions += 1
        if owner[tid] is not None:
            rejects += sum(det_gt.get(id(p)) != owner[tid] for p in pts)
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for tid, pts in by_track.items():
        if owner[tid] is not None:
            fr = [p.frame for p in pts]
            spans[owner[tid]].append((min(fr) - max_gap, max(fr) + max_gap))
    fills = adds = 0
    for gid, frames in gt_frames.items():
        for f in frames:
            t = matched.get((f, gid))
            if t is not None and owner.get(t) == gid:
                continue
            if any(a <= f <= b for a, b in spans.get(gid, [])):
                fills += 1
            else:
                adds += 1
    n_gt = len(gt_rows)
    missed = n_gt - len(matched)
    return {
        "gt_tracks": len(gt_frames),
        "gt_targets": n_gt,
        "detections": len(pred),
        "predicted_tracks": len(by_track),
        "matched": len(matched),
        "recovered_whole": whole,
        "recovered_whole_share": whole / len(gt_frames) if gt_frames else float("nan"),
        "id_switches": switches,
        "actions_frame_by_frame": len(pred) + missed,
        "actions_by_track": track_actions + rejects + fills + adds,
        "by_track_parts": {
            "tracks": track_actions,
            "rejects": rejects,
            "fills": fills,
            "adds": adds,
        },
    }
