"""What Run IRSAM's "display maps" checkbox costs: one frame with and without the maps.

    python benchmarks/bench_display_maps.py [--model default] [--size 256] [--repeats 5]

Runs :class:`napari_irsam.inference.Predictor` on one frame of the synthetic sample (resized to
``--size``) with ``maps=()`` (mask and probability only), ``("wpmd",)``, ``("features",)`` and
both, and prints the median wall and CPU seconds per frame of ``--repeats`` runs (after one
warm-up) plus the memory of the maps per frame. CPU time is the honest figure on a shared
machine; the ratio to ``maps=()`` is what the docs quote.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from napari_irsam._sample_data import make_sample_data
    from napari_irsam.inference import Predictor
    from napari_irsam.model import load_model
    from napari_irsam.preprocess import resize_hw

    frames = make_sample_data()[0][0]
    frame = frames[3].astype(np.float32)
    if frame.shape != (args.size, args.size):
        t = torch.from_numpy(frame)[None, None]
        frame = resize_hw(t, (args.size, args.size))[0, 0].numpy()
    model, _ = load_model(args.model)
    rows = {}
    for maps in ((), ("wpmd",), ("features",), ("features", "wpmd")):
        predictor = Predictor(model, "cpu", maps=maps)
        predictor.predict(frame[None])  # warm-up
        wall, cpu = [], []
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            pred = predictor.predict(frame[None])[0]
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        extra = sum(
            getattr(pred, name).nbytes
            for name in ("wpmd_edges", "wpmd_diffused", "granularity_local", "granularity_global")
            if getattr(pred, name) is not None
        )
        rows["+".join(maps) or "none"] = {
            "wall_s": statistics.median(wall),
            "cpu_s": statistics.median(cpu),
            "map_bytes": extra,
        }
    base = rows["none"]["cpu_s"]
    print(f"model {args.model}, frame {args.size}², {args.repeats} repeats, load {os.getloadavg()}")
    for name, r in rows.items():
        print(
            f"{name:>14}: wall {r['wall_s']:.3f} s, CPU {r['cpu_s']:.3f} s "
            f"(×{r['cpu_s'] / base:.2f}), maps {r['map_bytes'] / 1e6:.2f} MB/frame as float32"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
