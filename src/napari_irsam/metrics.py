"""IRSTD metrics — IoU, nIoU, Pd, Fa — in two modes, accumulated image by image.

``mode="paper"`` reproduces the official IRSAM evaluation exactly, quirks included (spec §7):

* prediction P = logits > 0 (or a given boolean mask); GT = ``int(gt / 255)`` (truncation), so
  only pixels equal to 255 are targets: masks stored as 0/1 (or bool) give an *empty* GT;
* IoU = Σ inter / (Σ union + 2.220446049250313e-16), pooled over the dataset;
* nIoU = mean over *all* images of inter / (union + eps); an image where both are empty counts 0;
* Pd: 8-connected regions; GT regions in label order each take the *first* remaining predicted
  region (label order) whose centroid is closer than 3 px (strict), which is then removed;
* Fa pixels of an image = Σ areas of predicted regions whose *area value* is not among the matched
  regions' areas (an unmatched region as large as a matched one is not counted);
  Fa = Σ Fa pixels / (512 · 512 · N), whatever the image size.

``mode="corrected"`` (default) is the honest version: GT = mask > 127 for uint8 images whose
maximum is 255 (0/255 masks, grey edges from resizing included), else mask > 0 (bool, 0/1 masks,
labels images), or ``mask > gt_threshold`` when given; targets are still the 8-connected components
of that mask. Matching is optimal (Hungarian on centroid distances, only pairs < 3 px count, the
most matches with the least total distance); false-alarm pixels are those of the unmatched
predicted regions; Fa divides by the real number of pixels; an image with empty prediction and
empty GT has IoU ``empty_niou`` (1 by default; None leaves it out of nIoU); pooled IoU is 1 when
the whole dataset has an empty union.

Values are fractions; tables usually show IoU/nIoU/Pd ×100 and Fa ×10⁶. Pd (resp. nIoU) is NaN
when there was no GT target (resp. no image counted).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage.measure import label, regionprops

EPS = float(np.finfo(np.float64).eps)  # 2.220446049250313e-16, as the official code
MODES = ("paper", "corrected")
PD_DISTANCE = 3.0


def resize_nearest(mask: np.ndarray, size: tuple[int, int] = (512, 512)) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W) array to ``size`` = (rows, cols), keeping its dtype
    and values (for the official 512² protocol). Output pixel i samples input pixel
    floor((i + ½)·H/rows), i.e. pixel centres are aligned (PIL's NEAREST convention)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or min(mask.shape) < 1 or min(size) < 1:
        raise ValueError(f"resize_nearest takes a non-empty (H, W) array, got {mask.shape}.")
    h, w = mask.shape
    rows = np.minimum((np.arange(size[0]) + 0.5) * h / size[0], h - 1).astype(int)
    cols = np.minimum((np.arange(size[1]) + 0.5) * w / size[1], w - 1).astype(int)
    return mask[rows][:, cols]


def _regions(mask: np.ndarray) -> list:
    return regionprops(label(mask, connectivity=2))


def _match_paper(gt_regions: list, pred_regions: list) -> tuple[int, int]:
    """Greedy first-fit matching and area-value false alarms; returns (hits, fa_pixels).

    Vectorised per GT region: the distances to all predicted centroids are computed at once and
    the first *remaining* one (label order) closer than 3 px is taken and removed.
    """
    areas = np.array([int(p.area) for p in pred_regions], np.int64)
    if not pred_regions:
        return 0, 0
    cents = np.array([p.centroid for p in pred_regions], np.float64)
    remaining = np.ones(len(pred_regions), bool)
    matched_areas: list[int] = []
    for g in gt_regions:
        close = remaining & (np.linalg.norm(cents - np.asarray(g.centroid), axis=1) < PD_DISTANCE)
        if close.any():
            j = int(np.argmax(close))  # first True in label order
            remaining[j] = False
            matched_areas.append(int(areas[j]))
    fa = int(areas[~np.isin(areas, matched_areas)].sum())
    return len(matched_areas), fa


def _match_corrected(gt_regions: list, pred_regions: list) -> tuple[int, int]:
    """Optimal one-to-one matching (< 3 px); false alarms = pixels of unmatched regions."""
    if not gt_regions or not pred_regions:
        return 0, sum(int(p.area) for p in pred_regions)
    g = np.array([r.centroid for r in gt_regions])
    p = np.array([r.centroid for r in pred_regions])
    dist = np.linalg.norm(g[:, None] - p[None], axis=2)
    cost = np.where(dist < PD_DISTANCE, dist, 1e6)
    rows, cols = linear_sum_assignment(cost)
    ok = dist[rows, cols] < PD_DISTANCE
    matched = set(cols[ok].tolist())
    fa = sum(int(r.area) for j, r in enumerate(pred_regions) if j not in matched)
    return int(ok.sum()), fa


class MetricAccumulator:
    """Streaming IoU/nIoU/Pd/Fa: ``update`` per image, ``compute`` at any time.

    Args:
        mode: ``"paper"`` or ``"corrected"``.
        threshold: numeric predictions are binarised as ``pred > threshold`` (0 for logits,
            0.5 for probabilities); boolean predictions are used as they are.
        empty_niou: corrected mode only — nIoU of an image with empty prediction and GT
            (1.0 by default; None excludes such images from nIoU). Paper mode always counts 0.
        gt_threshold: corrected mode only — GT = ``gt > gt_threshold``; None picks the rule in
            the module docstring. Paper mode always uses ``int(gt / 255)``.

    Only running sums are kept, so memory does not grow with the number of images.
    """

    def __init__(
        self,
        mode: str = "corrected",
        threshold: float = 0.0,
        empty_niou: float | None = 1.0,
        gt_threshold: float | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be 'paper' or 'corrected', got {mode!r}.")
        self.mode, self.threshold, self.empty_niou = mode, threshold, empty_niou
        self.gt_threshold = gt_threshold
        self.inter = self.union = 0
        self.niou_sum, self.niou_count = 0.0, 0
        self.n_images = self.n_targets = self.n_detected = 0
        self.fa_pixels = self.total_pixels = 0

    def _binarise(self, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred, gt = np.asarray(pred), np.asarray(gt)
        # an RGB(A) mask image (e.g. a PNG saved in colour) has equal channels: keep the first
        if pred.ndim == 3 and pred.shape[-1] in (3, 4):
            pred = pred[..., 0]
        if gt.ndim == 3 and gt.shape[-1] in (3, 4):
            gt = gt[..., 0]
        if pred.ndim != 2 or gt.ndim != 2:
            raise ValueError(
                f"update takes one (H, W) image at a time, got prediction {pred.shape} and "
                f"ground truth {gt.shape}; use evaluate() for stacks."
            )
        if pred.shape != gt.shape:
            raise ValueError(f"Prediction {pred.shape} and ground truth {gt.shape} differ in size.")
        p = pred if pred.dtype == bool else pred > self.threshold
        if self.mode == "paper":
            t = (gt.astype(np.float64) / 255.0).astype(np.int64) > 0
        elif self.gt_threshold is not None:
            t = gt > self.gt_threshold
        elif gt.dtype == np.uint8 and gt.max(initial=0) == 255:
            t = gt > 127
        else:
            t = gt > 0
        return p, t

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image: ``pred`` (H, W) bool mask or scores, ``gt`` (H, W) mask."""
        p, t = self._binarise(pred, gt)
        inter = int(np.count_nonzero(p & t))
        union = int(np.count_nonzero(p)) + int(np.count_nonzero(t)) - inter
        self.inter += inter
        self.union += union
        if self.mode == "paper":
            self.niou_sum += inter / (union + EPS)
            self.niou_count += 1
        elif union == 0:
            if self.empty_niou is not None:
                self.niou_sum += self.empty_niou
                self.niou_count += 1
        else:
            self.niou_sum += inter / union
            self.niou_count += 1
        gt_regions, pred_regions = _regions(t), _regions(p)
        match = _match_paper if self.mode == "paper" else _match_corrected
        hits, fa = match(gt_regions, pred_regions)
        self.n_targets += len(gt_regions)
        self.n_detected += hits
        self.fa_pixels += fa
        self.total_pixels += 512 * 512 if self.mode == "paper" else p.size
        self.n_images += 1

    def compute(self) -> dict:
        """``{"iou", "niou", "pd", "fa", "n_images", "mode", …}`` with fractions; ``fa`` is the
        raw false-alarm pixel ratio."""
        if self.mode == "paper":
            iou = self.inter / (self.union + EPS)
        else:
            iou = self.inter / self.union if self.union else 1.0
        return {
            "iou": float(iou),
            "niou": float(self.niou_sum / self.niou_count) if self.niou_count else float("nan"),
            "pd": float(self.n_detected / self.n_targets) if self.n_targets else float("nan"),
            "fa": float(self.fa_pixels / self.total_pixels) if self.total_pixels else float("nan"),
            "n_images": self.n_images,
            "mode": self.mode,
            "n_targets": self.n_targets,
            "n_detected": self.n_detected,
            "fa_pixels": self.fa_pixels,
            "total_pixels": self.total_pixels,
        }


def evaluate(
    preds: Iterable[np.ndarray],
    gts: Iterable[np.ndarray],
    mode: str = "corrected",
    threshold: float = 0.0,
    empty_niou: float | None = 1.0,
    gt_threshold: float | None = None,
) -> dict:
    """Evaluate paired (H, W) predictions and GT masks (sequences, iterators or (N, H, W) stacks);
    see :class:`MetricAccumulator`. Works on generators without holding all frames."""
    acc = MetricAccumulator(mode, threshold, empty_niou, gt_threshold)
    pred_iter, gt_iter = iter(preds), iter(gts)
    sentinel = object()
    while True:
        p, g = next(pred_iter, sentinel), next(gt_iter, sentinel)
        if p is sentinel and g is sentinel:
            return acc.compute()
        if p is sentinel or g is sentinel:
            raise ValueError(
                f"There are {'fewer' if p is sentinel else 'more'} predictions than ground-truth "
                f"masks (mismatch after {acc.n_images} pairs)."
            )
        acc.update(p, g)


def format_table(rows: dict[str, dict]) -> str:
    """Markdown table of IoU, nIoU, Pd (×100) and Fa (×10⁶) for named results."""
    lines = [
        "| method | mode | IoU | nIoU | Pd | Fa (×10⁻⁶) | images |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['mode']} | {100 * r['iou']:.2f} | {100 * r['niou']:.2f} | "
            f"{100 * r['pd']:.2f} | {1e6 * r['fa']:.2f} | {r['n_images']} |"
        )
    return "\n".join(lines)
