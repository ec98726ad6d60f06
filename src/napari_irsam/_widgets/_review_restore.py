"""Restoring a saved review in the "Review targets" widget: offer it, load it into its mask.

A mixin of :class:`~napari_irsam._widgets.review.ReviewWidget` (kept apart to keep modules small);
it relies on the widget's pickers (``ReviewForm``), ``_layer``, ``_bind``, ``_warn``, ``_note``
and ``_location``. The mask layer gets back the metadata it had when it was saved (Run IRSAM's
model, threshold, runs and processed frames), so Export still knows where the mask came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from napari.layers import Image, Labels
from qtpy.QtWidgets import QMessageBox

from ..data.sidecar import Sidecar
from . import _review_view as view
from ._layers import MASK, output_name

log = logging.getLogger(__name__)


class ReviewRestore:
    """Offer/restore a saved review; mixed into ``ReviewWidget`` (which provides the attributes)."""

    viewer: Any
    ask_restore: Callable[[str], bool]
    _offered: set[str]
    _busy: bool

    def _ask_dialog(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Restore review", question)
        return answer == QMessageBox.StandardButton.Yes

    def _ask(self, car: Sidecar, image: Image) -> bool:
        self._offered.add(str(car.folder))
        try:
            summary = car.summary()
        except (ValueError, KeyError) as exc:
            self._note(f"The saved review in {car.folder} cannot be read ({exc}).", warning=True)
            return False
        return bool(
            self.ask_restore(f"A saved review of {image.name!r} exists ({summary}). Restore it?")
        )

    def _offer_restore(self, image: Image) -> None:
        try:
            car = Sidecar(self._location(image))
        except Exception:  # lazy data that cannot be read: no offer, no crash
            log.debug("no sidecar location for %s", image.name, exc_info=True)
            return
        if car.exists() and str(car.folder) not in self._offered and self._ask(car, image):
            self.restore(car, image)

    def _restore_saved(self, image: Image) -> bool:
        """Ask about the image's saved review, if any, and restore it; whether it was restored."""
        try:
            car = Sidecar(self._location(image))
        except Exception:  # lazy data that cannot be read: nothing to offer
            return False
        return car.exists() and self._ask(car, image) and self.restore(car, image)

    def restore(self, car: Sidecar, image: Image) -> bool:
        """Load a saved review into its mask layer (created if missing) and the table."""
        try:
            state, labels, meta = car.load()
        except (ValueError, KeyError, OSError) as exc:
            self._warn(f"The saved review in {car.folder} cannot be read ({exc}).")
            return False
        shape = view.data_shape(image)
        if (state.n_frames, *state.frame_shape) != (view.n_frames(image), *shape[-2:]):
            self._warn(
                f"The saved review is for {state.n_frames} frame(s) of {state.frame_shape}, "
                f"not {image.name!r} {shape}; not restored."
            )
            return False
        name = meta.get("labels_layer") or output_name(MASK, image.name)
        layer = self._layer(name, Labels)
        data = labels.reshape(shape)
        saved_md = dict(meta.get("labels_metadata") or {})  # e.g. Run IRSAM's provenance
        self._busy = True
        try:
            if layer is not None and view.data_shape(layer) == shape:
                layer.data = data.astype(layer.data.dtype, copy=False)
                for key, value in saved_md.items():
                    layer.metadata.setdefault(key, value)
            else:
                if layer is not None:
                    name = f"{name} (restored)"
                layer = self.viewer.add_labels(
                    data,
                    name=name,
                    scale=image.scale,
                    translate=image.translate,
                    metadata=saved_md,
                )
        finally:
            self._busy = False
        prob = self._layer(self.prob_combo.currentText(), Image)
        if prob is not None and view.data_shape(prob) != shape:
            prob = None
        self._bind(image, layer, prob, state, car)
        self.image_combo.setCurrentText(image.name)
        self.labels_combo.setCurrentText(layer.name)
        self._note(f"Review restored: {state.progress_line()}.")
        return True
