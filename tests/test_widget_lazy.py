"""Run IRSAM, Review and Export on a lazy stack read only the frames they touch (issue 12 §2).

The image is a dask array of one delayed read per frame that records each read; the widgets are
opened the way napari's Plugins menu opens them.
"""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

PLUGIN = "napari-irsam"
N = 40


def _counting_stack(frames: np.ndarray):
    reads: list[int] = []

    def read(i: int) -> np.ndarray:
        reads.append(i)
        return frames[i]

    parts = [
        da.from_delayed(dask.delayed(read, pure=False)(i), frames.shape[1:], frames.dtype)
        for i in range(len(frames))
    ]
    return da.stack(parts), reads


def _frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    frames = (1000 + rng.normal(0, 10, (N, 64, 64))).astype(np.uint16)
    for f in range(N):
        frames[f, 20:23, 10 + f % 30 : 13 + f % 30] = 5000
    return frames


def _dock(viewer, name):
    return viewer.window.add_plugin_dock_widget(PLUGIN, name)[1]


def test_run_review_export_read_only_the_frames_they_touch(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("NAPARI_IRSAM_REVIEW_DIR", str(tmp_path / "reviews"))
    monkeypatch.setenv("NAPARI_IRSAM_OUTPUT_BYTES", "100000")  # outputs (40×64×64×4 B) on disk
    frames = _frames()
    stack, reads = _counting_stack(frames)
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="ir")
    shown = set(reads)  # what napari read to display the first frame
    run = _dock(viewer, "Run IRSAM")
    run.model_combo.setCurrentIndex(run.model_combo.findData("classical:tophat"))
    run.scope_combo.setCurrentText("frame range")
    run.start_spin.setValue(5)
    run.stop_spin.setValue(7)
    run.run_button.click()
    qtbot.waitUntil(lambda: run.worker is None, timeout=120_000)
    assert set(reads) - shown == {5, 6, 7}
    mask = viewer.layers["IRSAM mask [ir]"]
    assert isinstance(mask.data, np.memmap)  # a big result lives on disk
    assert all(mask.data[f, 21, 11 + f % 30] > 0 for f in (5, 6, 7))
    assert not mask.data[8].any()

    review = _dock(viewer, "Review targets")
    review.ask_restore = lambda question: True
    review.start_button.click()
    assert review.state is not None
    for f in (5, 6):
        review.set_frame_reviewed(True, f)

    export = _dock(viewer, "Export training set")
    export.out_edit.setText(str(tmp_path / "ex"))
    before = len(reads)
    res = export.export(sync=True)
    assert res is not None and len(res.written) == 2
    assert set(reads[before:]) == {5, 6}  # the exported frames, nothing else
    # beyond those, only the frames napari displayed (the first view, frames review stepped to)
    assert len(set(reads)) < 10 < N


def test_export_snapshot_is_filled_frame_by_frame_and_disk_backed_when_big(monkeypatch):
    """The export's stable copy of the labels goes to disk above NAPARI_IRSAM_OUTPUT_BYTES."""
    from types import SimpleNamespace

    from napari_irsam._widgets._frames import FrameStack

    labels = np.arange(5 * 30 * 20, dtype=np.int32).reshape(5, 30, 20)
    layer = SimpleNamespace(data=labels, ndim=3, rgb=False, multiscale=False)
    monkeypatch.setenv("NAPARI_IRSAM_OUTPUT_BYTES", "1000000")
    small = FrameStack(layer).snapshot([3, 1])
    assert type(small) is np.ndarray
    monkeypatch.setenv("NAPARI_IRSAM_OUTPUT_BYTES", "1000")
    big = FrameStack(layer).snapshot([3, 1])
    assert isinstance(big, np.memmap)
    for snap in (small, big):
        np.testing.assert_array_equal(snap, labels[[3, 1]])
    labels[3] = -1  # painting after the snapshot does not change it
    assert big[0, 0, 0] == 3 * 600
