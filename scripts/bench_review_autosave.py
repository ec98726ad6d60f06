"""Measure the review autosave: how long one edit takes to reach the disk on a 40×512×512 stack.

    python scripts/bench_review_autosave.py [--frames 40] [--size 512] [--dir /some/folder]
    xvfb-run -a python scripts/bench_review_autosave.py --widget   # also the widget's reject path

Core path: ``ReviewState.sync_frame`` on the edited frame + ``Sidecar.save(frames=[f])`` (one
compressed npz + review.json, each written to a temporary file, fsync'ed and renamed).
JSON-only path: an accept or a reviewed flag (``Sidecar.save(frames=[])``). Widget path: "reject"
in the Review targets widget (napari ``data_setitem`` + sync + table + autosave).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _ms(samples: list[float]) -> str:
    return f"median {1000 * statistics.median(samples):.1f} ms, max {1000 * max(samples):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--targets", type=int, default=5, help="targets per frame")
    ap.add_argument("--edits", type=int, default=30)
    ap.add_argument("--dir", default=None, help="where the sidecar goes (default: a temp dir)")
    ap.add_argument("--widget", action="store_true", help="also time the widget (needs a display)")
    args = ap.parse_args()

    from napari_irsam.data.sidecar import Sidecar
    from napari_irsam.data.synthetic import make_sequence
    from napari_irsam.review import ReviewState

    frames, labels = make_sequence(
        n_frames=args.frames, shape=(args.size, args.size), seed=0, n_targets=args.targets
    )
    step = args.targets * np.arange(len(labels), dtype=np.int32)[:, None, None]
    labels = labels + np.where(labels > 0, step, 0).astype(np.int32)  # unique ids, int32
    root = Path(args.dir or tempfile.mkdtemp(prefix="irsam-bench-"))
    print(f"stack {labels.shape} {labels.dtype}, {len(np.unique(labels)) - 1} targets; in {root}")

    state = ReviewState.from_labels(labels)
    car = Sidecar(root / "core.irsam-review")
    t0 = time.perf_counter()
    car.save(state, labels)
    print(f"first (full) save: {1000 * (time.perf_counter() - t0):.1f} ms")

    rng = np.random.default_rng(0)
    edit, json_only = [], []
    for _ in range(args.edits):
        f = int(rng.integers(len(labels)))
        ids = np.unique(labels[f])[1:]
        if len(ids):
            labels[f][labels[f] == ids[0]] = 0  # erase one target (a reject)
        t0 = time.perf_counter()
        state.sync_frame(f, labels[f])
        car.save(state, labels, frames=[f])
        edit.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        state.mark_reviewed(f)
        car.save(state, labels, frames=[])
        json_only.append(time.perf_counter() - t0)
    print(f"edit of one frame (sync + npz + json): {_ms(edit)}")
    print(f"accept / reviewed flag (json only):    {_ms(json_only)}")
    size = sum(p.stat().st_size for p in car.folder.rglob("*") if p.is_file())
    print(f"sidecar size: {size / 1024:.0f} KiB")

    if args.widget:
        _widget(frames, root)


def _widget(frames: np.ndarray, root: Path) -> None:
    import os

    os.environ["NAPARI_IRSAM_REVIEW_DIR"] = str(root / "widget")
    import napari

    from napari_irsam._widgets.review import ReviewWidget
    from napari_irsam.data.synthetic import make_sequence

    _, labels = make_sequence(n_frames=len(frames), shape=frames.shape[1:], seed=0, n_targets=5)
    step = 5 * np.arange(len(labels), dtype=np.int32)[:, None, None]
    labels = labels + np.where(labels > 0, step, 0).astype(np.int32)
    viewer = napari.Viewer(show=False)
    viewer.add_image(frames, name="ir")
    viewer.add_labels(labels, name="IRSAM mask [ir]")
    widget = ReviewWidget(viewer, ask_restore=lambda q: False)
    t0 = time.perf_counter()
    widget.start_review()
    print(f"widget: Start review (measure + full save): {time.perf_counter() - t0:.2f} s")
    times = []
    for key in widget.table.visible_keys()[:: max(1, widget.table.rowCount() // 20)]:
        widget.table.select_key(key, quiet=True)
        t0 = time.perf_counter()
        widget.reject_selected()
        times.append(time.perf_counter() - t0)
    print(f"widget: reject (napari write + sync + table + autosave): {_ms(times)}")
    viewer.close()


if __name__ == "__main__":
    main()
