"""The "Run IRSAM" dock widget in a real napari viewer (Qt under Xvfb via pytest-xvfb)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_irsam._widgets import run_irsam
from napari_irsam._widgets.run_irsam import RunIRSAMWidget
from napari_irsam.model import IRSAMConfig, build_irsam, save_checkpoint
from napari_irsam.segment import FrameDone

OUTPUT_NAMES = [
    "IRSAM mask [ir]",
    "IRSAM probability [ir]",
    "WPMD edges [ir]",
    "WPMD diffused [ir]",
    "IRSAM features, early (PCA) [ir]",
    "IRSAM features, deep (PCA) [ir]",
]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0", "1"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(build_irsam(cfg), path)
    return path


@pytest.fixture()
def notes(monkeypatch):
    """Capture the widget's notifications: {"error": [...], "info": [...]}."""
    seen: dict[str, list[str]] = {"error": [], "info": []}
    monkeypatch.setattr(run_irsam, "show_error", lambda m: seen["error"].append(str(m)))
    monkeypatch.setattr(run_irsam, "show_info", lambda m: seen["info"].append(str(m)))
    return seen


@pytest.fixture()
def setup(make_napari_viewer, tiny_ckpt):
    def _make(data, name="ir", **kwargs):
        viewer = make_napari_viewer()
        viewer.add_image(data, name=name, **kwargs)
        widget = RunIRSAMWidget(viewer)
        widget.model_combo.setCurrentIndex(widget.model_combo.findData(None))
        widget.path_edit.setText(str(tiny_ckpt))
        widget.device_combo.setCurrentText("cpu")
        return viewer, widget

    return _make


def _stack(n=4, h=32, w=40):
    return np.random.default_rng(0).integers(0, 4000, (n, h, w)).astype(np.uint16)


def _run(qtbot, widget, scope="all frames", timeout=30_000):
    widget.scope_combo.setCurrentText(scope)
    widget.run_button.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def test_single_frame_creates_all_layers(setup, qtbot, notes):
    viewer, widget = setup(_stack(1)[0])
    _run(qtbot, widget, "current frame")
    assert not notes["error"]
    assert [ly.name for ly in viewer.layers] == ["ir", *OUTPUT_NAMES]
    mask = viewer.layers["IRSAM mask [ir]"]
    assert type(mask).__name__ == "Labels" and mask.data.shape == (32, 40)
    assert mask.data.dtype == np.int32
    prob = viewer.layers["IRSAM probability [ir]"]
    assert not prob.visible and prob.data.max() > 0
    gran = viewer.layers["IRSAM features, early (PCA) [ir]"]
    assert gran.rgb and gran.data.shape == (32, 40, 3) and not gran.visible
    md = mask.metadata
    assert md["model_id"] == "tiny.pt" and len(md["checkpoint_sha256"]) == 64
    assert md["threshold"] == 0.5 and md["device"] == "cpu" and md["mode"] == "release"
    assert md["processed_frames"] == [0] and md["seconds_per_frame"] > 0
    assert "Done: 1 frame" in widget.status.text()


def test_stack_fills_frames_with_unique_target_ids(setup, qtbot, notes):
    viewer, widget = setup(_stack(4))
    widget.threshold_spin.setValue(0.01)  # random weights: make sure there are targets
    _run(qtbot, widget, "all frames")
    mask = viewer.layers["IRSAM mask [ir]"]
    assert mask.data.shape == (4, 32, 40)
    assert mask.metadata["processed_frames"] == [0, 1, 2, 3]
    ids = [set(np.unique(f)) - {0} for f in mask.data]
    assert all(ids)
    for a in range(4):  # each target has its own id across the stack
        for b in range(a + 1, 4):
            assert not ids[a] & ids[b]
    assert np.all(viewer.layers["IRSAM probability [ir]"].data.reshape(4, -1).max(1) > 0)


def test_current_frame_and_range_leave_other_frames_zero(setup, qtbot, notes):
    viewer, widget = setup(_stack(5))
    viewer.dims.set_current_step(0, 3)
    _run(qtbot, widget, "current frame")
    prob = viewer.layers["IRSAM probability [ir]"]
    done = [i for i in range(5) if prob.data[i].any()]
    assert done == [3]
    widget.start_spin.setValue(1)
    widget.stop_spin.setValue(2)
    _run(qtbot, widget, "frame range")
    assert [i for i in range(5) if prob.data[i].any()] == [1, 2, 3]
    assert prob.metadata["processed_frames"] == [1, 2, 3]
    assert [r["frames"] for r in prob.metadata["runs"]] == [[3], [1, 2]]


def test_cancel_mid_stack_keeps_done_frames(setup, qtbot, notes, monkeypatch):
    """Event-driven, not timed: the run is held after its first frame until Cancel has been
    clicked, so on any machine the cancel lands mid-stack. The frame in progress when Cancel was
    clicked (frame 1) still arrives; nothing after it runs."""
    gate = threading.Event()
    real_run = run_irsam.run_segmentation

    def held_after_first_frame(*args, **kwargs):
        for event in real_run(*args, **kwargs):
            yield event
            if isinstance(event, FrameDone) and event.done == 1:
                gate.wait(timeout=300)

    monkeypatch.setattr(run_irsam, "run_segmentation", held_after_first_frame)
    viewer, widget = setup(_stack(12))
    widget.scope_combo.setCurrentText("all frames")
    widget.run_button.click()
    assert not widget.run_button.isEnabled()  # a second Run is impossible while running
    widget.run()  # and a programmatic second run is a no-op
    qtbot.waitUntil(lambda: "IRSAM probability [ir]" in viewer.layers, timeout=30_000)
    prob = viewer.layers["IRSAM probability [ir]"]
    qtbot.waitUntil(lambda: len(prob.metadata.get("processed_frames", [])) >= 1, timeout=30_000)
    try:
        widget.cancel_button.click()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
    processed = prob.metadata["processed_frames"]
    assert processed == [0, 1]
    for i in range(12):
        assert bool(prob.data[i].any()) == (i in processed)
    assert "Cancelled" in widget.status.text() and widget.run_button.isEnabled()


def test_rerun_updates_layers_in_place(setup, qtbot, notes):
    viewer, widget = setup(_stack(2))
    _run(qtbot, widget)
    before = {ly.name: ly for ly in viewer.layers}
    data_before = viewer.layers["IRSAM probability [ir]"].data.copy()
    widget.threshold_spin.setValue(0.3)
    _run(qtbot, widget)
    assert [ly.name for ly in viewer.layers] == ["ir", *OUTPUT_NAMES]
    for ly in viewer.layers:
        assert ly is before[ly.name]
    assert np.allclose(viewer.layers["IRSAM probability [ir]"].data, data_before)
    md = viewer.layers["IRSAM mask [ir]"].metadata
    assert md["threshold"] == 0.3 and len(md["runs"]) == 2
    assert widget.cache.loads == 1  # the model was loaded once


@pytest.mark.parametrize("kind", ["missing", "junk", "wrong_keys", "empty_path"])
def test_loading_errors_notify_and_create_no_layers(setup, qtbot, notes, tmp_path, kind):
    viewer, widget = setup(_stack(2))
    path = tmp_path / "bad.pt"
    if kind == "junk":
        path.write_bytes(b"\x00not a checkpoint at all")
    elif kind == "wrong_keys":
        torch.save({"foo.weight": torch.zeros(3)}, path)
    widget.path_edit.setText("" if kind == "empty_path" else str(path))
    widget.run_button.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=10_000)
    assert [ly.name for ly in viewer.layers] == ["ir"]
    assert len(notes["error"]) == 1 and "Traceback" not in notes["error"][0]
    expected = {
        "missing": "neither a checkpoint file",
        "junk": "bad.pt",
        "wrong_keys": "does not match",
        "empty_path": "Choose a checkpoint file",
    }[kind]
    assert expected in notes["error"][0]
    assert widget.run_button.isEnabled()  # still usable


def test_rgb_layer_is_converted_with_a_notice(setup, qtbot, notes):
    rgb = np.random.default_rng(1).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    viewer, widget = setup(rgb)
    _run(qtbot, widget, "current frame")
    assert any("luminance" in m for m in notes["info"])
    assert viewer.layers["IRSAM mask [ir]"].data.shape == (32, 32)


def test_tiny_image_gives_a_clear_message(setup, qtbot, notes):
    viewer, widget = setup(np.zeros((1, 1), np.float32))
    widget.run_button.click()
    assert widget.worker is None and "at least 2×2" in notes["error"][0]
    assert [ly.name for ly in viewer.layers] == ["ir"]


def test_only_image_layers_are_offered(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_labels(np.zeros((8, 8), np.int32), name="labels")
    viewer.add_points([[1, 1]], name="points")
    widget = RunIRSAMWidget(viewer)
    assert widget.image_combo.count() == 0
    viewer.add_image(np.zeros((8, 8)), name="img")
    items = [widget.image_combo.itemText(i) for i in range(widget.image_combo.count())]
    assert items == ["img"]
    assert widget.device_combo.itemText(widget.device_combo.count() - 1) == "cpu"


def test_classical_detector_path(setup, qtbot, notes):
    from napari_irsam import classical

    name = next(iter(classical.CLASSICAL_DETECTORS))
    frames = np.full((2, 48, 48), 100, np.uint16)
    frames[:, 20:23, 30:33] = 4000  # one bright target per frame
    viewer, widget = setup(frames)
    widget.model_combo.setCurrentIndex(widget.model_combo.findData(f"classical:{name}"))
    assert not widget.threshold_spin.isEnabled()
    _run(qtbot, widget)
    assert not notes["error"]
    names = [ly.name for ly in viewer.layers]
    assert names == ["ir", "IRSAM mask [ir]", "IRSAM probability [ir]"]
    mask = viewer.layers["IRSAM mask [ir]"]
    assert mask.metadata["model_id"] == f"classical:{name}"
    assert mask.data[0, 21, 31] > 0 and mask.data[1, 21, 31] > 0
    assert mask.data[0, 21, 31] != mask.data[1, 21, 31]
    assert "no WPMD" in widget.status.text() or "saliency" in widget.status.text()


def test_frames_arriving_before_layers_exist_are_queued(make_napari_viewer):
    from napari_irsam._widgets._outputs import OutputLayers
    from napari_irsam.segment import FrameDone, FrameOutput, RunStarted

    viewer = make_napari_viewer()
    src = viewer.add_image(np.zeros((3, 8, 8), np.float32), name="ir")
    outputs = OutputLayers(viewer, src, (3, 8, 8))
    outputs.start(RunStarted(1, [1], ("prob", "mask"), {"model_id": "x"}))
    mask = np.zeros((8, 8), bool)
    mask[2:4, 2:4] = True
    outputs.write(FrameDone(1, 1, 1, FrameOutput(prob=mask * 0.9, mask=mask, seconds=0.1)))
    assert [ly.name for ly in viewer.layers] == ["ir"]  # nothing built yet, frame queued
    while outputs.build_next():
        pass
    assert [ly.name for ly in viewer.layers] == ["ir", "IRSAM mask [ir]", "IRSAM probability [ir]"]
    assert viewer.layers["IRSAM mask [ir]"].data[1, 2, 2] == 1
    assert viewer.layers["IRSAM probability [ir]"].data[1].max() == pytest.approx(0.9)
    assert not viewer.layers["IRSAM mask [ir]"].data[[0, 2]].any()


def test_mirror_averaging_box_runs_the_flip_averaged_model(setup, qtbot, notes, tiny_ckpt):
    from napari_irsam.inference import Predictor
    from napari_irsam.model import load_model

    frame = _stack(1)[0]
    viewer, widget = setup(frame)
    assert widget.tta_check.isEnabled() and not widget.tta_check.isChecked()
    widget.tta_check.setChecked(True)
    widget.precision_combo.setCurrentText("fp32")  # bf16 where the CPU has it: compare exactly
    _run(qtbot, widget, "current frame")
    assert not notes["error"]
    mask = viewer.layers["IRSAM mask [ir]"]
    assert mask.metadata["tta"] is True
    net, _ = load_model(str(tiny_ckpt))
    expected = Predictor(net, "cpu", maps=(), tta=True).predict_frame(frame).prob
    plain = Predictor(net, "cpu", maps=()).predict_frame(frame).prob
    shown = np.asarray(viewer.layers["IRSAM probability [ir]"].data)
    np.testing.assert_allclose(shown, expected, atol=1e-4)
    assert np.abs(shown - plain).max() > 1e-3  # a random model is not mirror-symmetric
    widget.model_combo.setCurrentIndex(widget.model_combo.findData("classical:tophat"))
    assert not widget.tta_check.isEnabled()  # classical detectors have no mirror averaging


def test_calibrated_threshold_box_runs_the_checkpoint_calibration(
    make_napari_viewer, qtbot, tmp_path
):
    """Opened from the Plugins menu: the threshold box starts at "calibrated", which runs the
    checkpoint's temperature, threshold and least target peak; a number replaces the threshold."""
    from napari_irsam.inference import Predictor
    from napari_irsam.model import load_model
    from napari_irsam.model.calibration import Calibration

    torch.manual_seed(0)
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0",))
    cal = Calibration(temperature=3.0, threshold=0.505, min_peak=0.525, fitted_on="test")
    path = tmp_path / "calibrated.pt"
    save_checkpoint(build_irsam(cfg), path, metadata={"calibration": cal.to_metadata()})
    frame = np.random.default_rng(1).integers(0, 255, (48, 48)).astype(np.uint8)
    viewer = make_napari_viewer()
    viewer.add_image(frame, name="ir")
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Run IRSAM")
    assert widget.threshold_spin.text() == "calibrated"
    widget.model_combo.setCurrentIndex(widget.model_combo.findData(None))
    widget.path_edit.setText(str(path))
    widget.device_combo.setCurrentText("cpu")
    _run(qtbot, widget, "current frame")
    md = viewer.layers["IRSAM mask [ir]"].metadata
    assert (md["threshold"], md["min_peak"], md["temperature"]) == (0.505, 0.525, 3.0)
    expected = Predictor(load_model(str(path))[0], "cpu", maps=()).predict_frame(frame)
    # same masks and probabilities (up to float rounding between thread counts)
    sure = np.abs(expected.prob - 0.505) > 1e-5
    got = viewer.layers["IRSAM mask [ir]"].data > 0
    np.testing.assert_array_equal(got[sure], expected.mask[sure])
    plain = Predictor(load_model(str(path))[0], "cpu", maps=(), min_peak=0.0).predict_frame(frame)
    assert 0 < expected.mask.sum() < plain.mask.sum()  # the peak filter removed targets
    prob = viewer.layers["IRSAM probability [ir]"].data
    np.testing.assert_allclose(prob, expected.prob, atol=1e-5)
    widget.threshold_spin.setValue(0.51)
    _run(qtbot, widget, "current frame")
    md = viewer.layers["IRSAM mask [ir]"].metadata
    assert (md["threshold"], md["min_peak"]) == (0.51, 0.0)  # a number: no peak filter
    sure = np.abs(expected.prob - 0.51) > 1e-5
    got = viewer.layers["IRSAM mask [ir]"].data > 0
    np.testing.assert_array_equal(got[sure], (expected.prob > 0.51)[sure])
