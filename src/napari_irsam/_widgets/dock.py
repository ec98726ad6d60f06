"""The "IRSAM" dock: the whole workflow in one dock, as tabs in order — Run → Review → Export →
Fine-tune.

Each tab holds the same widget the Plugins menu opens on its own (so they behave the same), in a
scroll area (a 1366×768 screen leaves about 600 px of dock height), with a footer line saying
what comes next and a button that goes there. The widgets talk through the viewer's
:class:`~napari_irsam._widgets._session.Session` (reviews, the export handed to fine-tuning, the
checkpoint handed back to Run IRSAM); the dock only switches tabs when a step asks for it.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ._session import STEPS, connect, session_for
from .export import ExportWidget
from .finetune import FinetuneWidget
from .review import ReviewWidget
from .run_irsam import RunIRSAMWidget

#: step → (tab title, what comes next, next button, step the button goes to)
FLOW: dict[str, tuple[str, str, str, str]] = {
    "run": (
        "1 Run",
        "Next: check the targets of the mask — accept, reject, add the ones it missed.",
        "Review targets ▶",
        "review",
    ),
    "review": (
        "2 Review",
        "Next: mark frames reviewed (Shift-D), then export them as a training set.",
        "Export ▶",
        "export",
    ),
    "export": (
        "3 Export",
        "Next: fine-tune IRSAM on the exported folder (it is filled in for you).",
        "Fine-tune ▶",
        "finetune",
    ),
    "finetune": (
        "4 Fine-tune",
        "Next: run the fine-tuned checkpoint on your frames and review again.",
        "◀ Run with it",
        "run",
    ),
}


class IRSAMDock(QWidget):
    """One dock with the four workflow steps as tabs (see the module docstring)."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.run = RunIRSAMWidget(napari_viewer)
        self.review = ReviewWidget(napari_viewer)
        self.export = ExportWidget(napari_viewer)
        self.finetune = FinetuneWidget(napari_viewer)
        self.steps: dict[str, QWidget] = {
            "run": self.run,
            "review": self.review,
            "export": self.export,
            "finetune": self.finetune,
        }
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(True)
        self.next_labels: dict[str, QLabel] = {}
        self.next_buttons: dict[str, QPushButton] = {}
        for step in STEPS:
            self.tabs.addTab(self._page(step), FLOW[step][0])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        connect(self, self.session.step_requested, self.show_step)

    def _page(self, step: str) -> QWidget:
        """The step's widget in a scroll area, above a "what next" footer."""
        _, text, button_text, target = FLOW[step]
        for combo in self.steps[step].findChildren(QComboBox):
            # layer names can be long ("IRSAM probability [<image>]"): a combo as wide as its
            # longest item would widen the whole step past a small screen's dock
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(10)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(self.steps[step])
        line = QLabel(text)
        line.setWordWrap(True)
        line.setStyleSheet("font-style: italic")
        button = QPushButton(button_text)
        button.setToolTip(f"Go to the {FLOW[target][0].split(' ', 1)[1]} step")
        button.clicked.connect(lambda *_: self.go_next(step))
        self.next_labels[step], self.next_buttons[step] = line, button
        page = QWidget()
        col = QVBoxLayout(page)
        col.setContentsMargins(2, 2, 2, 2)
        col.addWidget(scroll, 1)
        col.addWidget(line)
        col.addWidget(button)
        return page

    def current_step(self) -> str:
        return STEPS[self.tabs.currentIndex()]

    def show_step(self, step: str) -> None:
        """Bring the tab of ``step`` (one of ``run``, ``review``, ``export``, ``finetune``) up."""
        self.tabs.setCurrentIndex(STEPS.index(step))

    def go_next(self, step: str) -> None:
        """The footer button of ``step``: hand over what the step produced, then move on."""
        target = FLOW[step][3]
        if step == "export" and self.export.result is not None:
            if self.export.open_finetune():  # fills Fine-tune's form and shows its tab
                return
        if step == "finetune" and self.finetune.best and self.finetune.load_button.isEnabled():
            if self.finetune.load_into_run_widget():  # selects the checkpoint in Run IRSAM
                return
        self.show_step(target)

    # ---------------------------------------------------------------------------- lifetime
    def event(self, ev: QEvent) -> bool:
        """napari removes a dock by un-parenting it: the review's viewer shortcuts and mouse
        callback go with it and come back when it is docked again."""
        if ev.type() == QEvent.Type.ParentChange:
            if self.parent() is None:
                self.review._unbind_viewer()
            else:
                self.review._bind_viewer()
        return super().event(ev)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self.review._unbind_viewer()
        super().closeEvent(event)
