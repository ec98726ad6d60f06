"""Reading infrared frames and stacks, and writing masks atomically (numpy/tifffile/scikit-image).

* A single image file: PNG/BMP/JPG (scikit-image) or TIFF (tifffile; single or multi-page,
  8/16/32-bit integer or float). A multi-page TIFF is an (N, H, W) stack.
* A folder: every image file in it, natural-sorted (``f2`` before ``f10``), as one stack.
  Frames of different sizes raise a ``ValueError`` naming two offending files in
  :func:`read_frames`; :func:`read_frame_groups` returns one stack per size instead.
* A list of files: one stack, in the given order.

Dtypes are preserved; RGB/RGBA frames keep their channels (``FrameStack.rgb`` says so).
Headers are read first: frames over the pixel limit are refused before decoding, and big stacks
open lazily (:mod:`napari_irsam.data.lazy`).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .lazy import (
    TIFF_EXTS,
    FrameInfo,
    is_lazy,
    lazy_bytes,
    max_pixels,
    open_files_lazy,
    open_tiff_lazy,
    pil_limit,
    probe,
    sample_frames,
)

OTHER_EXTS = (".png", ".bmp", ".jpg", ".jpeg")
THERMAL_EXTS = (".seq", ".csq", ".fff")  #: FLIR radiometric sequences (data.thermal)
IMAGE_EXTS = TIFF_EXTS + OTHER_EXTS + THERMAL_EXTS


@dataclass
class FrameStack:
    """Frames read from disk. ``data`` is (N, H, W) or (N, H, W, C); single images have N = 1."""

    data: Any  #: numpy in memory, or lazy: numpy.memmap / dask array (see data.lazy)
    paths: list[str] = field(default_factory=list)  #: one entry per file read
    frame_names: list[str] = field(default_factory=list)  #: one stem per frame
    dtype: str = ""
    rgb: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)  #: e.g. "thermal" (data.thermal)


def natural_sort_key(name: str) -> list[object]:
    """Sort key that orders embedded numbers numerically (``f2`` < ``f10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def _read_file(path: Path, info: FrameInfo | None = None) -> np.ndarray:
    """One file → (N, H, W[, C]) array, read whole; the header is checked first (pixel limit)."""
    info = probe(path) if info is None else info
    try:
        if path.suffix.lower() in TIFF_EXTS:
            import tifffile

            arr = tifffile.imread(path)
            arr = arr.reshape((info.n, *info.frame_shape))
        else:
            from skimage import io as skio

            with pil_limit(max_pixels()):
                arr = np.asarray(skio.imread(path))
            if arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha
                arr = arr[..., 0]
            arr = arr[None]
    except Exception as exc:  # decoders raise many types
        raise ValueError(f"Cannot read {path.name}: {exc.__class__.__name__}: {exc}") from exc
    if arr.ndim not in (3, 4) or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(
            f"{path.name} is not a 2-D image or a stack of 2-D images (shape {arr.shape})."
        )
    return arr


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, natural-sorted."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and is_image_file(p) and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: natural_sort_key(p.name))


def _input_files(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The image files a path (file, folder) or list of files names, checked to exist."""
    if isinstance(path, (list, tuple)):
        files = [Path(p) for p in path]
        if not files:
            raise ValueError("No files were given.")
    else:
        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist.")
        if p.is_dir():
            files = list_image_files(p)
            if not files:
                raise ValueError(
                    f"The folder {p} contains no image files ({', '.join(IMAGE_EXTS)})."
                )
        else:
            files = [p]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f} does not exist.")
        if not is_image_file(f):
            raise ValueError(f"{f.name} is not a supported image file ({', '.join(IMAGE_EXTS)}).")
    return files


def _frame_names(infos: Sequence[FrameInfo]) -> list[str]:
    names: list[str] = []
    for info in infos:
        stem = info.path.stem
        names += [stem] if info.n == 1 else [f"{stem}_{i:04d}" for i in range(info.n)]
    return names


def _stack_of(infos: list[FrameInfo], lazy: bool | None) -> FrameStack:
    """Files of one frame shape → one :class:`FrameStack`, in memory or lazy (see data.lazy)."""
    dtype = np.result_type(*[i.dtype for i in infos])
    nbytes = sum(i.n for i in infos) * int(np.prod(infos[0].frame_shape)) * dtype.itemsize
    if lazy is None:
        lazy = nbytes > lazy_bytes()
    if lazy:
        data = (
            open_tiff_lazy(infos[0])
            if len(infos) == 1 and infos[0].path.suffix.lower() in (TIFF_EXTS)
            else open_files_lazy(infos)
        )
    else:
        arrays = []
        for info in infos:
            arr = _read_file(info.path, info)
            arrays.append(arr.astype(dtype) if arr.dtype != dtype else arr)
        data = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
    rgb = data.ndim == 4 and data.shape[-1] in (3, 4)
    paths = [str(i.path) for i in infos]
    return FrameStack(data, paths, _frame_names(infos), str(data.dtype), rgb)


def _thermal_stack(files: list[Path], lazy: bool | None) -> FrameStack | None:
    """FLIR radiometric files (SEQ/CSQ/FFF, R-JPEG) as °C frames, else None."""
    from .thermal import thermal_stack

    return thermal_stack(files, lazy)


def read_frame_groups(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], lazy: bool | None = None
) -> list[FrameStack]:
    """Like :func:`read_frames`, but files of different frame sizes give one stack per size (in
    order of first appearance) instead of an error — a folder of mixed-size frames."""
    files = _input_files(path)
    if (thermal := _thermal_stack(files, lazy)) is not None:
        return [thermal]
    infos = [probe(f) for f in files]  # headers only: a bomb is refused before any decoding
    groups: dict[tuple[int, ...], list[FrameInfo]] = {}
    for info in infos:
        groups.setdefault(info.frame_shape, []).append(info)
    return [_stack_of(g, lazy) for g in groups.values()]


def read_frames(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], lazy: bool | None = None
) -> FrameStack:
    """Read a file, a folder of frames or a list of files as one :class:`FrameStack`.

    Every file's header is checked against the pixel limit before anything is decoded
    (:class:`~napari_irsam.data.lazy.FrameTooLargeError`). ``lazy``: True opens the stack without
    reading it (memmap / dask, see :mod:`napari_irsam.data.lazy`), False reads it whole, None
    (default) decides by its size (``NAPARI_IRSAM_LAZY_BYTES``).
    """
    files = _input_files(path)
    if (thermal := _thermal_stack(files, lazy)) is not None:
        return thermal
    infos = [probe(f) for f in files]
    for info in infos[1:]:
        if info.frame_shape != infos[0].frame_shape:
            raise ValueError(
                f"Frames differ in size: {files[0].name} is {infos[0].frame_shape} but "
                f"{info.path.name} is {info.frame_shape}; open them separately."
            )
    return _stack_of(infos, lazy)


#: display contrast limits: the darkest 0.5 % of pixels go black, the brightest 0.2 % (hot
#: targets) saturate, so a 16-bit thermal frame does not open black
DISPLAY_PERCENTILES = (0.5, 99.8)


def percentile_limits(
    data: np.ndarray, low: float, high: float, max_samples: int = 1_000_000
) -> tuple[float, float]:
    """Robust (low, high) percentiles of the finite values of ``data`` (any shape); never equal.

    The one percentile helper: display contrast limits (reader, sample data; use
    :data:`DISPLAY_PERCENTILES`) and the model's intensity stretch
    (:func:`napari_irsam.preprocess.to_model_range`). Arrays of more than ``max_samples`` values
    are regularly sub-sampled first, so large stacks stay cheap. No finite value gives (0, 1);
    a constant gives (v, v + 1). A lazy stack (memmap, dask, zarr) is sampled by whole frames
    (:func:`~napari_irsam.data.lazy.sample_frames`) and a lazy single frame by a strided grid, so
    it is never read whole.
    """
    if is_lazy(data) and np.ndim(data) >= 2:
        rgb_frame = data.ndim == 3 and data.shape[-1] in (3, 4) and data.shape[0] > 4
        if data.ndim == 4 or (data.ndim == 3 and not rgb_frame):
            data = sample_frames(data)
        else:
            step = max(1, int(np.sqrt(data.shape[0] * data.shape[1] / max_samples)) + 1)
            data = np.asarray(data[::step, ::step])
    flat = np.asarray(data).reshape(-1)
    if flat.size > max_samples:
        flat = flat[:: flat.size // max_samples + 1]
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(flat, [low, high]))
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename, fsync'd)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write a uint8/uint16 (H, W[, C]) PNG atomically."""
    from skimage import io as skio

    with atomic_path(path) as tmp:
        skio.imsave(tmp, image, check_contrast=False)


def write_mask_png_folder(
    masks: np.ndarray, folder: str | os.PathLike[str], names: Sequence[str] | None = None
) -> list[str]:
    """(N, H, W) or (H, W) masks/labels → ``folder/<name>.png`` with 0/255 (IRSTD convention)."""
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    names = list(names) if names is not None else [f"frame_{i:04d}" for i in range(len(masks))]
    if len(names) != len(masks):
        raise ValueError(f"Got {len(names)} names for {len(masks)} masks.")
    out = []
    for name, m in zip(names, masks):
        p = Path(folder) / f"{name}.png"
        write_png(p, np.where(m > 0, 255, 0).astype(np.uint8))
        out.append(str(p))
    return out


def write_mask_tiff(masks: np.ndarray, path: str | os.PathLike[str]) -> str:
    """Write labels as a TIFF (stack), keeping label values (uint8/16/32 as needed)."""
    import tifffile

    masks = np.asarray(masks)
    top = int(masks.max()) if masks.size else 0
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32
    if masks.min(initial=0) < 0:
        raise ValueError("Label values must not be negative.")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, masks.astype(dtype), photometric="minisblack")
    return str(path)
