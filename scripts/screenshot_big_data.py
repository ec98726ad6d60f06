"""Regenerate ``docs/images/mixed-sizes.png``: a folder of frames of two sizes opened in napari.

    xvfb-run -a -s "-screen 0 1280x1024x24" python scripts/screenshot_big_data.py \
        [--out docs/images/mixed-sizes.png]

Six synthetic 16-bit frames (4 of 320 × 256, 2 of 160 × 128) are written to a temporary folder
named ``flight3`` and opened with ``viewer.open(folder, plugin="napari-irsam")``: two layers and
the notification that says why.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/images/mixed-sizes.png")
    args = ap.parse_args()

    import napari
    import numpy as np
    import tifffile
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_irsam.data.synthetic import make_sequence

    folder = Path(tempfile.mkdtemp()) / "flight3"
    folder.mkdir()
    big, _ = make_sequence(4, (256, 320), seed=3, n_targets=3, background="cloud")
    small, _ = make_sequence(2, (128, 160), seed=4, n_targets=2, background="sky")
    for i, f in enumerate(big):
        tifffile.imwrite(folder / f"frame_{i:03d}.tif", np.asarray(f, np.uint16))
    for i, f in enumerate(small):
        tifffile.imwrite(folder / f"thumb_{i:03d}.tif", np.asarray(f, np.uint16))

    viewer = napari.Viewer(title="napari-irsam", show=True)
    viewer.window._qt_window.resize(1100, 720)
    viewer.open(str(folder), plugin="napari-irsam")
    viewer.layers[-1].translate = (0, 340)  # side by side
    viewer.reset_view()
    loop = QEventLoop()
    QTimer.singleShot(4000, loop.quit)
    loop.exec_()
    viewer.screenshot(args.out, canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main()
