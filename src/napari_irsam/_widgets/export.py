"""The "Export training set" dock widget: reviewed frames + corrected labels → IRSTD folder.

Thin: the work is :func:`napari_irsam.data.export.export_training_set`, run in a napari thread
worker so the viewer never freezes. What it needs is read from the layers into an
:class:`~napari_irsam._widgets._export_plan.ExportPlan` by
:func:`~napari_irsam._widgets._export_plan.build_plan` (frames, masks, review, provenance,
sources and sample names); this module holds only the Qt form, the worker and the hand-off to
"Fine-tune IRSAM".

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
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..data.export import ExportResult, check_target, is_non_empty
from ._export_plan import (  # noqa: F401 (names re-exported for callers of this module)
    PROVENANCE_KEYS,
    REVIEW_SIDECAR_KEY,
    REVIEW_STATE_KEY,
    ExportPlan,
    _init_for,
    _n_frames,
    build_plan,
    mask_provenance,
    review_state_of,
    train_command,
)

log = logging.getLogger(__name__)

_OUR_OUTPUTS = ("IRSAM ", "WPMD ", "granularity ")


class _Relay(QObject):
    """Carries progress from the worker thread to the widget (queued signal)."""

    progressed = Signal(int, int)


# ------------------------------------------------------------------------------------ widget
class ExportWidget(QWidget):
    """Dock widget exporting an image layer and its corrected labels as a training set."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
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

        out_row = QHBoxLayout()
        out_row.setContentsMargins(0, 0, 0, 0)
        out_row.addWidget(self.out_edit)
        out_row.addWidget(self.browse_button)
        out_holder = QWidget()
        out_holder.setLayout(out_row)
        form = QFormLayout()
        form.addRow("image", self.image_combo)
        form.addRow("labels", self.labels_combo)
        form.addRow("", self.review_label)
        form.addRow("output folder", out_holder)
        form.addRow("frames", self.reviewed_check)
        form.addRow("test ratio", self.ratio_spin)
        form.addRow("seed", self.seed_spin)
        formats_row = QHBoxLayout()
        formats_row.setContentsMargins(0, 0, 0, 0)
        formats_row.addWidget(self.coco_check)
        formats_row.addWidget(self.yolo_check)
        formats_holder = QWidget()
        formats_holder.setLayout(formats_row)
        form.addRow("also write", formats_holder)
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
        events = self.viewer.layers.events
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self._reset_layers)
        self._reset_layers()
        self._timer = QTimer(self)  # "Review targets" changes the review state in place
        self._timer.timeout.connect(self._refresh_if_visible)
        self._timer.start(1000)

    # -------------------------------------------------------------------------------- the form
    def _refresh_if_visible(self) -> None:
        if self.isVisible() and self.worker is None:
            self.refresh_review()

    def _reset_layers(self, event: Any = None) -> None:
        had_labels = bool(self.labels_combo.currentText())
        for combo, kind in ((self.image_combo, Image), (self.labels_combo, Labels)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            for layer in self.viewer.layers:
                if not isinstance(layer, kind):
                    continue
                if kind is Image and layer.name.startswith(_OUR_OUTPUTS):
                    continue  # probability / WPMD / granularity maps are not training images
                combo.addItem(layer.name)
                if not getattr(layer, "_irsam_export_hooked", False):
                    layer.events.name.connect(self._reset_layers)
                    layer._irsam_export_hooked = True
            idx = combo.findText(current)
            combo.setCurrentIndex(max(idx, 0) if combo.count() else -1)
            combo.blockSignals(False)
        if not had_labels or self.labels_combo.currentText() == "":
            self._guess_labels()
        self.refresh_review()

    def _guess_labels(self, *_: Any) -> None:
        """Select the image's "IRSAM mask [<image>]" (or a reviewed labels layer) when present."""
        image = self.selected_image()
        if image is None:
            return
        names = [self.labels_combo.itemText(i) for i in range(self.labels_combo.count())]
        preferred = f"IRSAM mask [{image.name}]"
        reviewed = [n for n in names if review_state_of(self.viewer.layers[n]) is not None]
        pick = preferred if preferred in names else (reviewed[0] if reviewed else None)
        if pick is not None:
            self.labels_combo.setCurrentText(pick)
        self.refresh_review()

    def _layer(self, combo: QComboBox, kind: type) -> Any | None:
        name = combo.currentText()
        if name and name in self.viewer.layers:
            layer = self.viewer.layers[name]
            return layer if isinstance(layer, kind) else None
        return None

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
        state = review_state_of(labels)
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
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Export training set")
        is_export = (folder / "manifest.json").is_file()
        text = f"{folder} is not empty."
        if is_export:
            text += " It holds an earlier export: append only new samples (duplicates skipped)?"
        else:
            text += " It is not a napari-irsam export, so it can only be left as it is."
        box.setText(text)
        append = box.addButton("Append (skip duplicates)", QMessageBox.ButtonRole.AcceptRole)
        append.setEnabled(is_export)
        new = box.addButton("Write to a new folder", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(new)
        box.exec()
        clicked = box.clickedButton()
        return "append" if clicked is append else "new" if clicked is new else None

    # ---------------------------------------------------------------------------------- export
    def plan(self, if_exists: str = "error") -> ExportPlan:
        """Collect frames, masks, review and provenance; a one-sentence ``ValueError`` if wrong."""
        return build_plan(
            self.viewer,
            self.selected_image(),
            self.selected_labels(),
            out=self.out_edit.text().strip(),
            reviewed_only=self.reviewed_check.isChecked(),
            test_ratio=self.ratio_spin.value(),
            seed=self.seed_spin.value(),
            if_exists=if_exists,
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
        """Put the last export into "Fine-tune IRSAM" (docking it if needed); True on success."""
        if self.result is None:
            return False
        target = None
        try:
            for inner in self.viewer.window.dock_widgets.values():
                if type(inner).__name__ == "FinetuneWidget":  # no import: it loads torch
                    target = inner
                    break
            if target is None:
                _, target = self.viewer.window.add_plugin_dock_widget(
                    "napari-irsam", "Fine-tune IRSAM"
                )
        except Exception as exc:  # noqa: BLE001 (no window, plugin not registered, …)
            log.debug("Could not open Fine-tune IRSAM", exc_info=exc)
            show_info(f"Fine-tune from a terminal: {self.command_edit.text()}")
            return False
        target.dataset_edit.setText(str(self.result.folder))
        if self._init != "scratch":  # a checkpoint or the bundled default; else keep its choice
            target.init_edit.setText(self._init)
        show_info("The export is selected as the dataset in 'Fine-tune IRSAM'.")
        return True
