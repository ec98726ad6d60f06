import numpy as np
import pytest
import tifffile
from skimage import io as skio

from napari_irsam.data.io import (
    DISPLAY_PERCENTILES,
    natural_sort_key,
    percentile_limits,
    read_frames,
    write_mask_png_folder,
    write_mask_tiff,
)


def _frame(dtype, shape=(12, 16), seed=0):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.floating):
        return rng.normal(size=shape).astype(dtype)
    hi = min(int(np.iinfo(dtype).max), 70000)
    return rng.integers(0, hi, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint32, np.float32])
def test_tiff_single_and_multipage_preserve_dtype(tmp_path, dtype):
    single = _frame(dtype)
    tifffile.imwrite(tmp_path / "one.tif", single)
    fs = read_frames(tmp_path / "one.tif")
    assert fs.data.shape == (1, 12, 16) and fs.data.dtype == dtype and not fs.rgb
    np.testing.assert_array_equal(fs.data[0], single)
    stack = np.stack([_frame(dtype, seed=i) for i in range(5)])
    tifffile.imwrite(tmp_path / "stack.tiff", stack)
    fs = read_frames(tmp_path / "stack.tiff")
    assert fs.data.shape == (5, 12, 16) and fs.frame_names == [f"stack_{i:04d}" for i in range(5)]
    np.testing.assert_array_equal(fs.data, stack)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_grey(tmp_path, dtype):
    img = _frame(dtype)
    skio.imsave(tmp_path / "a.png", img, check_contrast=False)
    fs = read_frames(tmp_path / "a.png")
    assert fs.data.dtype == dtype and fs.dtype == np.dtype(dtype).name
    np.testing.assert_array_equal(fs.data[0], img)


@pytest.mark.parametrize("channels", [3, 4])
def test_png_rgb_rgba(tmp_path, channels):
    img = _frame(np.uint8, (10, 9, channels))
    skio.imsave(tmp_path / "c.png", img, check_contrast=False)
    fs = read_frames(tmp_path / "c.png")
    assert fs.rgb and fs.data.shape == (1, 10, 9, channels)


def test_folder_natural_sort_and_size_mismatch(tmp_path):
    for i in (10, 2, 1):
        skio.imsave(tmp_path / f"f{i}.png", np.full((8, 8), i, np.uint8), check_contrast=False)
    (tmp_path / "notes.txt").write_text("ignored")
    fs = read_frames(tmp_path)
    assert fs.frame_names == ["f1", "f2", "f10"] and list(fs.data[:, 0, 0]) == [1, 2, 10]
    skio.imsave(tmp_path / "f3.png", np.zeros((9, 8), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match=r"Frames differ in size: f1.png .* f3.png"):
        read_frames(tmp_path)
    assert sorted(["a10", "a2", "a1"], key=natural_sort_key) == ["a1", "a2", "a10"]


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_frames(tmp_path / "missing.tif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="contains no image files"):
        read_frames(tmp_path / "empty")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(ValueError, match="not a supported image file"):
        read_frames(tmp_path / "x.csv")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="Cannot read broken.png"):
        read_frames(tmp_path / "broken.png")


def test_contrast_limits_for_16bit_and_constant():
    rng = np.random.default_rng(0)
    thermal = (20000 + rng.normal(0, 50, (4, 64, 64))).astype(np.uint16)
    lo, hi = percentile_limits(thermal, *DISPLAY_PERCENTILES)
    assert 19700 < lo < hi < 20300  # not (0, 65535): the frame must not open black
    assert (lo, hi) == tuple(np.percentile(thermal, DISPLAY_PERCENTILES))
    assert percentile_limits(np.full((5, 5), 3.0), 0.5, 99.8) == (3.0, 4.0)
    f = np.array([[np.nan, 1.0], [np.inf, 2.0]])
    assert percentile_limits(f, 0, 100) == (1.0, 2.0)  # only the finite values count
    assert percentile_limits(np.full(4, np.nan), 0, 100) == (0.0, 1.0)


def test_percentiles_of_large_arrays_use_a_regular_subsample():
    data = np.arange(3_000_000, dtype=np.float32)
    # step 3_000_000 // 1_000_000 + 1 = 4: the values 0, 4, …, 2_999_996 are used
    assert percentile_limits(data, 0, 100, max_samples=1_000_000) == (0.0, 2_999_996.0)
    assert percentile_limits(data, 0, 100, max_samples=3_000_000) == (0.0, 2_999_999.0)


def test_mask_writers_round_trip(tmp_path):
    labels = np.zeros((2, 8, 8), np.int32)
    labels[0, 1:3, 1:3] = 7
    labels[1, 4, 4] = 300
    paths = write_mask_png_folder(labels, tmp_path / "masks", ["a", "b"])
    back = np.stack([skio.imread(p) for p in paths])
    assert back.dtype == np.uint8 and set(np.unique(back)) == {0, 255}
    np.testing.assert_array_equal(back > 0, labels > 0)
    write_mask_tiff(labels, tmp_path / "l.tif")
    read = tifffile.imread(tmp_path / "l.tif")
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read, labels)
    assert not [p for p in (tmp_path / "masks").iterdir() if p.name.startswith(".")]
