"""Band-by-band targets of very large frames give exactly the whole-frame results."""

import numpy as np
import pytest
from scipy import ndimage

import napari_irsam.targets as targets_mod
from napari_irsam.segment import label_targets
from napari_irsam.targets import extract_targets, relabel_components
from napari_irsam.targets_large import finite_range, is_mask_like, label_large, large_frame_targets


def _mask(seed: int, shape=(97, 83), p=0.08) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = ndimage.binary_dilation(rng.random(shape) < p / 4, iterations=1)
    m[10:40, 30] = True  # a thin vertical line crossing several bands
    m[50, 5:70] = True
    for k in range(0, 80, 7):  # diagonal touching only by corners across band borders
        m[k, k] = True
    return m


@pytest.mark.parametrize("band_rows", [1, 2, 7, 16, 1000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_large_equals_whole_frame_labelling(seed: int, band_rows: int) -> None:
    mask = _mask(seed)
    want = relabel_components(mask)
    got, n = label_large(mask, band_rows=band_rows)
    np.testing.assert_array_equal(got, want)
    assert n == want.max()
    shifted, _ = label_large(mask, first_id=11, band_rows=band_rows)
    np.testing.assert_array_equal(shifted, np.where(want > 0, want + 10, 0))


@pytest.mark.parametrize("band_rows", [3, 10])
def test_large_records_equal_regionprops(band_rows: int) -> None:
    mask = _mask(4)
    prob = np.random.default_rng(5).random(mask.shape).astype(np.float32)
    want = extract_targets(mask, prob)
    got = large_frame_targets(mask, prob, is_mask=True, band_rows=band_rows)
    assert len(got) == len(want) > 10
    for (tid, centroid, area, bbox, peak), t in zip(got, want):
        assert (tid, area, bbox) == (t.target_id, t.area, t.bbox)
        np.testing.assert_allclose(centroid, t.centroid, rtol=1e-9)
        assert peak == pytest.approx(t.peak_score)
    # a labels image keeps its ids, pieces of one id are one record
    labels = relabel_components(mask)
    labels[labels == 3] = 2
    want = extract_targets(labels, prob)
    got = large_frame_targets(labels, prob, is_mask=False, band_rows=band_rows)
    assert [(g[0], g[2], g[3]) for g in got] == [(t.target_id, t.area, t.bbox) for t in want]


def test_extract_and_label_take_the_band_path_for_large_frames(monkeypatch, tmp_path) -> None:
    mask = _mask(7, shape=(300, 260))
    prob = np.where(mask, 0.9, 0.1).astype(np.float32)
    small = extract_targets(mask, prob)
    small_labels = label_targets(mask, first_id=5)
    import napari_irsam.targets_large as tl

    monkeypatch.setattr(tl, "LARGE_PIXELS", 1000)
    monkeypatch.setattr(tl, "BAND_ROWS", 32)
    calls = []
    real = tl.large_frame_targets
    monkeypatch.setattr(
        targets_mod, "large_frame_targets", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    on_disk = np.lib.format.open_memmap(tmp_path / "m.npy", "w+", np.uint8, mask.shape)
    on_disk[:] = mask * 255
    big = extract_targets(on_disk, prob)
    assert calls and [t.as_dict() for t in big] == [t.as_dict() for t in small]
    out = np.lib.format.open_memmap(tmp_path / "l.npy", "w+", np.int32, mask.shape)
    got = label_targets(on_disk, first_id=5, out=out)
    assert got is out
    np.testing.assert_array_equal(np.asarray(out), small_labels)
    # 3-D stacks of large frames: frame index and offset kept
    stack = np.stack([mask, np.zeros_like(mask), mask])
    recs = extract_targets(stack, frame_offset=10)
    assert {t.frame for t in recs} == {10, 12}


def test_mask_detection_and_range_read_in_bands() -> None:
    assert is_mask_like(np.array([[0, 255], [1, 0]], np.uint8), band_rows=1)
    assert not is_mask_like(np.array([[0, 2], [1, 0]], np.uint8), band_rows=1)
    a = np.array([[np.nan, 0.5], [np.inf, -2.0], [3.0, np.nan]], np.float32)
    assert finite_range(a, band_rows=1) == (-2.0, 3.0)
    assert finite_range(np.full((2, 2), np.nan), band_rows=1) is None


def test_review_measures_a_large_frame_like_a_small_one(monkeypatch):
    """Review's per-target records (centroid, area, bbox, peak, pixel fingerprint) of a frame
    over LARGE_PIXELS come from its foreground pixels read in bands: the same as whole-frame."""
    import napari_irsam.targets_large as tl
    from napari_irsam import review

    labels = relabel_components(_mask(9, shape=(120, 90))).astype(np.int32)
    labels[labels == 4] = 900  # sparse, large ids too
    labels[labels == 6] = 5  # an id in two pieces
    prob = np.random.default_rng(1).random(labels.shape).astype(np.float32)
    small = review._measure(labels, prob)
    monkeypatch.setattr(tl, "LARGE_PIXELS", 100)
    monkeypatch.setattr(tl, "BAND_ROWS", 7)
    calls = []
    real = tl.foreground
    monkeypatch.setattr(tl, "foreground", lambda *a, **k: calls.append(1) or real(*a, band_rows=7))
    big = review._measure(labels, prob)
    assert calls and big == small and len(big) > 10
    assert review._measure(np.zeros((20, 20), np.int32), None) == {}
