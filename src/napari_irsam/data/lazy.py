"""Frame headers, the pixel limit, and lazy (memory-mapped / chunked) stacks (numpy/tifffile/dask).

Nothing here decodes a frame to learn its size: :func:`probe` reads the header only (tifffile's
page/series shape, Pillow's ``Image.open(...).size``), so a decompression bomb — a 40,000 ×
40,000 TIFF or PNG of a few KB — is refused by :func:`check_pixels` within milliseconds and
without allocating it.

Limits (environment variables override the defaults):

* ``NAPARI_IRSAM_MAX_PIXELS`` — the largest frame (H × W) accepted, default
  :data:`DEFAULT_MAX_PIXELS` = 2²⁹ ≈ 537 M pixels (23,170²). Why: frames are segmented tile by tile,
  but a frame's results are whole-frame arrays — a bool mask (1 B/px), a float32 probability map
  (4 B/px) and, for the target list, int32 labels (4 B/px): ≈ 9 B/px, so ≈ 5 GB at the limit,
  what a 16 GB workstation can spare next to napari. It admits a 20,000 × 20,000 mosaic (400 M px)
  and refuses the 40,000² bombs (1.6 G px). Pillow's own guard (179 M px) is raised to this limit
  while we read, and its ``DecompressionBombError`` becomes our sentence.
* ``NAPARI_IRSAM_OUTPUT_BYTES`` — a result array of "Run IRSAM" (mask, probability, … one per
  layer) over this size (default 1 GiB: a 640 × 512 int32 mask of 820 frames) is allocated by
  :func:`new_output_array` as a ``numpy.memmap`` of a sparse, already-unlinked ``.npy`` file in the
  temporary folder (``NAPARI_IRSAM_SCRATCH`` or the system's), so its pages are the kernel's to
  write to disk and drop instead of process memory. It is still an ``ndarray``: napari displays
  and paints it and the widgets update it in place (a zarr store would compress better, but
  napari's label painting and the in-place frame views need an ``ndarray``).
* ``NAPARI_IRSAM_LAZY_BYTES`` — stacks larger than this (default 512 MiB) open lazily: an
  uncompressed contiguous TIFF as a read-only ``numpy.memmap`` (``tifffile.memmap``), any other
  TIFF through ``tifffile.imread(..., aszarr=True)`` as a dask array over its zarr store, a folder
  of PNG/BMP/JPG as a dask array of one delayed read per file. Only the frames someone looks at
  (or segments, or exports) are read.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: 2**29 pixels ≈ 23,170²: see the module docstring for why
DEFAULT_MAX_PIXELS = 2**29
#: stacks over this many bytes open lazily
DEFAULT_LAZY_BYTES = 512 * 2**20
#: result arrays (one per output layer) over this many bytes live in a disk-backed memmap
DEFAULT_OUTPUT_BYTES = 1024 * 2**20
MAX_PIXELS_ENV = "NAPARI_IRSAM_MAX_PIXELS"
OUTPUT_BYTES_ENV = "NAPARI_IRSAM_OUTPUT_BYTES"
LAZY_BYTES_ENV = "NAPARI_IRSAM_LAZY_BYTES"

TIFF_EXTS = (".tif", ".tiff")


class FrameTooLargeError(ValueError):
    """A frame over the pixel limit (a one-sentence message for the user)."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}.") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}.")
    return value


def max_pixels() -> int:
    """The pixel limit per frame now in force (``NAPARI_IRSAM_MAX_PIXELS`` or the default)."""
    return _env_int(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def lazy_bytes() -> int:
    """Stacks over this many bytes open lazily (``NAPARI_IRSAM_LAZY_BYTES`` or the default)."""
    return _env_int(LAZY_BYTES_ENV, DEFAULT_LAZY_BYTES)


def check_pixels(name: str, h: int, w: int, limit: int | None = None) -> None:
    """Refuse a frame of ``h`` × ``w`` pixels over the limit, with one sentence."""
    limit = max_pixels() if limit is None else limit
    if int(h) * int(w) > limit:
        raise FrameTooLargeError(
            f"{name} has frames of {w:,} × {h:,} pixels ({int(h) * int(w) / 1e6:,.0f} M), over "
            f"the limit of {limit / 1e6:,.0f} M pixels per frame; raise {MAX_PIXELS_ENV} if the "
            "file is genuine."
        )


@dataclass(frozen=True)
class FrameInfo:
    """What a file's header says: ``n`` frames of ``h`` × ``w`` (× ``channels``) ``dtype``."""

    path: Path
    n: int
    h: int
    w: int
    channels: int  #: 0 for grey, 3 or 4 for colour
    dtype: np.dtype
    grey_alpha: bool = False  #: a (grey, alpha) image whose alpha is dropped

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (self.h, self.w, self.channels) if self.channels else (self.h, self.w)

    @property
    def nbytes(self) -> int:
        return self.n * int(np.prod(self.frame_shape)) * self.dtype.itemsize


@contextlib.contextmanager
def pil_limit(limit: int) -> Iterator[None]:
    """Pillow's decompression-bomb guard at ``limit`` pixels while reading (restored after)."""
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _shape_to_frames(path: Path, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A TIFF series shape → (n, h, w, channels) by the rule the eager reader always used."""
    if len(shape) == 2:
        return 1, shape[0], shape[1], 0
    if len(shape) == 3 and shape[-1] in (3, 4) and shape[0] > 4:
        return 1, shape[0], shape[1], shape[2]
    if len(shape) == 3:
        return shape[0], shape[1], shape[2], 0
    if len(shape) == 4 and shape[-1] in (3, 4):
        return shape[0], shape[1], shape[2], shape[3]
    raise ValueError(f"{path.name} is not a 2-D image or a stack of 2-D images (shape {shape}).")


_PIL_CHANNELS = {"RGB": 3, "RGBA": 4, "P": 3, "CMYK": 4, "YCbCr": 3, "LAB": 3, "HSV": 3}
_PIL_DTYPES = {"1": np.uint8, "L": np.uint8, "LA": np.uint8, "P": np.uint8, "I;16": np.uint16}


def probe(path: str | os.PathLike[str], limit: int | None = None) -> FrameInfo:
    """Read ``path``'s header only and check its frame size against the pixel limit.

    Raises:
        FrameTooLargeError: a frame over the limit (also for Pillow's decompression bombs).
        ValueError: not a readable image, or not 2-D frames.
    """
    path = Path(path)
    limit = max_pixels() if limit is None else limit
    try:
        if path.suffix.lower() in TIFF_EXTS:
            import tifffile

            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                shape, dtype = tuple(int(s) for s in series.shape), np.dtype(series.dtype)
            n, h, w, c = _shape_to_frames(path, shape)
            info = FrameInfo(path, n, h, w, c, dtype)
        else:
            from PIL import Image

            with pil_limit(limit), Image.open(path) as im:
                w, h = im.size
                mode = im.mode
            dtype = np.dtype(_PIL_DTYPES.get(mode, np.int32 if mode == "I" else np.uint8))
            if mode == "F":
                dtype = np.dtype(np.float32)
            info = FrameInfo(path, 1, h, w, _PIL_CHANNELS.get(mode, 0), dtype, mode == "LA")
    except FrameTooLargeError:
        raise
    except Exception as exc:  # decoders raise many types
        if exc.__class__.__name__ == "DecompressionBombError":  # Pillow: over 2 × our limit
            raise FrameTooLargeError(
                f"{path.name} announces more than {2 * limit / 1e6:,.0f} M pixels per frame "
                f"(a decompression bomb?) and was not opened; the limit is {limit / 1e6:,.0f} M "
                f"pixels (raise {MAX_PIXELS_ENV} if the file is genuine)."
            ) from exc
        if isinstance(exc, ValueError) and str(exc).startswith(path.name):
            raise
        raise ValueError(f"Cannot read {path.name}: {exc.__class__.__name__}: {exc}") from exc
    if info.h == 0 or info.w == 0 or info.n == 0:
        raise ValueError(f"{path.name} holds no pixels (shape {info.frame_shape}).")
    check_pixels(path.name, info.h, info.w, limit)
    return info


# ------------------------------------------------------------------------------- lazy opening
def open_tiff_lazy(info: FrameInfo) -> Any:
    """A TIFF as an (N, H, W[, C]) lazy array: a read-only memmap when the file is uncompressed
    and contiguous, else a dask array over ``tifffile``'s zarr store (read chunk by chunk)."""
    import tifffile

    shape = (info.n, *info.frame_shape)
    try:
        arr = tifffile.memmap(info.path, mode="r")
        return arr.reshape(shape)
    except (ValueError, OSError):
        pass  # compressed, tiled or scattered pages: go through zarr
    import dask.array as da

    try:
        import zarr
    except ImportError:  # zarr 3 needs Python ≥ 3.11: one delayed read per page instead
        return _pages_lazy(info)
    store = tifffile.imread(info.path, aszarr=True)
    z = zarr.open(store, mode="r")
    if isinstance(z, zarr.Group):  # pyramids: level 0 is the full resolution
        z = z[sorted(z.array_keys())[0]]
    arr = da.from_zarr(z)
    return arr.reshape(shape) if arr.shape != shape else arr


def _read_page(path: str, index: int) -> np.ndarray:
    import tifffile

    return tifffile.imread(path, key=index)


def _pages_lazy(info: FrameInfo) -> Any:
    """A multi-page TIFF as a dask array of one delayed read per page (no zarr)."""
    import dask
    import dask.array as da

    if info.n == 1:
        read = dask.delayed(tifffile_imread_all, pure=True)(str(info.path))
        return da.from_delayed(read, (1, *info.frame_shape), dtype=info.dtype)
    pages = [
        da.from_delayed(
            dask.delayed(_read_page, pure=True)(str(info.path), i), info.frame_shape, info.dtype
        )
        for i in range(info.n)
    ]
    return da.stack(pages)


def tifffile_imread_all(path: str) -> np.ndarray:
    import tifffile

    return tifffile.imread(path)[None]


def _read_one(path: str, channels: int, grey_alpha: bool) -> np.ndarray:
    """One PNG/BMP/JPG frame (H, W[, C]), decoded when a lazy stack asks for it."""
    from skimage import io as skio

    with pil_limit(max_pixels()):
        arr = np.asarray(skio.imread(path))
    if grey_alpha and arr.ndim == 3:
        arr = arr[..., 0]
    return arr


def open_files_lazy(infos: Sequence[FrameInfo]) -> Any:
    """Files of one frame size as an (N, H, W[, C]) dask array of delayed reads (TIFF stacks
    contribute their frames lazily too). All ``infos`` must share the frame shape."""
    import dask
    import dask.array as da

    dtype = np.result_type(*[i.dtype for i in infos])
    parts = []
    for info in infos:
        if info.path.suffix.lower() in TIFF_EXTS:
            part = da.asarray(open_tiff_lazy(info))
            parts.append(part.astype(dtype) if part.dtype != dtype else part)
        else:
            read = dask.delayed(_read_one, pure=True)(
                str(info.path), info.channels, info.grey_alpha
            )
            frame = da.from_delayed(read, info.frame_shape, dtype=info.dtype)
            parts.append((frame.astype(dtype) if info.dtype != dtype else frame)[None])
    return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


def output_bytes() -> int:
    """Result arrays over this many bytes go to disk (``NAPARI_IRSAM_OUTPUT_BYTES``)."""
    return _env_int(OUTPUT_BYTES_ENV, DEFAULT_OUTPUT_BYTES)


def new_output_array(shape: tuple[int, ...], dtype: Any, limit: int | None = None) -> np.ndarray:
    """Zeros of ``shape``: in memory when at most ``limit`` bytes (default
    :func:`output_bytes`), else a disk-backed memmap (see module doc)."""
    import tempfile

    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes <= (output_bytes() if limit is None else limit):
        return np.zeros(shape, dtype)
    folder = os.environ.get("NAPARI_IRSAM_SCRATCH") or tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix="napari-irsam-", suffix=".npy", dir=folder)
    os.close(fd)
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
    try:
        os.unlink(path)  # the mapping keeps the data; the space is freed when it is released
    except OSError:  # Windows cannot unlink a mapped file: remove it at exit
        import atexit

        atexit.register(lambda: Path(path).unlink(missing_ok=True))
    return arr


# ------------------------------------------------------------------------- frame-by-frame views
def is_lazy(data: Any) -> bool:
    """True for arrays that are not in memory as a whole (dask, zarr, memmap)."""
    return not isinstance(data, np.ndarray) or isinstance(data, np.memmap)


def sample_frames(data: Any, count: int = 8) -> np.ndarray:
    """Up to ``count`` evenly spaced frames of an (N, H, W[, C]) stack, read as numpy — what
    contrast limits of a lazy stack are computed from (never the whole stack)."""
    n = int(data.shape[0])
    picks = sorted({int(round(x)) for x in np.linspace(0, n - 1, min(count, n))})
    return np.stack([np.asarray(data[i]) for i in picks])


class LazyFrames:
    """Frames ``indices`` of a stack, read one at a time (numpy, memmap, dask or zarr).

    ``shape``/``dtype``/``ndim`` describe the selection; ``frames[k]`` reads the ``k``-th chosen
    frame as a numpy array, converted to float32 luminance when ``grey`` (RGB(A) stacks). Nothing
    is read before it is asked for, so segmenting 100 frames of a 10,000-frame stack reads 100.
    """

    def __init__(self, data: Any, indices: Sequence[int] | None = None, grey: bool = False):
        self.data = data
        n = int(data.shape[0])
        self.indices = list(range(n)) if indices is None else [int(i) for i in indices]
        self.grey = grey
        cut = 3 if grey else data.ndim
        self._frame_shape = tuple(int(s) for s in data.shape[1:cut])
        self.dtype = np.dtype(np.float32) if grey else np.dtype(data.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.indices), *self._frame_shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> np.ndarray:
        if not isinstance(k, (int, np.integer)):
            raise TypeError("LazyFrames reads one frame at a time: index it with an integer.")
        arr = np.asarray(self.data[self.indices[int(k)]])
        if self.grey:
            from ..preprocess import to_grey

            arr = to_grey(arr)
        return arr

    def __iter__(self) -> Iterator[np.ndarray]:
        for k in range(len(self)):
            yield self[k]
