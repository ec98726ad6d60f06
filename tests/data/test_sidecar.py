"""Autosave sidecar: atomic save, restore, crash between frame and JSON, location rules."""

from __future__ import annotations

import numpy as np
import pytest

from napari_irsam.data.sidecar import Sidecar, default_location, image_fingerprint
from napari_irsam.review import ReviewState


def _labels():
    lab = np.zeros((4, 16, 16), np.int32)
    lab[0, 2:4, 2:4] = 1
    lab[2, 8:10, 8:11] = 2
    return lab


def test_save_restore_round_trip(tmp_path):
    lab = _labels()
    st = ReviewState.from_labels(lab)
    st.set_status(0, 1, "accepted")
    st.mark_reviewed(3)
    car = Sidecar(tmp_path / "x.irsam-review")
    car.save(st, lab, meta={"image": {"fingerprint": "f"}})
    assert sorted(p.name for p in (car.folder / "labels").iterdir()) == ["000000.npz", "000002.npz"]
    assert not list(car.folder.rglob(".*"))  # no temporary files left behind
    st2, lab2, meta = Sidecar(car.folder).load()
    assert np.array_equal(lab2, lab) and lab2.dtype == lab.dtype
    assert st2.to_dict() == st.to_dict() and meta["image"]["fingerprint"] == "f"
    assert "1 / 4 frames reviewed" in Sidecar(car.folder).summary()


def test_edit_saves_one_frame_and_kill_before_json_loses_nothing(tmp_path):
    lab = _labels()
    st = ReviewState.from_labels(lab)
    car = Sidecar(tmp_path / "s")
    car.save(st, lab)
    lab[2, 8:10, 8:11] = 0  # erase target 2 …
    # … and the program dies after writing the frame, before the JSON
    car.save(ReviewState.from_dict(Sidecar(car.folder).read_meta()["state"]), lab, frames=[2])
    st2, lab2, _ = Sidecar(car.folder).load()
    assert not lab2[2].any() and st2.targets[(2, 2)].status == "rejected"
    # an erased frame is written even though it is now empty (full save)
    car.save(st2, lab2)
    assert (car.folder / "labels" / "000002.npz").is_file()


def test_location_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_IRSAM_REVIEW_DIR", str(tmp_path / "cache"))
    f = tmp_path / "seq.tif"
    f.touch()
    assert default_location([str(f)], "seq", "ab") == tmp_path / "seq.tif.irsam-review"
    d = tmp_path / "run1"
    d.mkdir()
    files = [d / f"f{i}.png" for i in range(3)]
    for p in files:
        p.touch()
    assert default_location([str(p) for p in files], "run1", "ab") == tmp_path / "run1.irsam-review"
    assert default_location([], "synthetic IR", "abcdef0123456789").parent == tmp_path / "cache"
    img = np.arange(2 * 8 * 8).reshape(2, 8, 8)
    assert image_fingerprint(img) == image_fingerprint(img.copy())
    assert image_fingerprint(img) != image_fingerprint(img + 1)


def test_set_aside_keeps_the_old_review(tmp_path):
    lab = _labels()
    car = Sidecar(tmp_path / "s.irsam-review")
    car.save(ReviewState.from_labels(lab), lab)
    moved = car.set_aside()
    assert (moved / "review.json").is_file() and not car.exists()


def test_fingerprint_of_a_lazy_stack_reads_three_frames():
    da = pytest.importorskip("dask.array")
    img = np.random.default_rng(0).integers(0, 4000, (2, 5, 8, 8)).astype(np.uint16)
    reads = []
    lazy = da.from_array(img, chunks=(1, 1, 8, 8)).map_blocks(
        lambda b: reads.append(b.size) or b, meta=np.array((), img.dtype)
    )
    assert image_fingerprint(lazy) == image_fingerprint(img)
    assert len([r for r in reads if r]) == 3  # only the first, middle and last frames were computed
