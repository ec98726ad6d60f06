"""Inference speed of the Predictor on this machine.

For each configuration and frame size, a fresh subprocess builds the model (random weights —
speed does not depend on them — except ``default``, the bundled checkpoint), warms up once, then
times ``repeats`` single-frame predictions (median wall time; mask and probability only, as the
CLI runs), a stack of ``--stack`` frames at 256² (frames/s), and reports the process's peak RSS
and CPU-time/wall-time ratio (≈ number of busy cores; ≈ 2 on a quiet 2-core machine).

It also counts the model's floating-point operations per frame (``torch.utils.flop_counter``:
matrix multiplies and convolutions, 2 FLOP per multiply-add) and divides by the median time:
achieved GFLOP/s, set against this machine's measured matrix-multiply peak (a 2048² float32
``torch.mm``, median of 5, same thread count) — the physical limit of a CPU forward pass.

    python benchmarks/bench_inference.py [--repeats 3] [--stack 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

# (label, config, geometry); "default" = the bundled checkpoint
MODES = [
    ("default (bundled, whole frame)", "default", "auto"),
    ("release (512→1024, auto)", "release", "auto"),
    ("release parity (squash)", "release", "squash"),
    ("fast (native 512)", "fast", "auto"),
]


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Median GFLOP/s of an n×n float32 matrix multiply on ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def forward_gflop(predictor, frame) -> float:
    """FLOPs (GFLOP) of the model forwards one ``predict_frame`` runs."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        predictor.predict_frame(frame)
    return counter.get_total_flops() / 1e9


def worker(config: str, geometry: str, size: int, repeats: int, stack: int, threads: int) -> dict:
    import numpy as np
    import torch

    from napari_irsam.inference import Predictor
    from napari_irsam.model import build_irsam, load_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = load_model("default")[0] if config == "default" else build_irsam(config)
    predictor = Predictor(model, "cpu", geometry=geometry, maps=())
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 65535, (size, size)).astype(np.uint16)
    predictor.predict_frame(frame)  # warm-up
    gflop = forward_gflop(predictor, frame)
    times = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        predictor.predict_frame(frame)
        times.append(time.perf_counter() - t)
    cpu_ratio = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    fps = None
    if stack:
        frames = rng.integers(0, 65535, (stack, 256, 256)).astype(np.uint16)
        t = time.perf_counter()
        predictor.predict(frames)
        fps = stack / (time.perf_counter() - t)
    return {
        "gflop": gflop,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "cpu_wall_ratio": cpu_ratio,
        "stack_fps_256": fps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stack", type=int, default=32, help="frames in the 256² stack run (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument(
        "--modes",
        nargs="+",
        default=None,
        help="configurations to run (default: all): " + ", ".join(m[1] for m in MODES),
    )
    ap.add_argument(
        "--worker", nargs=3, metavar=("CONFIG", "GEOMETRY", "SIZE"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.worker:
        cfg, geom, size = args.worker
        print(json.dumps(worker(cfg, geom, int(size), args.repeats, args.stack, args.threads)))
        return

    peak = matmul_peak_gflops(args.threads)
    print(f"matrix-multiply peak: {peak:.1f} GFLOP/s ({args.threads} threads)", file=sys.stderr)
    rows = []
    modes = [m for m in MODES if args.modes is None or m[1] in args.modes]
    for label, cfg, geom in modes:
        for size in args.sizes:
            stack = args.stack if size == args.sizes[0] else 0
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                cfg,
                geom,
                str(size),
                "--repeats",
                str(args.repeats),
                "--stack",
                str(stack),
                "--threads",
                str(args.threads),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            rows.append({"mode": label, "size": size, **res})
            print(f"done {label} {size}²: {res['median_s']:.2f} s", file=sys.stderr, flush=True)

    base = {r["size"]: r["median_s"] for r in rows if r["mode"].startswith("release (")}
    first = {r["mode"]: r["median_s"] for r in rows if r["size"] == args.sizes[0]}
    print(f"\nmatrix-multiply peak ({args.threads} threads): {peak:.1f} GFLOP/s\n")
    print(
        "| mode | frame | median s/frame | × its "
        f"{args.sizes[0]}² time | speed vs release | GFLOP/frame | GFLOP/s | % of peak | "
        "CPU/wall | stack fps (256²) | peak RSS MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = base[r["size"]] / r["median_s"] if r["size"] in base else float("nan")
        fps = f"{r['stack_fps_256']:.2f}" if r["stack_fps_256"] else "–"
        rate = r["gflop"] / r["median_s"]
        print(
            f"| {r['mode']} | {r['size']}² | {r['median_s']:.2f} | "
            f"{r['median_s'] / first[r['mode']]:.2f} | {ratio:.2f}× | {r['gflop']:.1f} | "
            f"{rate:.1f} | {100 * rate / peak:.0f} % | {r['cpu_wall_ratio']:.2f} | {fps} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_peak_gflops": peak, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
