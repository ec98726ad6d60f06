"""Autosave and restore of a review: a sidecar folder next to the source data (no napari, no Qt).

Layout of ``<source>.irsam-review/``::

    review.json            ReviewState (statuses, reviewed flags, per-frame checksums, provenance)
                           + which image it belongs to (fingerprint, shape, source paths)
    labels/000012.npz      labels of frame 12 (compressed int array); only frames that hold labels
                           or were edited are stored, so an autosave writes one small file + JSON

Every file is written atomically (temporary file, fsync, ``os.replace``): killing the program at
any moment leaves either the old or the new version of each file, plus perhaps an interrupted
temporary file (``labels/.000012.<random>.npz``), which load and save ignore. Frames are written
before the JSON; if a kill lands between the two, :meth:`Sidecar.load` sees a frame whose checksum
is newer than the JSON and re-diffs it, so even that last edit comes back (its status as "edited").

Location: a single file ``/d/seq.tif`` → ``/d/seq.tif.irsam-review/``; a folder of frames
``/d/run1/`` → ``/d/run1.irsam-review/``; data without a source file, or next to a source that is
not writable → ``$NAPARI_IRSAM_REVIEW_DIR`` or ``~/.cache/napari-irsam/reviews/``, in a subfolder
named after the layer and a fingerprint of the image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..review import ReviewState, as_stack
from .io import atomic_write_bytes, list_image_files

SUFFIX = ".irsam-review"
STATE_FILE = "review.json"
_FRAME_FILE = re.compile(r"([0-9]{6,})\.npz")  # not ".000012.x1y2z3.npz", a temporary file


def frame_files(labels_dir: Path) -> dict[int, Path]:
    """Frame index → saved labels file in ``labels_dir`` (temporary and stray files ignored)."""
    if not labels_dir.is_dir():
        return {}
    found = (_FRAME_FILE.fullmatch(p.name) for p in labels_dir.iterdir())
    return {int(m.group(1)): labels_dir / m.group(0) for m in found if m is not None}


def image_fingerprint(image: Any) -> str:
    """sha256 of the shape, dtype and first, middle and last frames of an (…, H, W) image.

    Array-likes with ``shape``/``dtype`` (dask, zarr) are indexed, never loaded whole: only the
    three frames are read.
    """
    arr = image if hasattr(image, "shape") and hasattr(image, "dtype") else np.asarray(image)
    h = hashlib.sha256(f"{tuple(int(s) for s in arr.shape)}|{np.dtype(arr.dtype)}".encode())
    if len(arr.shape) < 2:
        arr = np.asarray(arr).reshape(1, 1, -1)
    lead = tuple(int(s) for s in arr.shape[:-2])
    n = int(np.prod(lead, dtype=np.int64))
    for i in sorted({0, n // 2, n - 1}):
        idx = tuple(int(j) for j in np.unravel_index(i, lead)) if lead else ()
        h.update(np.ascontiguousarray(np.asarray(arr[idx])).tobytes())
    return h.hexdigest()


def fallback_root() -> Path:
    env = os.environ.get("NAPARI_IRSAM_REVIEW_DIR")
    return Path(env) if env else Path.home() / ".cache" / "napari-irsam" / "reviews"


def _writable_dir(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def default_location(source_paths: Sequence[str] | None, layer_name: str, fingerprint: str) -> Path:
    """Where the sidecar of an image goes (see the module docstring)."""
    paths = [Path(p) for p in source_paths or []]
    if len(paths) == 1:
        base = paths[0]
    elif paths and len({p.parent for p in paths}) == 1:
        base = paths[0].parent  # a folder of frames
        if base.is_dir() and len(paths) < len(list_image_files(base)):
            base = paths[0]  # a hand-picked subset: name it after its first file
    else:
        base = None
    if base is not None and _writable_dir(base.parent):
        return base.with_name(base.name + SUFFIX)
    safe = re.sub(r"[^\w.-]+", "_", layer_name).strip("_") or "image"
    return fallback_root() / f"{safe}-{fingerprint[:12]}{SUFFIX}"


def _npz_bytes(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, labels=frame)
    return buf.getvalue()


class Sidecar:
    """One review's autosave folder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._written: set[int] = set()  # frames with a file on disk
        self._missed: set[int] | None = set()  # frames a failed save did not write (None: all)

    @property
    def state_path(self) -> Path:
        return self.folder / STATE_FILE

    def exists(self) -> bool:
        return self.state_path.is_file()

    def frame_path(self, frame: int) -> Path:
        return self.folder / "labels" / f"{frame:06d}.npz"

    def save(
        self,
        state: ReviewState,
        labels: np.ndarray,
        frames: Iterable[int] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Write the given frames of the (N, H, W) ``labels`` (None: all) and then the state.

        Frames that a failed save (full disk, …) did not write are written again by the next one.
        """
        missed = self._missed
        todo = None if frames is None or missed is None else {*(int(f) for f in frames), *missed}
        try:
            self._write(state, as_stack(labels), todo, meta)
        except BaseException:
            self._missed = todo
            raise
        self._missed = set()

    def _write(
        self,
        state: ReviewState,
        labels: np.ndarray,
        frames: Iterable[int] | None,
        meta: dict[str, Any] | None,
    ) -> None:
        from .. import __version__

        if frames is None:
            if not self._written:
                self._written = set(frame_files(self.folder / "labels"))
            frames = [f for f in range(len(labels)) if labels[f].any() or f in self._written]
        for f in sorted(set(int(f) for f in frames)):
            atomic_write_bytes(self.frame_path(f), _npz_bytes(labels[f]))
            self._written.add(f)
        doc = {
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "plugin_version": __version__,
            "labels_dtype": str(labels.dtype),
            "meta": meta or {},
            "state": state.to_dict(),
        }
        atomic_write_bytes(self.state_path, json.dumps(doc, indent=1).encode())

    def read_meta(self) -> dict[str, Any]:
        """The saved document without the labels: ``saved_at``, ``meta``, ``state`` …"""
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"Cannot read the review file {self.state_path}: {exc}") from exc

    def summary(self) -> str:
        """One line for the restore question."""
        doc = self.read_meta()
        state = ReviewState.from_dict(doc["state"])
        return f"saved {doc['saved_at']}: {state.progress_line()}"

    def load(self) -> tuple[ReviewState, np.ndarray, dict[str, Any]]:
        """→ (state, labels (N, H, W), meta). Frames newer than the JSON are re-diffed."""
        doc = self.read_meta()
        state = ReviewState.from_dict(doc["state"])
        labels = np.zeros((state.n_frames, *state.frame_shape), doc.get("labels_dtype", "int32"))
        for f, p in sorted(frame_files(self.folder / "labels").items()):
            if f >= state.n_frames:
                continue
            try:
                with np.load(p) as z:
                    labels[f] = z["labels"]
            except Exception as exc:  # zip, pickle and shape errors have many types
                raise ValueError(f"The saved frame {p} cannot be read ({exc}).") from exc
            self._written.add(f)
        state.sync_all(labels)  # a kill between a frame and the JSON: recover that edit
        return state, labels, doc.get("meta", {})

    def set_aside(self) -> Path:
        """Rename the folder to ``…irsam-review.declined-<time>`` (nothing is deleted)."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        target = self.folder.with_name(f"{self.folder.name}.declined-{stamp}")
        os.replace(self.folder, target)
        self._written.clear()
        return target
