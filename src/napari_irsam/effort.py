"""Annotation effort: the corrections an annotator needs to turn a prediction into the ground truth.

Predicted and ground-truth targets are 8-connected components. A pair *may match* when the two
overlap or their centroids are less than 3 px apart (the Pd rule); pairs are matched one to one
by maximum weight (scipy's ``linear_sum_assignment``: first as many pairs as possible, then the
highest target IoU). Then, per 100 ground-truth targets:

* **miss** — a ground-truth target with no match (the annotator adds it);
* **false alarm** — a predicted target with no match (the annotator rejects it);
* **reshape** — a matched pair with target IoU < 0.5 (the annotator repaints it);
* **accepted** — a matched pair with target IoU ≥ 0.5 (accepted as is).

``actions_per_100 = 100 · (misses + false alarms + reshapes) / GT targets``; clicking every
target from scratch costs 100. Each predicted target's *score* is its peak probability; the
target-level average precision (AP) ranks predicted targets by that score (a target is a true
positive when it is matched), so a high AP means the review table's "peak" column puts true
targets first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from skimage.measure import label

#: the keys of ``napari-irsam evaluate --json``'s ``"effort"`` object
EFFORT_KEYS = ("actions_per_100", "misses", "false_alarms", "reshapes", "accepted_pct")
#: a matched pair below this target IoU needs reshaping
RESHAPE_IOU = 0.5
#: centroid distance (px, strict) under which a pair may match without overlapping
MATCH_DISTANCE = 3.0


@dataclass
class FrameEffort:
    """Effort for one frame."""

    n_gt: int
    n_pred: int
    misses: int
    false_alarms: int
    reshapes: int
    accepted: int
    #: (score, matched) per predicted target, for the average precision
    scored: list[tuple[float, bool]] = field(default_factory=list)
    #: target IoU of each matched pair
    pair_ious: list[float] = field(default_factory=list)


def _components(mask: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Labels, count, areas (n,) and centroids (n, 2) of the 8-connected components."""
    lab, n = label(mask, connectivity=2, return_num=True)
    if n == 0:
        return lab, 0, np.zeros(0), np.zeros((0, 2))
    flat = lab.ravel()
    areas = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
    rows, cols = np.indices(lab.shape)
    cy = np.bincount(flat, rows.ravel(), minlength=n + 1)[1:] / areas
    cx = np.bincount(flat, cols.ravel(), minlength=n + 1)[1:] / areas
    return lab, n, areas, np.stack([cy, cx], 1)


def frame_effort(pred: np.ndarray, gt: np.ndarray, prob: np.ndarray | None = None) -> FrameEffort:
    """Match the targets of one frame. ``pred``/``gt``: (H, W) bool; ``prob``: (H, W) scores
    (default: 1 for every predicted pixel)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"Prediction {pred.shape} and ground truth {gt.shape} differ in size.")
    pl, npred, parea, pc = _components(pred)
    gl, ngt, garea, gc = _components(gt)
    if prob is None:
        scores = np.ones(npred)
    else:
        scores = np.zeros(npred + 1)
        np.maximum.at(scores, pl.ravel(), np.asarray(prob, np.float64).ravel())
        scores = scores[1:]
    inter = np.zeros((ngt, npred))
    if ngt and npred:
        both = (pl > 0) & (gl > 0)
        m = coo_matrix((np.ones(int(both.sum())), (gl[both] - 1, pl[both] - 1)), shape=(ngt, npred))
        inter = m.toarray()
    union = garea[:, None] + parea[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    dist = np.linalg.norm(gc[:, None, :] - pc[None, :, :], axis=2) if ngt and npred else inter
    allowed = (inter > 0) | (dist < MATCH_DISTANCE)
    pairs: list[tuple[int, int]] = []
    if ngt and npred and allowed.any():
        # weight 1 per allowed pair (maximise the number of matches) + IoU (then their quality)
        weight = np.where(allowed, 1.0 + iou, 0.0)
        r, c = linear_sum_assignment(weight, maximize=True)
        pairs = [(i, j) for i, j in zip(r, c) if allowed[i, j]]
    matched_pred = {j for _, j in pairs}
    pair_ious = [float(iou[i, j]) for i, j in pairs]
    reshapes = sum(v < RESHAPE_IOU for v in pair_ious)
    return FrameEffort(
        n_gt=ngt,
        n_pred=npred,
        misses=ngt - len(pairs),
        false_alarms=npred - len(pairs),
        reshapes=int(reshapes),
        accepted=len(pairs) - int(reshapes),
        scored=[(float(scores[j]), j in matched_pred) for j in range(npred)],
        pair_ious=pair_ious,
    )


def average_precision(scored: list[tuple[float, bool]], n_gt: int) -> float:
    """All-point interpolated area under the precision–recall curve of targets ranked by score
    (ties broken towards false alarms, so a constant score earns no credit for ranking)."""
    if n_gt == 0:
        return float("nan")
    if not scored:
        return 0.0
    s = np.array([v for v, _ in scored])
    tp = np.array([m for _, m in scored], bool)
    order = np.lexsort((tp, -s))  # by score descending, false alarms first within a tie
    tp = tp[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
    recall = ctp / n_gt
    precision = ctp / (ctp + cfp)
    # precision envelope (monotone non-increasing from the right), integrated over recall steps
    env = np.maximum.accumulate(precision[::-1])[::-1]
    prev = np.concatenate([[0.0], recall[:-1]])
    return float(np.sum((recall - prev) * env))


class EffortAccumulator:
    """Streaming effort over many frames; ``compute()`` gives the ``"effort"`` dict of
    ``napari-irsam evaluate --json``."""

    def __init__(self) -> None:
        self.frames: list[FrameEffort] = []

    def update(self, pred: np.ndarray, gt: np.ndarray, prob: np.ndarray | None = None) -> None:
        self.frames.append(frame_effort(pred, gt, prob))

    def compute(self) -> dict[str, float]:
        n_gt = sum(f.n_gt for f in self.frames)
        misses = sum(f.misses for f in self.frames)
        fas = sum(f.false_alarms for f in self.frames)
        reshapes = sum(f.reshapes for f in self.frames)
        accepted = sum(f.accepted for f in self.frames)
        per = 100.0 / n_gt if n_gt else float("nan")
        scored = [x for f in self.frames for x in f.scored]
        ious = [v for f in self.frames for v in f.pair_ious]
        return {
            "actions_per_100": (misses + fas + reshapes) * per,
            "misses": misses,
            "false_alarms": fas,
            "reshapes": reshapes,
            "accepted_pct": accepted * per,
            "gt_targets": n_gt,
            "predicted_targets": sum(f.n_pred for f in self.frames),
            "target_ap": average_precision(scored, n_gt),
            "median_target_iou": float(np.median(ious)) if ious else float("nan"),
        }


def format_effort(rows: dict[str, dict[str, float]]) -> str:
    """A plain-text table of effort results, one row per method."""
    head = (
        f"{'method':<28} {'actions/100':>11} {'misses':>7} {'false al.':>9} {'reshapes':>8} "
        f"{'accepted %':>10} {'AP':>6}"
    )
    lines = [head, "-" * len(head)]
    for name, e in rows.items():
        lines.append(
            f"{name[:28]:<28} {e['actions_per_100']:>11.1f} {e['misses']:>7d} "
            f"{e['false_alarms']:>9d} {e['reshapes']:>8d} {e['accepted_pct']:>10.1f} "
            f"{e['target_ap']:>6.3f}"
        )
    return "\n".join(lines)
