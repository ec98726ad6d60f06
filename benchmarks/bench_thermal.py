"""Reading FLIR radiometric files measured: SEQ (uncompressed counts), CSQ (JPEG-LS) and R-JPEG.

    python benchmarks/bench_thermal.py [--frames 100] [--size 512 640] [--repeats 5] [--json out.json]

Writes a SEQ and a CSQ of ``--frames`` frames and one R-JPEG with the test fixtures' writer
(tests/data/flir_files.py: realistic counts, a typical FLIR calibration), then times, as the
median of ``--repeats`` runs:

* ``index``: opening the file and indexing its frames (``FlirSequence``: record headers only);
* ``read``: the whole stack to °C (``read_frames``, eager) — ms per frame;
* ``lazy first frame``: ``read_frames(lazy=True)`` then the first frame as numpy (what napari
  shows first for a big file);
* R-JPEG: one file to °C.

CPU time of this process and wall time are both reported (wall time is meaningless on a loaded
machine); the load average is in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))

import flir_files as F  # noqa: E402

from napari_irsam.data.flir import FlirSequence  # noqa: E402
from napari_irsam.data.io import read_frames  # noqa: E402


def timed(fn, repeats: int) -> dict[str, float]:
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": float(np.median(wall)), "cpu_s": float(np.median(cpu))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", type=int, nargs=2, default=(512, 640), metavar=("H", "W"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    h, w = args.size
    rng = np.random.default_rng(0)
    raws = [rng.integers(13000, 15000, (h, w)).astype(np.uint16) for _ in range(args.frames)]
    out: dict[str, Any] = {"frames": args.frames, "size": [h, w], "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"seq": F.write_seq(Path(tmp) / "rec.seq", raws)}
        try:
            import imagecodecs  # noqa: F401

            files["csq"] = F.write_seq(Path(tmp) / "rec.csq", raws, encoding="jpegls")
        except ImportError:
            print("imagecodecs not installed: CSQ skipped")
        for kind, path in files.items():
            res = {"file_mb": round(path.stat().st_size / 2**20, 1)}

            def index(path=path) -> None:
                with FlirSequence(path) as s:
                    assert len(s) == args.frames

            res["index"] = timed(index, args.repeats)
            res["read"] = timed(lambda path=path: read_frames(path, lazy=False), args.repeats)
            res["read"]["cpu_ms_per_frame"] = 1000 * res["read"]["cpu_s"] / args.frames
            res["lazy_first_frame"] = timed(
                lambda path=path: np.asarray(read_frames(path, lazy=True).data[0]), args.repeats
            )
            out[kind] = res
        jpg = F.write_rjpeg(Path(tmp) / "IR.jpg", raws[0], chunk=65000)
        out["rjpeg"] = timed(lambda: read_frames(jpg), args.repeats)
    out["machine"] = {
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "python": platform.python_version(),
    }
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
