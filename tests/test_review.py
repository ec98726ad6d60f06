"""Review state: statuses, diffing of edited frames, progress, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_irsam.review import ReviewState


def _labels():
    lab = np.zeros((3, 20, 20), np.int32)
    lab[0, 2:4, 2:4] = 1
    lab[0, 10:13, 10:12] = 2
    lab[1, 5:7, 5:7] = 3
    return lab


def test_fresh_state_lists_targets_with_peak():
    lab = _labels()
    prob = np.zeros(lab.shape, np.float32)
    prob[0, 3, 3] = 0.9
    st = ReviewState.from_labels(lab, prob, {"model_id": "m"})
    rows = [(t.frame, t.target_id, t.area, t.status) for t in st.sorted_targets()]
    assert rows == [(0, 1, 4, "pending"), (0, 2, 6, "pending"), (1, 3, 4, "pending")]
    t = st.targets[(0, 1)]
    assert (
        t.centroid == (2.5, 2.5) and t.bbox == (2, 2, 4, 4) and t.peak_score == pytest.approx(0.9)
    )
    assert st.progress_line() == "0 / 3 frames reviewed, 0 targets added, 0 rejected"
    assert st.new_id(lab) == 4


def test_diff_marks_edited_added_rejected_and_undo_restores():
    lab = _labels()
    st = ReviewState.from_labels(lab)
    st.accept(0, 1)
    before = lab[0].copy()
    lab[0, 4, 2] = 1  # paint one pixel onto target 1
    lab[0, 10:13, 10:12] = 0  # erase target 2
    lab[0, 15:17, 15:17] = 7  # a new id painted by hand
    changed = st.sync_frame(0, lab[0])
    assert {(t.target_id, t.status) for t in changed} == {
        (1, "edited"),
        (2, "rejected"),
        (7, "added"),
    }
    assert st.sync_frame(0, lab[0]) == []  # unchanged frame: nothing to do
    assert st.targets[(0, 1)].area == 5
    lab[0] = before  # napari undo: target 2 back exactly as it was → its old status
    st.sync_frame(0, lab[0])
    assert st.targets[(0, 2)].status == "pending"
    assert (0, 7) not in st.targets  # drawn and undone: it never existed (not "rejected")
    assert st.targets[(0, 1)].status == "accepted" and st.targets[(0, 1)].area == 4
    assert st.counts() == {"pending": 2, "accepted": 1, "rejected": 0, "added": 0, "edited": 0}


def test_mark_reviewed_accepts_pending_and_progress():
    st = ReviewState.from_labels(_labels())
    st.set_status(0, 2, "rejected")
    st.mark_reviewed(0)
    assert st.targets[(0, 1)].status == "accepted" and st.targets[(0, 2)].status == "rejected"
    assert st.next_unreviewed(0) == 1 and st.next_unreviewed(2) == 1
    st.mark_reviewed(1)
    st.mark_reviewed(2)
    assert st.next_unreviewed(0) is None
    assert st.progress_line() == "3 / 3 frames reviewed, 0 targets added, 1 rejected"
    with pytest.raises(ValueError, match="Unknown status"):
        st.set_status(0, 1, "maybe")


def test_round_trip_through_json():
    lab = _labels()
    st = ReviewState.from_labels(lab, provenance={"checkpoint_sha256": "ab"})
    st.set_status(1, 3, "rejected")
    st.mark_reviewed(1)
    back = ReviewState.from_dict(json.loads(json.dumps(st.to_dict())))
    assert back.to_dict() == st.to_dict()
    assert back.sync_all(lab) == []  # checksums survived: the same labels are not "edited"


def test_2d_and_huge_sparse_ids():
    lab = np.zeros((30, 30), np.int64)
    lab[1:3, 1:3] = 2_000_000_000
    lab[20, 20] = 5
    st = ReviewState.from_labels(lab)
    assert sorted(k for k in st.targets) == [(0, 5), (0, 2_000_000_000)]
    assert st.targets[(0, 2_000_000_000)].area == 4


def test_a_target_drawn_then_erased_is_dropped_not_rejected():
    lab = _labels()
    st = ReviewState.from_labels(lab)
    frame = lab[2].copy()
    frame[8:11, 8:11] = 7  # painted by hand
    assert [t.status for t in st.sync_frame(2, frame)] == ["added"]
    frame[8:11, 8:11] = 0  # and erased again
    changed = st.sync_frame(2, frame)
    assert [t.key for t in changed] == [(2, 7)] and (2, 7) not in st.targets
    assert st.counts()["added"] == 0 and st.counts()["rejected"] == 0
    frame[8:11, 8:11] = 7  # undo of the erase: added again
    assert [t.status for t in st.sync_frame(2, frame)] == ["added"]
    model = lab[0].copy()  # a model target erased stays a rejection
    model[model == 2] = 0
    st.sync_frame(0, model)
    assert st.targets[(0, 2)].status == "rejected" and st.counts()["rejected"] == 1


def test_model_rerun_frames_come_back_pending_and_protected_frames():
    lab = _labels()
    st = ReviewState.from_labels(lab)
    assert st.protected_frames() == []
    st.mark_reviewed(0)
    edited = lab[1].copy()
    edited[5:7, 5:8] = 3
    st.sync_frame(1, edited)
    assert st.protected_frames() == [0, 1]
    rerun = np.zeros((20, 20), np.int32)
    rerun[14:16, 14:16] = 9  # the model's new output for frame 0
    st.expect_model_output([0])
    changed = st.sync_frame(0, rerun)
    assert {t.key for t in changed} == {(0, 1), (0, 2), (0, 9)}
    assert [(t.key, t.status) for t in st.frame_targets(0)] == [((0, 9), "pending")]
    assert not st.reviewed[0] and st.model_frames == set() and st.protected_frames() == [1]
    assert st.counts()["rejected"] == 0 and st.new_id() >= 10
    assert st.sync_frame(0, rerun) == []  # an ordinary diff again
