"""Hostile files made cheaply: headers that announce 40,000 × 40,000 pixels in a few KB."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def tiff_bomb(path: Path, side: int = 40_000, tile: int = 2048) -> Path:
    """A tiled, zlib-compressed all-zero uint8 TIFF of side² pixels (≈ 1 MB on disk)."""
    import tifffile

    block = np.zeros((tile, tile), np.uint8)
    n = (-(-side // tile)) ** 2
    tifffile.imwrite(
        path,
        (block for _ in range(n)),
        shape=(side, side),
        dtype=np.uint8,
        tile=(tile, tile),
        compression="zlib",
    )
    return path


def png_bomb(path: Path, side: int = 40_000) -> Path:
    """A PNG whose header says side × side grey pixels; its data is a zlib stream of zero rows
    cut short (never decoded by a reader that checks the header first)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grey
    rows = zlib.compress(b"\0" * (side + 1) * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
    return path


def sparse_tiff_bomb(path: Path, side: int = 40_000) -> Path:
    """An uncompressed side² uint8 TIFF whose pixel data is a hole in a sparse file: the header
    is real, the disk holds a few KB (the quickest bomb to make)."""
    import tifffile

    tifffile.imwrite(path, shape=(side, side), dtype=np.uint8)
    return path
