"""The synthetic recording generator: moving targets, ground-truth tracks, jitter, flickers."""

import numpy as np
import pytest

from napari_irsam.data.synthetic_video import make_recording


def test_recording_ground_truth_matches_the_frames():
    rec = make_recording(12, (64, 64), n_targets=3, seed=1, flicker_rate=2.0, jitter=1.0)
    assert rec.frames.shape == rec.labels.shape == (12, 64, 64) and rec.frames.dtype == np.uint16
    assert rec.n_tracks == 3 and rec.camera.shape == (12, 2)
    assert {r["kind"] for r in rec.tracks} == {"point", "extended"}
    assert all(2.0 * 0.3 <= r["snr"] for r in rec.tracks)
    for r in rec.tracks:  # each row is the centroid of its track's pixels in that frame
        rr, cc = np.nonzero(rec.labels[r["frame"]] == r["track_id"])
        assert rr.size == r["area"] > 0
        assert (rr.mean(), cc.mean()) == pytest.approx((r["row"], r["col"]))
    # targets are brighter than the background around them
    img = rec.frames.astype(float)
    assert img[rec.labels > 0].mean() > img[rec.labels == 0].mean()
    # flickers are not targets: they are not in the ground truth
    assert rec.flickers and all(rec.labels[t, int(r), int(c)] == 0 for t, r, c in rec.flickers[:5])
    again = make_recording(12, (64, 64), n_targets=3, seed=1, flicker_rate=2.0, jitter=1.0)
    np.testing.assert_array_equal(again.frames, rec.frames)


def test_targets_move_smoothly_and_the_camera_jitters():
    rec = make_recording(
        30, (96, 96), n_targets=2, seed=3, jitter=0.0, drift=(0, 0), flicker_rate=0
    )
    for tid in (1, 2):
        pts = np.array([(r["row"], r["col"]) for r in rec.tracks if r["track_id"] == tid])
        steps = np.hypot(*np.diff(pts, axis=0).T)
        assert len(pts) == 30 and steps.max() < 4.5 and np.hypot(*(pts[-1] - pts[0])) > 5
    shaky = make_recording(30, (96, 96), n_targets=2, seed=3, jitter=2.0, drift=(0, 0))
    assert np.diff(shaky.camera, axis=0).std() > 1.0
    assert np.ptp(rec.camera) == 0


def test_bad_recording_arguments_are_one_sentence():
    with pytest.raises(ValueError, match="at least one frame"):
        make_recording(0)
