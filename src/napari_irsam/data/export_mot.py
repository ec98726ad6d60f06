"""Track ids in an export: per target in the manifest, and MOTChallenge-style CSV files
(numpy/scipy; no napari, no Qt).

Derived, like the COCO/YOLO files (:mod:`.export_formats`), from what the export wrote —
``manifest.json`` and ``masks/<name>.png`` — for every sample, old and new, so an append keeps
them whole. A target is an 8-connected component of a mask; it carries the id of the track
point inside it (or nearer than 3 px to its centroid), else the id it had in an earlier export
into the folder (same sample, same box).

* ``manifest.json``: every sample gets ``"targets"``: ``[{"bbox": [x, y, w, h], "area",
  "centroid": [row, col], "track_id"}]`` (bbox on pixel edges, 0-based, as in COCO;
  ``track_id`` null for a target on no track).
* ``mot/<sequence>.txt``: one file per sequence (the samples' ``group``: one source stack or
  folder), lines ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,-1,-1,-1`` sorted by frame
  then id, in the **MOTChallenge convention: frames, ids and box corners are 1-based** (frame =
  the sample's ``frame_index`` + 1; bb_left = first pixel column + 1); conf is 1 (a ground-truth
  line that counts). Targets on no track get ids of their own above the largest track id, so
  every line has an id (they are not stable across exports). ``mot/sequences.json`` maps each
  file to its group.

Files are written atomically; nothing is written when no target of the export is on a track.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .export_formats import TrackPoint, _assign_tracks, _read_mask, mask_targets
from .io import atomic_write_bytes

MOT_COLUMNS = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "conf", "x", "y", "z")


def _sequence_file(group: str) -> str:
    """A file name for a group (a path, often): its stem + a short hash (unique, portable)."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(group).stem)[:40]
    return f"{stem or 'sequence'}_{hashlib.sha1(group.encode()).hexdigest()[:8]}.txt"


def write_track_files(
    folder: str | Path,
    track_points: dict[tuple[str, int], Sequence[TrackPoint]] | None = None,
) -> list[str]:
    """Per-target track ids in ``manifest.json`` and ``mot/*.txt`` for the export in ``folder``
    (see the module docstring). ``track_points``: per (source, frame_index) of a sample, the
    (row, col, track_id) of its tracked targets. Returns the paths written, relative to
    ``folder`` (none when no target is on a track)."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    track_points = track_points or {}
    samples: list[dict[str, Any]] = manifest["samples"]
    had_tracks = any(t.get("track_id") is not None for s in samples for t in s.get("targets", []))
    if not track_points and not had_tracks:
        return []
    rows: dict[str, list[list[float]]] = {}
    untracked: list[tuple[str, list[float]]] = []
    any_track = False
    for sample in samples:
        mask = _read_mask(folder / "masks" / f"{sample['name']}.png")
        targets = mask_targets(mask)
        key = (str(sample.get("source")), sample.get("frame_index"))
        tids = _assign_tracks(targets, track_points.get(key, ()))
        old = {tuple(t["bbox"]): t.get("track_id") for t in sample.get("targets", [])}
        entries = []
        group = str(sample.get("group", sample.get("source")))
        frame = int(sample.get("frame_index") or 0) + 1
        for (comp, box, area), tid in zip(targets, tids):
            tid = tid if tid is not None else old.get(tuple(box))
            rr, cc = comp.nonzero()
            entries.append(
                {
                    "bbox": box,
                    "area": area,
                    "centroid": [round(float(rr.mean()), 2), round(float(cc.mean()), 2)],
                    "track_id": tid,
                }
            )
            line = [frame, tid or 0, box[0] + 1, box[1] + 1, box[2], box[3], 1, -1, -1, -1]
            if tid is not None:
                rows.setdefault(group, []).append(line)
                any_track = True
            else:
                untracked.append((group, line))
        sample["targets"] = entries
    if not any_track:
        return []
    top = max(int(r[1]) for lines in rows.values() for r in lines)
    for k, (group, line) in enumerate(untracked, start=1):
        line[1] = top + k
        rows.setdefault(group, []).append(line)
    written, index = [], {}
    for group, lines in rows.items():
        name = _sequence_file(group)
        index[name] = group
        text = "".join(
            ",".join(str(int(v)) if float(v).is_integer() else f"{v:g}" for v in line) + "\n"
            for line in sorted(lines, key=lambda r: (r[0], r[1]))
        )
        atomic_write_bytes(folder / "mot" / name, text.encode())
        written.append(f"mot/{name}")
    atomic_write_bytes(folder / "mot" / "sequences.json", json.dumps(index, indent=1).encode())
    atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1, default=str).encode())
    return [*written, "mot/sequences.json", "manifest.json"]
