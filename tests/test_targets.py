import numpy as np
import pytest

from napari_irsam.targets import extract_targets, relabel_components


def test_relabel_is_8_connected_and_unique_across_frames():
    m = np.zeros((2, 6, 6), bool)
    m[0, 0, 0] = m[0, 1, 1] = True  # diagonal neighbours: one target
    m[0, 4, 4] = True
    m[1, 0, 0] = True  # same place, next frame: a different id
    lab = relabel_components(m)
    assert lab.dtype == np.int32
    assert lab[0, 0, 0] == lab[0, 1, 1] != lab[0, 4, 4]
    assert lab[1, 0, 0] not in (lab[0, 0, 0], lab[0, 4, 4]) and lab.max() == 3


def test_extract_from_mask_and_labels_with_scores():
    m = np.zeros((8, 8), np.uint8)
    m[1:3, 1:3] = 255
    m[6, 6] = 255
    prob = np.zeros((8, 8), np.float32)
    prob[2, 2], prob[6, 6] = 0.9, 0.6
    recs = extract_targets(m, prob, frame_offset=5)
    assert [(r.frame, r.area) for r in recs] == [(5, 4), (5, 1)]
    assert recs[0].centroid == (1.5, 1.5) and recs[0].bbox == (1, 1, 3, 3)
    assert recs[0].peak_score == pytest.approx(0.9) and recs[1].status == "pending"
    labels = np.zeros((1, 8, 8), np.int32)
    labels[0, 0, 0] = labels[0, 7, 7] = 42  # one id, two pieces: still one target
    [rec] = extract_targets(labels)
    assert rec.target_id == 42 and rec.area == 2 and rec.peak_score is None


def test_bad_shapes():
    with pytest.raises(ValueError, match="Expected"):
        extract_targets(np.zeros(5))
    with pytest.raises(ValueError, match="prob has shape"):
        extract_targets(np.zeros((4, 4), bool), np.zeros((3, 3)))


def test_stack_frames_offset_and_4_vs_8_connectivity():
    m = np.zeros((3, 6, 6), bool)
    m[0, 1, 1] = m[0, 2, 2] = True  # diagonal: one target with 8-connectivity
    m[2, 0, 0:2] = True
    m[2, 5, 5] = True
    recs = extract_targets(m, frame_offset=10)
    assert [(r.frame, r.target_id, r.area) for r in recs] == [(10, 1, 2), (12, 1, 2), (12, 2, 1)]
    assert recs[0].bbox == (1, 1, 3, 3) and recs[0].centroid == (1.5, 1.5)
    assert extract_targets(np.zeros((2, 4, 4), bool)) == []


def test_labels_keep_ids_and_reject_bad_dtypes():
    labels = np.zeros((6, 6), np.uint16)
    labels[0, 0:2] = 7
    labels[0, 2] = 3  # touches id 7 but stays a separate target
    assert [(r.target_id, r.area) for r in extract_targets(labels)] == [(3, 1), (7, 2)]
    with pytest.raises(ValueError, match="threshold probabilities"):
        extract_targets(np.full((4, 4), 0.7))
    with pytest.raises(ValueError, match="negative"):
        extract_targets(np.full((4, 4), -2))
    with pytest.raises(ValueError, match="dtype"):
        extract_targets(np.full((4, 4), "a"))
