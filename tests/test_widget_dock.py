"""The "IRSAM" dock, opened the way the Plugins menu opens it, through the whole loop.

Sample data → Run (top-hat, all frames) → Review (keys on the canvas: next, accept, reject,
frame reviewed; a real mouse click on the canvas grows a target) → Export → Fine-tune (tiny, one
epoch) → back to Run with the new checkpoint selected; the files and layers are checked at every
step. Also: the dock fits a 1366×768 screen, the steps say what comes next, and the widgets
share one session per viewer (a single widget opened next to the dock sees the same review).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

from napari_irsam._widgets._session import session_for

PLUGIN = "napari-irsam"
IMAGE = "synthetic IR"
MASK, PROB = f"IRSAM mask [{IMAGE}]", f"IRSAM probability [{IMAGE}]"


@pytest.fixture(autouse=True)
def review_dir(tmp_path, monkeypatch):
    """Autosaves of the source-less sample go to a temporary folder, never to ~/.cache."""
    monkeypatch.setenv("NAPARI_IRSAM_REVIEW_DIR", str(tmp_path / "reviews"))


@pytest.fixture()
def one_thread():
    """One torch thread while napari's threads run too: on a loaded 2-core machine two OpenMP
    threads spinning at barriers made one tiny training step 67 s instead of 3 s (measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: list(notification_manager.records[start:])


def _canvas(viewer):
    return viewer.window._qt_viewer.canvas


def _key(qtbot, viewer, key: Qt.Key) -> None:
    """Shift + ``key`` on the canvas, as the annotator presses it."""
    native = _canvas(viewer).native
    native.setFocus()
    QTest.keyClick(native, key, Qt.KeyboardModifier.ShiftModifier)
    qtbot.wait(10)


def _click(qtbot, viewer, row: float, col: float) -> None:
    """A left click on the canvas over data pixel (row, col) of the shown frame."""
    canvas = _canvas(viewer)
    qtbot.wait(10)  # the camera moved: let the canvas draw
    view = canvas.view
    x, y = (view.transform * view.scene.transform).map([col, row])[:2]
    QTest.mouseClick(
        canvas.native,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        QPoint(int(round(x)), int(round(y))),
    )
    qtbot.wait(10)


def _dock(viewer):
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "IRSAM")
    return dock


def test_the_dock_fits_a_small_screen_and_says_what_comes_next(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    window = viewer.window._qt_window
    window.resize(1366, 768)
    window.show()
    dock = _dock(viewer)
    assert type(dock.viewer).__name__ == "PublicOnlyProxy"
    assert [dock.tabs.tabText(i) for i in range(4)] == [
        "1 Run",
        "2 Review",
        "3 Export",
        "4 Fine-tune",
    ]
    assert dock.current_step() == "run"
    hint = dock.minimumSizeHint()
    assert hint.width() <= 420 and hint.height() <= 480, hint  # the steps scroll, the dock fits
    qtbot.waitUntil(lambda: dock.isVisible() and dock.height() > 0, timeout=5000)
    assert dock.height() <= window.height()
    for step, target in (("run", "review"), ("review", "export"), ("export", "finetune")):
        assert dock.next_labels[step].text().startswith("Next:")
        dock.next_buttons[step].click()
        assert dock.current_step() == target
    dock.next_buttons["finetune"].click()  # nothing trained yet: back to Run
    assert dock.current_step() == "run"


def test_sessions_are_per_viewer_and_shared_by_dock_and_single_widgets(make_napari_viewer):
    v1, v2 = make_napari_viewer(), make_napari_viewer()
    d1 = _dock(v1)
    _, single = v1.window.add_plugin_dock_widget(PLUGIN, "Export training set")
    _, other = v2.window.add_plugin_dock_widget(PLUGIN, "Export training set")
    assert d1.session is single.session is session_for(v1)
    assert other.session is session_for(v2) and other.session is not d1.session


def test_whole_loop_through_the_dock(make_napari_viewer, qtbot, notes, tmp_path, one_thread):
    viewer = make_napari_viewer()
    window = viewer.window._qt_window
    window.resize(1366, 768)
    window.show()
    viewer.open_sample(PLUGIN, "synthetic_ir")
    truth = np.asarray(viewer.layers["ground truth"].data) > 0  # (N, H, W)
    n = truth.shape[0]
    dock = _dock(viewer)
    run, review, export, tune = dock.run, dock.review, dock.export, dock.finetune

    # ---- run: a classical detector on every frame (fast, no weights)
    assert run.image_combo.currentText() == IMAGE
    run.model_combo.setCurrentIndex(run.model_combo.findData("classical:tophat"))
    run.scope_combo.setCurrentText("all frames")
    run.run_button.click()
    qtbot.waitUntil(lambda: run.worker is None, timeout=60_000)
    assert [ly.name for ly in viewer.layers] == [IMAGE, "ground truth", MASK, PROB]
    mask = viewer.layers[MASK]
    assert mask.metadata["processed_frames"] == list(range(n))
    assert sum(mask.data[f][truth[f]].any() for f in range(n)) >= 3  # it finds real targets
    assert viewer.layers.selection.active.name == MASK

    # ---- review, by keys on the canvas
    dock.next_buttons["run"].click()
    assert dock.current_step() == "review" and review.labels_combo.currentText() == MASK
    review.start_button.click()
    state = review.state
    assert state is not None and session_for(viewer).review_of(mask) is state
    n_targets = len(state.targets)
    _key(qtbot, viewer, Qt.Key.Key_N)  # next target: the first row
    first = review.selected_target()
    assert first is not None
    _key(qtbot, viewer, Qt.Key.Key_A)  # accept it (and move on)
    assert state.targets[first.key].status == "accepted"
    # a real target (on the ground truth) is rejected, then added back by a click on the canvas
    real = next(
        t
        for t in state.sorted_targets()
        if t.status == "pending" and truth[t.frame][mask.data[t.frame] == t.target_id].all()
    )
    review.table.select_key(real.key)
    _key(qtbot, viewer, Qt.Key.Key_R)
    assert state.targets[real.key].status == "rejected"
    assert not (mask.data[real.frame] == real.target_id).any()
    _key(qtbot, viewer, Qt.Key.Key_G)  # add mode
    assert review.add_mode
    _click(qtbot, viewer, *real.centroid)
    added = [t for t in state.targets.values() if t.status == "added"]
    assert len(added) == 1 and added[0].frame == real.frame
    grown = mask.data[real.frame] == added[0].target_id
    assert grown[truth[real.frame]].any() and grown[int(real.centroid[0]), int(real.centroid[1])]
    _key(qtbot, viewer, Qt.Key.Key_G)  # add mode off
    for _ in range(n):  # every frame: next unreviewed frame, frame reviewed
        _key(qtbot, viewer, Qt.Key.Key_U)
        _key(qtbot, viewer, Qt.Key.Key_D)
    assert all(state.reviewed)
    counts = state.counts()
    assert (counts["rejected"], counts["added"]) == (1, 1)
    assert counts["accepted"] == n_targets - 1  # the rest was accepted by "frame reviewed"
    # Export heard every change through the session (no polling)
    assert export.review_label.text().startswith(f"{n} / {n} frames reviewed")

    # ---- export
    dock.next_buttons["review"].click()
    assert dock.current_step() == "export" and export.labels_combo.currentText() == MASK
    out = tmp_path / "export"
    export.out_edit.setText(str(out))
    export.export_button.click()
    qtbot.waitUntil(lambda: export.worker is None, timeout=60_000)
    assert export.result is not None
    assert len(list((out / "images").glob("*.png"))) == n
    assert len(list((out / "masks").glob("*.png"))) == n
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status_counts"]["rejected"] == 1 and manifest["status_counts"]["added"] == 1
    assert manifest["provenance"]["model_id"] == "classical:tophat"

    # ---- fine-tune: the export is handed over by the footer button
    dock.next_buttons["export"].click()
    assert dock.current_step() == "finetune"
    assert Path(tune.dataset_edit.text()) == out
    tune.init_edit.setText("scratch")
    tune.config_combo.setCurrentText("paper")
    tune.size_spin.setValue(64)
    tune.epochs_spin.setValue(1)
    tune.device_combo.setCurrentText("cpu")
    assert tune.precision_combo.value() == "fp32"
    tune.run_button.click()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=120_000)
    best = Path(tune.best)
    assert best.is_file() and best.parent == out / "finetune" and tune.load_button.isEnabled()
    assert tune.plot.values and "finished" in tune.status.text()

    # ---- back to Run: the footer button selects the new checkpoint and shows the Run tab
    dock.next_buttons["finetune"].click()
    assert dock.current_step() == "run" and run.model_source() == str(best)
    assert not [n for n in notes() if n.severity >= "warning"], [n.message for n in notes()]
