"""Small Qt layout helpers shared by the widgets' forms."""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QWidget


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
