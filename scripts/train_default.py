"""Stage 1 of the bundled default: pretraining on the project's own synthetic scenes (issue 6, v1).

v2 (issue 10) starts from this checkpoint; see scripts/train_default.sh.

    python scripts/train_default.py --data /work/runs/syn_v2 --out /work/runs/default_v2 \
        --minutes 80 --epochs 3 --lr 6e-4 --mask-bce 1.0

The dataset is made with ``napari_irsam.data.synthetic.make_dataset(folder, 1100, seed=2027,
size=(256, 256), test_fraction=0.0, snr_range=(1.5, 20.0), gamma_range=(0.6, 1.6))``. Configuration: WPMD + GAD "both", 256² model input
upsampled 2× (nearest) to a 512² encoder input, i.e. masks at half the input resolution like the
release, at a quarter of the release's encoder cost.
"""

from __future__ import annotations

import argparse
import json
import time

from napari_irsam.training.train import TrainConfig, train

DEFAULT_CONFIG = {
    "name": "paper-256",  # called "default-fast" before (an alias keeps that name loading)
    "image_size": 256,
    "encoder_scale": 2,
    "gad_mode": "both",
    "wpmd_levels": ["0", "1"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=70)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mask-bce", type=float, default=0.0)
    args = ap.parse_args()
    cfg = TrainConfig(
        dataset=args.data,
        out=args.out,
        split="train",
        config=DEFAULT_CONFIG,
        epochs=args.epochs,
        batch_size=4,
        lr=args.lr,
        warmup_steps=50,
        val_fraction=0.02,
        seed=args.seed,
        vflip=True,
        mask_bce_weight=args.mask_bce,
        time_budget_s=args.minutes * 60,
    )
    t0 = time.time()
    for ev in train(cfg):
        if ev.kind == "step" and ev.step % 10:
            continue
        print(
            json.dumps(
                {
                    "t": round(time.time() - t0, 1),
                    "kind": ev.kind,
                    "epoch": ev.epoch,
                    "step": ev.step,
                    "total": ev.total_steps,
                    "loss": round(ev.loss, 4),
                    "lr": ev.lr,
                    "val": ev.metrics.get("iou"),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
