"""Regenerate ``docs/images/export.png``: napari with the "Export training set" widget after an export.

    xvfb-run -a -s "-screen 0 1280x1024x24" python scripts/screenshot_export.py \
        [--out docs/images/export.png]

A 24-frame synthetic 16-bit sequence (the sample data's generator) is segmented with "Run IRSAM"
using the weight-free ``classical:tophat`` detector (fast, and its provenance is real), frames
0–5, 10–13 and 20–23 are marked reviewed the way "Review targets" does (a
:class:`~napari_irsam.review.ReviewState` in the mask layer's metadata), and the reviewed frames are
exported to a temporary folder shown as ``~/annotations/export``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/images/export.png")
    args = ap.parse_args()

    import napari
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_irsam._widgets import export as export_mod
    from napari_irsam._widgets._session import session_for
    from napari_irsam._widgets.export import ExportWidget
    from napari_irsam._widgets.run_irsam import RunIRSAMWidget
    from napari_irsam.data.io import DISPLAY_PERCENTILES, percentile_limits
    from napari_irsam.data.synthetic import make_sequence
    from napari_irsam.review import ReviewState

    viewer = napari.Viewer(title="napari-irsam", show=True)
    viewer.window._qt_window.resize(1280, 900)
    image = "synthetic IR"
    frames, _ = make_sequence(24, (256, 256), seed=7, n_targets=3, background="cloud")
    viewer.add_image(
        frames,
        name=image,
        colormap="gray",
        contrast_limits=percentile_limits(frames, *DISPLAY_PERCENTILES),
    )

    run = RunIRSAMWidget(viewer)
    run.image_combo.setCurrentText(image)
    run.model_combo.setCurrentIndex(run.model_combo.findData("classical:tophat"))
    run.scope_combo.setCurrentText("all frames")
    run.run_button.click()
    if run.worker is not None:
        loop = QEventLoop()
        run.worker.finished.connect(loop.quit)
        loop.exec()
    mask = viewer.layers[f"IRSAM mask [{image}]"]
    state = ReviewState.from_labels(mask.data, provenance={"reviewer": "annotator A"})
    for frame in [*range(6), *range(10, 14), *range(20, 24)]:
        state.mark_reviewed(frame)
    session_for(viewer).bind_review(mask, viewer.layers[image], state, "(not saved)")

    export_mod.show_info = print  # keep the notification toast out of the picture
    widget = ExportWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Export training set", area="right")
    widget.image_combo.setCurrentText(image)
    widget.labels_combo.setCurrentText(mask.name)
    out = Path(tempfile.mkdtemp()) / "export"
    widget.out_edit.setText(str(out))
    widget.export()
    if widget.worker is not None:
        loop = QEventLoop()
        widget.worker.finished.connect(loop.quit)
        loop.exec()
    # show a short path in the picture, not the temporary folder's
    for edit in (widget.out_edit, widget.command_edit):
        edit.setText(edit.text().replace(str(out.parent), "~/annotations"))
        edit.setCursorPosition(0)
    widget.status.setText(widget.status.text().replace(str(out.parent), "~/annotations"))
    viewer.layers.selection.active = mask
    shown = max(
        (f for f in range(len(frames)) if state.reviewed[f]),
        key=lambda f: len(state.frame_targets(f)),
    )
    viewer.dims.set_current_step(0, shown)  # a reviewed frame with the most targets
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
