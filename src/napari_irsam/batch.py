"""Batch pre-segmentation of files, folders and stacks into a folder of masks (no napari, no Qt).

``napari-irsam predict`` runs here, in one process or on a Dask cluster (:mod:`distributed`):
the same :func:`run_batch` is one task per batch of frames either way, so the outputs are the
same. Each frame becomes ``OUT/<name>.png`` (0/255) and ``OUT/.targets/<name>.json`` (its target
rows); ``OUT/targets.csv`` gathers the rows at the end. A frame over
:data:`~napari_irsam.targets_large.LARGE_PIXELS` segmented by IRSAM stays lazy (windows are read
as tiles need them), its results are disk-backed and its mask becomes a chunked zarr store
``OUT/<name>.zarr`` (:mod:`napari_irsam.data.mask_store`) instead of a PNG. Every output is
written atomically (the JSON first, the mask last), so a killed run leaves no half file and a
rerun skips every frame whose mask exists. Workers open the inputs lazily (header checks, memmap / zarr / delayed reads) and read
only the frames of their batch; the model is loaded once per worker process
(:func:`cached_segmenter`, keyed on the checkpoint's path, size and modification time).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

TARGETS_DIR = ".targets"
CSV_FIELDS = ["image", "target_id", "row", "col", "area", "peak_score"]
#: classical detectors hold several full-frame float32 copies: beyond this they are refused
CLASSICAL_MAX_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class ModelSpec:
    """What every worker loads: a classical detector name, a registry name or a checkpoint."""

    model: str
    device: str = "cpu"
    threshold: float | None = None  #: None = the checkpoint's calibrated threshold (else 0.5)
    precision: str = "fp32"
    tta: bool = False  #: IRSAM flip averaging (``flip_average``)
    min_peak: float | None = None  #: IRSAM least target peak; None = the calibrated one
    refine: float | None = None  #: IRSAM outline refinement fraction; None = the calibrated one

    @classmethod
    def from_args(cls, args: Any) -> ModelSpec:
        """The spec of a ``predict``/``evaluate`` command line (its argparse namespace)."""
        return cls(*(getattr(args, f.name) for f in fields(cls)))


@dataclass(frozen=True)
class Batch:
    """Frames ``indices`` (with output ``names``) of group ``group`` of input ``item``."""

    item: str
    group: int
    indices: tuple[int, ...]
    names: tuple[str, ...]


# ---------------------------------------------------------------------------- per-worker caches
_LOCK = threading.Lock()
_SEGMENTERS: dict[tuple[Any, ...], Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {}
_INPUTS: dict[str, list[Any]] = {}
LOADS = {"count": 0}  #: models loaded in this process (tests check "once per worker")


def _file_key(model: str) -> tuple[Any, ...]:
    p = Path(model).expanduser()
    try:
        st = p.stat()
        return (str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return (model,)


def cached_segmenter(spec: ModelSpec) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``frame (H, W) → (mask bool, score float32)``, built once per process and spec."""
    from ._cli_run import _segmenter

    key = (*_file_key(spec.model), *astuple(spec)[1:])
    with _LOCK:
        if key not in _SEGMENTERS:
            _SEGMENTERS[key] = _segmenter(*astuple(spec))  # fields in _segmenter's order
            LOADS["count"] += 1
        return _SEGMENTERS[key]


def _groups(item: str) -> list[Any]:
    """The lazily opened frame stacks of one input, cached per process."""
    from .data.io import read_frame_groups

    with _LOCK:
        if item not in _INPUTS:
            _INPUTS[item] = read_frame_groups(item, lazy=True)
        return _INPUTS[item]


# ---------------------------------------------------------------------------------- planning
def plan_batches(inputs: Sequence[str], batch_frames: int = 16) -> list[Batch]:
    """Every frame of every input, in order, cut into batches of ``batch_frames``.

    Headers only: a missing file, an unreadable one or a frame over the pixel limit is a
    one-sentence ``ValueError``/``FileNotFoundError`` before any work starts. Frames of
    different sizes (a mixed folder) are fine: each frame is segmented on its own.
    """
    if batch_frames < 1:
        raise ValueError(f"--batch-frames must be at least 1, got {batch_frames}.")
    batches: list[Batch] = []
    seen: set[str] = set()
    for item in inputs:
        if not Path(item).exists():
            raise FileNotFoundError(f"Input {item} does not exist.")
        for g, stack in enumerate(_groups(str(item))):
            names = list(stack.frame_names)
            dup = seen.intersection(names)
            if dup:
                raise ValueError(
                    f"Two inputs give frames named {sorted(dup)[0]!r}; their masks would "
                    "overwrite each other — run them into different --out folders."
                )
            seen.update(names)
            for start in range(0, len(names), batch_frames):
                idx = tuple(range(start, min(start + batch_frames, len(names))))
                batches.append(Batch(str(item), g, idx, tuple(names[i] for i in idx)))
    return batches


# ---------------------------------------------------------------------------------- one batch
def _rows(name: str, mask: np.ndarray, score: np.ndarray | None) -> list[dict[str, Any]]:
    from .targets import extract_targets

    return [
        {
            "image": name,
            "target_id": t.target_id,
            "row": round(t.centroid[0], 2),
            "col": round(t.centroid[1], 2),
            "area": t.area,
            "peak_score": None if t.peak_score is None else round(float(t.peak_score), 4),
        }
        for t in extract_targets(mask, score)
    ]


def done_rows(out: Path, name: str) -> list[dict[str, Any]] | None:
    """The target rows of a frame already written (its mask and JSON exist), else None."""
    png, rows = out / f"{name}.png", out / TARGETS_DIR / f"{name}.json"
    if (png.is_file() or (out / f"{name}.zarr").is_dir()) and rows.is_file():
        try:
            return list(json.loads(rows.read_text()))
        except ValueError:
            return None
    return None


def run_batch(spec: ModelSpec, batch: Batch, out: str) -> tuple[int, list[dict[str, Any]]]:
    """Segment one batch (in whichever process runs it); returns (frames computed, rows).

    Frames whose outputs exist are skipped (their rows are read back)."""
    from .data.io import atomic_write_bytes, write_png
    from .data.mask_store import write_mask_zarr
    from .targets_large import LARGE_PIXELS

    folder = Path(out)
    stack = _groups(batch.item)[batch.group]
    computed, rows = 0, []
    for i, name in zip(batch.indices, batch.names):
        old = done_rows(folder, name)
        if old is not None:
            rows += old
            continue
        frame = stack.data[i]
        h, w = frame.shape[:2]
        classical = spec.model in _classical()
        big = h * w > LARGE_PIXELS and not classical
        if classical and h * w > CLASSICAL_MAX_PIXELS:
            raise ValueError(
                f"{name} has {w:,} × {h:,} pixels; classical detectors "
                f"hold whole-frame float copies and take at most {CLASSICAL_MAX_PIXELS / 1e6:.0f} "
                "M pixels — use an IRSAM model, which segments large frames band by band."
            )
        if not big:
            frame = np.asarray(frame)
            if stack.rgb:
                from .preprocess import to_grey

                frame = to_grey(frame)
        mask, score = cached_segmenter(spec)(frame)
        new = _rows(name, mask, score)
        atomic_write_bytes(folder / TARGETS_DIR / f"{name}.json", json.dumps(new).encode())
        if big:  # last, like the PNG
            write_mask_zarr(folder / f"{name}.zarr", mask, attrs={"model": spec.model})
        else:
            write_png(folder / f"{name}.png", np.where(mask, 255, 0).astype(np.uint8))
        rows += new
        computed += 1
    return computed, rows


def _classical() -> tuple[str, ...]:
    from .classical import CLASSICAL_DETECTORS

    return tuple(CLASSICAL_DETECTORS)


# ------------------------------------------------------------------------------- whole runs
def iter_local(spec: ModelSpec, batches: list[Batch], out: str) -> Iterator[tuple[Batch, Any]]:
    """Run the batches here, one after the other."""
    for b in batches:
        yield b, run_batch(spec, b, out)


def iter_cluster(
    spec: ModelSpec, batches: list[Batch], out: str, client: Any
) -> Iterator[tuple[Batch, Any]]:
    """One Dask task per batch on ``client``'s cluster, yielded as they complete. The first
    error cancels the rest and is raised."""
    import uuid

    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]  # unique keys: a scheduler never hands back an older run's result
    futures = [
        client.submit(run_batch, spec, b, out, key=f"predict-{b.names[0]}-{run_id}-{k}")
        for k, b in enumerate(batches)
    ]
    by_key = {f.key: b for f, b in zip(futures, batches)}
    try:
        for fut in as_completed(futures):
            yield by_key[fut.key], fut.result()
    except BaseException:
        client.cancel(futures)
        raise


def write_csv(out: Path, rows_by_batch: dict[int, list[dict[str, Any]]]) -> int:
    """``OUT/targets.csv`` with the rows in input order, written atomically; returns its rows."""
    import csv

    from .data.io import atomic_path

    rows = [r for k in sorted(rows_by_batch) for r in rows_by_batch[k]]
    with atomic_path(out / "targets.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def parse_cluster(text: str) -> tuple[str, Any]:
    """``local:N`` → ("local", N); ``tcp://host:port`` (or tls://…) → ("address", text)."""
    if text.startswith("local:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"--cluster local:N needs a worker count N ≥ 1, got {text!r}.")
        return "local", n
    if "://" in text:
        return "address", text
    raise ValueError(
        f"--cluster takes local:N or a scheduler address like tcp://host:8786, got {text!r}."
    )


def connect(text: str) -> tuple[Any, Any]:
    """A ``distributed.Client`` (and the LocalCluster it owns, or None) for ``--cluster``."""
    kind, value = parse_cluster(text)
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ValueError(
            "--cluster needs Dask's distributed package: pip install 'napari-irsam[cluster]'."
        ) from exc
    if kind == "local":
        cluster = LocalCluster(
            n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster), cluster
    try:
        return Client(value, timeout="10s"), None
    except OSError as exc:
        raise ValueError(f"No Dask scheduler answers at {value} ({exc}).") from exc
