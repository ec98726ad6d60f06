"""Layer names and layer pickers shared by the widgets (one copy of each rule).

* "Run IRSAM" names its outputs ``"<title> [<image>]"`` (:func:`output_name`); every title starts
  with one of :data:`OUTPUT_PREFIXES`, so pickers of *input* images leave them out.
* :class:`LayerWatch` calls a widget back when a layer is added, removed, reordered or renamed
  (napari has no single event for a rename in the list: each layer's ``name`` event is hooked
  once), holding the widget only weakly.
* :func:`find_layer` looks a layer up by name and kind with ``isinstance`` (a widget opened from
  the Plugins menu sees ``PublicOnlyProxy`` layers, on which an exact-type comparison fails).

No torch import here: "Review targets" and "Export training set" never need it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

MASK = "IRSAM mask"
PROB = "IRSAM probability"
WPMD_EDGES = "WPMD edges"
WPMD_DIFFUSED = "WPMD diffused"
#: PCA colourings of the encoder's features (not the GAD's granularity path; see docs/run-irsam.md)
FEATURES_EARLY = "IRSAM features, early (PCA)"
FEATURES_DEEP = "IRSAM features, deep (PCA)"
#: what every output layer name starts with ("granularity ": layers named before the rename)
OUTPUT_PREFIXES = ("IRSAM ", "WPMD ", "granularity ")


def output_name(title: str, image_name: str) -> str:
    """Name of the output ``title`` (e.g. :data:`MASK`) of "Run IRSAM" on ``image_name``."""
    return f"{title} [{image_name}]"


def is_output(name: str) -> bool:
    """Whether a layer name is one of "Run IRSAM"'s outputs (not an image to segment)."""
    return name.startswith(OUTPUT_PREFIXES)


def find_layer(viewer: Any, name: str, kind: type) -> Any | None:
    """The layer called ``name`` if it is a ``kind`` (e.g. ``Labels``), else None."""
    if name and name in viewer.layers:
        layer = viewer.layers[name]
        return layer if isinstance(layer, kind) else None
    return None


def input_images(viewer: Any) -> list[Any]:
    """Image layers that can be segmented, reviewed or exported (our outputs left out)."""
    from napari.layers import Image

    return [ly for ly in viewer.layers if isinstance(ly, Image) and not is_output(ly.name)]


class LayerWatch:
    """Calls ``callback(event)`` when the viewer's layer list changes or a layer is renamed.

    The watch holds ``callback`` (a bound method of a widget) weakly, so it never keeps a closed
    widget alive; once the widget is gone, events are ignored.
    """

    def __init__(self, viewer: Any, callback: Callable[[Any], Any]) -> None:
        self._viewer = viewer
        self._callback = weakref.WeakMethod(callback)
        self._hooked: set[Any] = set()  # unique_ids of layers whose name event is connected
        events = viewer.layers.events
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self)
        self._hook()

    def _hook(self) -> None:
        for layer in self._viewer.layers:
            if layer.unique_id not in self._hooked:
                self._hooked.add(layer.unique_id)
                layer.events.name.connect(self)

    def __call__(self, event: Any = None) -> None:
        callback = self._callback()
        if callback is None:
            return
        self._hook()
        try:
            callback(event)
        except RuntimeError as exc:  # the Qt side of the widget was deleted
            if "deleted" not in str(exc):
                raise
