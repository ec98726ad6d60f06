"""Regenerate ``docs/images/run-irsam.png``: napari with the sample data after a "Run IRSAM" run.

    xvfb-run -a -s "-screen 0 1280x1024x24" python scripts/screenshot_run_irsam.py \
        [--model auto|default|classical:<name>|path/to/ckpt.pt] [--out docs/images/run-irsam.png]

``--model auto`` uses the bundled default checkpoint when this build ships one, otherwise a
release-size "paper" model with *random* weights (its mask is meaningless; the picture shows the
widget, the layers and the WPMD/granularity maps). The caption in docs/run-irsam.md says which.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def _open_data(viewer) -> str:
    """Open the plugin's sample data; fall back to a small generated stack before it exists."""
    try:
        viewer.open_sample("napari-irsam", "synthetic_ir")
        return next(ly.name for ly in viewer.layers if ly.__class__.__name__ == "Image")
    except Exception:
        import numpy as np

        rng = np.random.default_rng(0)
        frames = rng.normal(2000, 60, (8, 256, 256)).clip(0, 65535).astype(np.uint16)
        for i in range(8):
            frames[i, 100:103, 40 + 5 * i : 43 + 5 * i] += 600
        viewer.add_image(frames, name="ir")
        return "ir"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="auto")
    ap.add_argument("--out", default="docs/images/run-irsam.png")
    ap.add_argument("--scope", default="current frame", help="current frame | all frames")
    args = ap.parse_args()

    import napari
    import torch
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_irsam._widgets.run_irsam import RunIRSAMWidget
    from napari_irsam.model import build_irsam, bundled_default, save_checkpoint

    viewer = napari.Viewer(title="napari-irsam", show=True)
    viewer.window._qt_window.resize(1280, 900)
    image = _open_data(viewer)
    widget = RunIRSAMWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Run IRSAM", area="right")
    widget.image_combo.setCurrentText(image)

    model = args.model
    if model == "auto":
        model = "default" if bundled_default() is not None else ""
    if not model:
        torch.manual_seed(0)
        ckpt = Path(tempfile.mkdtemp()) / "paper_random_weights.pt"
        save_checkpoint(build_irsam("paper"), ckpt)
        model = str(ckpt)
    idx = widget.model_combo.findData(model)
    if idx >= 0:
        widget.model_combo.setCurrentIndex(idx)
    else:
        widget.model_combo.setCurrentIndex(widget.model_combo.findData(None))
        widget.path_edit.setText(model)
    widget.scope_combo.setCurrentText(args.scope)
    widget.run_button.click()
    if widget.worker is not None:
        loop = QEventLoop()
        widget.worker.finished.connect(loop.quit)
        loop.exec()
    for name in (f"WPMD edges [{image}]",):
        if name in viewer.layers:  # show one feature map under the mask
            viewer.layers[name].visible = True
            viewer.layers[name].opacity = 0.5
    viewer.layers.selection.active = viewer.layers[f"IRSAM mask [{image}]"]
    viewer.reset_view()
    settle = QEventLoop()  # let napari repaint before the screenshot
    QTimer.singleShot(800, settle.quit)
    settle.exec()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(args.out, canvas_only=False)
    print(f"wrote {args.out}: {widget.status.text()}")
    viewer.close()


if __name__ == "__main__":
    main()
