"""Training steps and inference on CUDA in fp32, bf16 and fp16 — a prepared check for a GPU machine.

    python benchmarks/bench_gpu.py [--config default] [--batch 16] [--steps 20] [--frames 64]

For each precision: ``--steps`` training steps (AdamW, the project's loss, fp16 with a GradScaler)
on random 256² crops with synthetic targets — median step time and samples/s — then the Predictor
on ``--frames`` 512² frames (frames/s) and peak GPU memory. Prints one table and writes JSON with
``--json``. Exits with code 2 and one line when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def run(config: str, precision: str, batch: int, steps: int, frames: int) -> dict:
    import numpy as np
    import torch

    from napari_irsam.inference import Predictor
    from napari_irsam.model import build_irsam, load_model
    from napari_irsam.model.device import autocast_for
    from napari_irsam.training.losses import irsam_loss

    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = (load_model("default")[0] if config == "default" else build_irsam(config)).to(dev)
    size = model.image_size
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    x = torch.rand(batch, 3, size, size, device=dev) * 255
    y = torch.zeros(batch, 1, size, size, device=dev)
    y[:, :, size // 2 - 2 : size // 2 + 2, size // 2 - 2 : size // 2 + 2] = 1
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + 2):  # two warm-up steps
        torch.cuda.synchronize()
        t = time.perf_counter()
        with autocast_for(dev, precision):
            logits, edges = model(x)
        loss, _ = irsam_loss(logits, edges, y, mask_bce_weight=1.0)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t)
    train_mem = torch.cuda.max_memory_allocated() / 2**20
    model.eval()
    pred = Predictor(model, "cuda", precision=precision, maps=(), batch_size=8)
    stack = np.random.default_rng(0).integers(0, 255, (frames, 512, 512)).astype(np.uint8)
    pred.predict(stack[:2])  # warm-up
    torch.cuda.synchronize()
    t = time.perf_counter()
    pred.predict(stack)
    torch.cuda.synchronize()
    fps = frames / (time.perf_counter() - t)
    step = statistics.median(times)
    return {
        "precision": precision,
        "step_s": step,
        "samples_per_s": batch / step,
        "final_loss": float(loss.detach()),
        "train_peak_mb": train_mem,
        "infer_fps_512": fps,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="default", help="default (bundled) or a configuration")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device on this machine; nothing was measured.", file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    rows = [
        run(args.config, p, args.batch, args.steps, args.frames) for p in ("fp32", "bf16", "fp16")
    ]
    print(
        f"\n| precision | step s (batch {args.batch}) | samples/s | train peak MB | 512² frames/s |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['precision']} | {r['step_s']:.3f} | {r['samples_per_s']:.1f} | "
            f"{r['train_peak_mb']:.0f} | {r['infer_fps_512']:.1f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
