"""IRSTD-layout datasets: ``images/<stem>.png``, ``masks/<stem>.png``, ``splits/*.txt``.

Split files may list names with or without an extension, with CRLF line endings or without a
trailing newline (all seen in the public SIRST / NUDT-SIRST splits). Images are read as 8-bit grey
(RGB, RGBA and palette PNGs are converted to luminance); masks are binarised as > 127.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def read_split(root: str | os.PathLike[str], split: str | os.PathLike[str]) -> list[str]:
    """Names (without extension) listed in ``split``: a path, or a file name under ``splits/``."""
    root = Path(root)
    candidates = [
        Path(split),
        root / "splits" / str(split),
        root / "splits" / f"{split}.txt",
        root / str(split),
    ]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"Split file {split} not found (looked in {root / 'splits'}).")
    names = []
    for line in path.read_text().splitlines():
        name = line.strip()
        if not name:
            continue
        if Path(name).suffix.lower() in IMAGE_SUFFIXES:
            name = Path(name).stem
        names.append(name)
    if not names:
        raise ValueError(f"Split file {path} lists no images.")
    return names


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def read_grey(path: Path) -> np.ndarray:
    """Any image file → (H, W) uint8 luminance (16-bit files are scaled by their max)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I", "F"):
            arr = np.asarray(im, dtype=np.float32)
            top = max(float(arr.max()), 1.0)
            return np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return np.asarray(im.convert("L"))


@dataclass
class Sample:
    name: str
    image: np.ndarray  #: (H, W) uint8
    mask: np.ndarray  #: (H, W) bool


class IRSTDDataset:
    """Lazy access to the samples of one split of an IRSTD-layout folder."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | os.PathLike[str] | None = None,
        names: list[str] | None = None,
        cache: bool = False,
    ) -> None:
        self.root = Path(root)
        #: decoded samples kept in memory after their first read (training reads each many times)
        self._cache: dict[int, Sample] | None = {} if cache else None
        if not (self.root / "images").is_dir() or not (self.root / "masks").is_dir():
            raise FileNotFoundError(
                f"{self.root} is not an IRSTD dataset (it needs images/ and masks/)."
            )
        if names is None:
            if split is None:
                names = sorted(
                    p.stem
                    for p in (self.root / "images").iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                )  # ".x.k2j4.png": a temporary file left by an interrupted export
            else:
                names = read_split(self.root, split)
        self.names = list(names)
        self._paths = []
        for n in self.names:
            img, msk = _find(self.root / "images", n), _find(self.root / "masks", n)
            if img is None or msk is None:
                which = "image" if img is None else "mask"
                raise FileNotFoundError(
                    f"The split names {n!r} but its {which} is missing in {self.root}."
                )
            self._paths.append((img, msk))

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> Sample:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        img_path, mask_path = self._paths[i]
        image = read_grey(img_path)
        mask = read_grey(mask_path) > 127
        if mask.shape != image.shape:
            raise ValueError(
                f"{self.names[i]}: mask {mask.shape} and image {image.shape} differ in size."
            )
        sample = Sample(self.names[i], image, mask)
        if self._cache is not None:
            self._cache[i] = sample
        return sample

    def manifest_sha256(self) -> str:
        """sha256 over the names and bytes of every image and mask, in split order."""
        h = hashlib.sha256()
        for name, (img, msk) in zip(self.names, self._paths):
            h.update(name.encode())
            h.update(img.read_bytes())
            h.update(msk.read_bytes())
        return h.hexdigest()


def split_train_val(
    names: list[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Deterministic split of training names into (train, validation); validation ≥ 1 name when
    there are at least 2 names and ``val_fraction`` > 0."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = int(round(len(names) * val_fraction))
    if val_fraction > 0 and len(names) >= 2:
        n_val = max(1, n_val)
    val = sorted(names[i] for i in order[:n_val])
    train = [n for n in names if n not in set(val)]
    return train, val


class ConcatIRSTD:
    """Several IRSTD datasets (or splits) seen as one; names are prefixed ``<folder>/``."""

    def __init__(self, parts: list[IRSTDDataset]) -> None:
        if not parts:
            raise ValueError("No dataset given.")
        self.parts = parts
        self.index = [(p, i) for p in parts for i in range(len(p))]
        self.names = [f"{p.root.name}/{n}" for p in parts for n in p.names]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Sample:
        part, j = self.index[i]
        s = part[j]
        return Sample(self.names[i], s.image, s.mask)

    def manifest_sha256(self) -> str:
        """sha256 over the parts' manifests, in order."""
        h = hashlib.sha256()
        for p in self.parts:
            h.update(p.manifest_sha256().encode())
        return h.hexdigest()
