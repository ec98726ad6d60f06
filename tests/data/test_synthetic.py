import numpy as np
import pytest
from scipy import ndimage

from napari_irsam.data.io import read_frames
from napari_irsam.data.synthetic import BACKGROUNDS, make_dataset, make_scene, make_sequence


@pytest.mark.parametrize("bg", BACKGROUNDS)
def test_scene_is_deterministic_and_consistent(bg):
    a = make_scene((96, 128), seed=3, background=bg, n_targets=3)
    b = make_scene((96, 128), seed=3, background=bg, n_targets=3)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.image.shape == (96, 128) and a.image.dtype == np.float32
    assert 0 <= a.image.min() and a.image.max() <= 1
    assert set(np.unique(a.mask)) <= {0, 255}
    assert (a.labels > 0).sum() == (a.mask > 0).sum() == sum(t["area"] for t in a.targets)
    assert not np.array_equal(a.image, make_scene((96, 128), seed=4, background=bg).image)


def test_targets_sit_on_their_masks_and_respect_sizes():
    s = make_scene((128, 128), seed=5, n_targets=4, size_range=(1, 80))
    for i, t in enumerate(s.targets, start=1):
        cy, cx = ndimage.center_of_mass(s.labels == i)
        assert abs(cy - t["centroid"][0]) < 2.5 and abs(cx - t["centroid"][1]) < 2.5
        assert 1 <= t["area"] <= 80


def test_requested_snr_is_what_the_image_shows():
    ratios = []
    for seed in range(6):
        s = make_scene((128, 128), seed=seed, n_targets=1, snr_range=(6.0, 6.0), background="sky")
        region = s.labels == 1
        iy, ix = np.unravel_index(np.argmax(np.where(region, s.image, -1)), region.shape)
        win = (slice(max(0, iy - 10), iy + 11), slice(max(0, ix - 10), ix + 11))
        excl = ndimage.binary_dilation(region, iterations=2)[win]
        bg = s.image[win][~excl]
        ratios.append((s.image[iy, ix] - bg.mean()) / bg.std() / 6.0)
    assert 0.7 < np.median(ratios) < 1.3


def test_dtypes_and_bad_arguments():
    assert make_scene((32, 32), seed=0, dtype="uint16").image.dtype == np.uint16
    assert make_scene((32, 32), seed=0, dtype="uint8").image.dtype == np.uint8
    with pytest.raises(ValueError, match="Unknown background"):
        make_scene((32, 32), background="space")
    with pytest.raises(ValueError, match="dtype"):
        make_scene((32, 32), dtype="int8")


def test_sequence_keeps_target_ids():
    frames, labels = make_sequence(n_frames=4, shape=(96, 96), seed=1, n_targets=2)
    assert frames.shape == labels.shape == (4, 96, 96) and frames.dtype == np.uint16
    for t in range(4):
        assert set(np.unique(labels[t])) == {0, 1, 2}
    c0 = ndimage.center_of_mass(labels[0] == 1)
    c3 = ndimage.center_of_mass(labels[3] == 1)
    assert c0 != c3  # targets move


def test_dataset_layout(tmp_path):
    root = make_dataset(tmp_path / "ds", n_images=4, seed=0, size=(64, 64))
    train = (root / "splits" / "train.txt").read_text().split()
    test = (root / "splits" / "test.txt").read_text().split()
    assert len(train) == 3 and len(test) == 1 and not set(train) & set(test)
    for name in train + test:
        assert (root / "images" / f"{name}.png").is_file() and (
            root / "masks" / f"{name}.png"
        ).is_file()
    assert read_frames(root / "masks").data.max() == 255


def test_camera_gamma_changes_contrast_not_ground_truth():
    plain = make_scene((64, 64), n_targets=2, seed=5)
    bent = make_scene((64, 64), n_targets=2, seed=5, gamma_range=(0.5, 0.5))
    assert np.array_equal(plain.mask, bent.mask)
    assert not np.allclose(plain.image, bent.image)
    # a monotonic curve keeps every target's brightest pixel the brightest in its neighbourhood
    assert np.argmax(plain.image) == np.argmax(bent.image)


def test_snr_is_drawn_inside_the_range():
    snrs = [
        t["snr"] for s in range(20) for t in make_scene((64, 64), seed=s, snr_range=(2, 8)).targets
    ]
    assert snrs and min(snrs) >= 2 and max(snrs) <= 8
