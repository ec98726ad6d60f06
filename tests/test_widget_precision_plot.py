"""Precision and display-map choices reach the core; the fine-tune plot shows what it should."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qtpy.QtGui import QColor

from napari_irsam._widgets import run_irsam
from napari_irsam._widgets._lossplot import LOSS_COLOUR, VAL_COLOUR, LossPlot
from napari_irsam._widgets._precision import CPU_BF16_TIP, CPU_TIP, CUDA_TIP, PrecisionCombo
from napari_irsam.model import device as device_mod


def _enabled(combo: PrecisionCombo) -> list[str]:
    model = combo.model()
    return [combo.itemText(i) for i in range(combo.count()) if model.item(i).isEnabled()]


def test_precision_is_fp32_only_without_cuda_or_cpu_bf16(qtbot, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "cpu_bf16_supported", lambda: False)
    combo = PrecisionCombo()
    qtbot.addWidget(combo)
    for device in ("cpu", "auto", "cuda:0", "mps"):
        combo.follow(device)
        assert _enabled(combo) == ["fp32"] and combo.value() == "fp32"
        assert combo.toolTip() == CPU_TIP


def test_a_cpu_with_bf16_instructions_offers_bf16(qtbot, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "cpu_bf16_supported", lambda: True)
    combo = PrecisionCombo()
    qtbot.addWidget(combo)
    for device in ("cpu", "auto"):
        combo.follow(device)
        assert _enabled(combo) == ["fp32", "bf16"] and combo.toolTip() == CPU_BF16_TIP
    assert combo.value() == "fp32"  # not preferred: the user picks it
    combo.setCurrentText("bf16")
    combo.follow("mps")  # no autocast there: back to fp32
    assert combo.value() == "fp32" and _enabled(combo) == ["fp32"]
    run_combo = PrecisionCombo(prefer_bf16=True)  # Run IRSAM's: bf16 where the CPU has it
    qtbot.addWidget(run_combo)
    assert run_combo.value() == "bf16"
    run_combo.setCurrentText("fp32")
    run_combo.follow("auto")  # the user's choice stays
    assert run_combo.value() == "fp32"


def test_precision_follows_a_cuda_device(qtbot, monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    combo = PrecisionCombo()
    qtbot.addWidget(combo)
    combo.follow("cuda:0")
    assert _enabled(combo) == ["fp32", "bf16", "fp16"] and combo.toolTip() == CUDA_TIP
    combo.setCurrentText("bf16")
    combo.follow("cpu")  # back to the CPU: fp32, greyed-out choices, the reason in the tooltip
    assert combo.value() == "fp32" and _enabled(combo) == ["fp32"]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    combo.follow("cuda")
    assert _enabled(combo) == ["fp32", "fp16"]


@pytest.mark.parametrize("maps", [True, False])
def test_run_irsam_passes_precision_and_maps_to_the_core(
    make_napari_viewer, qtbot, monkeypatch, maps
):
    seen = []

    def fake_run(spec, stack, indices, cache):
        seen.append(spec)
        raise ValueError("stopped by the test")  # what loading errors do: nothing is built

    monkeypatch.setattr(run_irsam, "run_segmentation", fake_run)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 16, 16), np.float32), name="ir")
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Run IRSAM")
    widget.model_combo.setCurrentIndex(widget.model_combo.findData("mobile_sam"))
    widget.device_combo.addItem("cuda:0")  # as if a GPU were there
    widget.device_combo.setCurrentText("cuda:0")
    widget.precision_combo.setCurrentText("bf16")
    widget.maps_check.setChecked(maps)
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
    assert widget.status.text() == "stopped by the test"
    assert len(seen) == 1
    assert seen[0].precision == "bf16" and seen[0].device == "cuda:0"
    assert seen[0].maps == (("features", "wpmd") if maps else ())


def _pixels(plot: LossPlot, colour: QColor) -> int:
    """Pixels of the rendered plot within a small distance of ``colour``."""
    img = plot.grab().toImage()
    want = np.array([colour.red(), colour.green(), colour.blue()])
    got = np.array(
        [
            [img.pixelColor(x, y).getRgb()[:3] for x in range(img.width())]
            for y in range(img.height())
        ]
    )
    return int((np.abs(got - want).max(-1) <= 24).sum())


def test_loss_plot_shows_a_single_point_and_the_validation_curve(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(320, 160)
    captions = _pixels(plot, LOSS_COLOUR)  # the axis caption "loss" is drawn in its colour
    plot.add(0.7)  # one step: a dot, not nothing
    assert _pixels(plot, LOSS_COLOUR) > captions + 10
    one = _pixels(plot, LOSS_COLOUR)
    plot.add(0.5)
    plot.add(0.4)
    assert _pixels(plot, LOSS_COLOUR) > one  # a line now
    val_captions = _pixels(plot, VAL_COLOUR)
    plot.add_validation(3, 0.42)
    assert _pixels(plot, VAL_COLOUR) > val_captions + 10
    assert plot.validation == [(3, 0.42)]
    plot.set_note("cancelled")
    assert plot.note == "cancelled"
