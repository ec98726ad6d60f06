"""Regenerate ``docs/images/thermal.png``: a FLIR SEQ opened in napari as temperatures (°C).

    xvfb-run -a -s "-screen 0 1280x1024x24" python scripts/screenshot_thermal.py [--out PATH]

The SEQ is written like the tests' fixtures (tests/data/flir_files.py): a synthetic recording
(data/synthetic_video.py, 12 frames, 4 moving targets) mapped to 5–25 °C scene temperatures and
turned into the counts a camera with a typical FLIR calibration would record
(``celsius_to_raw``). The picture shows the layer opened through the plugin's reader with the
cursor on a target, so the status bar reads its temperature in °C.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))

import flir_files as F  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/images/thermal.png")
    args = ap.parse_args()

    import napari
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_irsam.data.synthetic_video import make_recording
    from napari_irsam.data.thermal import celsius_to_raw

    rec = make_recording(12, (192, 256), n_targets=4, seed=3, dtype="float32")
    frames = np.asarray(rec.frames, np.float64)
    lo, hi = np.percentile(frames, [0.5, 99.9])
    temps = 5 + 20 * (frames - lo) / (hi - lo)
    raws = [
        np.clip(np.round(celsius_to_raw(t, F.CAMERA)), 0, 65535).astype(np.uint16) for t in temps
    ]
    path = F.write_seq(Path(tempfile.mkdtemp()) / "flight_0042.seq", raws)

    viewer = napari.Viewer(title="napari-irsam", show=True)
    viewer.window._qt_window.resize(1100, 720)
    (layer,) = viewer.open(str(path), plugin="napari-irsam")
    layer.colormap = "inferno"
    viewer.dims.set_current_step(0, 5)
    labels = np.asarray(rec.labels[5])
    ys, xs = np.nonzero(labels)
    r, c = int(ys[0]), int(xs[0])
    viewer.cursor.position = (5, r, c)
    viewer.status = layer.get_status(viewer.cursor.position, world=True)
    loop = QEventLoop()
    QTimer.singleShot(800, loop.quit)
    loop.exec()
    viewer.screenshot(args.out, canvas_only=False)
    print(f"{args.out}: {layer.name} {layer.data.shape} {layer.data.dtype}, cursor at ({r}, {c})")
    viewer.close()


if __name__ == "__main__":
    main()
