"""Accuracy of the classical detectors and (optionally) IRSAM checkpoints on an IRSTD split.

    python benchmarks/bench_accuracy.py ../shared/datasets/sirst --split idx_427/test.txt \
        [--checkpoint run/best.pt ...] [--json out.json]

Prints the Table-1 columns (IoU, nIoU, Pd ×100, Fa ×10⁶) in both metric modes, and the
annotation effort (``napari_irsam.effort``: misses + false alarms + reshapes per 100 GT targets,
share accepted as is, target-level AP by peak score). Paper mode evaluates at 512² (prediction and
GT resized nearest, as the official code requires 512² GT); corrected mode and effort at each
image's native size.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from napari_irsam.classical import CLASSICAL_DETECTORS, detect
from napari_irsam.data.dataset import IRSTDDataset
from napari_irsam.effort import EffortAccumulator, format_effort
from napari_irsam.metrics import MetricAccumulator, format_table, resize_nearest

EFFORT: dict[str, dict] = {}


def run_method(name: str, predict, data: IRSTDDataset) -> dict[str, dict]:
    """``predict(image) → (mask, score)``; returns paper and corrected rows, records effort."""
    paper, corrected = MetricAccumulator("paper"), MetricAccumulator("corrected")
    effort = EffortAccumulator()
    t0 = time.perf_counter()
    for i in range(len(data)):
        s = data[i]
        pred, score = predict(s.image)
        gt = np.where(s.mask, 255, 0).astype(np.uint8)
        corrected.update(pred, gt)
        effort.update(pred, s.mask, score)
        paper.update(resize_nearest(pred, (512, 512)), resize_nearest(gt, (512, 512)))
    per_image = (time.perf_counter() - t0) / len(data)
    print(f"{name}: {per_image * 1000:.0f} ms/image", flush=True)
    EFFORT[name] = effort.compute()
    return {f"{name}": paper.compute(), f"{name} ": corrected.compute()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--split", required=True)
    ap.add_argument("--checkpoint", nargs="*", default=[])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", help="IRSAM autocast (bf16 on CPUs with it)")
    ap.add_argument("--no-classical", action="store_true", help="IRSAM checkpoints only")
    ap.add_argument("--tta", action="store_true", help="IRSAM with flip averaging (2x compute)")
    ap.add_argument(
        "--uncalibrated",
        action="store_true",
        help="IRSAM masks at probability 0.5 without the peak filter or outline refinement, "
        "whatever the checkpoint's calibration says (the release's logit > 0)",
    )
    ap.add_argument("--json")
    args = ap.parse_args()
    data = IRSTDDataset(args.dataset, args.split)
    rows: dict[str, dict] = {}
    for name in () if args.no_classical else CLASSICAL_DETECTORS:
        rows.update(run_method(name, lambda img, n=name: _pair(detect(n, img)), data))
    for ckpt in args.checkpoint:
        from napari_irsam.inference import Predictor
        from napari_irsam.model import load_model

        model, info = load_model(ckpt)
        loose = {"threshold": 0.5, "min_peak": 0.0, "refine": 0.0} if args.uncalibrated else {}
        predictor = Predictor(
            model, args.device, maps=(), precision=args.precision, tta=args.tta, **loose
        )
        rows.update(
            run_method(
                f"IRSAM {info.model_id}"
                + (" +flip" if args.tta else "")
                + (" uncalibrated" if args.uncalibrated else ""),
                lambda img, p=predictor: _pair(p.predict_frame(img)),
                data,
            )
        )
    print(f"\n{args.dataset} split {args.split}: {len(data)} images\n")
    print(format_table(rows))
    print("\nAnnotation effort (per 100 ground-truth targets, native size):\n")
    print(format_effort(EFFORT))
    if args.json:
        doc = {k.strip() + f" [{v['mode']}]": v for k, v in rows.items()}
        doc["effort"] = EFFORT
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


def _pair(result) -> tuple[np.ndarray, np.ndarray]:
    """(mask, score) of a classical Detection (saliency) or an IRSAM Prediction (probability)."""
    score = getattr(result, "prob", None)
    return result.mask, result.saliency if score is None else score


if __name__ == "__main__":
    main()
