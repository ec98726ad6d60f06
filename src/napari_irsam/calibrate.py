"""Fit a checkpoint's detection calibration on labelled frames it was not trained on.

Given the raw logits of held-out frames and their ground-truth masks (torch/numpy only):

1. **temperature** T: minimises the pixel-level negative log-likelihood of σ(logit / T) (a 1-D
   bounded search over log T), so probabilities mean what they say and peaks stop saturating;
2. **threshold**, **min_peak** (probabilities after T) and, given the frames, the outline
   **refine** fraction (:mod:`napari_irsam.refine`): the combination on a small grid that needs
   the fewest annotator corrections (:mod:`napari_irsam.effort`: misses + false alarms + reshapes
   per 100 targets) among those that miss no more targets than the plain threshold (0.5, no peak
   filter, no refinement) does; ties go to the higher pixel IoU, then to the lowest values.

:func:`calibrate_checkpoint` runs a checkpoint on the held-out part of a training configuration
(the names ``napari-irsam train`` held out with the same datasets, fraction and seed) and writes
a copy whose metadata carries the :class:`~napari_irsam.model.calibration.Calibration`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from .effort import EffortAccumulator
from .model.calibration import METADATA_KEY, Calibration, probability
from .refine import refine_targets
from .targets_large import threshold_targets

#: probability thresholds tried (after the temperature)
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)
#: least target peaks tried (0 = keep every target)
MIN_PEAKS = (0.0, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
#: outline refinement fractions tried (0 = the model's outlines)
REFINES = (0.0, 0.2, 0.25, 0.3, 0.35, 0.4)
#: at most this many pixels enter the temperature fit (all target pixels are kept)
FIT_PIXELS = 4_000_000


@dataclass(frozen=True)
class GridRow:
    """Corrections per 100 GT targets (and pixel IoU) for one grid combination."""

    threshold: float
    min_peak: float
    actions_per_100: float
    misses: int
    false_alarms: int
    reshapes: int
    refine: float = 0.0
    iou: float = 0.0  #: pixel IoU over all frames (∑ intersection / ∑ union)


def fit_temperature(logits: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """Temperature T > 0 minimising the mean pixel NLL of σ(logit / T) against the masks.

    ``logits``: (H, W) float arrays; ``masks``: (H, W) bool ground truth. Background pixels are
    subsampled (evenly) to :data:`FIT_PIXELS` with weights that keep the NLL unbiased."""
    z = np.concatenate([np.asarray(lg, np.float64).ravel() for lg in logits])
    y = np.concatenate([np.asarray(m, bool).ravel() for m in masks])
    weight = np.ones(z.shape)
    if z.size > FIT_PIXELS:
        bg = np.flatnonzero(~y)
        step = int(np.ceil(bg.size / max(1, FIT_PIXELS - int(y.sum()))))
        keep = np.concatenate([np.flatnonzero(y), bg[::step]])
        weight = np.where(y[keep], 1.0, bg.size / len(bg[::step]))
        z, y = z[keep], y[keep]

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(np.sum(weight * (np.logaddexp(0.0, s) - y * s)) / np.sum(weight))

    best = minimize_scalar(nll, bounds=(np.log(0.25), np.log(32.0)), method="bounded")
    return float(np.exp(best.x))


def effort_grid(
    logits: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    temperature: float,
    thresholds: Sequence[float] = THRESHOLDS,
    min_peaks: Sequence[float] = MIN_PEAKS,
    images: Sequence[np.ndarray] | None = None,
    refines: Sequence[float] = (0.0,),
) -> list[GridRow]:
    """Corrections for every (threshold, min_peak, refine) combination; pairs with min_peak ≤
    threshold other than min_peak = 0 are skipped (the filter would do nothing), and refine > 0
    needs the (H, W[, C]) ``images``."""
    if images is None and any(refines):
        raise ValueError("Refined outlines need the frames (images=).")
    probs = [probability(lg, temperature) for lg in logits]  # once, not once per grid pair
    gts = [np.asarray(gt, bool) for gt in masks]
    rows = []
    for thr in thresholds:
        for peak in min_peaks:
            if 0 < peak <= thr:
                continue
            base = [threshold_targets(prob, thr, peak) for prob in probs]
            for frac in refines:
                preds = (
                    base
                    if not frac
                    else [refine_targets(im, m, frac) for im, m in zip(images, base)]
                )
                rows.append(_row(preds, gts, probs, thr, peak, frac))
    return rows


def _row(preds, gts, probs, thr: float, peak: float, frac: float) -> GridRow:
    """Effort and pixel IoU of one combination's masks."""
    acc = EffortAccumulator()
    inter = union = 0
    for pred, gt, prob in zip(preds, gts, probs):
        acc.update(pred, gt, prob)
        inter += int(np.count_nonzero(pred & gt))
        union += int(np.count_nonzero(pred | gt))
    e = acc.compute()
    return GridRow(
        thr,
        peak,
        float(e["actions_per_100"]),
        int(e["misses"]),
        int(e["false_alarms"]),
        int(e["reshapes"]),
        frac,
        inter / union if union else 1.0,
    )


def fit_calibration(
    logits: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    fitted_on: str = "",
    images: Sequence[np.ndarray] | None = None,
) -> tuple[Calibration, list[GridRow]]:
    """Temperature, then the (threshold, min_peak[, refine]) combination with the fewest
    corrections; the outline refinement is only tried when the frames (``images``) are given."""
    if not len(logits) or len(logits) != len(masks):
        raise ValueError("Calibration needs at least one frame and one mask per frame.")
    if images is not None and len(images) != len(masks):
        raise ValueError("Calibration needs one frame per mask.")
    if not any(np.asarray(m).any() for m in masks):
        raise ValueError("Calibration needs frames with targets; these masks are all empty.")
    t = fit_temperature(logits, masks)
    refines = REFINES if images is not None else (0.0,)
    rows = effort_grid(logits, masks, t, images=images, refines=refines)
    base = next(r for r in rows if (r.threshold, r.min_peak, r.refine) == (0.5, 0.0, 0.0))
    # never buy fewer false alarms with targets the plain threshold finds: a miss costs an
    # annotator a search of the whole frame, a false alarm one key press
    allowed = [r for r in rows if r.misses <= base.misses]
    best = min(
        allowed,
        key=lambda r: (
            round(r.actions_per_100, 9),
            -round(r.iou, 9),
            r.threshold,
            r.min_peak,
            r.refine,
        ),
    )
    return Calibration(t, best.threshold, best.min_peak, fitted_on, best.refine), rows


def heldout_logits(predictor, data) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(logits (H, W) float32, GT mask (H, W) bool, frame (H, W[, C])) for every frame of an IRSTD
    dataset, run by a ``Predictor(keep_logits=True)``."""
    for i in range(len(data)):
        s = data[i]
        logits = predictor.predict_frame(s.image).logits
        if logits is None:  # band-by-band frames keep no full-frame logits
            raise ValueError(
                f"Frame {i} has {s.image.shape[0]}×{s.image.shape[1]} pixels; calibration needs "
                f"frames under {predictor.band_pixels} pixels (crop or tile them first)."
            )
        yield logits, np.asarray(s.mask, bool), np.asarray(s.image)


def calibrate_checkpoint(
    checkpoint: str,
    data,
    out: str | Path,
    fitted_on: str,
    device: str = "auto",
    precision: str = "fp32",
) -> tuple[Calibration, list[GridRow], str]:
    """Fit the calibration of ``checkpoint`` on ``data`` (an IRSTD dataset of held-out frames)
    and write the checkpoint with it to ``out`` (atomically). Returns (calibration, grid, sha256)."""
    from .inference import Predictor
    from .model import load_model, read_checkpoint, save_checkpoint

    model, info = load_model(checkpoint)
    predictor = Predictor(model, device, maps=(), precision=precision, keep_logits=True)
    pairs = list(heldout_logits(predictor, data))
    cal, rows = fit_calibration(
        [p[0] for p in pairs], [p[1] for p in pairs], fitted_on, images=[p[2] for p in pairs]
    )
    src = read_checkpoint(info.path)  # a registry name resolved to its file
    meta = {**(src.metadata or {}), METADATA_KEY: cal.to_metadata()}
    sha = save_checkpoint(model.float().cpu(), out, metadata=meta, half=_is_half(src))
    return cal, rows, sha


def calibrate_run(cfg, device: str = "auto", precision: str = "fp32") -> Calibration | None:
    """After ``train(cfg)``: fit the calibration of the run's ``best.pt`` on the run's held-out
    frames and write it into ``best.pt`` (same weights, atomically). None (nothing written) when
    the run has no ``best.pt``, no held-out part, or no target in it."""
    from .training.train import split_datasets

    best = Path(cfg.out) / "best.pt"
    if not best.is_file() or not cfg.val_fraction:
        return None
    val = split_datasets(cfg)[2]
    if val is None or len(val) == 0:
        return None
    fitted_on = (
        f"held-out part of the training data: {len(val)} frames "
        f"(val_fraction {cfg.val_fraction:g}, seed {cfg.seed})"
    )
    try:
        cal, _, _ = calibrate_checkpoint(str(best), val, best, fitted_on, device, precision)
    except ValueError:  # no target in the held-out frames: nothing to fit
        return None
    return cal


def _is_half(src) -> bool:
    """Whether the source checkpoint stores float16 parameters (the bundled default does)."""
    return any(v.dtype == torch.float16 for v in src.state_dict.values())
