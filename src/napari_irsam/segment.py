"""Segment a stack frame by frame, as a generator (torch/numpy only; no napari, no Qt).

The "Run IRSAM" widget runs :func:`run_segmentation` in a napari thread worker and updates its
layers from what it yields; the CLI and the tests iterate it synchronously. Nothing here touches a
display, so every path can be tested without one.

Flow::

    cache = ModelCache()
    spec = RunSpec(model="path/to/ckpt.pt", device="cpu", threshold=0.5)
    for event in run_segmentation(spec, frames, frame_indices=[0, 3], cache=cache):
        if isinstance(event, RunStarted): ...   # model loaded; allocate outputs
        else: ...                               # FrameDone: one frame's maps, write them

Loading errors (:class:`~napari_irsam.model.CheckpointError`, a ``ValueError``) are raised
*before* the first event, so a caller that only builds outputs on :class:`RunStarted` never
leaves half-built outputs behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .data.lazy import LazyFrames

#: prefix of model choices that name a weight-free classical detector, e.g. ``"classical:tophat"``
CLASSICAL_PREFIX = "classical:"


def classical_detectors() -> list[str]:
    """Names of the weight-free detectors (``tophat``, ``maxmedian``, ``mpcm``)."""
    from .classical import CLASSICAL_DETECTORS

    return list(CLASSICAL_DETECTORS)


def label_targets(mask: Any, first_id: int = 1, out: Any = None) -> Any:
    """(H, W) bool mask → (H, W) int32 labels, one id per 8-connected target, ids ≥ ``first_id``.

    Ids are offset so that a frame labelled with ``first_id = previous max + 1`` never reuses an id
    already present elsewhere in the stack: review works target by target across the stack.
    ``out`` (an (H, W) int32 array, e.g. a frame of a disk-backed layer) receives the labels
    when given. Frames over :data:`~napari_irsam.targets_large.LARGE_PIXELS` are labelled band
    by band (same ids, no whole-frame temporaries).
    """
    from .targets import relabel_components
    from .targets_large import LARGE_PIXELS, label_large

    h, w = mask.shape[:2]
    if h * w > LARGE_PIXELS:
        return label_large(mask, out, first_id)[0]
    labels = np.asarray(relabel_components(np.asarray(mask, bool)[None]))[0].astype(np.int32)
    labels[labels > 0] += np.int32(first_id - 1)
    if out is not None:
        out[...] = labels
        return out
    return labels


@dataclass
class FrameOutput:
    """What one frame produced. Every map is aligned with the frame's (H, W) pixels."""

    prob: np.ndarray  #: (H, W) float32: IRSAM probability, or a classical detector's saliency
    mask: np.ndarray  #: (H, W) bool
    seconds: float  #: wall time spent on this frame
    wpmd_edges: np.ndarray | None = None  #: (H, W) float32, None without WPMD
    wpmd_diffused: np.ndarray | None = None  #: (H, W) float32, None without WPMD
    granularity_local: np.ndarray | None = None  #: (H, W, 3) float32 in [0, 1]
    granularity_global: np.ndarray | None = None  #: (H, W, 3) float32 in [0, 1]


@dataclass
class RunStarted:
    """First event of a run: the model is ready; ``outputs`` names the maps frames will carry."""

    total: int  #: frames in this run
    frame_indices: list[int]  #: stack indices, in processing order
    outputs: tuple[str, ...]  #: subset of FrameOutput field names that will be filled
    metadata: dict[str, Any]  #: model_id, checkpoint_sha256, config, mode, threshold, device …


@dataclass
class FrameDone:
    """Frame ``index`` (of the whole stack) is done; ``done`` of ``total`` in this run."""

    index: int
    done: int
    total: int
    output: FrameOutput


class Segmenter(Protocol):
    """Anything that turns a (N, H, W) float32 stack into per-frame outputs, lazily."""

    metadata: dict[str, Any]
    outputs: tuple[str, ...]

    def iter_frames(
        self, frames: np.ndarray, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[int, FrameOutput]]:
        """Yield ``(position in frames, output)`` as each frame completes."""
        ...


class IRSAMSegmenter:
    """A :class:`~napari_irsam.inference.Predictor` seen as a :class:`Segmenter`."""

    def __init__(self, predictor: Any, metadata: dict[str, Any] | None = None) -> None:
        self.predictor = predictor
        has_wpmd = bool(predictor.model.config.wpmd_levels)
        maps = getattr(predictor, "maps", ("features", "wpmd"))
        self.outputs: tuple[str, ...] = ("prob", "mask")
        if "features" in maps:
            self.outputs += ("granularity_local", "granularity_global")
        if has_wpmd and "wpmd" in maps:
            self.outputs += ("wpmd_edges", "wpmd_diffused")
        self.metadata = {
            **(metadata or {}),
            "threshold": float(predictor.threshold),
            "min_peak": float(getattr(predictor, "min_peak", 0.0)),
            "refine": float(getattr(predictor, "refine", 0.0)),
            "temperature": float(getattr(predictor, "temperature", 1.0)),
            "device": str(predictor.device),
            "precision": str(getattr(predictor, "precision", "fp32")),
            "tta": bool(getattr(predictor, "tta", False)),
            "has_wpmd": has_wpmd,
        }

    def iter_frames(
        self, frames: np.ndarray, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[int, FrameOutput]]:
        # one call for the whole selection: granularity colours share one PCA basis
        for res in self.predictor.iter_predict(frames, should_stop=should_stop):
            p = res.prediction
            yield (
                res.index,
                FrameOutput(
                    prob=p.prob,
                    mask=p.mask,
                    seconds=p.seconds,
                    wpmd_edges=p.wpmd_edges,
                    wpmd_diffused=p.wpmd_diffused,
                    granularity_local=p.granularity_local,
                    granularity_global=p.granularity_global,
                ),
            )


class ClassicalSegmenter:
    """A weight-free detector from :mod:`napari_irsam.classical` seen as a :class:`Segmenter`.

    Its saliency map takes the place of the probability map; it has no WPMD or granularity.
    """

    outputs: tuple[str, ...] = ("prob", "mask")

    def __init__(self, name: str, **params: Any) -> None:
        from .classical import CLASSICAL_DETECTORS

        if name not in CLASSICAL_DETECTORS:
            raise ValueError(
                f"Unknown classical detector {name!r}; choose one of {sorted(CLASSICAL_DETECTORS)}."
            )
        self.name = name
        self.params = params
        self.metadata = {
            "model_id": f"{CLASSICAL_PREFIX}{name}",
            "checkpoint": None,
            "checkpoint_sha256": None,
            "config": None,
            "mode": "classical",
            "threshold": None,  # each detector thresholds its own saliency (see metadata)
            "min_peak": None,
            "refine": None,
            "temperature": None,
            "device": "cpu",
            "params": dict(params),
            "precision": "fp32",
            "tta": False,
            "has_wpmd": False,
        }

    def iter_frames(
        self, frames: np.ndarray, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[int, FrameOutput]]:
        from .classical import detect

        for i in range(frames.shape[0]):
            if should_stop is not None and should_stop():
                return
            t0 = time.perf_counter()
            det = detect(self.name, frames[i], **self.params)
            yield (
                i,
                FrameOutput(
                    prob=np.asarray(det.saliency, np.float32),
                    mask=np.asarray(det.mask, bool),
                    seconds=time.perf_counter() - t0,
                ),
            )


def segment_stack(
    frames: np.ndarray,
    segmenter: Segmenter,
    frame_indices: Sequence[int] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[FrameDone]:
    """Run ``segmenter`` on the chosen frames of a stack, yielding one :class:`FrameDone` each.

    Args:
        frames: (N, H, W) grey or (N, H, W, 3|4) colour stack (numpy, memmap, dask, zarr: any
            array that supports ``frames[i]``; only the chosen frames are read, one at a time);
            colour is converted to luminance.
        frame_indices: stack indices to process (default: all), processed in this order.
        should_stop: checked between frames; closing the generator also stops it.
    """
    n = frames.shape[0]
    indices = list(range(n)) if frame_indices is None else [int(i) for i in frame_indices]
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise ValueError(f"Frame index {bad[0]} is outside the stack of {n} frame(s).")
    if not indices:
        return
    # read frame by frame as the segmenter asks (a lazy stack is never loaded whole)
    selected = LazyFrames(frames, indices, grey=frames.ndim == 4)
    for done, (pos, out) in enumerate(segmenter.iter_frames(selected, should_stop), 1):
        yield FrameDone(indices[pos], done, len(indices), out)


@dataclass(frozen=True)
class RunSpec:
    """What to run: ``model`` is ``"default"``, ``"mobile_sam"``, a checkpoint path, or
    ``"classical:<name>"``; ``device`` is one of ``available_devices()`` or ``"auto"``."""

    model: str
    device: str = "auto"
    #: IRSAM probability threshold; None = the checkpoint's calibrated one (else 0.5)
    threshold: float | None = None
    params: dict[str, Any] = field(default_factory=dict)  #: classical detector parameters
    #: IRSAM display maps to compute (``inference.DISPLAY_MAPS``: "features", "wpmd"); only the
    #: layers someone asked for cost time
    maps: tuple[str, ...] = ("features", "wpmd")
    #: "fp32", or "bf16"/"fp16" autocast on CUDA (the CPU always runs fp32)
    precision: str = "fp32"
    #: temporal consistency: isolated one-frame detections are down-weighted (``tracks_temporal``)
    temporal: bool = False
    #: IRSAM only: average each tile with its mirror image (``flip_average``; 2× the compute)
    tta: bool = False
    #: IRSAM least target peak probability; None = the checkpoint's calibrated one (else 0)
    min_peak: float | None = None
    #: IRSAM outline refinement fraction (``refine``); None = the checkpoint's calibrated one
    refine: float | None = None


class ModelCache:
    """Keeps the last loaded IRSAM model; reloads when the checkpoint, its file or the device
    changes. One instance per widget (not global), so tests and viewers do not share state."""

    def __init__(self, loader: Callable[[str], tuple[Any, Any]] | None = None) -> None:
        if loader is None:
            from .model import load_model

            loader = load_model
        self._loader = loader
        self._key: tuple[Any, ...] | None = None
        self._value: tuple[Any, Any] | None = None
        self.loads = 0  #: how many times a model was actually loaded

    @staticmethod
    def _key_for(source: str, device: str) -> tuple[Any, ...]:
        path = Path(source).expanduser()
        try:
            st = os.stat(path)
            return (str(path.resolve()), st.st_mtime_ns, st.st_size, device)
        except OSError:
            return (source, None, None, device)

    def get(self, source: str, device: str) -> tuple[Any, Any]:
        """``(model on device, ModelInfo)`` for a registry name or checkpoint path.

        Raises:
            CheckpointError: the file is missing, not a checkpoint, refused or has wrong keys.
        """
        key = self._key_for(source, device)
        if key != self._key or self._value is None:
            self.clear()
            from .model import CheckpointError

            try:
                model, info = self._loader(source)
            except (CheckpointError, MemoryError):
                raise
            except Exception as exc:  # a junk file can fail deep inside torch.load
                raise CheckpointError(
                    f"{Path(source).name} could not be read as a checkpoint "
                    f"({exc.__class__.__name__}: {exc})."
                ) from exc
            from .model import select_device

            model = model.to(select_device(device)).eval()
            self._key, self._value = key, (model, info)
            self.loads += 1
        return self._value

    def clear(self) -> None:
        """Forget the cached model (frees its memory once no predictor holds it)."""
        self._key = self._value = None


def make_segmenter(spec: RunSpec, cache: ModelCache) -> Segmenter:
    """Build the segmenter for ``spec`` (loads or reuses the model).

    Raises:
        CheckpointError / ValueError: with a one-sentence message for the user.
    """
    if spec.model.startswith(CLASSICAL_PREFIX):
        return ClassicalSegmenter(spec.model[len(CLASSICAL_PREFIX) :], **spec.params)
    from .inference import Predictor

    model, info = cache.get(spec.model, spec.device)
    predictor = Predictor(
        model,
        device=spec.device,
        threshold=spec.threshold,
        maps=spec.maps,
        precision=spec.precision,
        tta=spec.tta,
        min_peak=spec.min_peak,
        refine=spec.refine,
    )
    return IRSAMSegmenter(predictor, info.as_metadata())


def run_segmentation(
    spec: RunSpec,
    frames: np.ndarray,
    frame_indices: Sequence[int] | None = None,
    cache: ModelCache | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[RunStarted | FrameDone]:
    """Load (or reuse) the model, yield :class:`RunStarted`, then a :class:`FrameDone` per frame.

    ``frames`` is a (N, H, W[, C]) stack; loading errors are raised before anything is yielded.
    """
    segmenter = make_segmenter(spec, cache or ModelCache())
    if spec.temporal:
        from .tracks_temporal import TemporalSegmenter

        segmenter = TemporalSegmenter(segmenter)
    else:
        segmenter.metadata = {**segmenter.metadata, "temporal": None}
    n = frames.shape[0]
    indices = list(range(n)) if frame_indices is None else [int(i) for i in frame_indices]
    yield RunStarted(len(indices), indices, tuple(segmenter.outputs), dict(segmenter.metadata))
    yield from segment_stack(frames, segmenter, indices, should_stop)
