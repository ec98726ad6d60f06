"""Regenerate ``docs/images/dock.png``: the "IRSAM" dock on a 1366×768 napari window.

    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/screenshot_dock.py \
        [--step review] [--out docs/images/dock.png]

The synthetic sample, a run of the weight-free top-hat detector on every frame (no weights
needed, seconds on a CPU), a review started with two targets accepted and one rejected; then the
dock shows ``--step`` (run, review, export or finetune) and the whole window is saved with
``viewer.screenshot(canvas_only=False)``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step", default="review", choices=["run", "review", "export", "finetune"])
    ap.add_argument("--out", default="docs/images/dock.png")
    args = ap.parse_args()
    os.environ.setdefault("NAPARI_IRSAM_REVIEW_DIR", tempfile.mkdtemp())  # no ~/.cache autosave

    import napari
    from qtpy.QtCore import QEventLoop
    from qtpy.QtWidgets import QApplication

    from napari_irsam._widgets import review as review_mod

    review_mod.show_info = print  # keep notification toasts out of the picture
    viewer = napari.Viewer(title="napari-irsam", show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.open_sample("napari-irsam", "synthetic_ir")
    _, dock = viewer.window.add_plugin_dock_widget("napari-irsam", "IRSAM")
    run = dock.run
    run.model_combo.setCurrentIndex(run.model_combo.findData("classical:tophat"))
    run.scope_combo.setCurrentText("all frames")
    run.run_button.click()
    while run.worker is not None:  # the run's thread worker: keep napari's event loop turning
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
    review = dock.review
    review.ask_restore = lambda question: False
    dock.show_step("review")
    review.start_button.click()
    review.next_target()
    review.accept_selected()
    review.accept_selected()
    review.reject_selected()
    dock.show_step(args.step)
    for _ in range(30):
        QApplication.processEvents()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    viewer.close()


if __name__ == "__main__":
    main()
