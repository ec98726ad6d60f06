"""Tracks in "Review targets", through the plugin path and the viewer's keys."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("trackpy")

from app_model.types import KeyBinding  # noqa: E402
from napari.layers import Tracks  # noqa: E402

from napari_irsam._widgets import review  # noqa: E402
from napari_irsam.data.synthetic_video import make_recording  # noqa: E402
from napari_irsam.segment import label_targets  # noqa: E402

MASK = "IRSAM mask [ir]"
MISSED = 5  # frame on which ground-truth track 1 is not in the mask


@pytest.fixture(autouse=True)
def review_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_IRSAM_REVIEW_DIR", str(tmp_path / "reviews"))


@pytest.fixture()
def notes(monkeypatch):
    seen: dict[str, list[str]] = {"warning": [], "info": []}
    monkeypatch.setattr(review, "show_warning", lambda m: seen["warning"].append(str(m)))
    monkeypatch.setattr(review, "show_info", lambda m: seen["info"].append(str(m)))
    return seen


def _press(viewer, key):
    viewer.keymap[KeyBinding.from_str(key)](viewer)


def _mask(rec):
    """Run-IRSAM-like labels (ids unique over the stack) of the ground truth, with track 1
    missed on frame MISSED and a one-frame flicker on frame 3."""
    gt = rec.labels.copy()
    gt[MISSED][gt[MISSED] == 1] = 0
    gt[3, 50:52, 4:6] = 9
    out, top = np.zeros_like(gt), 0
    for f, frame in enumerate(gt):
        out[f] = label_targets(frame > 0, top + 1)
        top = max(top, int(out[f].max()))
    return out


def test_track_review_keys_through_the_plugin(make_napari_viewer, qtbot, notes):
    rec = make_recording(10, (64, 64), n_targets=2, seed=3, snr_range=(25, 30), flicker_rate=0)
    viewer = make_napari_viewer()
    viewer.add_image(rec.frames, name="ir")
    viewer.add_labels(_mask(rec), name=MASK)
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Review targets")
    assert KeyBinding.from_str("Shift-T") in viewer.keymap
    widget.start_button.click()
    qtbot.waitUntil(lambda: "IRSAM tracks [ir]" in viewer.layers, timeout=60000)
    assert isinstance(viewer.layers["IRSAM tracks [ir]"], Tracks)
    assert viewer.layers.selection.active.name == MASK  # painting stays on the mask
    state = widget.state
    mask = viewer.layers[MASK].data

    def gt_track(t):  # the ground-truth track under a target
        r, c = (int(round(v)) for v in t.centroid)
        return int(rec.labels[t.frame, r, c])

    ids1 = {t.track_id for t in state.targets.values() if gt_track(t) == 1}
    ids2 = {t.track_id for t in state.targets.values() if gt_track(t) == 2}
    assert len(ids1) == len(ids2) == 1 and ids1 != ids2  # each moving target is one track
    (tid1,), (tid2,) = ids1, ids2
    flicker = next(t for t in state.targets.values() if t.frame == 3 and gt_track(t) == 0)
    assert flicker.track_id not in (tid1, tid2)
    col = widget.table.horizontalHeaderItem(widget.table.columnCount() - 1).text()
    row = widget.table.row_of(flicker.key)
    assert col == "track" and widget.table.item(row, 6).text() == str(flicker.track_id)

    # accept track 1 at once: every one of its 9 targets, and the next track is selected
    first = min((t for t in state.targets.values() if t.track_id == tid1), key=lambda t: t.frame)
    widget.table.select_key(first.key)
    _press(viewer, "Shift-T")
    assert [t.status for t in state.targets.values() if t.track_id == tid1] == ["accepted"] * 9
    assert widget.selected_target().track_id != tid1

    # fill: Shift-F goes to the missed frame, Shift-F again grows the target there
    widget.table.select_key(first.key)
    _press(viewer, "Shift-F")
    assert viewer.dims.current_step[0] == MISSED
    _press(viewer, "Shift-F")
    added = widget.selected_target()
    assert added.frame == MISSED and added.track_id == tid1 and added.status == "added"
    grown = mask[MISSED] == added.target_id
    truth = rec.labels[MISSED] == 1
    assert (grown & truth).sum() / (grown | truth).sum() > 0.3
    tracks = viewer.layers["IRSAM tracks [ir]"].data
    assert ((tracks[:, 0] == tid1) & (tracks[:, 1] == MISSED)).any()

    # reject the flicker's track: it leaves the mask and the Tracks layer
    widget.table.select_key(flicker.key)
    _press(viewer, "Shift-X")
    assert state.targets[flicker.key].status == "rejected"
    assert not (mask[3] == flicker.target_id).any()
    assert not (viewer.layers["IRSAM tracks [ir]"].data[:, 0] == flicker.track_id).any()

    # next track: the one left with pending targets
    _press(viewer, "Shift-K")
    assert widget.selected_target().track_id == tid2
    _press(viewer, "Shift-T")
    _press(viewer, "Shift-K")
    assert notes["info"][-1] == "Every track is reviewed." and not notes["warning"]
    # the track ids are saved with the review
    assert {r["track_id"] for r in state.to_dict()["targets"]} >= {tid1, tid2}


def test_track_keys_without_a_track_say_so(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 16, 16), np.float32), name="ir")
    viewer.add_labels(np.zeros((2, 16, 16), np.int32), name=MASK)
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Review targets")
    _press(viewer, "Shift-T")
    assert notes["warning"][-1].startswith("Press Start review first")
    widget.start_button.click()
    _press(viewer, "Shift-F")
    assert notes["warning"][-1].startswith("Select a target on a track first")
    widget.close()
    assert KeyBinding.from_str("Shift-T") not in viewer.keymap


def test_export_widget_keeps_the_track_ids(make_napari_viewer, qtbot, notes, tmp_path):
    """Review → tracks → "Export training set": track ids per target and a MOT file."""
    import json

    rec = make_recording(8, (64, 64), n_targets=2, seed=3, snr_range=(25, 30), flicker_rate=0)
    viewer = make_napari_viewer()
    viewer.add_image(rec.frames, name="ir")
    viewer.add_labels(_mask(rec), name=MASK)
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Review targets")
    widget.start_button.click()
    qtbot.waitUntil(lambda: "IRSAM tracks [ir]" in viewer.layers, timeout=60000)
    ids = {t.track_id for t in widget.state.targets.values()}
    _, export = viewer.window.add_plugin_dock_widget("napari-irsam", "Export training set")
    export.out_edit.setText(str(tmp_path / "ex"))
    export.reviewed_check.setChecked(False)  # nothing marked reviewed: export every frame
    assert export.export(sync=True) is not None
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    exported = {t["track_id"] for s in man["samples"] for t in s["targets"]}
    assert exported == ids
    (mot,) = (tmp_path / "ex" / "mot").glob("*.txt")
    lines = [ln.split(",") for ln in mot.read_text().splitlines()]
    assert {int(ln[1]) for ln in lines} == ids and min(int(ln[0]) for ln in lines) == 1


def test_run_irsam_temporal_consistency_drops_a_flicker(make_napari_viewer, qtbot):
    """Run IRSAM (plugin path) on a stack with and without "temporal consistency": a moving
    target stays, a one-frame flash is dropped, the run's metadata says so."""
    frames = np.random.default_rng(0).normal(1000, 30, (8, 64, 64)).astype(np.uint16)
    for t in range(8):
        frames[t, 10 + 2 * t : 13 + 2 * t, 10 + t : 13 + t] = 4000  # a target moving 2 px/frame
    frames[4, 46:49, 46:49] = 4000  # a flash on one frame
    viewer = make_napari_viewer()
    viewer.add_image(frames, name="ir")
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Run IRSAM")
    widget.model_combo.setCurrentIndex(widget.model_combo.findData("classical:tophat"))
    widget.scope_combo.setCurrentText("all frames")
    for temporal in (False, True):
        widget.temporal_check.setChecked(temporal)
        widget.run_button.click()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
        mask = viewer.layers[MASK]
        assert all(mask.data[t, 11 + 2 * t, 11 + t] > 0 for t in range(8))
        assert bool(mask.data[4, 47, 47] > 0) is not temporal
        assert (mask.metadata["temporal"] is not None) is temporal
