import numpy as np

from napari_irsam._sample_data import make_sample_data


def test_sample_is_deterministic_and_aligned():
    (img, img_meta, k1), (lab, _, k2) = make_sample_data()
    assert (k1, k2) == ("image", "labels") and img.shape == lab.shape == (8, 256, 256)
    assert img.dtype == np.uint16 and len(np.unique(lab)) >= 3
    lo, hi = img_meta["contrast_limits"]
    assert img.min() <= lo < hi <= img.max()
    np.testing.assert_array_equal(make_sample_data()[0][0], img)
    # targets are brighter than their surroundings
    assert img[lab > 0].mean() > img[lab == 0].mean()


def test_sample_opens_in_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-irsam", "synthetic_ir")
    assert [layer.name for layer in layers] == ["synthetic IR", "ground truth"]
    assert layers[0].data.shape == layers[1].data.shape
