"""Peak memory of big data (issue 12 §2): each case runs in a fresh subprocess and reports its peak
RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: anonymous memory plus the file pages it
touched) and its RSS right after the imports.

Cases (on a ``FRAMES`` × 512 × 640 uint16 TIFF written once to ``--dir``, ≈ 6.5 GB for 10,000):

* ``open``       — the napari reader's layer for the stack (lazy memmap, contrast from a sample)
                   and one displayed frame;
* ``classical``  — top-hat on ``--run-frames`` frames through ``segment.run_segmentation`` into
                   output arrays of the whole stack's shape (``new_output_array``: disk-backed);
* ``irsam``      — the bundled default model the same way (the widget's maps: features, WPMD),
                   on ``--irsam-frames`` frames;
* ``export``     — ``export_training_set`` of ``--run-frames`` frames and their masks;
* ``band``       — one ``--side``² uint16 frame (memmap) through the band-by-band predictor, with a
                   zero-cost stand-in model (the pipeline's own memory; the model's activations per
                   tile are the ``tile`` case);
* ``ordinary``   — the same stand-in on a 4096² frame through the ordinary (whole-frame) path,
                   for bytes per pixel before this change;
* ``tile``       — the default model on a 2048² crop band by band (its per-tile peak);
* ``predict_big`` — ``napari-irsam predict`` with the bundled default (``--precision``, bf16 on
                   a CPU with bf16 instructions) on one ``--side``² uint16 TIFF: the real model,
                   band by band, disk-backed results, targets counted band by band and the mask
                   written as a zarr store. A sampler thread records the peak anonymous RSS too.

Usage: ``python benchmarks/bench_memory.py --dir /tmp/irsam-big [--frames 10000] [--json out]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

H, W = 512, 640


def _rss_mb() -> float:
    """This process's peak RSS (VmHWM: reset at exec, unlike ``ru_maxrss``, which a child
    inherits from the process that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_parts() -> dict:
    """Current anonymous and file-backed RSS in MB (RssAnon, RssFile)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            out[line.split(":")[0].lower() + "_held_mb"] = int(line.split()[1]) / 1024
    return out


def write_stack(path: Path, frames: int) -> None:
    """A frames × 512 × 640 uint16 stack with a moving 3×3 target, written through a memmap."""
    import numpy as np
    import tifffile

    if path.is_file() and path.stat().st_size >= frames * H * W * 2:
        return
    rng = np.random.default_rng(0)
    block = (3000 + rng.normal(0, 20, (100, H, W))).astype(np.uint16)

    def frames_of() -> np.ndarray:
        for f in range(frames):  # written page by page: this process never holds the stack
            frame = block[f % 100] + np.uint16((f // 100) % 50)
            r, c = 40 + (f * 3) % (H - 80), 40 + (f * 7) % (W - 80)
            frame[r - 1 : r + 2, c - 1 : c + 2] = 6000
            yield frame

    tifffile.imwrite(
        path, frames_of(), shape=(frames, H, W), dtype=np.uint16, photometric="minisblack"
    )


class StandIn:
    """A zero-cost stand-in for IRSAM (logits from the pixels): the band pipeline's own memory."""

    image_size = 1024

    def to(self, *a, **k):
        return self

    def eval(self):
        return self

    def forward_all(self, x):
        import torch

        from napari_irsam.model import IRSAMOutput

        logits = (x[:, :1] - 200.0) / 10.0
        return IRSAMOutput(logits, torch.sigmoid(logits), None, None, {})


# ------------------------------------------------------------------------------------- cases
def case_open(args) -> dict:
    import numpy as np

    from napari_irsam._reader import read_layers

    base = _rss_mb()
    [(data, meta, _)] = read_layers(str(args.stack))
    frame = np.asarray(data[len(data) // 2])
    return {
        "base_mb": base,
        "shape": list(data.shape),
        "type": type(data).__name__,
        "limits": meta["contrast_limits"],
        "frame_sum": int(frame.sum()),
    }


def _run(args, model: str, n: int) -> dict:
    from napari_irsam.data.io import read_frames
    from napari_irsam.data.lazy import new_output_array
    from napari_irsam.segment import FrameDone, ModelCache, RunSpec, run_segmentation

    base = _rss_mb()
    stack = read_frames(args.stack).data
    outs: dict = {}
    t0 = time.perf_counter()
    found = 0
    for ev in run_segmentation(RunSpec(model, "cpu"), stack, list(range(n)), ModelCache()):
        if not isinstance(ev, FrameDone):
            for name in ev.outputs:
                rgb = name.startswith("granularity")
                shape = stack.shape + ((3,) if rgb else ())
                outs[name] = new_output_array(shape, "uint8" if rgb else "float32")
            outs["labels"] = new_output_array(stack.shape, "int32")
            continue
        o = ev.output
        outs["labels"][ev.index] = o.mask
        found += int(o.mask.any())
        for name in outs:
            v = getattr(o, name, None)
            if v is not None and name != "labels":
                outs[name][ev.index] = (v * 255).astype("uint8") if v.ndim == 3 else v
    secs = time.perf_counter() - t0
    held = _rss_parts()  # while the outputs are still mapped
    if args.masks_out:
        import numpy as np

        np.save(args.masks_out, outs["labels"][:n] > 0)
    return {
        **held,
        "base_mb": base,
        "frames": n,
        "seconds": secs,
        "s_per_frame": secs / n,
        "frames_with_targets": found,
        "output_types": sorted({type(v).__name__ for v in outs.values()}),
    }


def case_classical(args) -> dict:
    return _run(args, "classical:tophat", args.run_frames)


def case_irsam(args) -> dict:
    import torch

    torch.set_num_threads(1)
    return _run(args, "default", args.irsam_frames)


def case_export(args) -> dict:
    import numpy as np

    from napari_irsam.data.export import export_training_set
    from napari_irsam.data.io import read_frames

    base = _rss_mb()
    images = read_frames(args.stack).data
    masks = np.load(args.masks_out, mmap_mode="r")
    n = masks.shape[0]
    t0 = time.perf_counter()
    res = export_training_set(
        args.dir / f"export_{os.getpid()}", images[:n], masks, reviewed_only=False, if_exists="new"
    )
    return {
        "base_mb": base,
        "frames": n,
        "written": len(res.written),
        "seconds": time.perf_counter() - t0,
    }


def _frame(path: Path, side: int):
    import numpy as np
    import tifffile

    if not (path.is_file() and path.stat().st_size >= side * side * 2):
        rng = np.random.default_rng(1)
        rows = (3000 + rng.normal(0, 20, (256, side))).astype(np.uint16)

        def strips():
            for y in range(0, side, 256):
                strip = rows[: min(256, side - y)].copy()
                if y <= side // 2 < y + 256:
                    strip[side // 2 - y, side // 3 : side // 3 + 3] = 9000
                yield strip

        tifffile.imwrite(
            path,
            strips(),
            shape=(side, side),
            dtype=np.uint16,
            photometric="minisblack",
            rowsperstrip=256,
        )
    return tifffile.memmap(path, mode="r")


def case_band(args) -> dict:
    from napari_irsam.inference import Predictor

    frame = _frame(args.dir / f"frame_{args.side}.tif", args.side)
    base = _rss_mb()
    p = Predictor(StandIn(), "cpu", geometry="tile", batch_size=1, maps=())
    t0 = time.perf_counter()
    pred = p.predict_frame(frame)
    return {
        "base_mb": base,
        "side": args.side,
        "seconds": time.perf_counter() - t0,
        "mask_pixels": int(pred.mask.sum()),
        "edges": pred.edges is not None,
    }


def case_ordinary(args) -> dict:
    from napari_irsam.inference import Predictor

    frame = _frame(args.dir / "frame_4096.tif", 4096)
    base = _rss_mb()
    p = Predictor(StandIn(), "cpu", geometry="tile", batch_size=1, maps=(), band_pixels=10**12)
    t0 = time.perf_counter()
    pred = p.predict_frame(frame)
    return {
        "base_mb": base,
        "side": 4096,
        "seconds": time.perf_counter() - t0,
        "mask_pixels": int(pred.mask.sum()),
    }


def case_tile(args) -> dict:
    import numpy as np
    import torch

    from napari_irsam.inference import Predictor
    from napari_irsam.model import load_model

    torch.set_num_threads(1)
    frame = _frame(args.dir / f"frame_{args.side}.tif", args.side)
    crop = np.asarray(frame[:2048, :2048])
    net, _ = load_model("default")
    base = _rss_mb()
    p = Predictor(net, "cpu", maps=(), band_pixels=0)
    t0 = time.perf_counter()
    pred = p.predict_frame(crop)
    return {
        "base_mb": base,
        "side": 2048,
        "seconds": time.perf_counter() - t0,
        "tiles": "band",
        "mask_pixels": int(pred.mask.sum()),
    }


def case_predict_big(args) -> dict:
    import threading

    import torch

    from napari_irsam.cli import main as cli_main

    torch.set_num_threads(args.threads)
    frame_path = args.dir / f"frame_{args.side}.tif"
    _frame(frame_path, args.side)
    out = args.dir / f"predict_{args.side}"
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    base = _rss_mb()
    peak = {"anon_peak_mb": 0.0, "file_peak_mb": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            parts = _rss_parts()
            peak["anon_peak_mb"] = max(peak["anon_peak_mb"], parts.get("rssanon_held_mb", 0))
            peak["file_peak_mb"] = max(peak["file_peak_mb"], parts.get("rssfile_held_mb", 0))
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    rc = cli_main(
        [
            "predict",
            str(frame_path),
            "--out",
            str(out),
            "--model",
            "default",
            "--precision",
            args.precision,
        ]
    )
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    rows = (out / "targets.csv").read_text().splitlines()[1:]
    store = out / f"{frame_path.stem}.zarr"
    disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    return {
        "base_mb": base,
        "side": args.side,
        "rc": rc,
        "seconds": seconds,
        "precision": args.precision,
        "threads": args.threads,
        "targets": len(rows),
        "zarr_mb": disk / 2**20,
        **peak,
    }


CASES = {
    f.__name__[5:]: f
    for f in (
        case_open,
        case_classical,
        case_irsam,
        case_export,
        case_band,
        case_ordinary,
        case_tile,
        case_predict_big,
    )
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/irsam-big"))
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--run-frames", type=int, default=100)
    ap.add_argument("--irsam-frames", type=int, default=100)
    ap.add_argument("--side", type=int, default=20_000)
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--precision", default="bf16", help="predict_big: fp32 or bf16")
    ap.add_argument("--threads", type=int, default=2, help="predict_big: torch threads")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # the child's own case
    ap.add_argument("--stack", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--masks-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:  # in the child: run one case, print one JSON line
        res = CASES[args.case](args)
        res["peak_rss_mb"] = _rss_mb()
        for line in Path("/proc/self/status").read_text().splitlines():  # now, not the peak
            if line.startswith(("RssAnon:", "RssFile:")):
                res[line.split(":")[0].lower() + "_now_mb"] = int(line.split()[1]) / 1024
        print(json.dumps(res))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    stack = args.dir / f"stack_{args.frames}.tif"
    if set(args.cases) & {"open", "classical", "irsam", "export"}:
        t0 = time.perf_counter()
        write_stack(stack, args.frames)
        print(
            f"stack {stack} ({stack.stat().st_size / 1e9:.2f} GB) ready in "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    results = {"load_average": os.getloadavg(), "frames": args.frames, "cases": {}}
    for case in args.cases:
        cmd = [
            sys.executable,
            __file__,
            "--case",
            case,
            "--stack",
            str(stack),
            "--dir",
            str(args.dir),
            "--run-frames",
            str(args.run_frames),
            "--irsam-frames",
            str(args.irsam_frames),
            "--side",
            str(args.side),
            "--masks-out",
            str(args.dir / "masks.npy"),
            "--precision",
            args.precision,
            "--threads",
            str(args.threads),
        ]
        if case == "irsam":
            cmd[cmd.index("--masks-out") + 1] = str(args.dir / "masks_irsam.npy")
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{case}: failed\n{out.stderr[-2000:]}", flush=True)
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["wall_s"] = time.perf_counter() - t
        results["cases"][case] = res
        print(
            f"{case}: peak RSS {res['peak_rss_mb']:.0f} MB (after imports "
            f"{res['base_mb']:.0f} MB) {json.dumps(res)}",
            flush=True,
        )
    results["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
