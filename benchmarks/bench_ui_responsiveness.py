"""How responsive napari stays while "Run IRSAM" segments a stack on the CPU.

A 20-frame 256×256 uint16 stack is segmented by a release-size model (random weights: speed does
not depend on them) through the real widget and thread worker. A QTimer asks to fire every 10 ms;
the gap between consecutive ticks minus 10 ms is an event-loop stall (time during which napari
could not repaint or react to the mouse). Reports idle baseline and during-run stalls (median,
p99, max), total wall time, seconds per frame and CPU/wall ratio.

    xvfb-run -a -s "-screen 0 1280x1024x24" python benchmarks/bench_ui_responsiveness.py \
        [--frames 20] [--size 256] [--config paper] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path


def _stats(ticks: list[float], period: float) -> dict[str, float]:
    gaps = [b - a - period for a, b in zip(ticks, ticks[1:], strict=False)]
    gaps = sorted(max(g, 0.0) * 1000 for g in gaps) or [0.0]
    return {
        "ticks": len(ticks),
        "median_ms": round(statistics.median(gaps), 1),
        "p99_ms": round(gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))], 1),
        "max_ms": round(gaps[-1], 1),
    }


def _frames(n: int, size: int):
    import numpy as np

    try:  # the project's synthetic IR scenes when available
        from napari_irsam.data.synthetic import make_sequence  # type: ignore[attr-defined]

        return np.asarray(make_sequence(n_frames=n, shape=(size, size), seed=0)[0])
    except Exception:
        rng = np.random.default_rng(0)
        frames = rng.normal(2000, 60, (n, size, size)).clip(0, 65535).astype(np.uint16)
        for i in range(n):  # a moving 3×3 target
            frames[i, 100:103, 40 + 5 * i : 43 + 5 * i] += 600
        return frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--config", default="paper", help="release | paper | fast")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--period-ms", type=float, default=10.0)
    args = ap.parse_args()

    import napari
    import torch
    from qtpy.QtCore import QEventLoop, QTimer
    from qtpy.QtWidgets import QApplication

    from napari_irsam._widgets.run_irsam import RunIRSAMWidget
    from napari_irsam.model import build_irsam, save_checkpoint

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp())
    ckpt = tmp / f"{args.config}_random.pt"
    save_checkpoint(build_irsam(args.config), ckpt)

    viewer = napari.Viewer(show=True)
    viewer.add_image(_frames(args.frames, args.size), name="ir")
    widget = RunIRSAMWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Run IRSAM")
    widget.model_combo.setCurrentIndex(widget.model_combo.findData(None))
    widget.path_edit.setText(str(ckpt))
    widget.device_combo.setCurrentText("cpu")
    widget.scope_combo.setCurrentText("all frames")
    app = QApplication.instance()

    ticks: list[float] = []
    period = args.period_ms / 1000
    timer = QTimer()
    timer.setInterval(int(args.period_ms))
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def run_loop(seconds: float | None = None, until_done: bool = False) -> None:
        loop = QEventLoop()
        if seconds is not None:
            QTimer.singleShot(int(seconds * 1000), loop.quit)
        if until_done:
            widget.worker.finished.connect(loop.quit)
        loop.exec()

    for _ in range(20):
        app.processEvents()
    timer.start()
    run_loop(2.0)
    idle = _stats(ticks, period)

    ticks.clear()
    cpu0, t0 = time.process_time(), time.perf_counter()
    widget.run_button.click()
    events: list[tuple[str, float]] = []
    widget.worker.yielded.connect(
        lambda e: events.append((type(e).__name__, round(time.perf_counter() - t0, 2)))
    )
    run_loop(until_done=True)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    timer.stop()
    busy = _stats(ticks, period)
    md = viewer.layers["IRSAM mask [ir]"].metadata
    result = {
        "frames": args.frames,
        "size": args.size,
        "config": args.config,
        "threads": args.threads,
        "idle_stall": idle,
        "run_stall": busy,
        "total_s": round(wall, 1),
        "s_per_frame_model": round(md["seconds_per_frame"], 2),
        "cpu_over_wall": round(cpu / wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "processed": len(md["processed_frames"]),
        # stalls over 100 ms: (seconds since Run, stall ms), and when the first events arrived
        "long_stalls": [
            (round(a - t0, 2), round((b - a - period) * 1000))
            for a, b in zip(ticks, ticks[1:], strict=False)
            if b - a - period > 0.1
        ],
        "events": events[:3],
    }
    print(json.dumps(result, indent=2))
    viewer.close()


if __name__ == "__main__":
    main()
