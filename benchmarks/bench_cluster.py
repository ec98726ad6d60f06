"""Throughput of batch pre-segmentation (``napari-irsam predict``) in one process and on a Dask
``LocalCluster`` of 1 and 2 worker processes (one thread each), issue 12 §3.

A ``--frames`` × 512 × 640 uint16 stack is written once; each configuration segments all of it
(``--model``, default top-hat) into a fresh folder, ``--repeats`` times after one warm-up run
(workers import, load the model once); reported: median wall seconds, frames/s, and the ratio to
one worker. Cluster start-up is timed separately (it is paid once per ``predict`` call).

Usage: ``python benchmarks/bench_cluster.py [--frames 96] [--model tophat] [--json out]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _stack(path: Path, frames: int) -> None:
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    data = (3000 + rng.normal(0, 20, (frames, 512, 640))).astype(np.uint16)
    for f in range(frames):
        r, c = 40 + (f * 3) % 400, 40 + (f * 7) % 560
        data[f, r - 1 : r + 2, c - 1 : c + 2] = 6000
    tifffile.imwrite(path, data, photometric="minisblack")


def _timed(run, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    for _ in run(str(out)):
        pass
    return time.perf_counter() - t0


def main() -> None:
    from napari_irsam import batch as bt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--model", default="tophat")
    ap.add_argument("--batch-frames", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    stack = work / "stack.tif"
    _stack(stack, args.frames)
    spec = bt.ModelSpec(args.model, "cpu")
    batches = bt.plan_batches([str(stack)], args.batch_frames)
    res: dict = {"frames": args.frames, "model": args.model, "load_average": os.getloadavg()}

    def report(name: str, times: list[float], extra: dict | None = None) -> None:
        med = statistics.median(times)
        res[name] = {"seconds": times, "median_s": med, "fps": args.frames / med, **(extra or {})}
        print(f"{name}: median {med:.1f} s, {args.frames / med:.2f} frames/s {extra or ''}")

    def local(out: str):
        return bt.iter_local(spec, batches, out)

    _timed(local, work / "warm")
    report("single process", [_timed(local, work / f"p{i}") for i in range(args.repeats)])
    for n in (1, 2):
        t0 = time.perf_counter()
        client, cluster = bt.connect(f"local:{n}")
        client.wait_for_workers(n)
        startup = time.perf_counter() - t0
        try:

            def on_cluster(out: str, client=client):
                return bt.iter_cluster(spec, batches, out, client)

            _timed(on_cluster, work / f"warm{n}")
            times = [_timed(on_cluster, work / f"c{n}_{i}") for i in range(args.repeats)]
        finally:
            client.close()
            cluster.close()
        report(f"local:{n}", times, {"startup_s": round(startup, 1)})
    res["ratio_2_vs_1_workers"] = res["local:1"]["median_s"] / res["local:2"]["median_s"]
    res["load_average_end"] = os.getloadavg()
    print(f"2 workers / 1 worker throughput: {res['ratio_2_vs_1_workers']:.2f}×")
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
