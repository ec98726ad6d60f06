"""Annotation effort on hand-made frames; every expected number is worked out in the comments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_irsam.effort import EffortAccumulator, average_precision, frame_effort


def _square(canvas: np.ndarray, r: int, c: int, side: int) -> None:
    canvas[r : r + side, c : c + side] = True


def test_exact_match_is_accepted():
    gt = np.zeros((20, 20), bool)
    _square(gt, 5, 5, 3)
    e = frame_effort(gt.copy(), gt)
    assert (e.n_gt, e.n_pred, e.misses, e.false_alarms, e.reshapes, e.accepted) == (
        1,
        1,
        0,
        0,
        0,
        1,
    )
    assert e.pair_ious == [1.0]


def test_miss_false_alarm_and_reshape():
    gt = np.zeros((40, 40), bool)
    pred = np.zeros((40, 40), bool)
    _square(gt, 2, 2, 2)  # GT A (4 px): nothing predicted near it → miss
    _square(gt, 20, 20, 2)  # GT B (4 px)
    _square(pred, 20, 20, 4)  # 16 px covering B: IoU 4/16 = 0.25 < 0.5 → reshape
    _square(pred, 35, 2, 1)  # far from every GT → false alarm
    e = frame_effort(pred, gt)
    assert (e.misses, e.false_alarms, e.reshapes, e.accepted) == (1, 1, 1, 0)
    assert e.pair_ious == [pytest.approx(0.25)]


def test_near_centroids_match_without_overlap():
    gt = np.zeros((20, 20), bool)
    pred = np.zeros((20, 20), bool)
    gt[10, 10] = True
    pred[10, 12] = True  # no overlap, centroid distance 2 < 3 → a (reshape) match, not miss + FA
    e = frame_effort(pred, gt)
    assert (e.misses, e.false_alarms, e.reshapes) == (0, 0, 1)
    pred2 = np.zeros((20, 20), bool)
    pred2[10, 13] = True  # distance exactly 3 is not < 3 → miss + false alarm
    e2 = frame_effort(pred2, gt)
    assert (e2.misses, e2.false_alarms, e2.reshapes) == (1, 1, 0)


def test_one_to_one_matching_prefers_more_pairs():
    # One large prediction overlaps two GT targets; only one of them can be matched to it.
    gt = np.zeros((20, 30), bool)
    pred = np.zeros((20, 30), bool)
    gt[5, 5] = True
    gt[5, 9] = True
    pred[5, 4:11] = True  # 7 px covering both (8-connected → one target)
    e = frame_effort(pred, gt)
    assert (e.n_gt, e.n_pred) == (2, 1)
    assert (e.misses, e.false_alarms, e.reshapes, e.accepted) == (1, 0, 1, 0)
    # A second, small prediction on GT 2 lets both be matched: the assignment finds it.
    pred[5, 4:11] = False
    pred[5, 4:7] = True  # covers GT 1 (IoU 1/3) and is adjacent to nothing else
    pred[5, 9] = True  # exactly GT 2 (IoU 1)
    e = frame_effort(pred, gt)
    assert (e.misses, e.false_alarms, e.reshapes, e.accepted) == (0, 0, 1, 1)


def test_diagonal_pixels_are_one_target():
    gt = np.zeros((10, 10), bool)
    gt[2, 2] = gt[3, 3] = True  # 8-connected: one target
    e = frame_effort(gt.copy(), gt)
    assert (e.n_gt, e.accepted) == (1, 1)


def test_accumulator_rates_per_100_targets():
    acc = EffortAccumulator()
    gt = np.zeros((30, 30), bool)
    _square(gt, 5, 5, 2)
    _square(gt, 20, 20, 2)
    acc.update(gt.copy(), gt)  # 2 accepted
    pred = np.zeros((30, 30), bool)
    pred[0, 29] = True
    acc.update(pred, gt)  # 2 misses + 1 false alarm
    r = acc.compute()
    # 4 GT targets; actions = 2 misses + 1 FA = 3 → 75 per 100; accepted 2/4 = 50 %
    assert r["gt_targets"] == 4 and r["actions_per_100"] == pytest.approx(75.0)
    assert (r["misses"], r["false_alarms"], r["reshapes"]) == (2, 1, 0)
    assert r["accepted_pct"] == pytest.approx(50.0)
    json.dumps(r)  # plain numbers only


def test_average_precision_by_peak_score():
    # GT: 2 targets. Ranked: TP 0.9, FA 0.8, TP 0.7 → precision 1, 1/2, 2/3 at recall 0.5, 0.5, 1
    # AP = 0.5·1 + 0.5·(2/3) = 0.8333
    assert average_precision([(0.9, True), (0.8, False), (0.7, True)], 2) == pytest.approx(5 / 6)
    # Scores that rank every true target first give AP = recall reached (here 1.0) …
    assert average_precision([(0.9, True), (0.7, True), (0.1, False)], 2) == pytest.approx(1.0)
    # … and saturated scores (all 1.0) earn no ranking credit: ties put false alarms first.
    assert average_precision([(1.0, True), (1.0, False), (1.0, True)], 2) == pytest.approx(2 / 3)
    assert average_precision([], 3) == 0.0


def test_scores_are_the_peak_probability_inside_each_target():
    gt = np.zeros((10, 10), bool)
    gt[2, 2] = True
    pred = np.zeros((10, 10), bool)
    pred[2, 2:4] = True  # matched
    pred[8, 8] = True  # false alarm
    prob = np.zeros((10, 10))
    prob[2, 2], prob[2, 3], prob[8, 8] = 0.6, 0.95, 0.7
    e = frame_effort(pred, gt, prob)
    assert sorted(e.scored) == [(0.7, False), (0.95, True)]


def test_shape_mismatch_is_one_sentence():
    with pytest.raises(ValueError, match="differ in size"):
        frame_effort(np.zeros((3, 3), bool), np.zeros((4, 4), bool))
