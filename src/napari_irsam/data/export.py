"""Export corrected labels as an IRSTD-layout training set with a provenance manifest.

Layout (loads unchanged in :class:`napari_irsam.data.dataset.IRSTDDataset` and BasicIRSTD-style
toolboxes)::

    out/images/<name>.png     8-bit sources as 8-bit PNG; 16-bit sources as 16-bit PNG (values
                              kept); float sources percentile-stretched to 8 bits (the manifest
                              says which: ``image_format`` per sample and overall)
    out/masks/<name>.png      0/255
    out/splits/train.txt, out/splits/test.txt
    out/manifest.json         per sample: source, frame index, reviewed flag, split, sha256 of both
                              files; counts, provenance (model id, checkpoint sha256, threshold),
                              export time, plugin version

Splits are seeded and keep *blocks* of consecutive frames of one source together, so test frames
are not near-duplicates of training frames; a frame or block once exported keeps its side in every
later append (read back from the manifest). Every file is written atomically. A non-empty target
folder is never overwritten: ``if_exists="error"`` (default) refuses, ``"append"`` adds only
samples that are new, ``"new"`` writes to ``<out>_2``, ``<out>_3``, …. A sample is a duplicate
when its source, stored pixels and mask pixels are (``pixels_sha256``; not the PNG bytes, which
depend on the encoder) — within one export too.
Appending is only allowed into a folder written by this function (it has a ``manifest.json``).
Every problem the user can fix (bad path, nothing to export, shapes) is a one-sentence
``ValueError``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .export_files import (
    check_target,
    image_format,
    is_non_empty,
    known_keys,
    pixel_key,
    safe_name,
    storable_image,
)
from .export_formats import TrackPoint, check_formats, write_detector_formats
from .export_mot import write_track_files
from .io import atomic_write_bytes
from .split import SPLIT_BLOCK, previous_sides, split_blocks

__all__ = [
    "ExportResult",
    "check_target",
    "export_training_set",
    "is_non_empty",
    "pixel_key",
    "split_blocks",
]


@dataclass
class ExportResult:
    folder: Path
    written: list[str]  #: sample names written by this export
    skipped_duplicates: list[str]
    train: list[str]
    test: list[str]


def _png_bytes(arr: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", arr, extension=".png")


@dataclass
class _Frames:
    """The per-frame arguments of :func:`export_training_set`, one entry per input frame."""

    names: list[str]
    reviewed: list[bool]
    sources: list[str]
    frame_indices: list[int]
    groups: list[str]
    statuses: list[dict[str, int]] | None


def _as_frames(images: Any, masks: Any) -> tuple[Any, Any]:
    """(N, H, W[, C]) images and (N, H, W) masks; a single (H, W) frame becomes N = 1. Lazy
    stacks (memmap, dask, zarr) stay lazy: each exported frame is read when it is written."""
    images, masks = _keep_lazy(images), _keep_lazy(masks)
    if images.ndim == 2:
        images = images[None]
    if masks.ndim == 2:
        masks = masks[None]
    if images.ndim not in (3, 4) or masks.ndim != 3 or images.shape[:3] != masks.shape:
        raise ValueError(
            f"Images {images.shape} and masks {masks.shape} differ in shape; export needs one "
            "(H, W) mask per (H, W) frame."
        )
    return images, masks


def _keep_lazy(arr: Any) -> Any:
    lazy = not isinstance(arr, np.ndarray) and all(
        hasattr(arr, a) for a in ("shape", "ndim", "dtype", "__getitem__")
    )
    return arr if lazy else np.asarray(arr)


def _per_frame(
    n: int,
    names: Sequence[str] | None,
    reviewed: Sequence[bool] | None,
    sources: Sequence[str] | None,
    frame_indices: Sequence[int] | None,
    groups: Sequence[str] | None,
    frame_statuses: Sequence[dict[str, int]] | None,
) -> _Frames:
    """Defaults filled in and every list checked to hold one entry per frame."""
    names = list(names) if names is not None else [f"frame_{i:04d}" for i in range(n)]
    reviewed = list(reviewed) if reviewed is not None else [True] * n
    sources = list(sources) if sources is not None else ["<memory>"] * n
    frame_indices = list(frame_indices) if frame_indices is not None else list(range(n))
    groups = list(groups) if groups is not None else sources
    statuses = list(frame_statuses) if frame_statuses is not None else None
    per_frame = {
        "names": names,
        "reviewed": reviewed,
        "sources": sources,
        "frame_indices": frame_indices,
        "groups": groups,
        **({"frame_statuses": statuses} if statuses is not None else {}),
    }
    for what, values in per_frame.items():
        if len(values) != n:
            raise ValueError(f"Got {len(values)} {what} for {n} frame(s).")
    return _Frames(names, reviewed, sources, frame_indices, groups, statuses)


def _read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an earlier export into ``folder`` (no samples when there is none)."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return {"samples": []}
    try:
        old = json.loads(manifest_path.read_text())
        old["samples"] = list(old["samples"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{manifest_path} is damaged ({exc.__class__.__name__}), so nothing can be "
            "appended to it; choose a new folder."
        ) from exc
    return old


def _used_names(folder: Path, samples: list[dict[str, Any]]) -> set[str]:
    """Sample names taken: the manifest's, and every file in images/ (never replace a file the
    manifest does not know, e.g. one left by an interrupted export)."""
    used = {s["name"] for s in samples}
    if (folder / "images").is_dir():
        used |= {p.stem for p in (folder / "images").iterdir() if not p.name.startswith(".")}
    return used


def _draw_sides(
    old: dict[str, Any], frames: _Frames, keep: list[int], test_ratio: float, seed: int
) -> tuple[int, list[bool]]:
    """(split block size, test flag per kept frame): frames and blocks exported before keep
    their side, the others are drawn in blocks (see :func:`split_blocks`)."""
    block = int(old.get("split_block", SPLIT_BLOCK))
    frame_side, block_side = previous_sides(old["samples"], block)
    src, idx, grp = frames.sources, frames.frame_indices, frames.groups
    is_test = split_blocks(
        [str(grp[i]) for i in keep],
        test_ratio,
        seed,
        block=block,
        positions=[int(idx[i]) for i in keep],
        fixed=[
            frame_side.get(
                (str(src[i]), int(idx[i])), block_side.get((str(grp[i]), int(idx[i]) // block))
            )
            for i in keep
        ],
    )
    return block, is_test


def _write_samples(
    folder: Path,
    images: np.ndarray,
    masks: np.ndarray,
    frames: _Frames,
    sides: dict[int, bool],
    seen: set[str],
    used_names: set[str],
    export_no: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Write the kept frames (``sides``: frame → test flag) that are not duplicates of a sample
    seen before, in this export or an earlier one. Returns (new manifest entries, names written,
    names skipped as duplicates); ``seen`` and ``used_names`` are updated."""
    samples: list[dict[str, Any]] = []
    written: list[str] = []
    skipped: list[str] = []
    for done, (i, test) in enumerate(sides.items(), start=1):
        image = np.asarray(images[i])  # one frame read from a lazy stack
        stored = storable_image(image)
        mask = np.where(np.asarray(masks[i]) > 0, 255, 0).astype(np.uint8)
        key = pixel_key(str(frames.sources[i]), stored, mask)
        if key in seen:
            skipped.append(str(frames.names[i]))
        else:
            base = safe_name(frames.names[i])
            name, k = base, 2
            while name in used_names:
                name, k = f"{base}_{k}", k + 1
            img_b, msk_b = _png_bytes(stored), _png_bytes(mask)
            atomic_write_bytes(folder / "images" / f"{name}.png", img_b)
            atomic_write_bytes(folder / "masks" / f"{name}.png", msk_b)
            seen.add(key)
            used_names.add(name)
            written.append(name)
            sample = {
                "name": name,
                "source": frames.sources[i],
                "group": str(frames.groups[i]),
                "frame_index": int(frames.frame_indices[i]),
                "reviewed": bool(frames.reviewed[i]),
                "split": "test" if test else "train",
                "dtype": str(image.dtype),
                "image_format": image_format(stored),
                "image_sha256": hashlib.sha256(img_b).hexdigest(),
                "mask_sha256": hashlib.sha256(msk_b).hexdigest(),
                "pixels_sha256": key,
                "export": export_no,
            }
            if frames.statuses is not None:
                sample["statuses"] = dict(frames.statuses[i])
            samples.append(sample)
        if progress is not None:
            progress(done, len(sides))
    return samples, written, skipped


def _write_splits(
    folder: Path, samples: list[dict[str, Any]]
) -> tuple[list[str], list[str], dict[str, str]]:
    """splits/train.txt and splits/test.txt of every sample; returns (train, test, sha256s)."""
    train = [s["name"] for s in samples if s["split"] == "train"]
    test = [s["name"] for s in samples if s["split"] == "test"]
    split_files = {}
    for split_name, listed in (("train", train), ("test", test)):
        data = "".join(f"{x}\n" for x in listed).encode()
        atomic_write_bytes(folder / "splits" / f"{split_name}.txt", data)
        split_files[f"splits/{split_name}.txt"] = hashlib.sha256(data).hexdigest()
    return train, test, split_files


def _manifest(
    old: dict[str, Any],
    samples: list[dict[str, Any]],
    split_files: dict[str, str],
    record: dict[str, Any],
    block: int,
) -> dict[str, Any]:
    """The new manifest; ``record`` describes this export (number, time, counts, settings) and
    is appended to the export history."""
    formats = sorted({s.get("image_format", "png8") for s in samples})
    return {
        "format": "napari-irsam-export",
        "plugin_version": record["plugin_version"],
        "export_time": record["export_time"],
        "image_format": formats[0] if len(formats) == 1 else "mixed",
        "image_formats": {
            "png8": "8-bit greyscale PNG",
            "png16": "16-bit greyscale PNG, source values kept",
        },
        "provenance": record["provenance"],
        "status_counts": record["status_counts"],
        "reviewed_only": record["reviewed_only"],
        "test_ratio": record["test_ratio"],
        "seed": record["seed"],
        "split_block": block,
        "samples": samples,
        "split_files_sha256": split_files,
        "exports": old.get("exports", []) + [record],
    }


def _write_export(
    folder: Path,
    old: dict[str, Any],
    images: np.ndarray,
    masks: np.ndarray,
    frames: _Frames,
    keep: list[int],
    settings: dict[str, Any],
    progress: Callable[[int, int], None] | None,
) -> ExportResult:
    """Draw the sides, write the new samples, the split files and the manifest (last, so an
    interrupted export leaves the previous manifest in place)."""
    from .. import __version__

    export_no = len(old.get("exports", [])) + 1
    export_time = datetime.now(timezone.utc).isoformat(timespec="seconds")
    block, is_test = _draw_sides(old, frames, keep, settings["test_ratio"], settings["seed"])
    seen, used = known_keys(folder, old["samples"]), _used_names(folder, old["samples"])
    sides = dict(zip(keep, is_test))
    new, written, skipped = _write_samples(
        folder, images, masks, frames, sides, seen, used, export_no, progress
    )
    samples = old["samples"] + new
    train, test, split_files = _write_splits(folder, samples)
    record = {
        "export": export_no,
        "export_time": export_time,
        "plugin_version": __version__,
        "written": len(written),
        "skipped_duplicates": len(skipped),
        **settings,
    }
    manifest = _manifest(old, samples, split_files, record, block)
    data = json.dumps(manifest, indent=1, default=str).encode()
    atomic_write_bytes(folder / "manifest.json", data)
    return ExportResult(folder, written, skipped, train, test)


def export_training_set(
    out: str | os.PathLike[str],
    images: np.ndarray,
    masks: np.ndarray,
    names: Sequence[str] | None = None,
    reviewed: Sequence[bool] | None = None,
    sources: Sequence[str] | None = None,
    frame_indices: Sequence[int] | None = None,
    provenance: dict[str, Any] | None = None,
    statuses: dict[str, int] | None = None,
    reviewed_only: bool = True,
    test_ratio: float = 0.2,
    seed: int = 0,
    if_exists: str = "error",
    frame_statuses: Sequence[dict[str, int]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    groups: Sequence[str] | None = None,
    formats: Sequence[str] = ("irstd",),
    track_points: dict[tuple[str, int], Sequence[TrackPoint]] | None = None,
) -> ExportResult:
    """Write frames (N, H, W) and their labels (N, H, W) as an IRSTD training set.

    Args:
        names: per-frame file stems (default ``frame_0000`` …); sources / frame_indices: where each
            frame came from; reviewed: per-frame flags (default all True); provenance: model id,
            checkpoint sha256, threshold…; statuses: target status counts for the manifest;
            frame_statuses: per-frame target status counts (stored with each sample);
            progress: called as ``progress(done, total)`` after each frame (from this thread);
            groups: per-frame sequence id for the split (default: ``sources``) — give frames of one
            sequence stored as one file per frame the same group so they are split in blocks.
        formats: also "coco" and/or "yolo" (files beside the IRSTD layout, for every sample;
            formats of earlier exports into the folder are kept up to date) and track_points:
            tracked targets per (source, frame index) — see :mod:`.export_formats`.

    Raises:
        ValueError: one sentence the user can act on (bad path, nothing to export, shapes, …).
    """
    images, masks = _as_frames(images, masks)
    n = len(images)
    formats = check_formats(formats)
    frames = _per_frame(n, names, reviewed, sources, frame_indices, groups, frame_statuses)
    if not 0.0 <= test_ratio < 1.0:
        raise ValueError(f"test_ratio must be in [0, 1), got {test_ratio}.")
    keep = [i for i in range(n) if frames.reviewed[i] or not reviewed_only]
    if not keep:
        raise ValueError("No frame is marked reviewed; mark frames reviewed or export all frames.")
    folder = check_target(out, if_exists)
    old = _read_manifest(folder)
    formats = check_formats(
        [*formats, *[f for e in old.get("exports", []) for f in e.get("formats", [])]]
    )
    settings = {
        "formats": formats,
        "reviewed_only": reviewed_only,
        "test_ratio": test_ratio,
        "seed": seed,
        "provenance": provenance or {},
        "status_counts": statuses or {},
    }
    try:
        result = _write_export(folder, old, images, masks, frames, keep, settings, progress)
        write_detector_formats(folder, formats, track_points)
        write_track_files(folder, track_points)  # manifest targets + mot/*.txt, when tracked
        return result
    except OSError as exc:  # disk full, a read-only sub-folder, …: one sentence for the user
        reason = exc.strerror or exc.__class__.__name__
        raise ValueError(f"Cannot write the export to {folder}: {reason}.") from exc
