"""Every widget opened the way napari's Plugins menu opens it (issue 11).

``viewer.window.add_plugin_dock_widget("napari-irsam", name)`` hands each widget a
``PublicOnlyProxy`` of the viewer, and every layer reached through it (``viewer.layers[name]``) is
a proxy too: ``type(layer) is X`` and ``layer is other`` are False there. These tests therefore
never build a widget on the real viewer; they compare layers by ``isinstance`` and name only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from napari_irsam._widgets._session import session_for
from napari_irsam._widgets.review import SIDECAR_KEY, ReviewWidget

PLUGIN = "napari-irsam"
MASK, PROB = "IRSAM mask [ir]", "IRSAM probability [ir]"
TOPHAT = "classical:tophat"
#: (frame, row, col) of the bright 3×3 targets of ``_frames``: two per frame, moving
TARGETS = [(f, r, c) for f in range(4) for r, c in ((10 + 3 * f, 12), (60, 70 - 4 * f))]


@pytest.fixture(autouse=True)
def review_dir(tmp_path, monkeypatch):
    """Sidecars of source-less layers go to a temporary folder, never to ~/.cache."""
    monkeypatch.setenv("NAPARI_IRSAM_REVIEW_DIR", str(tmp_path / "reviews"))
    return tmp_path / "reviews"


@pytest.fixture()
def notes():
    """The napari notifications of this test (everything the user would see)."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)

    def new() -> list:
        return list(notification_manager.records[start:])

    return new


def _frames() -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, 10, (4, 96, 96))
    frames = (1000 + noise).astype(np.uint16)
    for f, r, c in TARGETS:
        frames[f, r - 1 : r + 2, c - 1 : c + 2] = 5000
    return frames


def _dock(viewer, name: str):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


def _run(qtbot, run, scope: str) -> None:
    run.scope_combo.setCurrentText(scope)
    run.run_button.click()
    qtbot.waitUntil(lambda: run.worker is None, timeout=120_000)


@pytest.fixture()
def ran(make_napari_viewer, qtbot, notes):
    """A viewer with the image "ir", Run IRSAM (top-hat) docked and run on all frames."""
    viewer = make_napari_viewer()
    viewer.add_image(_frames(), name="ir")
    run = _dock(viewer, "Run IRSAM")
    run.model_combo.setCurrentIndex(run.model_combo.findData(TOPHAT))
    _run(qtbot, run, "all frames")
    assert not [n for n in notes() if n.severity >= "warning"]
    mask = viewer.layers[MASK]
    assert all(mask.data[f, r, c] > 0 for f, r, c in TARGETS)
    assert len(np.unique(mask.data)) == len(TARGETS) + 1  # one id per target, none spurious
    return viewer, run


def _review(viewer):
    review = _dock(viewer, "Review targets")
    review.ask_restore = lambda question: True
    review.start_button.click()
    assert review.state is not None
    return review


# ------------------------------------------------------------------------------------- bug 2
def test_current_frame_then_all_frames_updates_the_layers_in_place(
    make_napari_viewer, qtbot, notes
):
    viewer = make_napari_viewer()
    viewer.add_image(_frames(), name="ir")
    run = _dock(viewer, "Run IRSAM")
    assert type(run.viewer).__name__ == "PublicOnlyProxy"  # what napari really hands plugins
    run.model_combo.setCurrentIndex(run.model_combo.findData(TOPHAT))
    viewer.dims.set_current_step(0, 0)
    _run(qtbot, run, "current frame")
    _run(qtbot, run, "all frames")
    assert [ly.name for ly in viewer.layers] == ["ir", MASK, PROB]
    mask = viewer.layers[MASK]
    for f, r, c in TARGETS:
        assert mask.data[f, r, c] > 0
    assert [r["frames"] for r in mask.metadata["runs"]] == [[0], [0, 1, 2, 3]]
    # item 8: the brush is on the mask after a run, not on the last (hidden) map built
    assert viewer.layers.selection.active.name == MASK
    # Review and Export pick that mask, which holds every frame
    review = _dock(viewer, "Review targets")
    export = _dock(viewer, "Export training set")
    assert review.labels_combo.currentText() == MASK
    assert export.labels_combo.currentText() == MASK
    assert not [n for n in notes() if n.severity >= "warning"]


# ------------------------------------------------------------------------------------- bug 3
def test_removing_the_mask_under_review_stops_the_review(ran, qtbot, notes):
    viewer, _ = ran
    review = _review(viewer)
    folder = Path(viewer.layers[MASK].metadata[SIDECAR_KEY])
    saved = (folder / "review.json").read_bytes()
    review.table.select_key(review.table.visible_keys()[0])
    viewer.layers.remove(MASK)
    assert review.state is None and review.labels_layer is None
    assert review.table.rowCount() == 0 and "removed" in review.status.text()
    review.accept_button.click()  # nothing to accept any more: a warning, no autosave
    assert (folder / "review.json").read_bytes() == saved
    assert "Start review" in notes()[-1].message
    review.start_button.click()  # no mask left: the saved review is offered and re-creates it
    assert review.state is not None and MASK in viewer.layers
    assert session_for(viewer).review_of(viewer.layers[MASK]) is review.state


# ------------------------------------------------------------------------------------- bug 6
def test_rerun_into_a_reviewed_mask_asks_and_skips_reviewed_frames(ran, qtbot, notes):
    viewer, run = ran
    mask = viewer.layers[MASK]
    review = _review(viewer)
    viewer.dims.set_current_step(0, 1)
    review.toggle_frame_reviewed()  # frame 1: reviewed
    key = next(k for k in review.table.visible_keys() if k[0] == 2)
    review.table.select_key(key)
    review.reject_button.click()  # frame 2: corrected by hand
    kept = mask.data[[1, 2]].copy()
    asked: list[str] = []

    def answer(choice):
        def ask(question: str) -> str:
            asked.append(question)
            return choice

        return ask

    run.ask_overwrite = answer("cancel")
    run.scope_combo.setCurrentText("all frames")
    run.run_button.click()
    assert run.worker is None and len(asked) == 1  # cancelled: nothing started
    assert "1, 2" in asked[0]
    assert len(mask.metadata["runs"]) == 1

    run.ask_overwrite = answer("skip")
    _run(qtbot, run, "all frames")
    assert len(asked) == 2
    assert mask.metadata["runs"][-1]["frames"] == [0, 3]
    assert np.array_equal(mask.data[[1, 2]], kept)  # the annotator's frames are untouched
    qtbot.waitUntil(lambda: not review.state.model_frames, timeout=5000)  # synced by itself
    # the re-run frames are fresh model output: pending, not "added" + "rejected"
    counts = review.state.counts()
    assert counts["added"] == 0 and counts["rejected"] == 1
    assert review.state.reviewed == [False, True, False, False]
    assert "1 rejected" in review.progress.text()

    run.ask_overwrite = answer("overwrite")
    viewer.dims.set_current_step(0, 1)
    _run(qtbot, run, "current frame")  # re-run the reviewed frame 1 on purpose
    assert len(asked) == 3 and mask.metadata["runs"][-1]["frames"] == [1]
    qtbot.waitUntil(lambda: not review.state.reviewed[1], timeout=5000)
    assert review.state.frame_targets(1)
    assert all(t.status == "pending" for t in review.state.frame_targets(1))
    assert not review.reviewed_check.isChecked()
    rows = {review.table.key_at(r) for r in range(review.table.rowCount())}
    assert rows == set(review.state.targets)


# ------------------------------------------------------------------------------------- bug 7
def test_a_target_painted_then_erased_is_not_rejected(ran, qtbot, notes, tmp_path):
    viewer, _ = ran
    review = _review(viewer)
    mask = viewer.layers[MASK]
    viewer.dims.set_current_step(0, 3)
    new = int(mask.data.max()) + 1
    mask.brush_size = 3
    mask.paint((3, 85, 6), new, refresh=True)
    qtbot.waitUntil(lambda: (3, new) in review.state.targets, timeout=5000)
    assert review.state.counts()["added"] == 1
    mask.paint((3, 85, 6), 0, refresh=True)
    qtbot.waitUntil(lambda: (3, new) not in review.state.targets, timeout=5000)
    assert review.state.counts()["rejected"] == 0 and review.state.counts()["added"] == 0
    assert review.progress.text().endswith("0 targets added, 0 rejected")
    assert review.table.row_of((3, new)) is None
    saved = json.loads((Path(mask.metadata[SIDECAR_KEY]) / "review.json").read_text())
    assert saved["state"]["counts"]["rejected"] == 0
    export = _dock(viewer, "Export training set")  # and the manifest counts none either
    assert export.labels_combo.currentText() == MASK
    export.reviewed_check.setChecked(False)
    export.out_edit.setText(str(tmp_path / "export"))
    assert export.export(sync=True) is not None
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["status_counts"]["rejected"] == 0
    assert manifest["status_counts"]["pending"] == len(TARGETS)


# ------------------------------------------------------------------------------------- bug 5
def test_finetune_on_a_folder_without_images_and_masks(make_napari_viewer, qtbot, notes, tmp_path):
    viewer = make_napari_viewer()
    tune = _dock(viewer, "Fine-tune IRSAM")
    (tmp_path / "not_a_dataset").mkdir()
    tune.dataset_edit.setText(str(tmp_path / "not_a_dataset"))
    tune.run_button.click()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=60_000)
    shown = [n for n in notes() if n.severity >= "warning"]
    assert len(shown) == 1 and "images/" in shown[0].message and "masks/" in shown[0].message
    assert "\n" not in shown[0].message and not hasattr(shown[0], "exception")
    assert tune.status.text() == shown[0].message and tune.run_button.isEnabled()


def test_finetune_error_in_the_worker_is_one_notification(
    make_napari_viewer, qtbot, notes, tmp_path
):
    viewer = make_napari_viewer()
    tune = _dock(viewer, "Fine-tune IRSAM")
    data = tmp_path / "broken"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(b"\x89PNG not really")  # no mask for it either
    tune.dataset_edit.setText(str(data))
    tune.run_button.click()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=60_000)
    shown = [n for n in notes() if n.severity >= "warning"]
    assert len(shown) == 1 and not hasattr(shown[0], "exception"), shown
    assert "\n" not in shown[0].message and "loading" not in tune.status.text()
    assert tune.status.text() == shown[0].message and tune.run_button.isEnabled()


def test_finetune_shows_progress_while_loading_and_says_cancelled(
    make_napari_viewer, qtbot, notes, tmp_path
):
    from napari_irsam.data.synthetic import make_dataset

    viewer = make_napari_viewer()
    tune = _dock(viewer, "Fine-tune IRSAM")
    tune.dataset_edit.setText(str(make_dataset(tmp_path / "export", 4, seed=0, size=(64, 64))))
    tune.config_combo.setCurrentText("paper")
    tune.size_spin.setValue(64)
    tune.device_combo.setCurrentText("cpu")
    tune.run_button.click()
    # before the first training step: a napari progress bar and a status that ticks
    assert tune._progress is not None and "loading" in tune._progress.desc
    assert re.fullmatch(r"Loading data and model… \(\d+ s\)", tune.status.text())
    tune.cancel_button.click()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=120_000)
    assert "ancelled" in tune.status.text() and tune._progress is None
    assert any("ancelled" in n.message for n in notes())
    assert not [n for n in notes() if n.severity >= "warning"]


# ------------------------------------------------------------------------------------ item 8
def test_restored_mask_keeps_its_run_metadata(ran, make_napari_viewer, qtbot, monkeypatch):
    viewer, _ = ran
    review = _review(viewer)
    review.table.select_key(review.table.visible_keys()[0])
    review.accept_button.click()
    run_md = {k: v for k, v in viewer.layers[MASK].metadata.items() if not k.startswith("napari_")}
    assert run_md["model_id"] == TOPHAT
    monkeypatch.setattr(ReviewWidget, "_ask_dialog", lambda self, question: True)
    viewer2 = make_napari_viewer()
    viewer2.add_image(_frames(), name="ir")
    review2 = _dock(viewer2, "Review targets")  # offers the saved review: restored
    assert review2.state is not None and MASK in viewer2.layers
    restored = viewer2.layers[MASK].metadata
    assert session_for(viewer2).review_of(viewer2.layers[MASK]) is review2.state
    for key in ("model_id", "threshold", "mode", "processed_frames", "runs", "source_layer"):
        assert restored.get(key) == run_md.get(key), key


def test_status_column_of_the_targets_table_is_not_clipped(ran, qtbot):
    """On a 1366×768 screen the review dock is as narrow as it gets: the status stays whole."""
    viewer, _ = ran
    window = viewer.window._qt_window
    window.resize(1366, 768)
    window.show()
    review = _review(viewer)
    review.table.select_key(review.table.visible_keys()[0])
    review.reject_button.click()
    table = review.table
    header, last = table.horizontalHeader(), table.columnCount() - 1
    needed = max(table.sizeHintForColumn(last), header.sectionSizeHint(last))

    def status_whole() -> bool:
        right = header.sectionViewportPosition(last) + header.sectionSize(last)
        return header.sectionSize(last) >= needed and right <= table.viewport().width()

    qtbot.waitUntil(status_whole, timeout=5000)


def test_menu_order_is_the_workflow_order():
    import napari_irsam

    manifest = yaml.safe_load((Path(napari_irsam.__file__).parent / "napari.yaml").read_text())
    names = [w["display_name"] for w in manifest["contributions"]["widgets"]]
    workflow = ["Run IRSAM", "Review targets", "Export training set", "Fine-tune IRSAM"]
    assert [n for n in names if n in workflow] == workflow


def test_classical_detectors_take_2x2_frames_like_irsam(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    viewer.add_image(np.array([[0, 0], [0, 9]], np.float32), name="ir")
    run = _dock(viewer, "Run IRSAM")
    choices = [run.model_combo.itemData(i) for i in range(run.model_combo.count())]
    classical = [c for c in choices if isinstance(c, str) and c.startswith("classical:")]
    assert len(classical) == 3
    for choice in classical:
        run.model_combo.setCurrentIndex(run.model_combo.findData(choice))
        _run(qtbot, run, "current frame")
    assert not [n for n in notes() if n.severity >= "warning"], notes()
    assert viewer.layers[MASK].data.shape == (2, 2)


def test_run_errors_are_one_notification(make_napari_viewer, qtbot, notes, tmp_path):
    viewer = make_napari_viewer()
    viewer.add_image(_frames(), name="ir")
    run = _dock(viewer, "Run IRSAM")
    run.model_combo.setCurrentIndex(run.model_combo.findData(None))  # checkpoint file…
    run.path_edit.setText(str(tmp_path / "missing.pt"))
    _run(qtbot, run, "current frame")
    shown = [n for n in notes() if n.severity >= "warning"]
    assert len(shown) == 1 and not hasattr(shown[0], "exception"), shown
    assert run.status.text() == shown[0].message and run.run_button.isEnabled()
    assert [ly.name for ly in viewer.layers] == ["ir"]
