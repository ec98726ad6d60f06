import threading
from pathlib import Path

import pytest

from napari_irsam._widgets import finetune
from napari_irsam._widgets.finetune import FinetuneWidget
from napari_irsam.data.synthetic import make_dataset
from napari_irsam.model import read_checkpoint


@pytest.fixture()
def widget(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    w = FinetuneWidget(viewer)
    data = make_dataset(tmp_path / "export", 8, seed=0, size=(64, 64))
    w.dataset_edit.setText(str(data))
    w.config_combo.setCurrentText("paper")
    w.size_spin.setValue(64)
    w.device_combo.setCurrentText("cpu")
    return viewer, w, data


def test_trains_and_hands_checkpoint_to_run_irsam(widget, qtbot):
    viewer, w, data = widget
    w.epochs_spin.setValue(1)
    w.start()
    qtbot.waitUntil(lambda: w.worker is None, timeout=180_000)
    assert Path(w.best).is_file() and w.load_button.isEnabled()
    assert len(w.plot.values) >= 1 and w.plot.note == "finished"
    assert [s for s, _ in w.plot.validation] == [len(w.plot.values)]  # one epoch: one point
    meta = read_checkpoint(w.best).metadata
    assert meta["epoch"] == 0
    # calibrated on the held-out frames at the end (what Run IRSAM's "calibrated" box applies)
    assert meta["calibration"] == w.calibration and "held-out" in w.calibration["fitted_on"]
    assert "calibrated" in w.status.text()
    _, run = viewer.window.add_plugin_dock_widget("napari-irsam", "Run IRSAM")
    assert w.load_into_run_widget()
    assert run.model_source() == w.best


def test_cancel_keeps_the_last_checkpoint(widget, qtbot, monkeypatch):
    """Event-driven, not timed: training is held after its first epoch until Cancel has been
    clicked, so on any machine the cancel lands after epoch 0 and before epoch 1 ends."""
    gate = threading.Event()
    real_train = finetune.train

    def held_after_first_epoch(cfg):
        for ev in real_train(cfg):
            yield ev
            if ev.kind == "epoch":
                gate.wait(timeout=300)

    monkeypatch.setattr(finetune, "train", held_after_first_epoch)
    _, w, data = widget
    w.epochs_spin.setValue(20)
    w.start()
    try:
        qtbot.waitUntil(lambda: "saved" in w.status.text(), timeout=180_000)
        w.cancel()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: w.worker is None, timeout=180_000)
    last = data / "finetune" / "last.pt"
    assert last.is_file() and read_checkpoint(last).metadata["epoch"] == 0
    assert w.run_button.isEnabled() and not w.cancel_button.isEnabled()
    assert w.plot.note == "cancelled"


def test_bad_folder_notifies(widget, monkeypatch):
    _, w, _ = widget
    seen = []
    monkeypatch.setattr("napari_irsam._widgets.finetune.show_error", seen.append)
    w.dataset_edit.setText("/no/such/folder")
    w.start()
    assert seen and "existing dataset folder" in seen[0] and w.worker is None
