"""Header checks, the pixel limit and lazy stacks (data.lazy, data.io)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage import io as skio

from napari_irsam.data.io import percentile_limits, read_frame_groups, read_frames
from napari_irsam.data.lazy import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    FrameTooLargeError,
    LazyFrames,
    is_lazy,
    probe,
)

from .bombs import png_bomb, tiff_bomb


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bombs")
    return tiff_bomb(d / "bomb.tif"), png_bomb(d / "bomb.png")


def test_default_limit_admits_20k_and_refuses_40k():
    assert 20_000 * 20_000 <= DEFAULT_MAX_PIXELS < 40_000 * 40_000


@pytest.mark.parametrize("which", [0, 1])
def test_bombs_are_refused_from_their_header(bombs, which):
    path = bombs[which]
    assert path.stat().st_size < 3_000_000  # a few KB / MB announcing 1.6 G pixels
    with pytest.raises(FrameTooLargeError, match=r"40,000 × 40,000|decompression bomb") as err:
        read_frames(path)
    assert "\n" not in str(err.value) and MAX_PIXELS_ENV in str(err.value)


def test_pillow_bomb_guard_becomes_our_sentence(tmp_path, monkeypatch):
    # over twice the limit Pillow itself raises DecompressionBombError while opening
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    skio.imsave(tmp_path / "a.png", np.zeros((50, 50), np.uint8), check_contrast=False)
    with pytest.raises(FrameTooLargeError, match="decompression bomb"):
        probe(tmp_path / "a.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "2000")  # between the limit and 2× it: our own check
    with pytest.raises(FrameTooLargeError, match="50 × 50 pixels"):
        probe(tmp_path / "a.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "2500")
    assert probe(tmp_path / "a.png").h == 50
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match="must be a whole number"):
        probe(tmp_path / "a.png")


def test_bomb_refusal_allocates_nothing(bombs):
    """In a fresh interpreter: refusing both bombs keeps the peak RSS near the import cost."""
    code = textwrap.dedent(
        f"""
        import json, resource, time
        from napari_irsam.data.io import read_frames
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        msgs = []
        for p in {[str(b) for b in bombs]!r}:
            try:
                read_frames(p)
            except ValueError as e:
                msgs.append(str(e))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"grew_mb": (peak - base) / 1024, "msgs": msgs}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(res["msgs"]) == 2
    assert res["grew_mb"] < 100  # the frames are 1.6 GB each


def test_big_tiff_opens_as_memmap_and_compressed_as_dask(tmp_path):
    stack = np.arange(6 * 16 * 12, dtype=np.uint16).reshape(6, 16, 12)
    tifffile.imwrite(tmp_path / "raw.tif", stack)
    tifffile.imwrite(tmp_path / "zip.tif", stack, compression="zlib", tile=(16, 16))
    raw = read_frames(tmp_path / "raw.tif", lazy=True)
    assert isinstance(raw.data, np.memmap) and raw.data.shape == (6, 16, 12)
    z = read_frames(tmp_path / "zip.tif", lazy=True)
    assert type(z.data).__module__.startswith("dask") and z.data.shape == (6, 16, 12)
    np.testing.assert_array_equal(np.asarray(z.data[4]), stack[4])
    np.testing.assert_array_equal(raw.data[2], stack[2])
    assert z.frame_names == [f"zip_{i:04d}" for i in range(6)]
    # the size threshold decides when lazy is not forced
    assert not is_lazy(read_frames(tmp_path / "raw.tif").data)


def test_lazy_threshold_from_environment(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((4, 8, 8), np.uint16))
    monkeypatch.setenv("NAPARI_IRSAM_LAZY_BYTES", "100")
    assert is_lazy(read_frames(tmp_path / "s.tif").data)


class CountingReads:
    """A stand-in for a file: records which frames were read; full reads fail."""

    def __init__(self, data):
        self.data, self.reads = data, []
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)):
            raise AssertionError(f"read more than one frame: {i!r}")
        self.reads.append(int(i))
        return self.data[i]

    def __array__(self, *a, **k):
        raise AssertionError("the whole stack was materialised")


def test_lazy_frames_read_one_frame_at_a_time():
    src = CountingReads(np.arange(5 * 4 * 3 * 3, dtype=np.uint8).reshape(5, 4, 3, 3))
    sel = LazyFrames(src, [4, 1], grey=True)
    assert sel.shape == (2, 4, 3) and sel.dtype == np.float32 and src.reads == []
    frame = sel[1]
    assert frame.shape == (4, 3) and src.reads == [1]


def test_percentiles_of_a_lazy_stack_read_a_sample():
    src = CountingReads(np.arange(100 * 5 * 6, dtype=np.uint16).reshape(100, 5, 6))
    src.__class__ = type("Lazy", (CountingReads,), {})
    lo, hi = percentile_limits(src, 0, 100)
    assert len(set(src.reads)) <= 8 and lo == 0 and hi >= 99 * 30


def test_folder_of_png_opens_as_delayed_reads(tmp_path):
    for i in range(4):
        skio.imsave(tmp_path / f"f{i}.png", np.full((6, 5), i, np.uint8), check_contrast=False)
    fs = read_frames(tmp_path, lazy=True)
    assert type(fs.data).__module__.startswith("dask") and fs.data.shape == (4, 6, 5)
    assert int(np.asarray(fs.data[3])[0, 0]) == 3


def test_mixed_sizes_give_one_stack_per_size(tmp_path):
    for i, shape in enumerate([(8, 8), (9, 8), (8, 8)]):
        skio.imsave(tmp_path / f"f{i}.png", np.full(shape, i, np.uint8), check_contrast=False)
    groups = read_frame_groups(tmp_path)
    assert [g.data.shape for g in groups] == [(2, 8, 8), (1, 9, 8)]
    assert [g.frame_names for g in groups] == [["f0", "f2"], ["f1"]]
    with pytest.raises(ValueError, match="Frames differ in size"):
        read_frames(tmp_path)


def test_probe_reads_tiff_layouts(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((10, 9, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(tmp_path / "st.tif", np.zeros((2, 10, 9), np.float32))
    assert probe(tmp_path / "rgb.tif").frame_shape == (10, 9, 3)
    info = probe(tmp_path / "st.tif")
    assert (info.n, info.h, info.w, info.dtype) == (2, 10, 9, np.float32)
    Path(tmp_path / "bad.tif").write_bytes(b"II*\0garbage")
    with pytest.raises(ValueError, match="Cannot read bad.tif"):
        probe(tmp_path / "bad.tif")
