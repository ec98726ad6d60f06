"""What the bundled default's calibration costs per frame, beside the forward pass.

For frames of 256², 512² and 1024² (a generated scene with targets, uint8), the bundled default
is run once to get its logits; then, ``repeats`` times each, the median wall time of:

* the forward pass (``Predictor.predict_frame`` with ``maps=()``, as the CLI runs it);
* plain thresholding (σ(logit) > 0.5, what the release does);
* the calibrated step (σ(logit / T) > threshold, then ``drop_weak_targets`` at ``min_peak``).

The ratio column is calibrated / forward: the share of a frame's time the calibration adds.

    python benchmarks/bench_calibration.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from napari_irsam.data.synthetic import make_scene
    from napari_irsam.inference import Predictor
    from napari_irsam.model import load_model

    model, _ = load_model("default")
    cal = model.calibration
    print(f"calibration: T {cal.temperature:.2f}, threshold {cal.threshold}, peak {cal.min_peak}")
    pred = Predictor(model, "cpu", maps=(), keep_logits=True)
    print("| frame | forward (s) | plain 0.5 (ms) | calibrated (ms) | calibrated / forward |")
    print("|---|---:|---:|---:|---:|")
    for side in (256, 512, 1024):
        scene = make_scene((side, side), n_targets=max(3, side // 64), seed=side)
        image = np.clip(scene.image, 0, 255).astype(np.uint8)
        pred.predict_frame(image)  # warm-up
        fwd = _median(lambda im=image: pred.predict_frame(im), max(1, args.repeats // 2))
        lg = pred.predict_frame(image).logits
        plain = _median(lambda lg=lg: (1.0 / (1.0 + np.exp(-lg.astype(np.float64)))) > 0.5, 3)
        calib = _median(lambda lg=lg: pred.targets(pred.probability(lg)), args.repeats)
        print(
            f"| {side}² | {fwd:.2f} | {plain * 1e3:.1f} | {calib * 1e3:.1f} | "
            f"{100 * calib / fwd:.1f} % |",
            flush=True,
        )


if __name__ == "__main__":
    main()
