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
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_write_bytes
from .split import SPLIT_BLOCK, previous_sides, split_blocks


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


def pixel_key(source: str, image: np.ndarray, mask: np.ndarray) -> str:
    """sha256 of a sample's content: its source, stored pixels (dtype, shape, values) and mask
    (> 0), whatever the PNG encoder makes of them."""
    img = np.ascontiguousarray(image)
    img = img.astype(img.dtype.newbyteorder("<"), copy=False)  # 16-bit: one byte order
    msk = np.asarray(mask) > 0
    h = hashlib.sha256(f"napari-irsam-sample-1\0{source}\0".encode())
    h.update(f"{img.dtype.name}{img.shape}|{msk.shape}\0".encode())
    h.update(img.tobytes())
    h.update(np.packbits(msk).tobytes())
    return h.hexdigest()


def _known_keys(folder: Path, samples: list[dict[str, Any]]) -> set[str]:
    """:func:`pixel_key` of every sample exported before; older manifests lack the key, so their
    PNGs are decoded (a missing or damaged file cannot be compared and is passed over)."""
    import imageio.v3 as iio

    keys = set()
    for s in samples:
        key = s.get("pixels_sha256")
        if key is None:
            try:
                img = iio.imread(folder / "images" / f"{s['name']}.png")
                msk = iio.imread(folder / "masks" / f"{s['name']}.png")
            except Exception:  # decoders raise many types
                continue
            key = pixel_key(str(s.get("source", "")), img, msk)
        keys.add(key)
    return keys


def _to_storable(frame: np.ndarray) -> np.ndarray:
    if frame.dtype in (np.uint8, np.uint16):
        return frame
    if np.issubdtype(frame.dtype, np.integer) and frame.min() >= 0 and frame.max() < 2**16:
        return frame.astype(np.uint16)
    from ..preprocess import to_model_range

    return to_model_range(frame, "percentile")[..., 0].astype(np.uint8)


def _image_format(arr: np.ndarray) -> str:
    """``"png8"`` or ``"png16"``: what :func:`_to_storable` output is written as."""
    return "png16" if arr.dtype == np.uint16 else "png8"


def _safe_name(name: str) -> str:
    """A file stem that stays one file in images/ and one line in a split file."""
    name = re.sub(r"[\\/\r\n\t:]", "_", str(name)).strip()
    if Path(name).suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"):
        name = name[: -len(Path(name).suffix)] + "_" + Path(name).suffix[1:]  # read_split strips it
    return name.lstrip(".") or "frame"


def is_non_empty(out: str | os.PathLike[str]) -> bool:
    """True when ``out`` exists and is not an empty folder (an export there needs a choice)."""
    out = Path(out)
    return out.exists() and (not out.is_dir() or any(out.iterdir()))


def check_target(out: str | os.PathLike[str], if_exists: str = "error") -> Path:
    """The folder an export to ``out`` would write to; a one-sentence ``ValueError`` if none."""
    if not str(out).strip():
        raise ValueError("Choose an output folder for the export.")
    out = Path(out).expanduser()
    if if_exists not in ("error", "append", "new"):
        raise ValueError(f"if_exists must be 'error', 'append' or 'new', got {if_exists!r}.")
    if not out.parent.is_dir():
        raise ValueError(f"Cannot export to {out}: its parent folder does not exist.")
    if out.exists() and not out.is_dir():
        raise ValueError(f"Cannot export to {out}: it is a file, not a folder.")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ValueError(f"Cannot export to {out}: the folder is not writable.")
    if out.exists() and any(out.iterdir()):
        if if_exists == "error":
            raise ValueError(f"{out} is not empty; choose 'append' or a new folder.")
        if if_exists == "new":
            i = 2
            while Path(f"{out}_{i}").exists():
                i += 1
            return Path(f"{out}_{i}")
        if not (out / "manifest.json").is_file():
            raise ValueError(
                f"{out} is not empty and is not a napari-irsam export (no manifest.json), so "
                "nothing can be appended to it; choose a new folder."
            )
    return out


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

    Raises:
        ValueError: one sentence the user can act on (bad path, nothing to export, shapes, …).
    """
    from .. import __version__

    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim == 2:
        images = images[None]
    if masks.ndim == 2:
        masks = masks[None]
    if images.ndim not in (3, 4) or masks.ndim != 3 or images.shape[:3] != masks.shape:
        raise ValueError(
            f"Images {images.shape} and masks {masks.shape} differ in shape; export needs one "
            "(H, W) mask per (H, W) frame."
        )
    n = len(images)
    names = list(names) if names is not None else [f"frame_{i:04d}" for i in range(n)]
    reviewed = list(reviewed) if reviewed is not None else [True] * n
    sources = list(sources) if sources is not None else ["<memory>"] * n
    frame_indices = list(frame_indices) if frame_indices is not None else list(range(n))
    per_frame = {
        "names": names,
        "reviewed": reviewed,
        "sources": sources,
        "frame_indices": frame_indices,
    }
    groups = list(groups) if groups is not None else sources
    per_frame["groups"] = groups
    if frame_statuses is not None:
        per_frame["frame_statuses"] = frame_statuses = list(frame_statuses)
    for what, values in per_frame.items():
        if len(values) != n:
            raise ValueError(f"Got {len(values)} {what} for {n} frame(s).")
    if not 0.0 <= test_ratio < 1.0:
        raise ValueError(f"test_ratio must be in [0, 1), got {test_ratio}.")
    keep = [i for i in range(n) if reviewed[i] or not reviewed_only]
    if not keep:
        raise ValueError("No frame is marked reviewed; mark frames reviewed or export all frames.")
    folder = check_target(out, if_exists)
    manifest_path = folder / "manifest.json"
    old: dict[str, Any] = {"samples": []}
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text())
            old["samples"] = list(old["samples"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{manifest_path} is damaged ({exc.__class__.__name__}), so nothing can be "
                "appended to it; choose a new folder."
            ) from exc
    seen = _known_keys(folder, old["samples"])
    used_names = {s["name"] for s in old["samples"]}
    if (folder / "images").is_dir():  # never replace a file the manifest does not know
        used_names |= {p.stem for p in (folder / "images").iterdir() if not p.name.startswith(".")}
    export_time = datetime.now(timezone.utc).isoformat(timespec="seconds")
    export_no = len(old.get("exports", [])) + 1

    block = int(old.get("split_block", SPLIT_BLOCK))
    frame_side, block_side = previous_sides(old["samples"], block)
    is_test = split_blocks(
        [str(groups[i]) for i in keep],
        test_ratio,
        seed,
        block=block,
        positions=[int(frame_indices[i]) for i in keep],
        fixed=[
            frame_side.get(
                (str(sources[i]), int(frame_indices[i])),
                block_side.get((str(groups[i]), int(frame_indices[i]) // block)),
            )
            for i in keep
        ],
    )
    samples, written, skipped = list(old["samples"]), [], []
    try:
        for done, (flag, i) in enumerate(zip(is_test, keep), start=1):
            stored = _to_storable(images[i])
            mask = np.where(masks[i] > 0, 255, 0).astype(np.uint8)
            key = pixel_key(str(sources[i]), stored, mask)
            if key in seen:
                skipped.append(str(names[i]))
            else:
                img_b, msk_b = _png_bytes(stored), _png_bytes(mask)
                base = _safe_name(names[i])
                name, k = base, 2
                while name in used_names:
                    name, k = f"{base}_{k}", k + 1
                atomic_write_bytes(folder / "images" / f"{name}.png", img_b)
                atomic_write_bytes(folder / "masks" / f"{name}.png", msk_b)
                seen.add(key)
                used_names.add(name)
                written.append(name)
                sample = {
                    "name": name,
                    "source": sources[i],
                    "group": str(groups[i]),
                    "frame_index": int(frame_indices[i]),
                    "reviewed": bool(reviewed[i]),
                    "split": "test" if flag else "train",
                    "dtype": str(images[i].dtype),
                    "image_format": _image_format(stored),
                    "image_sha256": hashlib.sha256(img_b).hexdigest(),
                    "mask_sha256": hashlib.sha256(msk_b).hexdigest(),
                    "pixels_sha256": key,
                    "export": export_no,
                }
                if frame_statuses is not None:
                    sample["statuses"] = dict(frame_statuses[i])
                samples.append(sample)
            if progress is not None:
                progress(done, len(keep))
        train = [s["name"] for s in samples if s["split"] == "train"]
        test = [s["name"] for s in samples if s["split"] == "test"]
        split_files = {}
        for split_name, listed in (("train", train), ("test", test)):
            data = "".join(f"{x}\n" for x in listed).encode()
            atomic_write_bytes(folder / "splits" / f"{split_name}.txt", data)
            split_files[f"splits/{split_name}.txt"] = hashlib.sha256(data).hexdigest()
        formats = sorted({s.get("image_format", "png8") for s in samples})
        manifest = {
            "format": "napari-irsam-export",
            "plugin_version": __version__,
            "export_time": export_time,
            "image_format": formats[0] if len(formats) == 1 else "mixed",
            "image_formats": {
                "png8": "8-bit greyscale PNG",
                "png16": "16-bit greyscale PNG, source values kept",
            },
            "provenance": provenance or {},
            "status_counts": statuses or {},
            "reviewed_only": reviewed_only,
            "test_ratio": test_ratio,
            "seed": seed,
            "split_block": block,
            "samples": samples,
            "split_files_sha256": split_files,
            "exports": old.get("exports", [])
            + [
                {
                    "export": export_no,
                    "export_time": export_time,
                    "plugin_version": __version__,
                    "written": len(written),
                    "skipped_duplicates": len(skipped),
                    "reviewed_only": reviewed_only,
                    "test_ratio": test_ratio,
                    "seed": seed,
                    "provenance": provenance or {},
                    "status_counts": statuses or {},
                }
            ],
        }
        atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1, default=str).encode())
    except OSError as exc:  # disk full, a read-only sub-folder, …: one sentence for the user
        reason = exc.strerror or exc.__class__.__name__
        raise ValueError(f"Cannot write the export to {folder}: {reason}.") from exc
    return ExportResult(folder, written, skipped, train, test)
