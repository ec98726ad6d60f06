"""A checkpoint's detection calibration: how its logits become probabilities and targets.

IRSAM's mask logits are over-confident (the shipped default gives most true targets *and* most
false alarms a peak logit above 17, a float32 probability of exactly 1.00), so the probability
shown to annotators and the thresholds that make a mask are stored with the checkpoint, fitted on
the held-out part of its training data (:mod:`napari_irsam.calibrate`):

* ``temperature`` T: probability = σ(logit / T) (temperature scaling, Guo et al., ICML 2017;
  T fitted by pixel-level negative log-likelihood). T > 1 spreads the peaks so the review table's
  "peak" column ranks targets; it never changes which pixels pass a threshold of 0.5.
* ``threshold``: a pixel belongs to a target when its probability exceeds this.
* ``min_peak``: an 8-connected target is kept only when its peak probability reaches this
  (hysteresis: a confident seed is needed, the weaker pixels around it keep the shape).
* ``refine``: each kept target's outline is redrawn on the image where its contrast over the
  local background reaches this fraction of its peak contrast (:mod:`napari_irsam.refine`;
  0 = the model's outline as it is).

Stored in the checkpoint metadata under ``"calibration"``; a checkpoint without it behaves as the
release does (T = 1, threshold 0.5, no peak filter).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: metadata key of the calibration in our checkpoints
METADATA_KEY = "calibration"


@dataclass(frozen=True)
class Calibration:
    """How logits become probabilities (``temperature``) and targets (the two thresholds)."""

    temperature: float = 1.0
    threshold: float = 0.5  #: probability above which a pixel is a target pixel
    min_peak: float = 0.0  #: least peak probability of a kept target (0 = keep all)
    fitted_on: str = ""  #: what it was fitted on (data, split, held-out names)
    refine: float = 0.0  #: outline contrast fraction (0 = no refinement)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {self.temperature}.")
        for name in ("threshold", "min_peak"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v}.")
        if not 0.0 <= self.refine < 1.0:
            raise ValueError(f"refine must be a contrast fraction in [0, 1), got {self.refine}.")

    def to_metadata(self) -> dict[str, Any]:
        """Plain dict for the checkpoint metadata."""
        return asdict(self)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any] | None) -> Calibration | None:
        """The calibration a checkpoint's metadata carries, or None."""
        doc = (metadata or {}).get(METADATA_KEY)
        if not isinstance(doc, dict):
            return None
        keys = ("temperature", "threshold", "min_peak", "refine", "fitted_on")
        return cls(**{k: doc[k] for k in keys if k in doc})


#: what a model without a stored calibration gets (the release's logit > 0, unrefined)
UNCALIBRATED = Calibration()


def probability(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(H, W) logits → (H, W) float32 probabilities σ(logit / T) (computed in float64)."""
    z = np.asarray(logits, np.float64) / temperature
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
