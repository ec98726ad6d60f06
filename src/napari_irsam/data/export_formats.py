"""Detector training formats beside an IRSTD export: COCO instances and YOLO boxes (numpy,
scipy; pycocotools when installed). No napari, no Qt.

Both are derived from what the export wrote — ``manifest.json`` and ``masks/<name>.png`` — so
an append rewrites them for every sample (old and new) and they never disagree with the masks.
A *target* is an 8-connected component of a mask, as everywhere in napari-irsam (targets.py,
the Pd metric). Files (all written atomically)::

    annotations/instances_train.json, annotations/instances_test.json
        COCO instances: images (file_name relative to images/, width, height, plus frame_index,
        source and — for radiometric sources — timestamp), one category "target" (id 1),
        annotations with segmentation as compressed RLE, area (pixels), bbox [x, y, w, h]
        (pixel edges), iscrowd 0, and track_id when the target belongs to a track.
    labels/<name>.txt
        YOLO: one line ``0 cx cy w h`` per target, normalised by the image width/height
        (boxes on pixel edges: a 1-pixel target at column 4 of 10 has cx 0.45, w 0.1).
    yolo_train.txt, yolo_test.txt, yolo.yaml
        image lists (``./images/<name>.png``) and the dataset file Ultralytics-style trainers
        read (paths relative to the yaml's folder; ``names: {0: target}``).

RLE: COCO's compressed RLE (column-major run lengths starting with a background run, then
encoded as text by cocoapi's ``rleToString``). pycocotools' ``mask.encode`` (BSD-2) is used
when installed; :func:`rle_counts_string` is the same algorithm in numpy for when it is not,
and the tests check both give identical strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .io import atomic_write_bytes

FORMATS = ("irstd", "coco", "yolo")
CATEGORY = {"id": 1, "name": "target", "supercategory": "target"}
#: a track point (row, col, track_id) of one frame; a target takes the id of the point inside it
TrackPoint = tuple[float, float, int]
_STRUCT = np.ones((3, 3), bool)


def check_formats(formats: Iterable[str]) -> list[str]:
    """The chosen formats, known and without repeats (``irstd`` is always written: the others
    point to its images); a one-sentence ``ValueError`` otherwise."""
    chosen = list(dict.fromkeys(str(f).lower() for f in formats))
    bad = [f for f in chosen if f not in FORMATS]
    if bad:
        raise ValueError(f"Unknown export format {bad[0]!r}; choose from {', '.join(FORMATS)}.")
    return chosen


# ------------------------------------------------------------------------------------- RLE
def rle_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a (H, W) mask in column-major order, starting with a background run."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs if flat.size and flat[0] else runs) if flat.size else []


def rle_counts_string(counts: Sequence[int]) -> str:
    """cocoapi's ``rleToString``: each count (after the second, as the difference to the count
    two before) in 5-bit groups, low first, +48, bit 0x20 = more groups follow."""
    out = []
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) mask → COCO compressed RLE ``{"size": [H, W], "counts": str}``."""
    mask = np.asarray(mask, bool)
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        return {"size": list(mask.shape), "counts": rle_counts_string(rle_counts(mask))}
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


# --------------------------------------------------------------------------------- targets
def mask_targets(mask: np.ndarray) -> list[tuple[np.ndarray, list[float], int]]:
    """8-connected components of ``mask > 0`` → (component mask, bbox [x, y, w, h], area),
    in raster order of their first pixel."""
    labels, n = ndimage.label(np.asarray(mask) > 0, structure=_STRUCT)
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        comp = labels == i
        rows, cols = sl
        box = [float(cols.start), float(rows.start), float(cols.stop - cols.start),
               float(rows.stop - rows.start)]  # fmt: skip
        out.append((comp, box, int(comp.sum())))
    return out


def _assign_tracks(
    targets: Sequence[tuple[np.ndarray, list[float], int]], points: Sequence[TrackPoint]
) -> list[int | None]:
    """Track id per target: the point inside it, else the nearest point whose distance to the
    target's centroid is under 3 px (the Pd criterion; a C-shaped target may not contain its
    own centroid)."""
    out: list[int | None] = [None] * len(targets)
    for row, col, tid in points:
        r, c = int(round(row)), int(round(col))
        best, best_d = None, 3.0
        for k, (comp, _box, _area) in enumerate(targets):
            h, w = comp.shape
            if 0 <= r < h and 0 <= c < w and comp[r, c]:
                best = k
                break
            cy, cx = ndimage.center_of_mass(comp)
            d = float(np.hypot(cy - row, cx - col))
            if d < best_d:
                best, best_d = k, d
        if best is not None and out[best] is None:
            out[best] = int(tid)
    return out


# ------------------------------------------------------------------------------------ files
def _read_mask(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    arr = np.asarray(iio.imread(path))
    return arr[..., 0] if arr.ndim == 3 else arr


def _old_track_ids(folder: Path) -> dict[tuple[str, tuple[float, ...]], int]:
    """Track ids of an earlier COCO export, by (file_name, bbox): kept when appending."""
    found: dict[tuple[str, tuple[float, ...]], int] = {}
    for split in ("train", "test"):
        path = folder / "annotations" / f"instances_{split}.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        files = {im["id"]: im["file_name"] for im in doc.get("images", [])}
        for a in doc.get("annotations", []):
            if a.get("track_id") is not None and a.get("image_id") in files:
                found[(files[a["image_id"]], tuple(a["bbox"]))] = int(a["track_id"])
    return found


def _timestamps(manifest: dict[str, Any]) -> list[Any]:
    thermal = (manifest.get("provenance") or {}).get("thermal") or {}
    return list(thermal.get("timestamps") or [])


def write_detector_formats(
    folder: str | Path,
    formats: Iterable[str],
    track_points: dict[tuple[str, int], Sequence[TrackPoint]] | None = None,
) -> list[str]:
    """Write COCO and/or YOLO files for every sample of the export in ``folder``.

    Args:
        formats: any of ``"coco"``, ``"yolo"`` (``"irstd"`` is the export itself: ignored).
        track_points: per (source, frame_index) of a sample, the (row, col, track_id) of the
            tracked targets of that frame; the target containing a point carries its
            ``track_id`` in COCO (ids of an earlier export into the folder are kept).

    Returns the paths written, relative to ``folder``.
    """
    folder = Path(folder)
    chosen = [f for f in check_formats(formats) if f != "irstd"]
    if not chosen:
        return []
    manifest = json.loads((folder / "manifest.json").read_text())
    stamps = _timestamps(manifest)
    old_tracks = _old_track_ids(folder) if "coco" in chosen else {}
    track_points = track_points or {}
    coco = {s: {"images": [], "annotations": []} for s in ("train", "test")}
    yolo_lists: dict[str, list[str]] = {"train": [], "test": []}
    written: list[str] = []
    ann_id = 0
    for image_id, sample in enumerate(manifest["samples"], start=1):
        name, split = sample["name"], sample["split"]
        mask = _read_mask(folder / "masks" / f"{name}.png")
        h, w = mask.shape
        targets = mask_targets(mask)
        file_name = f"{name}.png"
        if "coco" in chosen:
            image = {"id": image_id, "file_name": file_name, "width": w, "height": h,
                     "frame_index": sample.get("frame_index"), "source": sample.get("source")}  # fmt: skip
            idx = sample.get("frame_index")
            if isinstance(idx, int) and 0 <= idx < len(stamps) and stamps[idx]:
                image["timestamp"] = stamps[idx]
            coco[split]["images"].append(image)
            key = (str(sample.get("source")), sample.get("frame_index"))
            tids = _assign_tracks(targets, track_points.get(key, ()))
            for (comp, box, area), tid in zip(targets, tids):
                ann_id += 1
                ann = {"id": ann_id, "image_id": image_id, "category_id": CATEGORY["id"],
                       "segmentation": rle_encode(comp), "area": area, "bbox": box,
                       "iscrowd": 0}  # fmt: skip
                tid = tid if tid is not None else old_tracks.get((file_name, tuple(box)))
                if tid is not None:
                    ann["track_id"] = tid
                coco[split]["annotations"].append(ann)
        if "yolo" in chosen:
            lines = [
                f"0 {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}\n"
                for _c, (x, y, bw, bh), _a in targets
            ]
            atomic_write_bytes(folder / "labels" / f"{name}.txt", "".join(lines).encode())
            yolo_lists[split].append(f"./images/{file_name}\n")
    if "coco" in chosen:
        for split, doc in coco.items():
            doc.update(info={"description": "napari-irsam export", "version": "1.0"},
                       licenses=[], categories=[CATEGORY])  # fmt: skip
            rel = f"annotations/instances_{split}.json"
            atomic_write_bytes(folder / rel, json.dumps(doc).encode())
            written.append(rel)
    if "yolo" in chosen:
        written += [f"labels/{s['name']}.txt" for s in manifest["samples"]]
        for split, lines in yolo_lists.items():
            atomic_write_bytes(folder / f"yolo_{split}.txt", "".join(lines).encode())
            written.append(f"yolo_{split}.txt")
        yaml = (
            "# napari-irsam export: YOLO detection dataset (paths relative to this file)\n"
            "train: yolo_train.txt\nval: yolo_test.txt\nnc: 1\nnames:\n  0: target\n"
        )
        atomic_write_bytes(folder / "yolo.yaml", yaml.encode())
        written.append("yolo.yaml")
    return written


def track_points_of(
    targets: Iterable[Any], keys: dict[int, tuple[str, int]]
) -> dict[tuple[str, int], list[TrackPoint]]:
    """Track points of review targets that carry a ``track_id`` (attribute or key), keyed like
    :func:`write_detector_formats` wants them: ``keys[frame]`` = (source, frame index)."""
    out: dict[tuple[str, int], list[TrackPoint]] = {}
    for t in targets:
        tid = t.get("track_id") if isinstance(t, dict) else getattr(t, "track_id", None)
        frame = int(t["frame"] if isinstance(t, dict) else t.frame)
        if tid is None or frame not in keys:
            continue
        row, col = t["centroid"] if isinstance(t, dict) else t.centroid
        out.setdefault(keys[frame], []).append((float(row), float(col), int(tid)))
    return out
