"""The "Export training set" dock widget: reviewed frames + corrected labels → IRSTD folder.

Thin: the work is :func:`napari_irsam.data.export.export_training_set`, run in a napari thread
worker so the viewer never freezes. What it needs is read from the layers into an
:class:`~napari_irsam._widgets._export_plan.ExportPlan` by
:func:`~napari_irsam._widgets._export_plan.build_plan` (frames, masks, review, provenance,
sources and sample names); this module holds only the Qt form, the worker and the hand-off to
"Fine-tune IRSAM" (through the viewer's :class:`~napari_irsam._widgets._session.Session`: the
review summary follows ``session.review_changed``, the export is offered with
``session.offer_dataset``).

A non-empty output folder is never written silently: :attr:`ExportWidget.ask_if_exists` (a
message box in the app, replaceable in tests) chooses append (deduplicated), a new folder or
cancel. Every problem is a one-sentence warning; nothing raises into napari.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari.layers import Image, Labels
from napari.qt.threading import FunctionWorker, create_worker
from napari.utils import progress
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..data.export import ExportResult, check_target, is_non_empty
from . import _layers as names
from ._export_dialog import ask_about_folder
from ._export_plan import (  # noqa: F401 (names re-exported for callers of this module)
    PROVENANCE_KEYS,
    REVIEW_SIDECAR_KEY,
    ExportPlan,
    _init_for,
    _n_frames,
    build_plan,
    mask_provenance,
    train_command,
)
from ._form import row
from ._session import connect, session_for

log = logging.getLogger(__name__)


class _Relay(QObject):
    """Carries progress from the worker thread to the widget (queued signal)."""

    progressed = Signal(int, int)


# ------------------------------------------------------------------------------------ widget
class ExportWidget(QWidget):
    """Dock widget exporting an image layer and its corrected labels as a training set."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.worker: FunctionWorker | None = None
        self.result: ExportResult | None = None
        #: ``ask_if_exists(folder) -> "append" | "new" | None`` for a non-empty folder
        self.ask_if_exists: Callable[[Path], str | None] = self._ask_dialog
        self._progress: progress | None = None
        self._relay = _Relay()
        self._relay.progressed.connect(self._on_progress)
        self._init = "scratch"

        self.image_combo = QComboBox()
        self.labels_combo = QComboBox()
        self.review_label = QLabel("")
        self.review_label.setWordWrap(True)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("folder for images/, masks/, splits/, manifest.json")
        self.browse_button = QPushButton("…")
        self.browse_button.setToolTip("Choose the output folder")
        self.reviewed_check = QCheckBox("only reviewed frames")
        self.reviewed_check.setChecked(True)
        self.reviewed_check.setToolTip(
            "Export only frames marked reviewed in 'Review targets'; untick to export all frames"
        )
        self.ratio_spin = QDoubleSpinBox()
        self.ratio_spin.setRange(0.0, 0.9)
        self.ratio_spin.setSingleStep(0.05)
        self.ratio_spin.setValue(0.2)
        self.ratio_spin.setToolTip(
            "Share of frames in splits/test.txt; frames 0–9, 10–19, … of one sequence stay on "
            "one side, so test frames are not near-duplicates of training frames"
        )
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seed of the train/test split (same seed, same split)")
        self.coco_check = QCheckBox("COCO")  # detector formats beside the IRSTD layout
        self.coco_check.setToolTip(
            "Also write annotations/instances_train.json and _test.json (COCO instances, "
            "masks as RLE, track ids when targets are tracked)"
        )
        self.yolo_check = QCheckBox("YOLO")
        self.yolo_check.setToolTip("Also write labels/<name>.txt boxes, yolo_*.txt and yolo.yaml")
        self.export_button = QPushButton("Export")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.command_edit = QLineEdit()
        self.command_edit.setReadOnly(True)
        self.command_edit.setToolTip("Fine-tune on this export from a terminal (copy the command)")
        self.finetune_button = QPushButton("Fine-tune on this export")
        self.finetune_button.setToolTip("Open 'Fine-tune IRSAM' with this export as its dataset")
        self.command_edit.setVisible(False)
        self.finetune_button.setVisible(False)

        form = QFormLayout()
        form.addRow("image", self.image_combo)
        form.addRow("labels", self.labels_combo)
        form.addRow("", self.review_label)
        form.addRow("output folder", row(self.out_edit, self.browse_button))
        form.addRow("frames", self.reviewed_check)
        form.addRow("test ratio", self.ratio_spin)
        form.addRow("seed", self.seed_spin)
        form.addRow("also write", row(self.coco_check, self.yolo_check))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.export_button)
        layout.addWidget(self.status)
        layout.addWidget(self.finetune_button)
        layout.addWidget(self.command_edit)
        layout.addStretch(1)

        self.browse_button.clicked.connect(self._browse)
        self.export_button.clicked.connect(lambda: self.export())
        self.finetune_button.clicked.connect(self.open_finetune)
        self.labels_combo.currentIndexChanged.connect(self.refresh_review)
        self.image_combo.currentIndexChanged.connect(self._guess_labels)
        self.reviewed_check.toggled.connect(self.refresh_review)
        self._watch = names.LayerWatch(self.viewer, self._reset_layers)
        connect(self, self.session.review_changed, self._on_review_changed)
        self._reset_layers()

    # -------------------------------------------------------------------------------- the form
    def _on_review_changed(self, labels_id: Any) -> None:
        """A review of this viewer changed: refresh the summary if it is the chosen mask's."""
        labels = self.selected_labels()
        started = self.session.review_by_id(labels_id)
        if (
            started is not None
            and self.review_state(labels) is None
            and started.image_name == self.image_combo.currentText()
            and self.labels_combo.findText(started.labels_name) >= 0
        ):  # a review of this image began on another labels layer: export that one
            self.labels_combo.setCurrentText(started.labels_name)
        elif labels is None or labels.unique_id == labels_id:
            self.refresh_review()

    def review_state(self, labels: Any) -> Any | None:
        """The live review of ``labels`` (from "Review targets"), or None."""
        return self.session.review_of(labels)

    def _reset_layers(self, event: Any = None) -> None:
        had_labels = bool(self.labels_combo.currentText())
        for combo, kind in ((self.image_combo, Image), (self.labels_combo, Labels)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            if kind is Image:  # probability / WPMD / feature maps are not training images
                layers = names.input_images(self.viewer)
            else:
                layers = [ly for ly in self.viewer.layers if isinstance(ly, kind)]
            combo.addItems([layer.name for layer in layers])
            idx = combo.findText(current)
            combo.setCurrentIndex(max(idx, 0) if combo.count() else -1)
            combo.blockSignals(False)
        image = self.selected_image()
        new = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        mask_of_image = (  # Run IRSAM just made the image's mask: that is what to export
            image is not None
            and new is not None
            and getattr(new, "name", None) == names.output_name(names.MASK, image.name)
        )
        if not had_labels or self.labels_combo.currentText() == "" or mask_of_image:
            self._guess_labels()
        self.refresh_review()

    def _guess_labels(self, *_: Any) -> None:
        """Select the image's "IRSAM mask [<image>]" (or a reviewed labels layer) when present."""
        image = self.selected_image()
        if image is None:
            return
        items = [self.labels_combo.itemText(i) for i in range(self.labels_combo.count())]
        preferred = names.output_name(names.MASK, image.name)
        reviewed = [n for n in items if self.review_state(self.viewer.layers[n]) is not None]
        pick = preferred if preferred in items else (reviewed[0] if reviewed else None)
        if pick is not None:
            self.labels_combo.setCurrentText(pick)
        self.refresh_review()

    def _layer(self, combo: QComboBox, kind: type) -> Any | None:
        return names.find_layer(self.viewer, combo.currentText(), kind)

    def selected_image(self) -> Image | None:
        return self._layer(self.image_combo, Image)

    def selected_labels(self) -> Labels | None:
        return self._layer(self.labels_combo, Labels)

    def refresh_review(self, *_: Any) -> None:
        """Say what the export will contain, from the labels layer's review state."""
        labels = self.selected_labels()
        if labels is None:
            self.review_label.setText("Choose the labels layer with the corrected masks.")
            return
        state = self.review_state(labels)
        n = _n_frames(labels)
        if state is None:
            text = "No review state for this labels layer (use 'Review targets' first)"
            text += (
                ": 'only reviewed frames' exports nothing; untick it to export all frames."
                if self.reviewed_check.isChecked()
                else f"; all {n} frame(s) will be exported."
            )
        else:
            done = sum(bool(r) for r in state.reviewed)
            text = f"{done} / {len(state.reviewed)} frames reviewed"
            counts = state.counts() if hasattr(state, "counts") else {}
            if counts:
                text += " (" + ", ".join(f"{v} {k}" for k, v in counts.items() if v) + ")"
            todo = done if self.reviewed_check.isChecked() else len(state.reviewed)
            text += f"; {todo} frame(s) will be exported."
        self.review_label.setText(text)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export training set to")
        if path:
            self.out_edit.setText(path)

    def _ask_dialog(self, folder: Path) -> str | None:
        """Append / new folder / cancel, for a non-empty output folder."""
        return ask_about_folder(self, folder)

    # ---------------------------------------------------------------------------------- export
    def plan(self, if_exists: str = "error") -> ExportPlan:
        """Collect frames, masks, review and provenance; a one-sentence ``ValueError`` if wrong."""
        labels = self.selected_labels()
        return build_plan(
            self.viewer,
            self.selected_image(),
            labels,
            out=self.out_edit.text().strip(),
            reviewed_only=self.reviewed_check.isChecked(),
            test_ratio=self.ratio_spin.value(),
            seed=self.seed_spin.value(),
            if_exists=if_exists,
            state=self.review_state(labels),
            formats=["irstd"]
            + [
                f
                for f, c in (("coco", self.coco_check), ("yolo", self.yolo_check))
                if c.isChecked()
            ],
        )

    def export(self, sync: bool = False) -> ExportResult | None:
        """Validate, ask about a non-empty folder, then export (in a worker unless ``sync``).

        Returns the result when ``sync``; otherwise None (see :attr:`result` when done).
        """
        if self.worker is not None:
            return None
        try:
            plan = self.plan()
            out = Path(plan.out).expanduser()
            if out.is_dir() and is_non_empty(out):
                choice = self.ask_if_exists(out)
                if choice not in ("append", "new"):
                    self.status.setText(f"Export cancelled; {out} was left as it is.")
                    return None
                plan.if_exists = choice
            check_target(plan.out, plan.if_exists)  # path problems before any work
        except ValueError as exc:
            self._warn(str(exc))
            return None
        self._init = _init_for(plan.kwargs["provenance"])
        self.result = None
        self.command_edit.setVisible(False)
        self.finetune_button.setVisible(False)
        n = len(plan.indices)
        self.status.setText(f"Exporting {n} frame(s) …")
        if sync:
            try:
                result = plan.run(self._relay.progressed.emit)
            except Exception as exc:  # noqa: BLE001 (a warning, never an exception in napari)
                self._on_error(exc)
                return None
            self._on_done(result)
            return result
        self.export_button.setEnabled(False)
        self._progress = progress(total=n, desc="Export training set")
        worker = create_worker(
            plan.run, self._relay.progressed.emit, _start_thread=False, _ignore_errors=True
        )
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()
        return None

    def _warn(self, message: str) -> None:
        self.status.setText(message)
        show_warning(message)

    def _on_progress(self, done: int, total: int) -> None:
        self.status.setText(f"Exporting: {done} / {total} frame(s) …")
        if self._progress is not None:
            self._progress.update(done - self._progress.n)

    def _on_error(self, exc: BaseException) -> None:
        log.debug("Export failed", exc_info=exc)
        if isinstance(exc, ValueError):
            self._warn(str(exc))
        else:
            self._warn(f"Export failed: {exc.__class__.__name__}: {exc}")

    def _on_done(self, result: ExportResult) -> None:
        self.result = result
        written = set(result.written)
        n_train = sum(1 for s in result.train if s in written)
        n_test = sum(1 for s in result.test if s in written)
        line = (
            f"Wrote {len(result.written)} sample(s) ({n_train} train / {n_test} test), "
            f"skipped {len(result.skipped_duplicates)} duplicate(s) → {result.folder}"
        )
        total = len(result.train) + len(result.test)
        if total != len(result.written):
            line += f" (now {total} samples)"
        if result.written and not result.test:
            line += (
                "; splits/test.txt is empty: frames 0–9, 10–19, … of a sequence stay on one "
                "side so test frames are not near-duplicates, and these frames form one block"
            )
        self.status.setText(line)
        show_info(line)
        self.command_edit.setText(self.train_command(result.folder, self._init))
        self.command_edit.setCursorPosition(0)
        self.command_edit.setVisible(True)
        self.finetune_button.setVisible(True)

    def _on_finished(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.export_button.setEnabled(True)
        self.worker = None

    # ------------------------------------------------------------------------------- fine-tune
    train_command = staticmethod(train_command)  #: the CLI command fine-tuning on an export

    def open_finetune(self) -> bool:
        """Offer the last export to "Fine-tune IRSAM" of this viewer (the dock's tab, or a docked
        widget; one is opened from the plugin when there is none); True on success."""
        if self.result is None:
            return False
        offer = self.session.offer_dataset(str(self.result.folder), self._init)
        if not offer.taken:  # no fine-tune widget in this viewer yet: open one (it takes it)
            try:
                self.viewer.window.add_plugin_dock_widget("napari-irsam", "Fine-tune IRSAM")
            except Exception as exc:  # noqa: BLE001 (no window, plugin not registered, …)
                log.debug("Could not open Fine-tune IRSAM", exc_info=exc)
            if not offer.taken:
                show_info(f"Fine-tune from a terminal: {self.command_edit.text()}")
                return False
        self.session.request_step("finetune")
        show_info("The export is selected as the dataset in 'Fine-tune IRSAM'.")
        return True
