import numpy as np
import pytest

from napari_irsam.metrics import EPS, MetricAccumulator, evaluate, format_table, resize_nearest


def _img(shape=(16, 16)):
    return np.zeros(shape, np.uint8)


def test_iou_pooled_with_eps_and_perfect_prediction():
    gt = _img()
    gt[2:4, 2:4] = 255
    r = evaluate([gt > 0], [gt], mode="paper")
    assert r["iou"] == pytest.approx(4 / (4 + EPS)) and r["pd"] == 1.0 and r["fa"] == 0.0
    # pooled over images, not averaged
    gt2, pred2 = _img(), _img() > 0
    gt2[0, 0:4] = 255
    pred2[0, 0:2] = True
    r = evaluate([gt > 0, pred2], [gt, gt2], mode="corrected")
    assert r["iou"] == pytest.approx((4 + 2) / (4 + 4))
    assert r["niou"] == pytest.approx((1.0 + 0.5) / 2)


def test_empty_empty_niou_paper_zero_corrected_one_or_excluded():
    empty = _img()
    assert evaluate([empty > 0], [empty], mode="paper")["niou"] == 0.0
    assert evaluate([empty > 0], [empty], mode="corrected")["niou"] == 1.0
    gt = _img()
    gt[1, 1] = 255
    r = evaluate([empty > 0, gt > 0], [empty, gt], mode="corrected", empty_niou=None)
    assert r["niou"] == 1.0 and r["n_images"] == 2


def test_zero_one_masks_give_empty_gt_in_paper_mode():
    gt01 = _img()
    gt01[3:5, 3:5] = 1
    paper = evaluate([gt01 > 0], [gt01], mode="paper")
    assert paper["n_targets"] == 0 and paper["iou"] < 1e-6
    corrected = evaluate([gt01 > 0], [gt01], mode="corrected")
    assert corrected["n_targets"] == 1 and corrected["iou"] == 1.0


def test_area_value_exclusion_quirk():
    gt = _img((32, 32))
    gt[5:7, 5:7] = 255  # 4 px target
    pred = gt > 0
    pred[20:22, 20:22] = True  # unmatched FA region, also 4 px
    pred[25, 25:28] = True  # unmatched FA region, 3 px
    paper = evaluate([pred], [gt], mode="paper")
    corrected = evaluate([pred], [gt], mode="corrected")
    assert paper["fa_pixels"] == 3  # the 4-px false alarm hides behind the matched area value
    assert corrected["fa_pixels"] == 7
    assert paper["fa"] == pytest.approx(3 / (512 * 512))  # fixed 512² denominator
    assert corrected["fa"] == pytest.approx(7 / (32 * 32))


def test_greedy_first_fit_vs_optimal_matching():
    gt = _img((32, 32))
    gt[10, 11] = 255  # Ga (first in label order)
    gt[10, 13] = 255  # Gb
    pred = np.zeros((32, 32), bool)
    pred[10, 12] = True  # shared candidate: 1 px from Ga and from Gb; first in label order
    pred[12, 10] = True  # reachable only from Ga (√5 ≈ 2.24 px; √13 from Gb)
    # greedy: Ga takes (10,12); Gb has nothing left within 3 px → 1 hit, (12,10) is a false alarm
    paper = evaluate([pred], [gt], mode="paper")
    assert paper["n_detected"] == 1 and paper["fa_pixels"] == 0  # same area value as the match
    # optimal: Ga–(12,10), Gb–(10,12) → 2 hits, no false alarm
    corrected = evaluate([pred], [gt], mode="corrected")
    assert corrected["n_detected"] == 2 and corrected["fa_pixels"] == 0


def test_strict_three_pixel_distance():
    gt = _img((32, 32))
    gt[10, 10] = 255
    pred = np.zeros((32, 32), bool)
    pred[10, 13] = True  # exactly 3 px: not detected
    assert evaluate([pred], [gt], mode="paper")["pd"] == 0.0
    pred[10, 13], pred[10, 12] = False, True
    assert evaluate([pred], [gt], mode="paper")["pd"] == 1.0


def test_logits_threshold_and_streaming_equals_batch():
    """Logit scores are binarised at 0, probabilities at the given threshold; the pooled numbers
    equal a hand computation with numpy; evaluate() takes generators (frames one at a time)."""
    rng = np.random.default_rng(0)
    gts = [np.where(rng.random((20, 20)) > 0.95, 255, 0).astype(np.uint8) for _ in range(5)]
    logits = [rng.normal(0, 1, (20, 20)) + (g > 0) * 2 for g in gts]
    preds = [lg > 0 for lg in logits]
    inter = [int(np.count_nonzero(p & (g > 0))) for p, g in zip(preds, gts)]
    union = [int(np.count_nonzero(p | (g > 0))) for p, g in zip(preds, gts)]
    assert 0 < sum(inter) < sum(union)  # neither trivial nor perfect
    by_hand_iou = sum(inter) / (sum(union) + EPS)
    by_hand_niou = np.mean([i / (u + EPS) for i, u in zip(inter, union)])

    acc = MetricAccumulator("paper")
    for k, (lg, g) in enumerate(zip(logits, gts), start=1):
        acc.update(lg, g)
        assert acc.compute()["n_images"] == k
    streamed = acc.compute()
    assert streamed["iou"] == pytest.approx(by_hand_iou, rel=1e-12)
    assert streamed["niou"] == pytest.approx(by_hand_niou, rel=1e-12)
    batch = evaluate((lg for lg in logits), (g for g in gts), mode="paper")  # generators
    assert batch == streamed

    probs = [1 / (1 + np.exp(-lg)) for lg in logits]
    assert evaluate(probs, gts, mode="paper", threshold=0.5)["iou"] == pytest.approx(by_hand_iou)
    # the threshold is applied: a stricter one gives the hand-computed, different IoU
    strict = [p > 0.8 for p in probs]
    s_inter = sum(int(np.count_nonzero(p & (g > 0))) for p, g in zip(strict, gts))
    s_union = sum(int(np.count_nonzero(p | (g > 0))) for p, g in zip(strict, gts))
    at_08 = evaluate(probs, gts, mode="paper", threshold=0.8)["iou"]
    assert at_08 == pytest.approx(s_inter / (s_union + EPS)) and at_08 != pytest.approx(by_hand_iou)


def test_errors_and_helpers():
    with pytest.raises(ValueError, match="differ in size"):
        evaluate([np.zeros((4, 4), bool)], [np.zeros((5, 5), np.uint8)])
    with pytest.raises(ValueError, match="mode"):
        MetricAccumulator("lenient")
    m = np.arange(6).reshape(2, 3)
    r = resize_nearest(m, (4, 6))
    assert r.shape == (4, 6) and r[0, 0] == 0 and r[3, 5] == 5
    table = format_table({"x": evaluate([np.ones((4, 4), bool)], [np.full((4, 4), 255, np.uint8)])})
    assert "| x | corrected | 100.00 |" in table


def test_eps_is_observable_and_empty_dataset():
    gt = _img()
    gt[4, 4] = 255  # union of 1 px: 1 / (1 + eps) is the float just below 1
    paper = evaluate([gt > 0], [gt], mode="paper")
    assert paper["iou"] == 1 / (1 + EPS) < 1.0 and paper["niou"] == 1 / (1 + EPS)
    corrected = evaluate([gt > 0], [gt], mode="corrected")
    assert corrected["iou"] == 1.0 and corrected["niou"] == 1.0
    empty = _img()
    assert evaluate([empty > 0], [empty], mode="paper")["iou"] == 0.0  # 0 / eps, no NaN
    assert evaluate([empty > 0], [empty], mode="corrected")["iou"] == 1.0


def test_first_fit_not_nearest_and_fa_pixels():
    gt = _img((32, 32))
    gt[10, 10] = 255
    pred = np.zeros((32, 32), bool)
    pred[8, 10] = True  # label 1, 2 px away, area 1
    pred[10, 10:12] = True  # label 2, 0.5 px away, area 2
    paper = evaluate([pred], [gt], mode="paper")
    corrected = evaluate([pred], [gt], mode="corrected")
    assert paper["pd"] == corrected["pd"] == 1.0
    assert (
        paper["fa_pixels"] == 2
    )  # first-fit took the 1-px region; the 2-px one is the false alarm
    assert corrected["fa_pixels"] == 1  # optimal matching takes the nearer region


def test_paper_counts_equal_sized_false_alarms_if_no_match_has_that_size():
    gt = _img((32, 32))
    gt[5:7, 5:7] = 255  # matched by a 4-px region
    pred = gt > 0
    pred[20, 20:23] = True  # two unmatched 3-px regions: both counted
    pred[25, 20:23] = True
    assert evaluate([pred], [gt], mode="paper")["fa_pixels"] == 6


def test_gt_rules_labels_images_and_override():
    labels = _img()
    labels[2, 2], labels[8, 8:10] = 1, 2  # uint8 labels image: two targets
    pred = labels > 0
    corrected = evaluate([pred], [labels], mode="corrected")
    assert corrected["n_targets"] == 2 and corrected["iou"] == 1.0
    assert evaluate([pred], [labels], mode="paper")["n_targets"] == 0
    assert evaluate([pred], [labels > 0], mode="paper")["n_targets"] == 0  # bool GT: 1/255 → 0
    soft = _img()
    soft[3, 3:6] = [100, 200, 255]  # grey edge from a resized 0/255 mask
    assert evaluate([soft > 127], [soft])["iou"] == 1.0
    r = evaluate([soft > 50], [soft], gt_threshold=50)
    assert r["iou"] == 1.0 and r["n_targets"] == 1


def test_fixed_512_denominator_per_image():
    gt = _img()
    pred = gt > 0
    pred[0, 0] = True
    paper = evaluate([pred, pred], [gt, gt], mode="paper")
    assert paper["total_pixels"] == 2 * 512 * 512 and paper["fa"] == 2 / (2 * 512 * 512)
    corrected = evaluate([pred, pred], [gt, gt], mode="corrected")
    assert corrected["total_pixels"] == 2 * 16 * 16 and corrected["fa"] == 2 / 512


def test_generators_stacks_and_length_errors():
    rng = np.random.default_rng(1)
    gts = np.where(rng.random((4, 12, 12)) > 0.9, 255, 0).astype(np.uint8)
    preds = rng.random((4, 12, 12)) > 0.85
    for mode in ("paper", "corrected"):
        batch = evaluate(preds, gts, mode=mode)
        assert batch == evaluate((p for p in preds), iter(list(gts)), mode=mode)
        assert batch["n_images"] == 4
    with pytest.raises(ValueError, match="fewer predictions"):
        evaluate(preds[:3], gts)
    with pytest.raises(ValueError, match="more predictions"):
        evaluate(preds, gts[:2])
    with pytest.raises(ValueError, match="one \\(H, W\\) image"):
        MetricAccumulator().update(preds, gts)
    with pytest.raises(ValueError, match="resize_nearest"):
        resize_nearest(np.zeros(5))


def _paper_pd_fa_reference(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """Spec §7.3 transcribed literally with Python loops: (n_gt, hits, fa_pixels)."""
    from skimage.measure import label, regionprops

    preds = list(regionprops(label(pred, connectivity=2)))
    gts = regionprops(label((gt / 255).astype(np.int64), connectivity=2))
    all_areas = [p.area for p in preds]
    matched = []
    for g in gts:
        for m, p in enumerate(preds):
            if np.hypot(*(np.array(p.centroid) - np.array(g.centroid))) < 3:
                matched.append(p.area)
                del preds[m]
                break
    return len(gts), len(matched), sum(a for a in all_areas if a not in matched)


def test_paper_matching_equals_literal_reference_on_random_scenes():
    rng = np.random.default_rng(7)
    for _ in range(20):
        gt = np.where(rng.random((40, 40)) > 0.93, 255, 0).astype(np.uint8)
        pred = (gt > 0) ^ (rng.random((40, 40)) > 0.92)
        r = evaluate([pred], [gt], mode="paper")
        assert (r["n_targets"], r["n_detected"], r["fa_pixels"]) == _paper_pd_fa_reference(pred, gt)


def test_corrected_matching_is_maximum_on_random_scenes():
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching
    from skimage.measure import label, regionprops

    rng = np.random.default_rng(11)
    for _ in range(20):
        gt = rng.random((30, 30)) > 0.9
        pred = rng.random((30, 30)) > 0.9
        g = np.array([r.centroid for r in regionprops(label(gt, connectivity=2))])
        p = np.array([r.centroid for r in regionprops(label(pred, connectivity=2))])
        close = np.linalg.norm(g[:, None] - p[None], axis=2) < 3
        best = (maximum_bipartite_matching(csr_matrix(close), perm_type="column") >= 0).sum()
        assert evaluate([pred], [gt])["n_detected"] == best
