"""Controls of the "Review targets" widget (layout only; the behaviour is in ``review.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..review import STATUSES
from ._layers import MASK, PROB, output_name
from ._review_table import TargetTable

NO_PROB = "(none)"

#: (napari key, what it does, ReviewWidget method). Shift + letter: free in napari's viewer and
#: labels/image keymaps (napari uses bare letters/digits there); Shift-A is also "select all" of
#: a *Points* layer, which wins while a Points layer is the active layer.
SHORTCUTS: tuple[tuple[str, str, str], ...] = (
    ("Shift-N", "next target", "next_target"),
    ("Shift-B", "previous target", "previous_target"),
    ("Shift-A", "accept target", "accept_selected"),
    ("Shift-R", "reject target (remove from mask)", "reject_selected"),
    ("Shift-D", "frame reviewed (toggle)", "toggle_frame_reviewed"),
    ("Shift-U", "next unreviewed frame", "next_unreviewed_frame"),
    ("Shift-G", "add-target mode (click to grow)", "toggle_add_mode"),
)


def shortcuts_html() -> str:
    rows = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{d}</td></tr>" for k, d, _ in SHORTCUTS)
    return f"<table>{rows}</table>"


class ReviewForm(QWidget):
    """The widget's controls: layer pickers, progress, filters, table, action buttons, help."""

    def __init__(self) -> None:
        super().__init__()
        self.image_combo = QComboBox()
        self.labels_combo = QComboBox()
        self.prob_combo = QComboBox()
        self.image_combo.setToolTip("The image the mask was made from")
        self.labels_combo.setToolTip("The mask to review (e.g. 'IRSAM mask [<image>]')")
        self.prob_combo.setToolTip("Optional IRSAM probability: peak column, helps add targets")
        self.start_button = QPushButton("Start review")
        self.start_button.setToolTip("List the targets of the mask (a saved review is offered)")
        self.progress = QLabel("")
        self.progress.setStyleSheet("font-weight: bold")
        self.status_filter = QComboBox()
        self.status_filter.addItem("all statuses", None)
        for s in STATUSES:
            self.status_filter.addItem(s, s)
        self.frame_filter = QComboBox()
        self.frame_filter.addItems(["all frames", "current frame"])
        self.table = TargetTable()
        self.prev_button = QPushButton("◀ previous")
        self.next_button = QPushButton("next ▶")
        self.accept_button = QPushButton("accept")
        self.reject_button = QPushButton("reject")
        self.reviewed_check = QCheckBox("frame reviewed")
        self.next_unreviewed_button = QPushButton("next unreviewed frame")
        self.add_button = QPushButton("add missed target")
        self.add_button.setCheckable(True)
        self.add_button.setToolTip("Then click on a target in the viewer: it is grown and added")
        self.shortcuts = QLabel(shortcuts_html())
        self.shortcuts.setToolTip("Keys work while the viewer canvas has the focus")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("image", self.image_combo)
        form.addRow("mask", self.labels_combo)
        form.addRow("probability", self.prob_combo)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("show"))
        filters.addWidget(self.status_filter)
        filters.addWidget(self.frame_filter)
        grid = QGridLayout()
        grid.addWidget(self.prev_button, 0, 0)
        grid.addWidget(self.next_button, 0, 1)
        grid.addWidget(self.accept_button, 1, 0)
        grid.addWidget(self.reject_button, 1, 1)
        grid.addWidget(self.reviewed_check, 2, 0)
        grid.addWidget(self.next_unreviewed_button, 2, 1)
        grid.addWidget(self.add_button, 3, 0, 1, 2)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addWidget(self.start_button)
        layout.addWidget(self.progress)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addLayout(grid)
        layout.addWidget(self.shortcuts)
        layout.addWidget(self.status)
        self.setLayout(layout)

    def connect_form(self, w: Any) -> None:
        """Connect the controls to the behaviour methods of ``w``."""
        self.image_combo.currentIndexChanged.connect(w._on_image_changed)
        self.start_button.clicked.connect(w.start_review)
        self.status_filter.currentIndexChanged.connect(w._apply_filter)
        self.frame_filter.currentIndexChanged.connect(w._apply_filter)
        self.table.itemSelectionChanged.connect(w._on_row_selected)
        self.prev_button.clicked.connect(w.previous_target)
        self.next_button.clicked.connect(w.next_target)
        self.accept_button.clicked.connect(w.accept_selected)
        self.reject_button.clicked.connect(w.reject_selected)
        self.reviewed_check.clicked.connect(lambda checked: w.set_frame_reviewed(bool(checked)))
        self.next_unreviewed_button.clicked.connect(w.next_unreviewed_frame)
        self.add_button.clicked.connect(lambda checked: w.toggle_add_mode(bool(checked)))

    def fill_pickers(
        self, images: Sequence[str], labels: Sequence[str], probs: Sequence[str]
    ) -> None:
        """Refill the layer pickers, keeping the current choices when they still exist."""
        for combo, names, extra in (
            (self.image_combo, images, []),
            (self.labels_combo, labels, []),
            (self.prob_combo, probs, [NO_PROB]),
        ):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([*extra, *names])
            idx = combo.findText(current)
            combo.setCurrentIndex(max(idx, 0) if combo.count() else -1)
            combo.blockSignals(False)

    def prefer_outputs(self, image: str) -> None:
        """Select "IRSAM mask/probability [<image>]" when they exist (Run IRSAM's names)."""
        for combo, title in ((self.labels_combo, MASK), (self.prob_combo, PROB)):
            idx = combo.findText(output_name(title, image))
            if idx >= 0:
                combo.setCurrentIndex(idx)
