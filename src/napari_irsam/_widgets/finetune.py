"""The "Fine-tune IRSAM" dock widget: train on an exported dataset in a thread worker.

Thin: the work is :func:`napari_irsam.training.train.train` (a generator of events); this module
builds the form, shows progress and a live loss curve, cancels between steps (the last finished
epoch's checkpoint stays on disk) and hands the best checkpoint to "Run IRSAM".

Loading the data and the model can take a minute before the first step: a napari progress bar
(indeterminate) and the elapsed seconds show meanwhile. Every failure is one sentence in one napari
notification and in the status line: the training generator's exceptions are caught inside the
worker (napari's worker would otherwise add a second notification with a traceback, and re-raise
in the Qt event loop, which aborts the process without napari's exception hook).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..calibrate import calibrate_run
from ..model import available_devices
from ..model.weights import bundled_default
from ..training.train import TrainConfig, TrainEvent, train
from ._form import row
from ._lossplot import LossPlot
from ._precision import PrecisionCombo
from ._session import DatasetOffer, connect, session_for

log = logging.getLogger(__name__)

FROM_INIT = "as start checkpoint"
LOADING = "Loading data and model…"


@dataclass
class _Failed:
    """What the worker yields instead of raising (see the module docstring)."""

    error: Exception


def _job(cfg: TrainConfig) -> Iterator[TrainEvent | _Failed]:
    """Train, then calibrate best.pt on the held-out frames (a ``"calibrated"`` event; not when
    cancelled: closing the generator stops it at a yield)."""
    try:
        yield from train(cfg)
        cal = calibrate_run(cfg, cfg.device, cfg.precision)
        if cal is not None:
            best = str(Path(cfg.out) / "best.pt")
            yield TrainEvent("calibrated", checkpoint=best, metrics=cal.to_metadata())
    except Exception as exc:  # noqa: BLE001 (reported as one notification by the widget)
        yield _Failed(exc)


def _sentence(exc: Exception) -> str:
    """One line for the user: input errors as they are, anything else prefixed."""
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, (ValueError, FileNotFoundError)):
        return text
    return f"Fine-tuning failed: {exc.__class__.__name__}: {text}"


class FinetuneWidget(QWidget):
    """Dock widget fine-tuning IRSAM on an IRSTD-layout dataset folder."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.worker: GeneratorWorker | None = None
        self.best: str | None = None
        self._progress: progress | None = None
        self._cancelled = False
        self._failed = False
        self.calibration: dict[str, Any] | None = None  #: best.pt's, once calibrated
        self._run_folder: Path | None = None
        self._t0 = 0.0
        self._ticker = QTimer(self)  # elapsed seconds while data and model load
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)

        self.dataset_edit = QLineEdit()
        self.dataset_edit.setPlaceholderText("exported folder with images/, masks/, splits/")
        self.init_edit = QLineEdit("default" if bundled_default() is not None else "scratch")
        self.init_edit.setToolTip("scratch, mobile_sam, default, or a checkpoint file")
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("run folder (default: <dataset>/finetune)")
        self.config_combo = QComboBox()
        self.config_combo.addItems([FROM_INIT, "paper", "fast", "release"])
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(10)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(0, 1024)
        self.size_spin.setSingleStep(64)
        self.size_spin.setSpecialValueText("as config")  # 0 = the configuration's image_size
        self.size_spin.setValue(0)
        self.device_combo = QComboBox()
        self.device_combo.addItems(available_devices())
        self.precision_combo = PrecisionCombo()
        self.device_combo.currentTextChanged.connect(self.precision_combo.follow)
        self.precision_combo.follow(self.device_combo.currentText())
        self.run_button, self.cancel_button = QPushButton("Train"), QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.load_button = QPushButton("Use in Run IRSAM")
        self.load_button.setEnabled(False)
        self.plot = LossPlot()
        self.status = QLabel("")
        self.status.setWordWrap(True)

        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        form = QFormLayout()
        form.addRow("dataset", row(self.dataset_edit, browse))
        form.addRow("start from", self.init_edit)
        form.addRow("run folder", self.out_edit)
        form.addRow("config", self.config_combo)
        form.addRow("epochs", self.epochs_spin)
        form.addRow("image size", self.size_spin)
        form.addRow("device", self.device_combo)
        form.addRow("precision", self.precision_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(row(self.run_button, self.cancel_button))
        layout.addWidget(self.plot)
        layout.addWidget(self.load_button)
        layout.addWidget(self.status)
        layout.addStretch()
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.load_button.clicked.connect(self.load_into_run_widget)
        connect(self, self.session.dataset_offered, self.take_dataset)
        offer = self.session.last_dataset  # an export offered before this widget existed
        if offer is not None and not offer.taken:
            self.take_dataset(offer)

    def take_dataset(self, offer: DatasetOffer) -> None:
        """Fill the form with an export ("Fine-tune on this export" of Export training set)."""
        self.dataset_edit.setText(offer.folder)
        if offer.init != "scratch":  # a checkpoint or the bundled default; else keep the choice
            self.init_edit.setText(offer.init)
        offer.taken = True

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Exported dataset")
        if path:
            self.dataset_edit.setText(path)

    def config(self) -> TrainConfig:
        dataset = self.dataset_edit.text().strip()
        if not dataset or not Path(dataset).is_dir():
            raise ValueError(f"Choose an existing dataset folder (got {dataset!r}).")
        if not ((Path(dataset) / "images").is_dir() and (Path(dataset) / "masks").is_dir()):
            raise ValueError(
                f"{dataset} has no images/ and masks/ folders; choose a folder made by "
                "'Export training set' (or any IRSTD-layout dataset)."
            )
        split = "train" if (Path(dataset) / "splits" / "train.txt").is_file() else None
        return TrainConfig(
            dataset=dataset,
            out=self.out_edit.text().strip() or str(Path(dataset) / "finetune"),
            split=split,
            init=self.init_edit.text().strip() or "scratch",
            config=None
            if self.config_combo.currentText() == FROM_INIT
            else self.config_combo.currentText(),
            size=self.size_spin.value() or None,
            epochs=self.epochs_spin.value(),
            device=self.device_combo.currentText(),
            precision=self.precision_combo.value(),
        )

    def _fail(self, message: str) -> None:
        self.status.setText(message)
        show_error(message)

    def start(self) -> None:
        if self.worker is not None:
            return
        try:
            cfg = self.config()
        except ValueError as exc:
            self._fail(str(exc))
            return
        self.plot.clear()
        self.best = None
        self._cancelled = self._failed = False
        self.calibration = None
        self._run_folder = Path(cfg.out)
        self.load_button.setEnabled(False)
        self.worker = create_worker(_job, cfg, _start_thread=False, _ignore_errors=True)
        self.worker.yielded.connect(self._on_event)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._progress = progress(total=0, desc="Fine-tune IRSAM: loading data and model")
        self._t0 = time.monotonic()
        self._tick()
        self._ticker.start()
        self.worker.start()

    def _tick(self) -> None:
        self.status.setText(f"{LOADING} ({time.monotonic() - self._t0:.0f} s)")

    def _close_progress(self) -> None:
        self._ticker.stop()
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def cancel(self) -> None:
        if self.worker is not None:
            self._cancelled = True
            self.worker.quit()
            self.cancel_button.setEnabled(False)
            self._ticker.stop()
            self.status.setText("Cancelling after the current step…")

    def _on_event(self, ev: TrainEvent | _Failed) -> None:
        if isinstance(ev, _Failed):
            self._on_error(ev.error)
        elif ev.kind == "start":
            self._close_progress()
            bar = progress(total=ev.total_steps, desc="Fine-tune IRSAM")
            if self.worker is None:  # napari's bar processes events: the run may have ended
                bar.close()
                return
            self._progress = bar
            bar.update(ev.step)
        elif ev.kind == "step":
            self.plot.add(ev.loss)
            if self._progress is not None:
                self._progress.update(1)
            self.status.setText(f"step {ev.step}/{ev.total_steps}, loss {ev.loss:.3f}")
        elif ev.kind == "epoch":
            iou = ev.metrics.get("iou")
            extra = f", validation IoU {100 * iou:.1f}" if iou is not None else ""
            if iou is not None:
                self.plot.add_validation(ev.step, iou)
            self.status.setText(f"epoch {ev.epoch} saved{extra}")
            self.best = str(Path(ev.checkpoint).with_name("best.pt"))
        elif ev.kind == "done":
            self.best = ev.checkpoint
        elif ev.kind == "calibrated":
            self.calibration = ev.metrics

    def _on_error(self, exc: Exception) -> None:
        log.debug("Fine-tuning failed", exc_info=exc)
        self._failed = True
        self._close_progress()
        self._fail(_sentence(exc))

    def _on_finished(self) -> None:
        self._close_progress()
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.worker = None
        if self._failed:
            return
        if self.best and Path(self.best).is_file():
            self.load_button.setEnabled(True)
        last = self._run_folder / "last.pt" if self._run_folder is not None else None
        if self._cancelled:
            if last is not None and last.is_file():
                message = f"Fine-tuning cancelled; the last finished epoch is saved in {last}."
            else:
                message = "Fine-tuning cancelled before an epoch finished; nothing was saved."
        elif self.best and Path(self.best).is_file():
            message = f"Fine-tuning finished; best checkpoint: {self.best}"
            if self.calibration is not None:
                message += " (calibrated on its held-out frames)"
        else:
            return
        self.plot.set_note("cancelled" if self._cancelled else "finished")
        self.status.setText(message)
        show_info(message)

    def load_into_run_widget(self) -> bool:
        """Offer the best checkpoint to "Run IRSAM" of this viewer (the dock's tab or a docked
        widget); returns whether one took it."""
        if not self.best:
            return False
        offer = self.session.offer_checkpoint(self.best)
        if not offer.taken:  # no Run IRSAM in this viewer: open one (it takes the offer)
            try:
                self.viewer.window.add_plugin_dock_widget("napari-irsam", "Run IRSAM")
            except Exception as exc:  # noqa: BLE001 (no window, plugin not registered, …)
                log.debug("Could not open Run IRSAM", exc_info=exc)
        if offer.taken:
            self.session.request_step("run")
            show_info("The fine-tuned checkpoint is selected in Run IRSAM.")
            return True
        show_info(f"Open 'Run IRSAM' and choose {self.best}.")
        return False
