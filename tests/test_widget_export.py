"""The "Export training set" dock widget in a real napari viewer (Qt under Xvfb via pytest-xvfb)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from skimage import io as skio

from napari_irsam._widgets import export as export_mod
from napari_irsam._widgets._session import session_for
from napari_irsam._widgets.export import REVIEW_SIDECAR_KEY, ExportWidget
from napari_irsam.data.dataset import IRSTDDataset
from napari_irsam.data.synthetic import make_sequence
from napari_irsam.review import ReviewState

REVIEWED = [0, 1, 2, 4, 12, 13, 20]  # three 10-frame blocks
RUN_METADATA = {
    "model_id": "tiny.pt",
    "checkpoint": "/nowhere/tiny.pt",
    "checkpoint_sha256": "ab" * 32,
    "threshold": 0.5,
    "device": "cpu",
    "mode": "release",
}


@pytest.fixture()
def notes(monkeypatch):
    """Capture the widget's notifications: {"warning": [...], "info": [...]}."""
    seen: dict[str, list[str]] = {"warning": [], "info": []}
    monkeypatch.setattr(export_mod, "show_warning", lambda m: seen["warning"].append(str(m)))
    monkeypatch.setattr(export_mod, "show_info", lambda m: seen["info"].append(str(m)))
    return seen


@pytest.fixture()
def setup(make_napari_viewer, tmp_path):
    """A uint16 sequence, its "Run IRSAM" mask and a review with frames REVIEWED reviewed."""

    def _make(review=True, n=24):
        frames, labels = make_sequence(n, (48, 48), seed=0, n_targets=2)
        assert frames.dtype == np.uint16
        viewer = make_napari_viewer()
        image = viewer.add_image(frames, name="seq")
        mask = viewer.add_labels(labels, name="IRSAM mask [seq]", metadata=dict(RUN_METADATA))
        state = None
        if review:
            state = ReviewState.from_labels(labels, provenance={"reviewer": "tester"})
            for f in REVIEWED:
                state.mark_reviewed(f)
            sidecar = str(tmp_path / "seq.irsam-review.json")
            mask.metadata[REVIEW_SIDECAR_KEY] = sidecar
            session_for(viewer).bind_review(mask, image, state, sidecar)
        widget = ExportWidget(viewer)
        widget.out_edit.setText(str(tmp_path / "ex"))
        return viewer, widget, frames, labels, state

    return _make


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_exports_reviewed_frames_16bit_with_manifest_and_loads_for_training(setup, tmp_path, notes):
    viewer, w, frames, labels, state = setup()
    assert w.image_combo.currentText() == "seq"
    assert w.labels_combo.currentText() == "IRSAM mask [seq]"
    assert w.reviewed_check.isChecked() and w.ratio_spin.value() == pytest.approx(0.2)
    assert "7 / 24 frames reviewed" in w.review_label.text()
    res = w.export(sync=True)
    assert not notes["warning"] and res is not None
    out = tmp_path / "ex"
    for sub in ("images", "masks", "splits/train.txt", "splits/test.txt", "manifest.json"):
        assert (out / sub).exists(), sub
    assert sorted(res.written) == [f"seq_f{i:04d}" for i in REVIEWED]
    man = json.loads((out / "manifest.json").read_text())
    assert [s["frame_index"] for s in man["samples"]] == REVIEWED
    assert all(s["reviewed"] and s["image_format"] == "png16" for s in man["samples"])
    assert man["image_format"] == "png16"
    for s in man["samples"]:  # every written file's hash matches the disk
        assert _sha(out / "images" / f"{s['name']}.png") == s["image_sha256"]
        assert _sha(out / "masks" / f"{s['name']}.png") == s["mask_sha256"]
        back = skio.imread(out / "images" / f"{s['name']}.png")
        assert back.dtype == np.uint16 and np.array_equal(back, frames[s["frame_index"]])
        mask = skio.imread(out / "masks" / f"{s['name']}.png")
        assert np.array_equal(mask > 0, labels[s["frame_index"]] > 0)
    for rel, digest in man["split_files_sha256"].items():
        assert _sha(out / rel) == digest
    prov = man["provenance"]
    assert prov["model_id"] == "tiny.pt" and prov["checkpoint_sha256"] == "ab" * 32
    assert prov["threshold"] == 0.5 and prov["reviewer"] == "tester"
    assert prov["review_sidecar"].endswith("seq.irsam-review.json")
    assert man["status_counts"] == state.counts() and man["status_counts"]["accepted"] > 0
    assert man["samples"][0]["statuses"]["accepted"] >= 1
    # the export loads unchanged in the training reader, with the split names
    train = (out / "splits" / "train.txt").read_text().split()
    test = (out / "splits" / "test.txt").read_text().split()
    assert sorted(train + test) == sorted(res.written) and train and test
    assert IRSTDDataset(out, "train").names == train
    assert IRSTDDataset(out, "test")[0].image.shape == (48, 48)
    # the result line and the fine-tune command
    assert "Wrote 7 sample(s)" in w.status.text() and "skipped 0 duplicate(s)" in w.status.text()
    assert f"({len(train)} train / {len(test)} test)" in w.status.text()
    assert notes["info"] and "Wrote 7" in notes["info"][-1]
    assert w.command_edit.isVisibleTo(w) and w.command_edit.text().startswith(
        f"napari-irsam train {out} --split train"
    )


def test_all_frames_and_no_review_state(setup, tmp_path, notes):
    _, w, *_ = setup(review=False, n=6)
    assert "No review state" in w.review_label.text()
    assert w.export(sync=True) is None and not (tmp_path / "ex").exists()
    assert len(notes["warning"]) == 1
    msg = notes["warning"][0]
    assert "has no review state" in msg and "untick 'only reviewed frames'" in msg
    assert msg.count(".") == 1 and msg.endswith(".")  # one sentence
    w.reviewed_check.setChecked(False)
    assert "all 6 frame(s) will be exported" in w.review_label.text()
    res = w.export(sync=True)
    assert len(res.written) == 6 and res.test == []  # one 6-frame sequence: one block
    assert "splits/test.txt is empty" in w.status.text()
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert [s["reviewed"] for s in man["samples"]] == [False] * 6
    assert man["reviewed_only"] is False and man["provenance"]["model_id"] == "tiny.pt"


def test_export_runs_in_a_worker(setup, tmp_path, qtbot, notes):
    _, w, *_ = setup()
    assert w.export() is None and w.worker is not None
    assert not w.export_button.isEnabled()
    qtbot.waitUntil(lambda: w.worker is None, timeout=30_000)
    assert w.result is not None and len(w.result.written) == 7
    assert w.export_button.isEnabled() and "Wrote 7" in w.status.text()
    assert not notes["warning"]


def test_non_empty_folder_cancel_append_or_new(setup, tmp_path, notes):
    _, w, _, _, state = setup()
    asked = []
    w.ask_if_exists = lambda folder: asked.append(folder) or None
    w.export(sync=True)
    assert not asked  # the folder did not exist: no question
    before = sorted(p.name for p in (tmp_path / "ex" / "images").iterdir())
    assert w.export(sync=True) is None and asked == [tmp_path / "ex"]
    assert "cancelled" in w.status.text() and not notes["warning"]
    assert sorted(p.name for p in (tmp_path / "ex" / "images").iterdir()) == before
    w.ask_if_exists = lambda folder: "append"
    res = w.export(sync=True)
    assert res.written == [] and len(res.skipped_duplicates) == 7
    assert "skipped 7 duplicate(s)" in w.status.text()
    state.mark_reviewed(3)
    res = w.export(sync=True)
    assert res.written == ["seq_f0003"] and len(res.skipped_duplicates) == 7
    assert "(now 8 samples)" in w.status.text()
    w.ask_if_exists = lambda folder: "new"
    res = w.export(sync=True)
    assert res.folder == tmp_path / "ex_2" and len(res.written) == 8
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert len(man["samples"]) == 8 and len(man["exports"]) == 3


def test_bad_paths_and_layers_warn_in_one_sentence(setup, tmp_path, notes):
    viewer, w, *_ = setup()
    w.out_edit.setText(str(tmp_path / "missing" / "ex"))
    assert w.export(sync=True) is None
    (tmp_path / "a_file").write_text("x")
    w.out_edit.setText(str(tmp_path / "a_file"))
    assert w.export(sync=True) is None
    w.out_edit.setText("")
    assert w.export(sync=True) is None
    viewer.add_labels(np.zeros((3, 48, 48), np.int32), name="other")
    w.labels_combo.setCurrentText("other")
    w.out_edit.setText(str(tmp_path / "ex"))
    assert w.export(sync=True) is None
    assert len(notes["warning"]) == 4 and w.worker is None
    assert "parent folder does not exist" in notes["warning"][0]
    assert "is a file, not a folder" in notes["warning"][1]
    assert "Choose an output folder" in notes["warning"][2]
    assert "do not match image" in notes["warning"][3]
    assert not (tmp_path / "ex").exists()


def test_registered_and_hands_the_export_to_finetune(setup, tmp_path, notes):
    viewer, w, *_ = setup()
    _, docked = viewer.window.add_plugin_dock_widget("napari-irsam", "Export training set")
    assert isinstance(docked, ExportWidget)
    assert not w.open_finetune()  # nothing exported yet
    w.export(sync=True)
    assert w.open_finetune()
    from napari_irsam._widgets.finetune import FinetuneWidget

    tuners = [x for x in viewer.window.dock_widgets.values() if isinstance(x, FinetuneWidget)]
    assert len(tuners) == 1 and tuners[0].dataset_edit.text() == str(tmp_path / "ex")
    # the masks' checkpoint (/nowhere/tiny.pt) does not exist: start from the default instead
    assert tuners[0].init_edit.text() in ("default", "scratch")
    assert f"--init {tuners[0].init_edit.text()}" in w.command_edit.text()
    assert w.open_finetune()  # reuses the docked one
    assert (
        len([x for x in viewer.window.dock_widgets.values() if isinstance(x, FinetuneWidget)]) == 1
    )


def test_folder_of_frames_keeps_file_names_and_sources(make_napari_viewer, tmp_path, notes):
    frames, labels = make_sequence(3, (48, 48), seed=1, n_targets=1)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        skio.imsave(folder / f"img{i + 8}.png", f, check_contrast=False)  # natural sort: 8, 9, 10
    viewer = make_napari_viewer()
    [image] = viewer.open(str(folder), plugin="napari-irsam")
    viewer.add_labels(labels, name="corrected")
    w = ExportWidget(viewer)
    w.image_combo.setCurrentText(image.name)
    w.labels_combo.setCurrentText("corrected")
    w.reviewed_check.setChecked(False)
    w.out_edit.setText(str(tmp_path / "ex"))
    res = w.export(sync=True)
    assert not notes["warning"] and res.written == ["img8", "img9", "img10"]
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert [s["source"] for s in man["samples"]] == [
        str(folder / f"img{i}.png") for i in (8, 9, 10)
    ]
    assert man["provenance"] == {"image_layer": image.name, "labels_layer": "corrected"}


def test_lazy_nd_image_is_flattened_like_run_irsam(make_napari_viewer, tmp_path, notes):
    da = pytest.importorskip("dask.array")
    frames, labels = make_sequence(6, (48, 48), seed=2, n_targets=1)
    viewer = make_napari_viewer()
    viewer.add_image(da.from_array(frames.reshape(2, 3, 48, 48), chunks=(1, 1, 48, 48)), name="tz")
    viewer.add_labels(labels.reshape(2, 3, 48, 48), name="IRSAM mask [tz]")
    w = ExportWidget(viewer)
    w.reviewed_check.setChecked(False)
    w.out_edit.setText(str(tmp_path / "ex"))
    res = w.export(sync=True)
    assert not notes["warning"] and res.written == [f"tz_f{i:04d}" for i in range(6)]
    back = skio.imread(tmp_path / "ex" / "images" / "tz_f0004.png")
    assert back.dtype == np.uint16 and np.array_equal(back, frames[4])


def test_widget_module_does_not_import_torch():
    """The export needs no model: opening it inside a running napari must stay light."""
    import subprocess
    import sys

    code = "import sys, napari_irsam._widgets.export; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
