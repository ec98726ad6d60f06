"""The "Run IRSAM" dock widget: pick an image, a model, a device, a threshold and frames; run.

Thin: the work is :func:`napari_irsam.segment.run_segmentation`, run in a napari thread worker so
the viewer stays responsive; this module only builds the form, starts/cancels the worker and hands
its events to :class:`~napari_irsam._widgets._outputs.OutputLayers`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from napari.layers import Image
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

from ..model import available_devices, bundled_default
from ..segment import (
    CLASSICAL_PREFIX,
    FrameDone,
    ModelCache,
    RunSpec,
    RunStarted,
    classical_detectors,
    run_segmentation,
)
from . import _layers as names
from ._form import checkbox, row, spin_threshold, threshold_spin
from ._frames import FrameStack, current_frame, frame_hw, n_frames
from ._outputs import OutputLayers, outputs_note
from ._precision import PrecisionCombo
from ._run_guard import ask_dialog, choose_frames
from ._session import CheckpointOffer, connect, session_for

log = logging.getLogger(__name__)

DEFAULT = "default (bundled)"
FILE = "checkpoint file…"
MOBILE_SAM = "mobile_sam"
SCOPES = ("current frame", "all frames", "frame range")
MAPS_TIP = (
    "Also compute the display maps: WPMD edge strength and diffused map, and PCA colourings of "
    "the encoder features (early and deep). They cost time and memory (measured in "
    "docs/run-irsam.md) and change nothing in the mask; untick for long stacks."
)
TTA_TIP = (
    "IRSAM: also segment each frame mirrored left-right and average the two answers; twice the "
    "time (measured in docs/run-irsam.md)"
)


class RunIRSAMWidget(QWidget):
    """Dock widget running IRSAM (or a classical detector) on an image layer."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.cache = ModelCache()
        self.worker: GeneratorWorker | None = None
        self.outputs: OutputLayers | None = None
        self._progress: progress | None = None
        self._note = ""  # what this run's model does not produce, repeated in the status
        self._cancelled = False
        self._done = self._total = 0  # frames of the current run
        self._layers_ready = threading.Event()
        self._skip_note = ""  # reviewed frames this run leaves alone
        #: ``ask_overwrite(question) -> "skip" | "overwrite" | "cancel"`` when a run would rewrite
        #: frames of a mask under review (a dialog; tests pass a function)
        self.ask_overwrite: Callable[[str], str] = lambda text: ask_dialog(self, text)

        self.image_combo = QComboBox()
        self.model_combo = QComboBox()
        if bundled_default() is not None:
            self.model_combo.addItem(DEFAULT, "default")
        self.model_combo.addItem(FILE, None)
        self.model_combo.addItem(MOBILE_SAM, "mobile_sam")
        for name in classical_detectors():
            self.model_combo.addItem(f"{CLASSICAL_PREFIX} {name}", f"{CLASSICAL_PREFIX}{name}")
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("IRSAM / mobile_sam.pt / napari-irsam checkpoint")
        self.browse_button = QPushButton("…")
        self.browse_button.setToolTip("Choose a checkpoint file")
        self.device_combo = QComboBox()
        self.device_combo.addItems(available_devices())  # only devices that exist, best first
        self.precision_combo = PrecisionCombo(prefer_bf16=True)
        self.maps_check = checkbox("display maps (WPMD edges, features)", MAPS_TIP, True)
        self.temporal_check = checkbox(
            "temporal consistency (drop one-frame flickers)",
            "Stacks: a detection on no track over ±3 frames is down-weighted ×0.5 and dropped "
            "below the threshold (docs/tracks.md); frames appear 3 frames later",
        )
        self.tta_check = checkbox("mirror averaging (2× time)", TTA_TIP)
        self.threshold_spin = threshold_spin()
        self.scope_combo = QComboBox()
        self.scope_combo.addItems(SCOPES)
        self.start_spin, self.stop_spin = QSpinBox(), QSpinBox()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        self._path_widget = row(self.path_edit, self.browse_button)
        self._range_widget = row(QLabel("from"), self.start_spin, QLabel("to"), self.stop_spin)
        form = QFormLayout()
        form.addRow("image", self.image_combo)
        form.addRow("model", self.model_combo)
        form.addRow("", self._path_widget)
        form.addRow("device", self.device_combo)
        form.addRow("precision", self.precision_combo)
        form.addRow("threshold", self.threshold_spin)
        form.addRow("frames", self.scope_combo)
        form.addRow("", self._range_widget)
        form.addRow("", self.maps_check)
        form.addRow("", self.temporal_check)
        form.addRow("", self.tta_check)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addWidget(row(self.run_button, self.cancel_button))
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.setLayout(layout)

        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.scope_combo.currentIndexChanged.connect(self._on_scope_changed)
        self.image_combo.currentIndexChanged.connect(self._update_range)
        self.browse_button.clicked.connect(self._browse)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.device_combo.currentTextChanged.connect(self.precision_combo.follow)
        self.precision_combo.follow(self.device_combo.currentText())
        self._watch = names.LayerWatch(self.viewer, self._reset_images)
        connect(self, self.session.checkpoint_offered, self._on_checkpoint_offered)
        offer = self.session.last_checkpoint  # offered before this widget existed
        if offer is not None and not offer.taken:
            self._on_checkpoint_offered(offer)
        self._reset_images()
        self._on_model_changed()
        self._on_scope_changed()

    # -------------------------------------------------------------------------------- the form
    def _reset_images(self, event: Any = None) -> None:
        """Only Image layers can be segmented (Labels, Points, … and our outputs never are)."""
        current = self.image_combo.currentText()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems([layer.name for layer in names.input_images(self.viewer)])
        idx = self.image_combo.findText(current)
        self.image_combo.setCurrentIndex(max(idx, 0) if self.image_combo.count() else -1)
        self.image_combo.blockSignals(False)
        self._update_range()

    def selected_image(self) -> Image | None:
        return names.find_layer(self.viewer, self.image_combo.currentText(), Image)

    def _on_model_changed(self, *_: Any) -> None:
        choice = self.model_combo.currentData()
        self._path_widget.setVisible(choice is None)
        classical = isinstance(choice, str) and choice.startswith(CLASSICAL_PREFIX)
        irsam_only = (self.device_combo, self.precision_combo, self.threshold_spin)
        for control in (*irsam_only, self.maps_check, self.tta_check):
            control.setEnabled(not classical)

    def _on_scope_changed(self, *_: Any) -> None:
        self._range_widget.setVisible(self.scope_combo.currentText() == "frame range")

    def _update_range(self, *_: Any) -> None:
        layer = self.selected_image()
        n = n_frames(layer) if layer is not None else 1
        for spin in (self.start_spin, self.stop_spin):
            spin.setRange(0, max(n - 1, 0))
        self.stop_spin.setValue(max(n - 1, 0))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "IRSAM checkpoint", "", "PyTorch checkpoints (*.pt *.pth *.ckpt);;All files (*)"
        )
        if path:
            self.path_edit.setText(path)

    def use_checkpoint(self, path: str) -> None:
        """Select a checkpoint file as the model (the fine-tune widget hands over its result)."""
        self.model_combo.setCurrentIndex(self.model_combo.findText(FILE))
        self.path_edit.setText(str(path))

    def _on_checkpoint_offered(self, offer: CheckpointOffer) -> None:
        """A fine-tune widget of this viewer offers its checkpoint ("Use in Run IRSAM")."""
        self.use_checkpoint(offer.path)
        offer.taken = True

    def model_source(self) -> str | None:
        choice = self.model_combo.currentData()
        return choice if choice is not None else (self.path_edit.text().strip() or None)

    # ---------------------------------------------------------------------------------- running
    def _fail(self, message: str) -> None:
        self.status.setText(message)
        show_error(message)

    def frame_indices(self, layer: Image) -> list[int]:
        """Flat stack indices chosen by the scope (leading axes are flattened, C order)."""
        n = n_frames(layer)
        scope = self.scope_combo.currentText()
        if scope == "all frames":
            return list(range(n))
        if scope == "frame range":
            lo, hi = sorted((self.start_spin.value(), self.stop_spin.value()))
            return list(range(lo, min(hi, n - 1) + 1))
        return [current_frame(self.viewer, layer)]

    def run(self) -> None:
        """Validate the form, then start the worker (no-op while one is running)."""
        if self.worker is not None:
            return
        layer = self.selected_image()
        if layer is None:
            self._fail("Choose an image layer to segment (open an image first).")
            return
        if layer.multiscale:
            self._fail(f"{layer.name!r} is multiscale; IRSAM runs on single-resolution images.")
            return
        h, w = frame_hw(layer)
        if h * w == 0 or h < 2 or w < 2:
            self._fail(
                f"{layer.name!r} has {h}×{w} pixels per frame; IRSAM needs frames of at least "
                "2×2 pixels (small targets need surrounding context)."
            )
            return
        source = self.model_source()
        if source is None:
            self._fail("Choose a checkpoint file first (model: checkpoint file…).")
            return
        if layer.rgb:
            show_info(f"{layer.name!r} is RGB(A): converted to luminance for segmentation.")
        n = n_frames(layer)
        stack = FrameStack(layer)  # lazy: frames are read by the worker, one run's worth
        indices = self._unprotected(layer, self.frame_indices(layer))
        if not indices:
            return
        threshold = spin_threshold(self.threshold_spin)  # None: the checkpoint's calibration
        spec = RunSpec(
            source,
            self.device_combo.currentText(),
            threshold,
            maps=("features", "wpmd") if self.maps_check.isChecked() else (),
            precision=self.precision_combo.value(),
            temporal=self.temporal_check.isChecked(),
            tta=self.tta_check.isChecked(),
            min_peak=None if threshold is None else 0.0,  # a number: plain thresholding
            refine=None if threshold is None else 0.0,  # … on the model's own outlines
        )
        self.outputs = OutputLayers(self.viewer, layer, (n, h, w), self.session)
        self.status.setText(f"Loading {source} …")
        self._layers_ready = threading.Event()
        worker = create_worker(
            _job,
            spec,
            stack,
            indices,
            self.cache,
            self._layers_ready,
            _start_thread=False,
            _ignore_errors=True,
        )
        worker.yielded.connect(self._on_event)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._set_running(True)
        worker.start()

    def _unprotected(self, layer: Image, indices: list[int]) -> list[int]:
        """The frames to run, asking before frames of a mask under review are rewritten."""
        keep, self._skip_note, message = choose_frames(
            self.viewer, layer, indices, self.ask_overwrite, self.session
        )
        if message:
            self.status.setText(message)
        if not keep and self._skip_note:
            show_info(message)
        return keep

    def _select_mask(self) -> None:
        """Once this run's layers exist: napari made the last layer added (a hidden map) the
        active one; the annotator's brush belongs on the mask."""
        out = self.outputs
        if out is not None and out.created and "mask" in out.layers and not out.selected:
            out.selected = True
            self.viewer.layers.selection.active = out.layers["mask"]

    def cancel(self) -> None:
        """Stop after the frame in progress; frames already done stay in their layers."""
        if self.worker is not None:
            self.status.setText("Cancelling after the current frame …")
            self.cancel_button.setEnabled(False)
            self._cancelled = True
            self.worker.quit()
            self._layers_ready.set()

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _on_event(self, event: RunStarted | FrameDone) -> None:
        if self.outputs is None:
            return
        if isinstance(event, RunStarted):
            self.outputs.start(event)
            note = outputs_note(event)
            self._note = self._skip_note + note
            self.status.setText(
                f"Running {event.metadata.get('model_id')} on {event.total} frame(s).{note}"
            )
            self._done, self._total = 0, event.total
            self._progress = progress(total=event.total, desc="Run IRSAM")
            if self._done:  # frames that arrived while the bar was being built
                self._progress.update(self._done)
            QTimer.singleShot(0, self._build_step)
        else:
            self.outputs.write(event)
            self._done = event.done
            self.status.setText(
                f"Frame {event.index} done ({event.done}/{event.total}, "
                f"{event.output.seconds:.2f} s).{self._note}"
            )
            # last: napari's progress bar may process events, so _on_finished can run inside
            if self._progress is not None:
                self._progress.update(1)

    def _build_step(self) -> None:
        """Create one output layer per event-loop turn, so napari keeps repainting."""
        if self.outputs is not None and self.outputs.build_next():
            QTimer.singleShot(0, self._build_step)
        else:
            self._select_mask()
            self._layers_ready.set()

    def _on_error(self, exc: BaseException) -> None:
        log.debug("Run IRSAM failed", exc_info=exc)
        if isinstance(exc, ValueError):  # CheckpointError included: a sentence for the user
            self._fail(str(exc))
        else:
            self._fail(f"Run IRSAM failed: {exc.__class__.__name__}: {exc}")

    def _on_finished(self) -> None:
        if self.outputs is not None:
            while self.outputs.build_next():  # a fast run can end before its layers exist
                pass
            self._select_mask()
        done, total = self._done, self._total
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if self.outputs is not None and self.outputs.layers and done == total:
            spf = self.outputs.run.get("seconds_per_frame") or 0.0
            self.status.setText(f"Done: {done} frame(s), {spf:.2f} s per frame.{self._note}")
        elif self._cancelled:
            self.status.setText(f"Cancelled: {done} of {total} frame(s) kept.")
        self._cancelled = False
        self.worker = None
        self._set_running(False)


def _job(
    spec: RunSpec,
    stack: Any,
    indices: list[int],
    cache: ModelCache,
    layers_ready: threading.Event,
) -> Iterator[RunStarted | FrameDone]:
    """The worker's generator: :func:`run_segmentation`, pausing after :class:`RunStarted` until
    the main thread has built the output layers, so that building them (napari work that must
    happen on the main thread) does not compete with the model for the CPU."""
    try:  # napari's Labels layer imports pandas on first use: pay that here, off the main thread
        import pandas  # noqa: F401
    except ImportError:
        pass
    events = run_segmentation(spec, stack, indices, cache)
    yield next(events)  # RunStarted; loading errors are raised before it
    layers_ready.wait(timeout=60)
    yield from events
