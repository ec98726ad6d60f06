"""Regenerate ``docs/images/review.png``: the "Review targets" widget in the middle of a review.

    xvfb-run -a -s "-screen 0 1280x1024x24" python scripts/screenshot_review.py \
        [--model classical:tophat|default|path/to/ckpt.pt] [--out docs/images/review.png]

Generates a synthetic 16-bit ground-clutter sequence with ground truth (8 frames of 256², seed
4: building edges and corners give the detector false alarms, two targets are missed), segments every frame with "Run IRSAM" (default:
the weight-free top-hat detector), then reviews frame 0 like an annotator: rejects the detections that are not
ground-truth targets, accepts the others, adds the missed ground-truth targets by a click (grown by
``grow_target``), marks the frame reviewed and selects a target, so the table shows every status.
The autosave goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np


def _wait(ms: int) -> None:
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="classical:tophat")
    ap.add_argument("--out", default="docs/images/review.png")
    args = ap.parse_args()
    os.environ["NAPARI_IRSAM_REVIEW_DIR"] = tempfile.mkdtemp(prefix="irsam-review-shot-")

    import napari
    from qtpy.QtCore import QEventLoop, Qt

    from napari_irsam._widgets.review import ReviewWidget
    from napari_irsam._widgets.run_irsam import RunIRSAMWidget
    from napari_irsam.data.io import DISPLAY_PERCENTILES, percentile_limits
    from napari_irsam.data.synthetic import make_sequence

    viewer = napari.Viewer(title="napari-irsam", show=True)
    viewer.window._qt_window.resize(1400, 950)
    frames, truth = make_sequence(8, (256, 256), seed=4, n_targets=3, background="ground")
    image = "ground IR"
    viewer.add_image(
        frames, name=image, contrast_limits=percentile_limits(frames, *DISPLAY_PERCENTILES)
    )
    viewer.add_labels(truth, name="ground truth", visible=False)

    run = RunIRSAMWidget(viewer)
    run.image_combo.setCurrentText(image)
    idx = run.model_combo.findData(args.model)
    if idx >= 0:
        run.model_combo.setCurrentIndex(idx)
    else:
        run.model_combo.setCurrentIndex(run.model_combo.findData(None))
        run.path_edit.setText(args.model)
    run.scope_combo.setCurrentText("all frames")
    run.run_button.click()
    if run.worker is not None:
        loop = QEventLoop()
        run.worker.finished.connect(loop.quit)
        loop.exec()

    widget = ReviewWidget(viewer, ask_restore=lambda q: False)
    dock = viewer.window.add_dock_widget(widget, name="Review targets", area="right")
    viewer.window._qt_window.resizeDocks([dock], [470], Qt.Orientation.Horizontal)
    widget.image_combo.setCurrentText(image)
    widget.start_review()
    mask = widget.labels_layer

    # review frame 0: false alarms out, true detections in, one missed target added
    viewer.dims.set_current_step(0, 0)
    for key in [k for k in widget.table.visible_keys() if k[0] == 0]:
        widget.table.select_key(key, quiet=True)
        hit = (truth[0][mask.data[0] == key[1]] > 0).any()
        widget.accept_selected() if hit else widget.reject_selected()
    missed = [i for i in np.unique(truth[0])[1:] if not (mask.data[0][truth[0] == i] > 0).any()]
    for i in missed:
        rr, cc = np.nonzero(truth[0] == i)
        widget.add_target_at((0, float(rr.mean()), float(cc.mean())))
    widget.set_frame_reviewed(True, 0)
    # frame 1: one edit by hand (napari's paint), the rest left pending
    ones = [k for k in widget.table.visible_keys() if k[0] == 1]
    if ones:
        t = widget.state.targets[ones[0]]
        mask.brush_size = 2
        mask.paint((1, t.bbox[2], int(t.centroid[1])), t.target_id, refresh=True)
    _wait(300)
    widget.rescan()

    good = ("accepted", "added")
    keep = next(
        (k for k in widget.table.visible_keys() if widget.state.targets[k].status in good), None
    )
    if keep is not None:
        widget.table.select_key(keep)  # steps to its frame and centres the camera on it
        cam = widget.viewer.camera if not hasattr(viewer, "scene") else viewer.scene.camera
        cam.zoom = cam.zoom / 2.5  # show some context around it
    viewer.layers.selection.active = mask
    _wait(800)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(args.out, canvas_only=False)
    print(f"wrote {args.out}: {widget.progress.text()}; counts {widget.state.counts()}")
    viewer.close()


if __name__ == "__main__":
    main()
