"""Reading infrared frames and stacks, and writing masks atomically (numpy/tifffile/scikit-image).

* A single image file: PNG/BMP/JPG (scikit-image) or TIFF (tifffile; single or multi-page,
  8/16/32-bit integer or float). A multi-page TIFF is an (N, H, W) stack.
* A folder: every image file in it, natural-sorted (``f2`` before ``f10``), as one stack.
  Frames of different sizes raise a ``ValueError`` naming two offending files.
* A list of files: one stack, in the given order.

Dtypes are preserved; RGB/RGBA frames keep their channels (``FrameStack.rgb`` says so).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TIFF_EXTS = (".tif", ".tiff")
OTHER_EXTS = (".png", ".bmp", ".jpg", ".jpeg")
IMAGE_EXTS = TIFF_EXTS + OTHER_EXTS


@dataclass
class FrameStack:
    """Frames read from disk. ``data`` is (N, H, W) or (N, H, W, C); single images have N = 1."""

    data: np.ndarray
    paths: list[str] = field(default_factory=list)  #: one entry per file read
    frame_names: list[str] = field(default_factory=list)  #: one stem per frame
    dtype: str = ""
    rgb: bool = False


def natural_sort_key(name: str) -> list[object]:
    """Sort key that orders embedded numbers numerically (``f2`` < ``f10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def _read_file(path: Path) -> np.ndarray:
    """One file → (N, H, W[, C]) array."""
    try:
        if path.suffix.lower() in TIFF_EXTS:
            import tifffile

            arr = tifffile.imread(path)
            if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4):
                arr = arr[None]
        else:
            from skimage import io as skio

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


def read_frames(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> FrameStack:
    """Read a file, a folder of frames or a list of files as one :class:`FrameStack`."""
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
    arrays, names = [], []
    for f in files:
        arr = _read_file(f)
        if arrays and arr.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(
                f"Frames differ in size: {files[0].name} is {arrays[0].shape[1:]} but {f.name} is "
                f"{arr.shape[1:]}; open them separately."
            )
        if arrays and arr.dtype != arrays[0].dtype:
            arr = arr.astype(np.result_type(arr.dtype, arrays[0].dtype))
        arrays.append(arr)
        names += (
            [f.stem] if arr.shape[0] == 1 else [f"{f.stem}_{i:04d}" for i in range(arr.shape[0])]
        )
    data = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
    rgb = data.ndim == 4 and data.shape[-1] in (3, 4)
    return FrameStack(data, [str(f) for f in files], names, str(data.dtype), rgb)


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
    a constant gives (v, v + 1).
    """
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
