"""Linking targets into tracks (tracks.py), temporal consistency (tracks_temporal.py) and
``napari-irsam track``."""

import csv
from collections import Counter

import numpy as np
import pytest
import tifffile

pytest.importorskip("trackpy")

from napari_irsam.cli import main  # noqa: E402
from napari_irsam.data.synthetic_video import make_recording  # noqa: E402
from napari_irsam.segment import FrameOutput  # noqa: E402
from napari_irsam.targets import Target  # noqa: E402
from napari_irsam.tracks import (  # noqa: E402
    CSV_COLUMNS,
    TrackParams,
    TrackPoint,
    group_tracks,
    link_positions,
    link_targets,
    predict_position,
    read_tracks_csv,
    track_gaps,
    tracks_layer_data,
    write_tracks_csv,
)
from napari_irsam.tracks_temporal import TemporalSegmenter, apply_weights  # noqa: E402


def _line(start, vel, n):
    return [np.array(start, float) + np.array(vel, float) * t for t in range(n)]


def test_crossing_targets_keep_their_ids_thanks_to_the_motion_model():
    """Two targets cross at 4 px/frame: without prediction the nearest-neighbour choice at the
    crossing swaps them; constant velocity keeps each on its line."""
    a, b = _line((20, 10), (0, 4), 12), _line((24, 54), (0, -4), 12)
    ids = link_positions([np.stack([p, q]) for p, q in zip(a, b)], TrackParams(search_range=9))
    assert all(list(frame_ids) == [1, 2] for frame_ids in ids)


def test_a_gap_is_bridged_and_a_flicker_is_a_track_of_its_own():
    path = _line((30, 30), (1.5, 2.0), 10)
    frames = [np.array([p]) for p in path]
    frames[4] = frames[5] = np.zeros((0, 2))  # missed twice
    frames[7] = np.vstack([frames[7], [[5.0, 60.0]]])  # a one-frame flicker far away
    ids = link_positions(frames, TrackParams(max_gap=3))
    assert {int(i[0]) for i in ids if len(i)} == {1} and list(ids[7]) == [1, 2]
    assert link_positions(frames, TrackParams(max_gap=1))[6][0] == 2  # gap too long: new track


def _targets(rows):
    return [Target(f, tid, (r, c), 3, (0, 0, 1, 1), 0.9) for f, tid, r, c in rows]


def test_link_targets_and_predict_a_missed_frame():
    rows = [(f, 7 + f, 10.0 + 2 * f, 20.0 + f) for f in (0, 1, 2, 4, 5)]
    pts = link_targets(_targets(rows), n_frames=8)
    assert {p.track_id for p in pts} == {1} and [p.target_id for p in pts] == [7, 8, 9, 11, 12]
    track = group_tracks(pts)[1]
    assert track_gaps(track) == [3]
    assert predict_position(track, 3) == pytest.approx((16.0, 23.0))  # between frames 2 and 4
    assert predict_position(track, 7) == pytest.approx((24.0, 27.0))  # extrapolated
    assert predict_position(track[:1], 5) == pytest.approx((10.0, 20.0))
    data = tracks_layer_data(pts)
    assert (
        data.shape == (5, 4) and list(data[:, 0]) == [1] * 5 and list(data[:, 1]) == [0, 1, 2, 4, 5]
    )
    with pytest.raises(ValueError, match="outside"):
        link_targets(_targets(rows), n_frames=3)


def test_tracks_csv_round_trip(tmp_path):
    pts = [TrackPoint(0, 1, 3.14159, 2.5, 4, 0.87654), TrackPoint(1, 1, 4.0, 3.0, 5, None)]
    write_tracks_csv(tmp_path / "t.csv", pts)
    with open(tmp_path / "t.csv", newline="") as f:
        assert tuple(csv.DictReader(f).fieldnames) == CSV_COLUMNS
    back = read_tracks_csv(tmp_path / "t.csv")
    assert back[0].row == 3.14 and back[0].score == 0.8765 and back[1].score is None
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a tracks.csv"):
        read_tracks_csv(tmp_path / "bad.csv")


class _Replay:
    """A Segmenter that returns given masks (prob = 0.9 inside)."""

    outputs = ("prob", "mask")
    metadata = {"threshold": 0.5}

    def __init__(self, masks):
        self.masks = masks

    def iter_frames(self, frames, should_stop=None):
        for i, m in enumerate(self.masks):
            yield i, FrameOutput(prob=np.where(m, 0.9, 0.0).astype(np.float32), mask=m, seconds=0)


def test_temporal_keeps_targets_on_tracks_and_drops_a_flicker():
    n, masks = 9, []
    for t in range(n):
        m = np.zeros((40, 40), bool)
        m[10 + t : 12 + t, 5 + 2 * t : 7 + 2 * t] = True  # a moving target
        if t == 4:
            m[30:32, 30:32] = True  # a flicker
        masks.append(m)
    seg = TemporalSegmenter(_Replay(masks))
    out = dict(seg.iter_frames(np.zeros((n, 40, 40))))
    assert sorted(out) == list(range(n)) and seg.metadata["temporal"]["window"] == 3
    for t in range(n):
        assert out[t].mask[10 + t, 5 + 2 * t], f"target dropped on frame {t}"
    assert not out[4].mask[30:32, 30:32].any() and out[4].prob[30, 30] == pytest.approx(0.45)
    # an isolated detection strong enough after weighting stays, with its weighted score
    prob, mask = apply_weights(
        np.full((4, 4), 1.0),
        np.ones((4, 4), bool),
        np.array([True]),
        np.ones((4, 4), int),
        0.6,
        0.5,
    )
    assert mask.all() and prob[0, 0] == pytest.approx(0.6)
    # a single frame: no evidence either way, nothing changes
    single = dict(TemporalSegmenter(_Replay(masks[4:5])).iter_frames(np.zeros((1, 40, 40))))
    assert single[0].mask[30:32, 30:32].all()


def test_cli_track_writes_tracks_csv(tmp_path):
    rec = make_recording(16, (96, 96), n_targets=2, seed=6, snr_range=(14, 16), flicker_rate=0)
    tifffile.imwrite(tmp_path / "rec.tif", rec.frames)
    assert (
        main(
            ["track", str(tmp_path / "rec.tif"), "--out", str(tmp_path / "o"), "--model", "tophat"]
        )
        == 0
    )
    pts = read_tracks_csv(tmp_path / "o" / "tracks.csv")
    assert pts and all(0 <= p.frame < 16 for p in pts)
    # each ground-truth track is found mostly under one track id
    for tid in (1, 2):
        ids = Counter()
        for p in pts:
            if rec.labels[p.frame, int(round(p.row)), int(round(p.col))] == tid:
                ids[p.track_id] += 1
        assert ids and ids.most_common(1)[0][1] >= 12, (tid, ids)
    assert (
        main(
            [
                "track",
                str(tmp_path / "rec.tif"),
                "--out",
                str(tmp_path / "t"),
                "--model",
                "tophat",
                "--temporal",
            ]
        )
        == 0
    )


def test_cli_track_bad_input_exits_2(tmp_path, capsys):
    assert main(["track", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "o")]) == 2
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((2, 16, 16), np.uint16))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((2, 20, 16), np.uint16))
    args = ["track", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), "--out", str(tmp_path)]
    assert main([*args, "--model", "tophat"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("napari-irsam track: error: Frames differ in size")
    assert main([*args[:2], "--out", str(tmp_path), "--model", "nope.pt"]) == 2
    assert not (tmp_path / "tracks.csv").exists()


def test_evaluate_tracks_counts_switches_recovery_and_review_actions():
    from napari_irsam.tracks_eval import evaluate_tracks

    gt = [{"frame": f, "track_id": 1, "row": 10.0, "col": 10.0 + f} for f in range(10)]
    gt += [{"frame": f, "track_id": 2, "row": 30.0, "col": 10.0 + f} for f in range(10)]
    pred = [TrackPoint(f, 5, 10.2, 10.0 + f, 3, 1.0) for f in range(10) if f != 4]  # one miss
    pred += [TrackPoint(f, 6, 30.0, 10.0 + f, 3, 1.0) for f in range(5)]  # switches to 7
    pred += [TrackPoint(f, 7, 30.0, 10.0 + f, 3, 1.0) for f in range(5, 10)]
    pred += [TrackPoint(3, 8, 50.0, 50.0, 3, 1.0)]  # a flicker
    r = evaluate_tracks(gt, pred)
    assert r["recovered_whole"] == 1 and r["id_switches"] == 1 and r["matched"] == 19
    assert r["actions_frame_by_frame"] == len(pred) + 1  # every detection + the miss
    # 4 tracks; track 7 (owned by gt 2 as well) and track 6 are both accepted: no rejects;
    # the missed frame 4 of gt 1 lies inside track 5: one fill
    assert r["by_track_parts"] == {"tracks": 4, "rejects": 0, "fills": 1, "adds": 0}
    assert r["actions_by_track"] == 5


def test_without_trackpy_linking_says_what_to_install(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "trackpy", None)  # import trackpy → ImportError
    monkeypatch.setitem(sys.modules, "trackpy.linking", None)
    with pytest.raises(ImportError, match=r"napari-irsam\[tracks\]"):
        link_positions([np.zeros((1, 2))])
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((2, 16, 16), np.uint16))
    assert (
        main(["track", str(tmp_path / "a.tif"), "--out", str(tmp_path), "--model", "tophat"]) == 2
    )
    assert "pip install 'napari-irsam[tracks]'" in capsys.readouterr().err
