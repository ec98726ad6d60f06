"""Planning an export from napari layers, without Qt: what "Export training set" will write.

:func:`build_plan` gathers what :func:`napari_irsam.data.export.export_training_set` needs into an
:class:`ExportPlan` (built on the main thread, run in a worker by the widget in :mod:`.export`):

* frames of an image layer and the masks of a labels layer (leading axes flattened in C order,
  as "Run IRSAM" and "Review targets" do), checked to have the same (…, H, W) shape;
* the review of the labels layer (the live :class:`~napari_irsam.review.ReviewState` that
  "Review targets" registered in the viewer's session; the widget passes it in): per-frame
  reviewed flags, target status counts (overall and per frame) and provenance;
* provenance of the masks (model id, checkpoint sha256, threshold, device…) from the metadata
  "Run IRSAM" writes on its output layers;
* the source file of every frame (``layer.source.path`` or the reader's ``source_paths``) and
  file-safe, unique sample names ``<source stem>_f<frame>``.

Also the fine-tuning command and starting checkpoint offered after an export. Never imports torch.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.export import ExportResult, export_training_set
from ..data.export_formats import track_points_of
from ..review import PROVENANCE_KEYS  # run metadata passed on to the manifest
from ._frames import FrameStack
from ._frames import data_shape as _data_shape
from ._frames import n_frames as _n_frames
from ._layers import MASK, PROB, output_name

REVIEW_SIDECAR_KEY = "napari_irsam.review_sidecar"  #: where "Review targets" autosaves it


def _stem(text: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", text).strip("._") or "frame"


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def mask_provenance(viewer: Any, image: Any, labels: Any, state: Any | None) -> dict[str, Any]:
    """Model id, checkpoint sha256, threshold… of the masks, for the manifest.

    Taken from the labels layer's own run metadata (it is a "Run IRSAM" mask), else from the
    "Run IRSAM" outputs of the image; the review state's provenance, when it has any, wins.
    """
    prov: dict[str, Any] = {}
    candidates = [labels]
    for title in (MASK, PROB):
        name = output_name(title, image.name)
        if name in viewer.layers:
            candidates.append(viewer.layers[name])
    for layer in candidates:
        md = layer.metadata
        if md.get("model_id") is not None or md.get("runs"):
            prov = {k: _jsonable(md[k]) for k in PROVENANCE_KEYS if k in md}
            runs = md.get("runs") or []
            if len(runs) > 1:  # frames made by different runs: list each run
                prov["runs"] = [
                    {k: _jsonable(r.get(k)) for k in (*PROVENANCE_KEYS[:6], "frames") if k in r}
                    for r in runs
                ]
            prov["mask_layer"] = layer.name
            break
    if state is not None and getattr(state, "provenance", None):
        prov.update({k: _jsonable(v) for k, v in state.provenance.items()})
    prov["image_layer"] = image.name
    prov["labels_layer"] = labels.name
    if image.metadata.get("thermal"):  # radiometric source: camera parameters, timestamps
        prov["thermal"] = _jsonable(image.metadata["thermal"])
    sidecar = labels.metadata.get(REVIEW_SIDECAR_KEY)
    if sidecar:
        prov["review_sidecar"] = str(sidecar)
    return prov


@dataclass
class ExportPlan:
    """Everything one export needs; built on the main thread, run in a worker."""

    out: str
    if_exists: str
    images: Any  #: flat frames of the image layer (read in the worker)
    masks: np.ndarray  #: (K, H, W) copy of the exported frames' labels
    indices: list[int]  #: flat frame indices exported (K of N)
    rgb: bool
    kwargs: dict[str, Any] = field(default_factory=dict)

    def run(self, on_progress: Callable[[int, int], None] | None = None) -> ExportResult:
        frames = np.stack([self.images[i] for i in self.indices])
        if self.rgb:
            from ..preprocess import to_grey

            grey = np.stack([to_grey(f) for f in frames])
            frames = (
                grey.round().clip(0, 255).astype(np.uint8) if frames.dtype == np.uint8 else grey
            )
        return export_training_set(
            self.out,
            frames,
            self.masks,
            if_exists=self.if_exists,
            progress=on_progress,
            **self.kwargs,
        )


def build_plan(
    viewer: Any,
    image: Any | None,
    labels: Any | None,
    *,
    out: str,
    reviewed_only: bool,
    test_ratio: float,
    seed: int,
    if_exists: str = "error",
    state: Any | None = None,
    formats: list[str] | tuple[str, ...] = ("irstd",),
) -> ExportPlan:
    """Collect frames, masks, review and provenance; a one-sentence ``ValueError`` if wrong.

    ``state`` is the labels layer's live review (None when it is not under review).
    """
    if image is None:
        raise ValueError("Choose the image layer to export (open an image first).")
    if labels is None:
        raise ValueError("Choose the labels layer with the corrected masks.")
    if image.multiscale or labels.multiscale:
        raise ValueError("Multiscale layers cannot be exported; open a single resolution.")
    if len(_data_shape(image)) < 2 or _data_shape(image) != _data_shape(labels):
        raise ValueError(
            f"Labels {labels.name!r} {_data_shape(labels)} do not match image {image.name!r} "
            f"{_data_shape(image)}; choose the labels made for this image."
        )
    n = _n_frames(image)
    if state is not None and len(state.reviewed) != n:
        raise ValueError(
            f"The review of {labels.name!r} covers {len(state.reviewed)} frame(s) but the "
            f"image has {n}; reopen the review for this image."
        )
    reviewed = [bool(r) for r in state.reviewed] if state is not None else [False] * n
    indices = [i for i in range(n) if reviewed[i] or not reviewed_only]
    if not indices:
        why = (
            f"{labels.name!r} has no review state"
            if state is None
            else f"no frame of {labels.name!r} is marked reviewed yet"
        )
        raise ValueError(
            f"Nothing to export: {why}; review frames in 'Review targets' first or untick "
            "'only reviewed frames' to export all frames."
        )
    if not out:
        raise ValueError("Choose an output folder for the export.")
    sources, groups, names = _sources_and_names(image, n)
    frame_statuses = None
    statuses: dict[str, int] = {}
    if state is not None:
        statuses = {k: int(v) for k, v in state.counts().items()}
        per: dict[int, Counter[str]] = {}
        for t in getattr(state, "targets", {}).values():
            per.setdefault(int(t.frame), Counter())[t.status] += 1
        frame_statuses = [dict(per.get(i, {})) for i in indices]
    masks = FrameStack(labels).snapshot(indices)  # stable while painting; on disk when big
    kwargs = {
        "names": [names[i] for i in indices],
        "reviewed": [reviewed[i] for i in indices],
        "sources": [sources[i] for i in indices],
        "groups": [groups[i] for i in indices],
        "frame_indices": indices,
        "provenance": mask_provenance(viewer, image, labels, state),
        "statuses": statuses,
        "frame_statuses": frame_statuses,
        "reviewed_only": reviewed_only,
        "test_ratio": round(float(test_ratio), 4),
        "seed": int(seed),
        "formats": list(formats),  # + COCO / YOLO files (data.export_formats)
        "track_points": track_points_of(
            getattr(state, "targets", {}).values(), {i: (sources[i], i) for i in indices}
        ),
    }
    return ExportPlan(out, if_exists, FrameStack(image), masks, indices, bool(image.rgb), kwargs)


def _sources_and_names(image: Any, n: int) -> tuple[list[str], list[str], list[str]]:
    """Source file, split group and sample name of every flat frame of ``image``.

    A folder opened by our reader (one file per frame) keeps each file as its frame's source
    and stem as its name, with the folder as the split group; a stack file or an in-memory
    layer is one source named ``<stem>_f<frame>``.
    """
    path = getattr(image.source, "path", None)
    md = image.metadata
    paths = [str(p) for p in md.get("source_paths") or []]
    names = md.get("frame_names") or []
    if n > 1 and len(paths) == n:
        group = str(path or Path(paths[0]).parent)
        stems = names if len(names) == n else [Path(p).stem for p in paths]
        return paths, [group] * n, [_stem(str(x)) for x in stems]
    base = path or (paths[0] if len(paths) == 1 else None)
    source = str(base) if base else f"<layer {image.name}>"
    stem = _stem(Path(str(base)).stem) if base else _stem(image.name)
    if n == 1 and len(_data_shape(image)) == 2:
        return [source], [source], [stem]
    return [source] * n, [source] * n, [f"{stem}_f{i:04d}" for i in range(n)]


def train_command(folder: str | Path, init: str = "scratch") -> str:
    """The CLI command fine-tuning on an export (shown for copying)."""
    folder = Path(folder)
    return (
        f"napari-irsam train {shlex.quote(str(folder))} --split train "
        f"--out {shlex.quote(str(folder / 'finetune'))} --init {shlex.quote(init)}"
    )


def _init_for(provenance: dict[str, Any]) -> str:
    """Where fine-tuning should start: the checkpoint that made the masks, else the default."""
    ckpt = provenance.get("checkpoint")
    if ckpt and Path(str(ckpt)).is_file():
        return str(ckpt)
    return "default" if _has_bundled_default() else "scratch"


def _has_bundled_default() -> bool:
    """Whether this build ships the ``default`` checkpoint.

    Read from ``weights/registry.json`` directly (same rule as ``weights.bundled_default``):
    importing :mod:`napari_irsam.model` would import torch, which this widget never needs.
    """
    weights = Path(__file__).resolve().parent.parent / "weights"
    try:
        entries = json.loads((weights / "registry.json").read_text())
        return any(
            e.get("name") == "default" and (weights / str(e.get("filename"))).is_file()
            for e in entries
        )
    except (OSError, ValueError, AttributeError):
        return False
