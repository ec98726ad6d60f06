import numpy as np

from napari_irsam._sample_data import SAMPLE, make_sample_data


def test_sample_is_deterministic_and_aligned():
    (img, img_meta, k1), (lab, lab_meta, k2) = make_sample_data()
    n = SAMPLE["n_frames"]
    assert (k1, k2) == ("image", "labels") and img.shape == lab.shape == (n, 256, 256)
    assert img.dtype == np.uint16
    assert set(np.unique(lab)) == {0, *range(1, SAMPLE["n_targets"] + 1)}  # ids = track ids
    lo, hi = img_meta["contrast_limits"]
    assert img.min() <= lo < hi <= img.max()
    np.testing.assert_array_equal(make_sample_data()[0][0], img)
    # targets are brighter than their surroundings
    assert img[lab > 0].mean() > img[lab == 0].mean()
    # the track table says where each target is, frame by frame
    rows = lab_meta["metadata"]["tracks"]
    for r in rows:
        rr, cc = np.nonzero(lab[r["frame"]] == r["track_id"])
        assert abs(rr.mean() - r["row"]) < 1e-6 and abs(cc.mean() - r["col"]) < 1e-6
    # and the targets move: every track travels more than 5 px over the recording
    for tid in range(1, SAMPLE["n_targets"] + 1):
        pts = np.array([(r["row"], r["col"]) for r in rows if r["track_id"] == tid])
        assert np.hypot(*(pts[-1] - pts[0])) > 5


def test_sample_opens_in_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-irsam", "synthetic_ir")
    assert [layer.name for layer in layers] == ["synthetic IR", "ground truth"]
    assert layers[0].data.shape == layers[1].data.shape
