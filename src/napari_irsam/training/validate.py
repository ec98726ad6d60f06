"""Validation during training: corrected-mode metrics and annotation effort per epoch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..effort import EffortAccumulator
from ..metrics import MetricAccumulator
from ..model.device import autocast_for
from .augment import eval_tensor, pad_to_multiple


def native_logits(model, image: np.ndarray, device: torch.device, precision: str = "fp32"):
    """Whole-frame forward at native resolution: (H, W) uint8 → (H, W) float32 logits."""
    padded, (h, w) = pad_to_multiple(image, 32)
    x = torch.from_numpy(padded.astype(np.float32))[None, None].expand(1, 3, -1, -1)
    with autocast_for(device, precision):
        logits, _ = model(x.to(device))
    return logits[0, 0, :h, :w].float().cpu().numpy()


@torch.inference_mode()
def validate(
    model, data, device: torch.device, precision: str = "fp32", geometry: str = "squash"
) -> dict:
    """Corrected-mode metrics at each image's native size; ``geometry`` as in training."""
    model.eval()
    acc, effort = MetricAccumulator("corrected"), EffortAccumulator()
    for i in range(len(data)):
        s = data[i]
        if geometry == "native":
            logits = native_logits(model, s.image, device, precision)
        else:
            x = eval_tensor(s.image, model.image_size)[None].to(device)
            with autocast_for(device, precision):
                out, _ = model(x)
            logits = (
                F.interpolate(
                    out.float(), size=s.image.shape, mode="bilinear", align_corners=False
                )[0, 0]
                .cpu()
                .numpy()
            )
        acc.update(logits > 0, s.mask)
        effort.update(logits > 0, s.mask, 1.0 / (1.0 + np.exp(-logits.astype(np.float64))))
    return {**acc.compute(), "effort": effort.compute()}
