"""Review widget autosave: a failing save is one warning, never an exception into napari; a review
left with an interrupted autosave file (writer killed mid-save) restores and keeps saving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_irsam._widgets import review
from napari_irsam._widgets.review import SIDECAR_KEY, ReviewWidget
from napari_irsam.data import sidecar
from napari_irsam.data.sidecar import Sidecar
from napari_irsam.data.synthetic import make_sequence

MASK = "IRSAM mask [ir]"


@pytest.fixture(autouse=True)
def review_dir(tmp_path, monkeypatch):
    """Sidecars of source-less layers go to a temporary folder, never to ~/.cache."""
    monkeypatch.setenv("NAPARI_IRSAM_REVIEW_DIR", str(tmp_path / "reviews"))


@pytest.fixture()
def warnings(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(review, "show_warning", lambda m: seen.append(str(m)))
    monkeypatch.setattr(review, "show_info", lambda m: None)
    return seen


def _open(make_napari_viewer, frames, labels):
    viewer = make_napari_viewer()
    viewer.add_image(frames, name="ir")
    viewer.add_labels(labels.copy(), name=MASK)
    return viewer, ReviewWidget(viewer, ask_restore=lambda question: True)


@pytest.fixture(scope="module")
def sequence():
    return make_sequence(n_frames=3, shape=(48, 48), seed=5, n_targets=3)


def test_any_save_failure_is_one_warning_and_saving_resumes(make_napari_viewer, sequence, warnings):
    viewer, widget = _open(make_napari_viewer, *sequence)
    widget.start_button.click()
    state_file = Path(viewer.layers[MASK].metadata[SIDECAR_KEY]) / "review.json"

    def broken(path, data):  # the failure the killed-writer bug raised: not an OSError
        raise ValueError("invalid literal for int() with base 10: '.000002.wn9dwnjv'")

    keys = widget.table.visible_keys()
    with pytest.MonkeyPatch.context() as disk:
        disk.setattr(sidecar, "atomic_write_bytes", broken)
        widget.table.select_key(keys[0])
        widget.accept_selected()  # a JSON-only autosave
        widget.table.select_key(keys[1])
        widget.reject_selected()  # a frame autosave
        widget.toggle_frame_reviewed()
    assert len(warnings) == 1, warnings  # one warning for the whole streak of failures
    assert "Autosave to" in warnings[0] and "wn9dwnjv" in warnings[0]
    assert "\n" not in warnings[0] and warnings[0].count(". ") == 0
    assert _statuses(state_file)[keys[0]] == "pending"  # nothing was saved meanwhile

    widget.table.select_key(keys[2])  # the disk works again
    widget.accept_selected()  # saving works again, with everything edited meanwhile
    saved = _statuses(state_file)
    assert saved[keys[0]] == "accepted" and saved[keys[1]] == "rejected"
    assert len(warnings) == 1
    _, labels, _ = Sidecar(state_file.parent).load()  # the frame edited meanwhile was saved
    assert np.array_equal(labels, viewer.layers[MASK].data)
    assert not (labels[keys[1][0]] == keys[1][1]).any()

    with pytest.MonkeyPatch.context() as disk:
        disk.setattr(sidecar, "atomic_write_bytes", broken)
        widget.table.select_key(keys[0])
        widget.accept_selected()
    assert len(warnings) == 2  # a new streak warns again


def _statuses(state_file: Path) -> dict[tuple[int, int], str]:
    targets = json.loads(state_file.read_text())["state"]["targets"]
    return {(t["frame"], t["target_id"]): t["status"] for t in targets}


def test_restore_next_to_an_interrupted_autosave_file(make_napari_viewer, sequence, warnings):
    viewer, widget = _open(make_napari_viewer, *sequence)
    widget.start_button.click()
    keys = widget.table.visible_keys()
    widget.table.select_key(keys[-1])
    widget.reject_selected()
    folder = Path(viewer.layers[MASK].metadata[SIDECAR_KEY])
    saved = viewer.layers[MASK].data.copy()
    widget.close()
    # what a writer killed inside the next frame write leaves: a half-written temporary file
    good = (folder / "labels" / "000001.npz").read_bytes()
    (folder / "labels" / ".000001.wn9dwnjv.npz").write_bytes(good[: len(good) // 2])

    viewer2, widget2 = _open(make_napari_viewer, *sequence)
    assert warnings == []
    assert widget2.state is not None and np.array_equal(viewer2.layers[MASK].data, saved)
    assert widget2.state.targets[keys[-1]].status == "rejected"
    widget2.table.select_key(keys[0])
    widget2.reject_selected()  # autosaves keep working
    assert warnings == []
    status = _statuses(folder / "review.json")
    assert status[keys[0]] == "rejected" and status[keys[-1]] == "rejected"


def test_a_review_that_cannot_be_set_aside_is_kept_and_nothing_starts(
    make_napari_viewer, sequence, warnings, monkeypatch
):
    viewer, widget = _open(make_napari_viewer, *sequence)
    widget.start_button.click()
    folder = Path(viewer.layers[MASK].metadata[SIDECAR_KEY])
    saved = (folder / "review.json").read_bytes()
    widget.close()
    viewer2 = make_napari_viewer()
    viewer2.add_image(sequence[0], name="ir")
    viewer2.add_labels(sequence[1].copy(), name=MASK)
    widget2 = ReviewWidget(viewer2, ask_restore=lambda question: False)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self.folder))

    monkeypatch.setattr(Sidecar, "set_aside", refuse)
    widget2.start_review()  # "no" to the restore: the old review must be set aside first
    assert widget2.state is None and len(warnings) == 1
    assert "cannot be set aside" in warnings[0] and "\n" not in warnings[0]
    assert (folder / "review.json").read_bytes() == saved
