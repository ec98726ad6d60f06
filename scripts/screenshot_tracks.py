"""Regenerate ``docs/images/tracks.png``: "Review targets" with the Tracks layer on a recording.

    xvfb-run -a -s "-screen 0 1280x1024x24" python scripts/screenshot_tracks.py \
        [--out docs/images/tracks.png]

Opens the plugin's sample recording (24 frames of 256², 4 moving targets, one-frame flickers),
segments every frame with the top-hat detector at k = 6 (sensitive: it finds most targets and
some flickers), opens "Review targets" from the Plugins menu path, starts the review (the targets
are linked into tracks: "IRSAM tracks [synthetic IR]"), accepts track 1 with Shift-T (the next
track is selected) and shows the last frame, where the tails show each track's path. The autosave goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np


def _wait(ms: int) -> None:
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/images/tracks.png")
    args = ap.parse_args()
    os.environ["NAPARI_IRSAM_REVIEW_DIR"] = tempfile.mkdtemp(prefix="irsam-tracks-shot-")

    import napari
    from app_model.types import KeyBinding
    from qtpy.QtCore import Qt

    from napari_irsam.classical import detect
    from napari_irsam.segment import label_targets

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1400, 950)
    image = viewer.open_sample("napari-irsam", "synthetic_ir")[0]
    frames = np.asarray(image.data)
    masks, top = np.zeros(frames.shape, np.int32), 0
    for i, f in enumerate(frames):
        masks[i] = label_targets(detect("tophat", f, k=6).mask, top + 1)
        top = max(top, int(masks[i].max()))
    viewer.add_labels(masks, name="IRSAM mask [synthetic IR]", opacity=0.6)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Review targets")
    viewer.window._qt_window.resizeDocks([dock], [480], Qt.Orientation.Horizontal)
    widget.start_button.click()
    for _ in range(300):
        if "IRSAM tracks [synthetic IR]" in viewer.layers:
            break
        _wait(100)
    tracks = viewer.layers["IRSAM tracks [synthetic IR]"]
    tracks.tail_length = 24
    tracks.tail_width = 3
    state = widget.state
    first = min((t for t in state.targets.values() if t.track_id == 1), key=lambda t: t.frame)
    widget.table.select_key(first.key)
    viewer.keymap[KeyBinding.from_str("Shift-T")](viewer)  # accept track 1 at once
    widget.table.sortByColumn(6, Qt.SortOrder.AscendingOrder)
    keep = widget.table.current_key()
    viewer.dims.set_current_step(0, len(frames) - 1)  # the last frame: whole tails
    widget.table.select_key(keep, quiet=True)
    viewer.reset_view()
    _wait(500)
    viewer.screenshot(args.out, canvas_only=False)
    print(f"wrote {args.out}")
    viewer.close()


if __name__ == "__main__":
    main()
