"""The "Review targets" dock widget: go through the targets of a mask, fix it, never lose an edit.

Thin: statuses and edit detection are :class:`napari_irsam.review.ReviewState`, click-to-grow is
:func:`napari_irsam.grow.grow_target`, autosave is :class:`napari_irsam.data.sidecar.Sidecar`.
This module wires them to napari: layer pickers, the targets table, buttons and shortcuts, a mouse
callback for "add missed target", and the mask layer's paint/data events (every change of the
mask, by us or by napari's own paint/erase/fill/undo, goes through ``ReviewState.sync_frame`` and
is autosaved at once).

The live state is registered in the viewer's :class:`~napari_irsam._widgets._session.Session`
(``session.review_of(mask_layer)``; ``session.review_changed`` fires on every change, which is
how "Export training set" stays current and how other views, e.g. a tracks view, can follow the
review); the autosave folder is also written to ``mask_layer.metadata["napari_irsam.review_sidecar"]``
(plain text: it goes into the export's provenance).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QEvent, QTimer

from ..data.sidecar import Sidecar, default_location, image_fingerprint
from ..review import PROVENANCE_KEYS, ReviewState, Target
from . import _layers as names
from . import _review_view as view
from ._review_actions import ReviewActions
from ._review_restore import ReviewRestore
from ._review_tracks import TrackReview
from ._review_ui import SHORTCUTS, ReviewForm
from ._session import session_for

log = logging.getLogger(__name__)

__all__ = ["SHORTCUTS", "SIDECAR_KEY", "ReviewWidget"]

SIDECAR_KEY = "napari_irsam.review_sidecar"


class ReviewWidget(ReviewActions, ReviewRestore, ReviewForm):
    """Dock widget reviewing the targets of a mask (Labels) layer made from an image layer.

    Args:
        napari_viewer: the viewer.
        ask_restore: ``f(question) -> bool`` deciding whether to restore a saved review; the
            default asks with a dialog (tests pass a function).
    """

    def __init__(
        self, napari_viewer: Any, ask_restore: Callable[[str], bool] | None = None
    ) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.ask_restore: Callable[[str], bool] = ask_restore or self._ask_dialog
        self.state: ReviewState | None = None
        self.image_layer: Image | None = None
        self.labels_layer: Labels | None = None
        self.prob_layer: Image | None = None
        self.sidecar: Sidecar | None = None
        self.add_mode = False
        self._busy = False  # our own writes: their events are handled by the caller
        self._offered: set[str] = set()  # sidecars already offered for restore
        self._save_failed = False
        self._mode_before_add: str | None = None
        self._picked_for = ""  # image whose output layers were last auto-picked
        self._touched: set[int] = set()  # frames edited this session: undo/redo can change them
        self._rescan = self._timer(150, self.rescan)  # after refreshes (undo/redo): coalesced
        self._flush = self._timer(0, self._flush_pending)  # after paint events
        self._pending: set[int] = set()  # frames named by paint events, not synced yet
        self._unbound: dict[str, Any] = {}  # our keys → what they were bound to before
        self._mouse_cb: Any = None
        self._docked = False

        self.connect_form(self)
        self.tracks = TrackReview(self)  # tracks of a stack: box, Tracks layer, track keys
        self._watch = names.LayerWatch(self.viewer, self._reset_layers)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.viewer.dims.events.current_step.connect(self._on_step)
        self._bind_viewer()
        self.destroyed.connect(self._unbind_closure())
        self._reset_layers()

    def _timer(self, ms: int, slot: Callable[[], Any]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    # -------------------------------------------------------------------------- layer pickers
    def _reset_layers(self, event: Any = None) -> None:
        images = [ly.name for ly in self.viewer.layers if isinstance(ly, Image)]
        labels = [ly.name for ly in self.viewer.layers if isinstance(ly, Labels)]
        inputs = [ly.name for ly in names.input_images(self.viewer)]
        self.fill_pickers(inputs, labels, images)
        self._on_image_changed(prefer=getattr(event, "type", "") == "inserted")

    def _layer(self, name: str, kind: type) -> Any:
        return names.find_layer(self.viewer, name, kind)

    def selected_layers(self) -> tuple[Image | None, Labels | None, Image | None]:
        return (
            self._layer(self.image_combo.currentText(), Image),
            self._layer(self.labels_combo.currentText(), Labels),
            self._layer(self.prob_combo.currentText(), Image),
        )

    def _on_image_changed(self, *_: Any, prefer: bool = False) -> None:
        """Pick the image's "IRSAM mask/probability" layers; offer its saved review."""
        image = self._layer(self.image_combo.currentText(), Image)
        if image is None:
            return
        if prefer or image.name != self._picked_for:
            self.prefer_outputs(image.name)
            self._picked_for = image.name
        if not view.same_layer(image, self.image_layer):
            self._offer_restore(image)

    # ------------------------------------------------------------------------------ starting
    def _validate(self) -> tuple[Image, Labels, Image | None] | None:
        image, labels, prob = self.selected_layers()
        if image is None:
            return self._warn("Choose an image layer to review (open an image first).")
        if labels is None:
            return self._warn(
                "Choose a mask (Labels) layer to review: run IRSAM first, or add an empty "
                "Labels layer to annotate from scratch."
            )
        if image.multiscale or labels.multiscale:
            return self._warn("Multiscale layers cannot be reviewed; open a single resolution.")
        if view.data_shape(labels) != view.data_shape(image):
            return self._warn(
                f"The mask {labels.name!r} has shape {view.data_shape(labels)} but the image "
                f"{image.name!r} has {view.data_shape(image)}; choose the mask made from it."
            )
        if not np.issubdtype(labels.data.dtype, np.integer):
            return self._warn(
                f"The mask {labels.name!r} is {labels.data.dtype}; reviewing needs integer "
                "labels (one id per target)."
            )
        if prob is not None and view.data_shape(prob) != view.data_shape(image):
            show_warning(f"{prob.name!r} does not match the image's shape; used without it.")
            prob = None
        return image, labels, prob

    def _warn(self, message: str) -> None:
        show_warning(message)
        self.status.setText(message)
        return None

    def _note(self, message: str, warning: bool = False) -> None:
        """A napari notification only (the status line is left as it is)."""
        (show_warning if warning else show_info)(message)

    def _info(self, message: str) -> None:
        show_info(message)
        self.status.setText(message)

    def _location(self, image: Image) -> Any:
        return default_location(view.source_paths(image), image.name, image_fingerprint(image.data))

    def start_review(self) -> None:
        """Review the selected mask from scratch (a saved review of the image is offered first;
        without a mask layer, restoring it re-creates the mask)."""
        image, labels, _ = self.selected_layers()
        if image is not None and labels is None and self._restore_saved(image):
            return
        picked = self._validate()
        if picked is None:
            return
        image, labels, prob = picked
        car = Sidecar(self._location(image))
        if car.exists():
            if self._ask(car, image):
                self.restore(car, image)
                return
            try:
                kept = car.set_aside()
            except OSError as exc:  # the old review stays where it is; nothing starts
                return self._warn(f"The saved review in {car.folder} cannot be set aside ({exc}).")
            show_info(f"The previous review was kept in {kept}.")
            car = Sidecar(car.folder)
        provenance = view.metadata_subset(labels, PROVENANCE_KEYS)
        prob_flat = None if prob is None else view.flat(prob)
        state = ReviewState.from_labels(view.flat(labels), prob_flat, provenance)
        self._bind(image, labels, prob, state, car)
        self._save(None)

    def _bind(
        self,
        image: Image,
        labels: Labels,
        prob: Image | None,
        state: ReviewState,
        car: Sidecar,
    ) -> None:
        self._unbind_labels()
        self.image_layer, self.labels_layer, self.prob_layer = image, labels, prob
        self.state, self.sidecar = state, car
        self._touched = set()
        self._offered.add(str(car.folder))
        labels.metadata[SIDECAR_KEY] = str(car.folder)
        self.session.bind_review(labels, image, state, str(car.folder))
        labels.events.paint.connect(self._on_paint)
        labels.events.data.connect(self._on_data)
        labels.events.set_data.connect(self._on_set_data)
        labels.events.mode.connect(self._on_mode)
        self.table.set_targets(state.sorted_targets())
        self.tracks.bound()
        self._apply_filter()
        self._refresh_progress()
        self.status.setText(f"Reviewing {labels.name!r} on {image.name!r}; autosave: {car.folder}")

    def _unbind_labels(self) -> None:
        layer = self.labels_layer
        if layer is None:
            return
        for ev, fn in (
            (layer.events.paint, self._on_paint),
            (layer.events.data, self._on_data),
            (layer.events.set_data, self._on_set_data),
            (layer.events.mode, self._on_mode),
        ):
            ev.disconnect(fn)
        self.session.end_review(layer)
        self.labels_layer = None
        self.state = None

    def _on_layer_removed(self, event: Any) -> None:
        """Removing the mask or the image under review ends the review (it stays saved)."""
        gone = getattr(event, "value", None)
        if view.same_layer(gone, self.prob_layer):
            self.prob_layer = None
        if self.state is None or not (
            view.same_layer(gone, self.labels_layer) or view.same_layer(gone, self.image_layer)
        ):
            return
        what = "mask" if view.same_layer(gone, self.labels_layer) else "image"
        folder = self.sidecar.folder if self.sidecar is not None else "?"
        if self.add_mode:
            self.toggle_add_mode(False)
        self._unbind_labels()
        self.image_layer = self.prob_layer = None
        self.table.set_targets([])
        self._refresh_progress()
        self.status.setText(f"The {what} layer was removed; its review is saved in {folder}.")

    # ------------------------------------------------------------------------------ syncing
    def _prob_frame(self, frame: int) -> np.ndarray | None:
        return None if self.prob_layer is None else view.grey_frame(self.prob_layer, frame)

    def _sync(self, frames: Iterable[int]) -> list[Target]:
        """Diff the given frames of the mask against the state; update the table; autosave."""
        if self.state is None or self.labels_layer is None:
            return []
        stack = view.flat(self.labels_layer)
        changed: list[Target] = []
        frames = {f for f in frames if 0 <= f < self.state.n_frames}
        rerun = frames & self.state.model_frames  # re-segmented by Run IRSAM
        for f in sorted(frames):
            changed += self.state.sync_frame(f, stack[f], self._prob_frame(f))
        if changed or rerun:
            self._touched |= {t.frame for t in changed}
            keys = {t.key for t in changed}
            self.table.remove_keys(k for k in keys if k not in self.state.targets)
            self.table.update_targets(
                self.state.targets[k] for k in keys if k in self.state.targets
            )
            self._save({t.frame for t in changed} | rerun, stack)
            self._refresh_progress()
            self.tracks.changed(changed)
        return changed

    def _on_paint(self, event: Any) -> None:
        """napari emits ``paint`` *before* it writes the pixels: sync on the next loop turn."""
        if self._busy or self.state is None:
            return
        frames = view.frames_touched(
            getattr(event, "value", None) or [], view.lead_shape(self.labels_layer)
        )
        self._pending |= set(range(self.state.n_frames)) if frames is None else frames
        self._flush.start()

    def _flush_pending(self) -> None:
        frames, self._pending = self._pending, set()
        self._sync(frames)

    def _on_data(self, event: Any = None) -> None:
        if self._busy or self.state is None or self.labels_layer is None:
            return
        if view.n_frames(self.labels_layer) != self.state.n_frames or view.data_shape(
            self.labels_layer
        )[-2:] != tuple(self.state.frame_shape):
            name = self.labels_layer.name
            self._unbind_labels()
            self.table.set_targets([])
            self._warn(f"{name!r} changed shape; press Start review to review it again.")
            return
        self._sync(range(self.state.n_frames))

    def _on_set_data(self, event: Any = None) -> None:
        if not self._busy and self.state is not None:
            self._rescan.start()  # undo/redo and in-place writes + refresh(): coalesced

    def rescan(self) -> list[Target]:
        """Sync the shown frame, frames with pending paint events and frames edited before
        (napari's undo/redo only emit a refresh, not which frame they changed)."""
        if self.state is None or self.labels_layer is None:
            return []
        frames, self._pending = self._pending, set()
        frames.add(view.current_frame(self.viewer, self.labels_layer))
        if len(self._touched) < 1000:
            frames |= self._touched
        return self._sync(frames | self.state.model_frames)

    # ------------------------------------------------------------------------------ autosave
    def _save(self, frames: Iterable[int] | None, stack: np.ndarray | None = None) -> None:
        if self.state is None or self.sidecar is None or self.labels_layer is None:
            return
        stack = view.flat(self.labels_layer) if stack is None else stack
        image = self.image_layer
        meta = {
            "labels_layer": self.labels_layer.name,
            # the mask's own metadata (Run IRSAM's provenance, runs, frames), restored with it
            "labels_metadata": view.metadata_subset(
                self.labels_layer,
                [k for k in self.labels_layer.metadata if k != SIDECAR_KEY],
            ),
            "image": {
                "name": image.name,
                "shape": list(view.data_shape(image)),
                "source_paths": view.source_paths(image),
            },
        }
        try:
            self.sidecar.save(self.state, stack, frames=frames, meta=meta)
            self._save_failed = False
        except Exception as exc:  # never raise into napari's event loop; warn once per streak
            if not self._save_failed:
                reason = " ".join(str(exc).split()).rstrip(".") or exc.__class__.__name__
                show_warning(f"Autosave to {self.sidecar.folder} failed ({reason}).")
            self._save_failed = True
        self.session.review_touched(self.labels_layer)

    # ------------------------------------------------------------------------------ keys/close
    def event(self, ev: QEvent) -> bool:
        """napari removes a dock widget by un-parenting it (no close): unbind then; re-bind when
        it is docked again."""
        if ev.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._docked = True
                self._bind_viewer()
            elif self._docked:
                self._unbind_viewer()
        return super().event(ev)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self._unbind_viewer()
        super().closeEvent(event)
