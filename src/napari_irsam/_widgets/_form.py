"""Small Qt layout helpers shared by the widgets' forms."""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QWidget

#: the threshold box shows this at its minimum (0.00): use the checkpoint's calibrated thresholds
CALIBRATED = "calibrated"


def row(*widgets: QWidget) -> QWidget:
    """Widgets side by side in one holder without margins (one form row)."""
    holder, layout = QWidget(), QHBoxLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        layout.addWidget(w)
    holder.setLayout(layout)
    return holder


def checkbox(text: str, tip: str, checked: bool = False) -> QCheckBox:
    """A check box with its tooltip (why it is there, what it costs)."""
    box = QCheckBox(text)
    box.setChecked(checked)
    box.setToolTip(tip)
    return box


def threshold_spin() -> QDoubleSpinBox:
    """The IRSAM probability threshold box: its lowest value, shown as "calibrated", means the
    checkpoint's calibrated threshold and peak filter (``model.calibration``; 0.5 without)."""
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 0.99)
    spin.setSingleStep(0.05)
    spin.setSpecialValueText(CALIBRATED)
    spin.setValue(0.0)
    spin.setToolTip(
        "Probability above which a pixel is a target (IRSAM only); 'calibrated' uses the "
        "threshold and least target peak fitted with the checkpoint (docs/model.md)"
    )
    return spin


def spin_threshold(spin: QDoubleSpinBox) -> float | None:
    """The threshold a :func:`threshold_spin` asks for (None = the calibrated one)."""
    value = round(spin.value(), 4)
    return None if value <= spin.minimum() else value
