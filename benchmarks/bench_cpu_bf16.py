"""bf16 autocast against fp32 on the CPU: one inference forward and one training step of the
bundled default (median of 3 after a warm-up), and how far the logits move.

    OMP_NUM_THREADS=2 python benchmarks/bench_cpu_bf16.py [--threads 2] [--side 512]

Meaningful on a CPU with bf16 instructions (AVX512-BF16 or AMX; ``cpu_bf16_supported()`` says);
elsewhere oneDNN emulates bf16 and it is slower than fp32. Measured figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from napari_irsam.model import load_model
from napari_irsam.model.device import cpu_bf16_supported


def _median(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--side", type=int, default=512, help="inference input side (px)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpu_bf16_supported: {cpu_bf16_supported()}, threads {args.threads}")
    net, _ = load_model("default")
    net.float().eval()
    x = torch.rand(1, 3, args.side, args.side) * 255

    def infer(bf16: bool) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return net.forward_all(x).mask_logits.float()

    t32, t16 = _median(lambda: infer(False)), _median(lambda: infer(True))
    diff = (infer(False) - infer(True)).abs().max().item()
    agree = ((infer(False) > 0) == (infer(True) > 0)).float().mean().item()
    print(
        f"inference {args.side}²: fp32 {t32:.2f} s, bf16 {t16:.2f} s ({t32 / t16:.2f}x); "
        f"max |Δlogit| {diff:.3f}, mask agreement {agree:.4f}"
    )

    net.train()
    opt = torch.optim.AdamW(net.parameters(), 1e-5)
    xb = torch.rand(4, 3, 256, 256) * 255
    yb = (torch.rand(4, 1, 256, 256) > 0.99).float()

    def step(bf16: bool) -> None:
        opt.zero_grad()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            out = net.forward_all(xb).mask_logits
        target = F.interpolate(yb, out.shape[-2:])
        F.binary_cross_entropy_with_logits(out.float(), target).backward()
        opt.step()

    s32, s16 = _median(lambda: step(False)), _median(lambda: step(True))
    print(f"training step (batch 4, 256²): fp32 {s32:.2f} s, bf16 {s16:.2f} s ({s32 / s16:.2f}x)")


if __name__ == "__main__":
    main()
