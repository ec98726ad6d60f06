"""The "Review targets" dock widget in a real napari viewer (Qt under Xvfb via pytest-xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_irsam._widgets import review
from napari_irsam._widgets._session import session_for
from napari_irsam._widgets.review import SIDECAR_KEY, ReviewWidget
from napari_irsam.data.synthetic import make_sequence

MASK = "IRSAM mask [ir]"
PROB = "IRSAM probability [ir]"


@pytest.fixture(autouse=True)
def review_dir(tmp_path, monkeypatch):
    """Sidecars of source-less layers go to a temporary folder, never to ~/.cache."""
    monkeypatch.setenv("NAPARI_IRSAM_REVIEW_DIR", str(tmp_path / "reviews"))
    return tmp_path / "reviews"


@pytest.fixture()
def notes(monkeypatch):
    seen: dict[str, list[str]] = {"warning": [], "info": []}
    monkeypatch.setattr(review, "show_warning", lambda m: seen["warning"].append(str(m)))
    monkeypatch.setattr(review, "show_info", lambda m: seen["info"].append(str(m)))
    return seen


@pytest.fixture(scope="module")
def sequence():
    """3 frames of 64×64 uint16 with 2 moving targets (ids 1 and 2 in every frame)."""
    frames, labels = make_sequence(n_frames=3, shape=(64, 64), seed=3, n_targets=2)
    return frames, labels


def _open(make_napari_viewer, sequence, answer=True, prob=True):
    frames, labels = sequence
    viewer = make_napari_viewer()
    viewer.add_image(frames.copy(), name="ir")  # tests draw into it: keep the fixture clean
    mask = labels.copy()
    mask[1:] += np.where(mask[1:] > 0, 10 * np.arange(1, len(mask))[:, None, None], 0)
    viewer.add_labels(mask, name=MASK, metadata={"model_id": "tiny.pt", "threshold": 0.5})
    if prob:
        viewer.add_image((labels > 0).astype(np.float32) * 0.8, name=PROB)
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return answer

    widget = ReviewWidget(viewer, ask_restore=ask)
    widget.asked = asked
    return viewer, widget


def _rows(widget):
    t = widget.table
    return [tuple(t.item(r, c).text() for c in range(t.columnCount())) for r in range(t.rowCount())]


def test_start_review_lists_every_target(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    assert widget.labels_combo.currentText() == MASK and widget.prob_combo.currentText() == PROB
    widget.start_button.click()
    assert not notes["warning"]
    layer = viewer.layers[MASK]
    state = session_for(viewer).review_of(layer)
    ids = [set(np.unique(f)) - {0} for f in layer.data]
    assert widget.table.rowCount() == sum(len(i) for i in ids) == len(state.targets)
    rows = _rows(widget)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # sorted by frame
    frame, tid = 0, min(ids[0])
    rr, cc = np.nonzero(layer.data[frame] == tid)
    row = next(r for r in rows if r[:2] == (str(frame), str(tid)))
    assert row[2] == f"({rr.mean():.1f}, {cc.mean():.1f})"
    assert row[3] == str(rr.size) and row[4] == "0.80" and row[5] == "pending"
    assert state.provenance == {"model_id": "tiny.pt", "threshold": 0.5}
    assert widget.progress.text() == "0 / 3 frames reviewed, 0 targets added, 0 rejected"
    assert (review_dir_of(layer) / "review.json").is_file()


def review_dir_of(layer):
    from pathlib import Path

    return Path(layer.metadata[SIDECAR_KEY])


def test_selecting_a_row_steps_and_centres(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    widget.start_button.click()
    key = max(widget.table.visible_keys())  # a target on the last frame
    widget.table.select_key(key)
    assert viewer.dims.current_step[0] == key[0]
    t = widget.state.targets[key]
    cam = review.view.camera(viewer)
    assert np.allclose(cam.center[-2:], t.centroid)
    assert viewer.layers[MASK].selected_label == key[1]


def test_accept_reject_add_change_mask_and_table(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    widget.start_button.click()
    layer = viewer.layers[MASK]
    first, second = widget.table.visible_keys()[:2]
    widget.table.select_key(first)
    widget.accept_button.click()
    assert widget.state.targets[first].status == "accepted"
    assert widget.table.current_key() == second  # moved on
    widget.reject_button.click()
    assert not (layer.data[second[0]] == second[1]).any()
    assert widget.state.targets[second].status == "rejected"
    status = {widget.table.key_at(r): widget.table.item(r, 5).text() for r in range(3)}
    assert status[first] == "accepted" and status[second] == "rejected"
    assert "1 rejected" in widget.progress.text()
    layer.undo()  # napari's undo brings the target back with its old status
    widget.rescan()
    assert (layer.data[second[0]] == second[1]).any()
    assert widget.state.targets[second].status == "pending"

    # add a missed target: a bright blob far from every labelled pixel of frame 1
    f = 1
    dist = ndimage.distance_transform_edt(layer.data[f] == 0)[10:54, 10:54]
    r, c = (int(v) + 10 for v in np.unravel_index(np.argmax(dist), dist.shape))
    image = viewer.layers["ir"].data
    yy, xx = np.mgrid[:64, :64]
    blob = 6000 * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 2.0)
    image[f] = np.clip(image[f] + blob, 0, 65535).astype(image.dtype)
    n_rows = widget.table.rowCount()
    t = widget.add_target_at((f, r + 1, c))  # a pixel off: snapped to the peak
    assert t is not None and t.status == "added" and t.frame == f
    assert layer.data[f, r, c] == t.target_id and t.target_id > layer.data[[0, 2]].max()
    assert 3 <= t.area <= 40  # grown from the blob, not a fixed disc
    assert widget.table.rowCount() == n_rows + 1 and widget.table.current_key() == t.key
    assert "1 targets added" in widget.progress.text()
    # a click on flat background: a one-sentence warning, nothing written
    before = layer.data.copy()
    image[2, :12, :12] = 2500
    assert widget.add_target_at((2, 5, 5)) is None
    assert "Nothing stands out" in notes["warning"][-1] and "\n" not in notes["warning"][-1]
    assert np.array_equal(layer.data, before)


def test_add_mode_click_through_the_mouse_callback(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    widget.start_button.click()
    seen = []
    widget.add_target_at = lambda pos: seen.append(tuple(pos))

    class Ev:
        button, modifiers, type, position, pos = 1, (), "mouse_press", (0, 5.0, 6.0), (10, 10)

    widget.toggle_add_mode(True)
    assert viewer.layers[MASK].mode == "pan_zoom" and widget.add_button.isChecked()
    gen = widget._on_mouse_drag(viewer, Ev)
    next(gen)
    Ev.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)
    assert seen == [(0, 5.0, 6.0)]
    Ev.type = "mouse_press"  # a drag (pan) adds nothing
    gen = widget._on_mouse_drag(viewer, Ev)
    next(gen)
    Ev.type, Ev.pos = "mouse_move", (40, 40)
    next(gen)
    Ev.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)
    assert len(seen) == 1
    widget.toggle_add_mode(False)
    assert str(viewer.layers[MASK].mode) == "pan_zoom" and not widget.add_button.isChecked()
    viewer.layers[MASK].mode = "paint"
    widget.toggle_add_mode(True)
    widget.toggle_add_mode(False)  # the labels tool in use before add mode comes back
    assert str(viewer.layers[MASK].mode) == "paint"
    widget.toggle_add_mode(True)
    viewer.layers[MASK].mode = "fill"  # choosing a labels tool leaves add mode, keeps the tool
    assert not widget.add_mode and str(viewer.layers[MASK].mode) == "fill"


def test_paint_marks_target_edited(make_napari_viewer, qtbot, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    widget.start_button.click()
    layer = viewer.layers[MASK]
    key = widget.table.visible_keys()[0]
    t = widget.state.targets[key]
    area = t.area
    viewer.dims.set_current_step(0, key[0])
    layer.brush_size = 1
    r = t.bbox[2]  # the row just below the target, under one of its bottom pixels
    c = int(np.nonzero(layer.data[key[0], r - 1] == key[1])[0][0])
    # napari emits events.paint before it writes the pixels; the widget syncs on its flush timer
    with qtbot.waitSignal(widget._flush.timeout, timeout=60_000):
        layer.paint((key[0], r, c), key[1], refresh=True)
    assert widget.state.targets[key].status == "edited"
    assert widget.state.targets[key].area > area
    row = widget.table.row_of(key)
    assert widget.table.item(row, 5).text() == "edited"
    # a direct write + refresh (undo/redo, other tools) is picked up too
    key2 = next(k for k in widget.table.visible_keys() if k[0] == key[0] and k != key)
    layer.data[layer.data == key2[1]] = 0
    layer.refresh()
    widget.rescan()
    assert widget.state.targets[key2].status == "rejected"


def test_reviewed_flag_and_progress(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    widget.start_button.click()
    viewer.dims.set_current_step(0, 1)
    widget.toggle_frame_reviewed()
    assert widget.state.reviewed == [False, True, False] and widget.reviewed_check.isChecked()
    assert all(t.status == "accepted" for t in widget.state.frame_targets(1))
    assert widget.progress.text().startswith("1 / 3 frames reviewed")
    widget.next_unreviewed_frame()
    assert viewer.dims.current_step[0] == 2 and not widget.reviewed_check.isChecked()
    widget.reviewed_check.click()
    widget.next_unreviewed_frame()
    assert viewer.dims.current_step[0] == 0
    widget.frame_filter.setCurrentIndex(1)  # current frame only
    assert {k[0] for k in widget.table.visible_keys()} == {0}
    widget.status_filter.setCurrentIndex(widget.status_filter.findData("accepted"))
    assert widget.table.visible_keys() == []


def test_autosave_and_restore_in_a_new_viewer(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    assert widget.asked == []  # nothing saved yet: nothing offered
    widget.start_button.click()
    layer = viewer.layers[MASK]
    keys = widget.table.visible_keys()
    widget.table.select_key(keys[0])
    widget.reject_button.click()
    widget.table.select_key(keys[1])
    widget.accept_button.click()
    viewer.dims.set_current_step(0, 2)
    widget.toggle_frame_reviewed()
    folder = review_dir_of(layer)
    assert (folder / "review.json").is_file()
    saved_labels = layer.data.copy()
    saved = widget.state.to_dict()
    widget.close()

    # a new viewer on the same image: the widget offers the review and restores it
    viewer2, widget2 = _open(make_napari_viewer, sequence, answer=True)
    assert len(widget2.asked) == 1 and "1 / 3 frames reviewed" in widget2.asked[0]
    restored = viewer2.layers[MASK]
    assert np.array_equal(restored.data, saved_labels)
    assert widget2.state.to_dict()["targets"] == saved["targets"]
    assert widget2.state.reviewed == [False, False, True]
    assert session_for(viewer2).review_of(restored) is widget2.state
    assert widget2.table.rowCount() == len(saved["targets"])


def test_restore_creates_the_mask_layer_when_missing(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    widget.start_button.click()
    labels = viewer.layers[MASK].data.copy()
    frames = sequence[0]
    viewer2 = make_napari_viewer()
    viewer2.add_image(frames, name="ir")
    widget2 = ReviewWidget(viewer2, ask_restore=lambda q: True)
    assert np.array_equal(viewer2.layers[MASK].data, labels)
    assert widget2.table.rowCount() == widget.table.rowCount()


def test_declined_restore_keeps_the_old_review(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    widget.start_button.click()
    folder = review_dir_of(viewer.layers[MASK])
    viewer2, widget2 = _open(make_napari_viewer, sequence, answer=False)
    assert widget2.state is None and len(widget2.asked) == 1
    widget2.start_button.click()  # asked again; "no" sets the old review aside
    assert len(widget2.asked) == 2
    assert list(folder.parent.glob(folder.name + ".declined-*"))
    assert (folder / "review.json").is_file()  # the fresh review's autosave


@pytest.mark.parametrize("case", ["no_image", "no_labels", "shape", "no_review"])
def test_bad_input_warns_in_one_sentence(make_napari_viewer, notes, case):
    viewer = make_napari_viewer()
    if case != "no_image":
        viewer.add_image(np.zeros((2, 16, 16), np.float32), name="ir")
    if case in ("shape", "no_review"):
        viewer.add_labels(np.zeros((2, 16, 8 if case == "shape" else 16), np.int32), name="m")
    widget = ReviewWidget(viewer, ask_restore=lambda q: True)
    if case == "no_review":
        for action in (widget.next_target, widget.accept_selected, widget.reject_selected):
            action()
        widget.toggle_frame_reviewed()
        assert widget.add_target_at((0, 1, 1)) is None and not widget.reviewed_check.isChecked()
    else:
        widget.start_button.click()
    expected = {
        "no_image": "Choose an image layer",
        "no_labels": "Choose a mask",
        "shape": "has shape (2, 16, 8) but the image 'ir' has (2, 16, 16)",
        "no_review": "Press Start review first",
    }[case]
    assert widget.state is None and notes["warning"]
    assert all(m == notes["warning"][0] for m in notes["warning"])
    assert expected in notes["warning"][0] and "\n" not in notes["warning"][0]


def test_mismatched_probability_is_ignored_with_a_warning(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence, prob=False)
    viewer.add_image(np.zeros((3, 32, 32), np.float32), name=PROB)
    assert widget.prob_combo.currentText() == PROB
    widget.start_button.click()
    assert widget.state is not None and widget.prob_layer is None
    assert "does not match" in notes["warning"][0]
    assert all(t.peak_score is None for t in widget.state.targets.values())


def test_four_d_stack_flattens_leading_axes(make_napari_viewer, notes):
    """(T, Z, H, W): frame i of the review is the C-order flat index, as in Run IRSAM."""
    viewer = make_napari_viewer()
    image = np.zeros((2, 3, 24, 24), np.float32)
    labels = np.zeros(image.shape, np.int32)
    labels[1, 2, 5:8, 5:8] = 4  # flat frame 5
    viewer.add_image(image, name="ir")
    layer = viewer.add_labels(labels, name=MASK)
    widget = ReviewWidget(viewer, ask_restore=lambda q: True)
    widget.start_button.click()
    assert widget.table.visible_keys() == [(5, 4)]
    widget.table.select_key((5, 4))
    assert viewer.dims.current_step[:2] == (1, 2)
    widget.reject_button.click()
    assert not layer.data.any() and widget.state.targets[(5, 4)].status == "rejected"


def test_shortcuts_bound_while_open_and_unbound_on_close(make_napari_viewer, sequence, notes):
    from app_model.types import KeyBinding

    viewer, widget = _open(make_napari_viewer, sequence)
    keys = {KeyBinding.from_str(k): m for k, _, m in review.SHORTCUTS}
    for kb in keys:
        assert kb in viewer.keymap
    assert "Shift-A" in widget.shortcuts.text()
    widget.start_button.click()
    viewer.dims.set_current_step(0, 0)
    first = widget.table.visible_keys()[0]
    viewer.keymap[KeyBinding.from_str("Shift-N")](viewer)
    assert widget.table.current_key() == first
    viewer.keymap[KeyBinding.from_str("Shift-A")](viewer)
    assert widget.state.targets[first].status == "accepted"
    assert widget._mouse_cb in viewer.mouse_drag_callbacks
    widget.close()
    for kb in keys:
        assert kb not in viewer.keymap
    assert widget._mouse_cb not in viewer.mouse_drag_callbacks


def test_removing_the_dock_widget_unbinds_keys(make_napari_viewer, sequence, notes):
    from app_model.types import KeyBinding

    viewer, widget = _open(make_napari_viewer, sequence)
    viewer.window.add_dock_widget(widget, name="Review targets")
    kb = KeyBinding.from_str("Shift-N")
    assert kb in viewer.keymap
    viewer.window.remove_dock_widget(widget)  # napari un-parents the widget, does not close it
    assert kb not in viewer.keymap and widget._mouse_cb not in viewer.mouse_drag_callbacks


def test_view_helpers_frames_touched_and_scaled_pixels():
    from napari.layers import Labels

    from napari_irsam._widgets import _review_view as view

    class Atom:  # napari's masked-paint history record
        slice_key = (slice(1, 3), slice(0, 4), slice(2, 5))

    assert view.frames_touched([Atom()], (4,)) == {1, 2}
    idx = (np.array([0, 1]), np.array([2, 0]), np.array([3, 3]), np.array([4, 4]))
    assert view.frames_touched([(idx, 0, 1)], (2, 3)) == {2, 3}  # (T, Z) flattened in C order
    assert view.frames_touched([object()], (2,)) is None  # unknown record: caller syncs all
    layer = Labels(np.zeros((2, 3, 8, 8), np.int32), scale=(1, 1, 2, 2))
    assert view.world_to_frame_pixel(layer, (1, 2, 4, 6)) == (5, 2.0, 3.0)
    assert view.world_to_frame_pixel(layer, (2, 0, 4, 6)) is None
    assert view.n_frames(layer) == 6 and view.lead_shape(layer) == (2, 3)


def test_renamed_layers_are_offered_under_their_new_name(make_napari_viewer, sequence, notes):
    viewer, widget = _open(make_napari_viewer, sequence)
    viewer.layers[MASK].name = "corrected"
    items = [widget.labels_combo.itemText(i) for i in range(widget.labels_combo.count())]
    assert "corrected" in items and MASK not in items


def test_sidecar_goes_next_to_the_source_file(make_napari_viewer, sequence, notes, tmp_path):
    frames, labels = sequence
    src = tmp_path / "seq.tif"
    src.touch()
    viewer = make_napari_viewer()
    viewer.add_image(frames.copy(), name="seq", metadata={"source_paths": [str(src)]})
    viewer.add_labels(labels.copy(), name="IRSAM mask [seq]")
    widget = ReviewWidget(viewer, ask_restore=lambda q: True)
    widget.start_button.click()
    folder = tmp_path / "seq.tif.irsam-review"
    assert viewer.layers["IRSAM mask [seq]"].metadata[SIDECAR_KEY] == str(folder)
    assert (folder / "review.json").is_file() and (folder / "labels" / "000000.npz").is_file()


def test_opens_from_the_plugin_menu(make_napari_viewer, sequence, notes, recwarn):
    """napari hands plugins a public-only proxy of the viewer: everything must work through it."""
    from app_model.types import KeyBinding

    frames, labels = sequence
    viewer = make_napari_viewer()
    viewer.add_image(frames.copy(), name="ir")
    viewer.add_labels(labels.copy(), name=MASK)
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Review targets")
    assert isinstance(widget, ReviewWidget)
    assert KeyBinding.from_str("Shift-N") in viewer.keymap
    widget.start_button.click()
    key = widget.table.visible_keys()[-1]
    widget.table.select_key(key)
    widget.reject_button.click()
    assert widget.state.targets[key].status == "rejected" and not notes["warning"]
    assert not [w for w in recwarn if "private" in str(w.message).lower()]


def test_widget_module_does_not_import_torch():
    """Review needs no model: importing it inside a running napari must stay light."""
    import subprocess
    import sys

    from napari_irsam._widgets import _outputs, _review_view

    code = "import sys, napari_irsam._widgets.review; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
    assert _review_view.output_name("IRSAM mask", "ir") == _outputs.layer_name("IRSAM mask", "ir")
