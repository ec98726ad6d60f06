"""Output layers of "Run IRSAM": created once per source image, updated in place.

Each output has the source stack's shape (frames not processed yet are zero) and the source's
scale/translate, and is named ``"<title> [<image>]"`` (:func:`._layers.output_name`) so a re-run
finds and reuses it. Layers are found by name and checked with ``isinstance``: a widget opened
from the Plugins menu sees napari's ``PublicOnlyProxy`` of each layer, for which ``type(layer)``
is the proxy class.

A mask under review (registered by "Review targets" in the viewer's
:class:`~napari_irsam._widgets._session.Session`) is told which frames the model rewrites, so the
review rebuilds them as fresh pending targets.

Display: the WPMD edge strength is drawn with a transparent-to-magenta colormap and translucent
blending, so strong edges show on dark and bright images alike (additive white vanished on a
bright sky); the diffused map and the feature colourings are opaque images (hidden at first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Layer
from napari.utils.colormaps import Colormap

from ..data.lazy import new_output_array
from ..segment import FrameDone, FrameOutput, RunStarted, label_targets
from ..targets_large import finite_range
from . import _layers as names
from ._session import Session

#: WPMD edge strength: 0 transparent → strong edges opaque magenta
EDGE_COLORMAP = Colormap(
    [[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]], name="irsam_edges", display_name="IRSAM edges"
)


@dataclass(frozen=True)
class OutputKind:
    field: str  #: FrameOutput attribute
    title: str  #: layer name prefix
    layer_type: type[Layer]
    dtype: Any
    rgb: bool = False
    visible: bool = True
    colormap: str | Colormap = "gray"
    blending: str = "additive"


#: one layer per output; ``field`` is the :class:`~napari_irsam.segment.FrameOutput` attribute
#: (``granularity_*`` there are the PCA colourings of the encoder features, titled as such here)
OUTPUTS: tuple[OutputKind, ...] = (
    OutputKind("mask", names.MASK, Labels, np.int32),
    OutputKind("prob", names.PROB, Image, np.float32, visible=False, colormap="magma"),
    OutputKind(
        "wpmd_edges",
        names.WPMD_EDGES,
        Image,
        np.float32,
        visible=False,
        colormap=EDGE_COLORMAP,
        blending="translucent",
    ),
    OutputKind(
        "wpmd_diffused", names.WPMD_DIFFUSED, Image, np.float32, visible=False, blending="opaque"
    ),
    OutputKind("granularity_local", names.FEATURES_EARLY, Image, np.uint8, rgb=True, visible=False),
    OutputKind("granularity_global", names.FEATURES_DEEP, Image, np.uint8, rgb=True, visible=False),
)

layer_name = names.output_name  # the name of an output layer: "<title> [<image>]"


class OutputLayers:
    """The layers one run writes into; built on :class:`RunStarted`, filled on :class:`FrameDone`.

    Args:
        viewer: the napari viewer.
        source: the image layer being segmented; its data is (…, H, W[, C]).
        stack_shape: (N, H, W) of the flattened stack, N = product of the leading axes.
        session: the viewer's widget session (which masks are under review); None: no review.
    """

    def __init__(
        self,
        viewer: Any,
        source: Image,
        stack_shape: tuple[int, int, int],
        session: Session | None = None,
    ) -> None:
        self.viewer = viewer
        self.session = session
        self.source = source
        self.stack_shape = stack_shape
        data_shape = source.data.shape[:-1] if source.rgb else source.data.shape
        self.shape: tuple[int, ...] = tuple(int(s) for s in data_shape)  # (…, H, W)
        self.layers: dict[str, Layer] = {}
        self.created: list[str] = []  # fields whose layer this run added to the viewer
        self.selected = False  # the mask was made the active layer after they were built
        self.flat: dict[str, np.ndarray] = {}  # (N, H, W[, 3]) views of each layer's data
        self.next_label = 1
        self.run: dict[str, Any] = {}
        self._seconds: list[float] = []
        self._limits: dict[str, tuple[float, float]] = {}
        self._pending: list[OutputKind] = []
        self._queue: list[FrameDone] = []
        self._started: RunStarted | None = None

    # ----------------------------------------------------------------------------------- layers
    def _find(self, name: str, kind: OutputKind) -> Layer | None:
        if name not in self.viewer.layers:
            return None
        layer = self.viewer.layers[name]
        return layer if isinstance(layer, kind.layer_type) else None

    def start(self, event: RunStarted) -> list[str]:
        """Plan the layers this run writes; returns the titles of outputs it will not produce.

        Layers are then built one per :meth:`build_next` call, so a caller can spread their
        creation (≈0.1–0.35 s each in napari) over several event-loop turns instead of one long
        stall; frames that arrive before every layer exists are queued by :meth:`write`.
        """
        self.run = {
            **event.metadata,
            "frames": list(event.frame_indices),
            "seconds_per_frame": None,
        }
        self._started = event
        self._pending = [kind for kind in OUTPUTS if kind.field in event.outputs]
        self._queue: list[FrameDone] = []
        return [kind.title for kind in OUTPUTS if kind.field not in event.outputs]

    @property
    def ready(self) -> bool:
        """Every planned layer exists."""
        return not self._pending

    def build_next(self) -> bool:
        """Create or reuse the next planned layer; True while more remain."""
        if self._pending:
            kind = self._pending.pop(0)
            self.layers[kind.field] = self._prepare(kind)
            if kind.field == "mask":
                mask = self.flat["mask"]
                others = np.ones(mask.shape[0], bool)
                others[self._started.frame_indices] = False
                # ids stay unique across the stack: new targets start above ids in other frames
                self.next_label = int(mask[others].max(initial=0)) + 1
            if not self._pending:
                queued, self._queue = self._queue, []
                for event in queued:
                    self._write(event)
        return bool(self._pending)

    def _prepare(self, kind: OutputKind) -> Layer:
        name = layer_name(kind.title, self.source.name)
        full = self.shape + ((3,) if kind.rgb else ())
        layer = self._find(name, kind)
        if layer is None or layer.data.shape != full or layer.data.dtype != kind.dtype:
            data = new_output_array(full, kind.dtype)  # a disk-backed memmap when big
            if layer is None:
                layer = self._add(kind, name, data)
                self.created.append(kind.field)
            else:  # the source changed shape: same layer object, fresh data
                layer.data = data
                layer.metadata.pop("processed_frames", None)
        self.flat[kind.field] = layer.data.reshape(self.stack_shape + ((3,) if kind.rgb else ()))
        if not np.shares_memory(self.flat[kind.field], layer.data):
            raise RuntimeError(f"{name} data is not contiguous; cannot update it in place.")
        return layer

    def _add(self, kind: OutputKind, name: str, data: np.ndarray) -> Layer:
        common = {
            "name": name,
            "scale": self.source.scale,
            "translate": self.source.translate,
            "visible": kind.visible,
        }
        if kind.layer_type is Labels:
            return self.viewer.add_labels(data, **common)
        if kind.rgb:
            return self.viewer.add_image(data, rgb=True, **common)
        return self.viewer.add_image(
            data,
            colormap=kind.colormap,
            contrast_limits=(0.0, 1.0),
            blending=kind.blending,
            **common,
        )

    # ----------------------------------------------------------------------------------- frames
    def write(self, event: FrameDone) -> None:
        """Write one finished frame into every layer and refresh them (queued until ready)."""
        if self._pending:
            self._queue.append(event)
        else:
            self._write(event)

    def _write(self, event: FrameDone) -> None:
        out: FrameOutput = event.output
        i = event.index
        self._seconds.append(out.seconds)
        self.run["seconds_per_frame"] = float(np.mean(self._seconds))
        for fld, layer in self.layers.items():
            if fld == "mask":
                review = None if self.session is None else self.session.review_of(layer)
                if review is not None:
                    review.expect_model_output([i])  # before the pixels change
                # written straight into the layer's frame (a disk-backed one for big outputs)
                labels = label_targets(out.mask, self.next_label, out=self.flat[fld][i])
                self.next_label = max(self.next_label, int(labels.max()) + 1)
            else:
                value = getattr(out, fld)
                if value is None:
                    continue
                if fld.startswith("granularity"):
                    value = np.clip(np.asarray(value) * 255.0 + 0.5, 0, 255).astype(np.uint8)
                else:
                    self._track_limits(fld, layer, value)
                self.flat[fld][i] = value
            self._record(layer, i)
            layer.refresh()

    def _track_limits(self, fld: str, layer: Layer, value: np.ndarray) -> None:
        """Widen contrast limits of maps whose range is not [0, 1] as frames arrive."""
        found = finite_range(value)  # band by band: no whole-frame copies of big maps
        if found is None:
            return
        lo, hi = found
        old = self._limits.get(fld)
        lo, hi = (lo, hi) if old is None else (min(lo, old[0]), max(hi, old[1]))
        self._limits[fld] = (lo, hi)
        if fld != "prob" or lo < 0.0 or hi > 1.0:
            layer.contrast_limits_range = (lo, max(hi, lo + 1e-6))
            layer.contrast_limits = (lo, max(hi, lo + 1e-6))

    def _record(self, layer: Layer, index: int) -> None:
        """Provenance: latest run's settings at top level; every run and frame listed."""
        md = layer.metadata
        processed = set(md.get("processed_frames", []))
        processed.add(int(index))
        runs = md.setdefault("runs", [])
        if not runs or runs[-1] is not self.run:
            runs.append(self.run)
        md.update({k: v for k, v in self.run.items() if k != "frames"})
        md["processed_frames"] = sorted(processed)
        md["source_layer"] = self.source.name


def outputs_note(event: RunStarted) -> str:
    """What a run will not show (said once in Run IRSAM's status line)."""
    if event.metadata.get("mode") == "classical":
        return " Classical detectors give a mask and a saliency map only."
    if "granularity_local" not in event.outputs:
        return " Display maps off: mask and probability only."
    return "" if event.metadata.get("has_wpmd") else " This model has no WPMD: no WPMD layers."
