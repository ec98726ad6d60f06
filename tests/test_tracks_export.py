"""Exports keep track ids: per target in the manifest and MOTChallenge CSV (mot/*.txt)."""

import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage

pytest.importorskip("trackpy")

from napari_irsam.cli import main  # noqa: E402
from napari_irsam.data.export import export_training_set  # noqa: E402
from napari_irsam.data.synthetic_video import make_recording  # noqa: E402
from napari_irsam.tracks import read_tracks_csv  # noqa: E402


@pytest.fixture(scope="module")
def recording():
    return make_recording(12, (96, 96), n_targets=2, seed=6, snr_range=(14, 16), flicker_rate=0)


def test_cli_track_then_export_writes_mot_and_manifest_targets(tmp_path, recording):
    rec = recording
    tifffile.imwrite(tmp_path / "rec.tif", rec.frames)
    tifffile.imwrite(tmp_path / "gt.tif", rec.labels.astype(np.uint16))
    assert main(["track", str(tmp_path / "rec.tif"), "--out", str(tmp_path / "t"),
                 "--model", "tophat"]) == 0  # fmt: skip
    pts = read_tracks_csv(tmp_path / "t" / "tracks.csv")
    out = tmp_path / "export"
    args = ["export", str(tmp_path / "rec.tif"), str(tmp_path / "gt.tif"), "--out", str(out)]
    assert main([*args, "--tracks", str(tmp_path / "t" / "tracks.csv")]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    by_frame = {s["frame_index"]: s for s in manifest["samples"]}
    for p in pts:  # every detected target's track id is on the target under it
        if rec.labels[p.frame, int(round(p.row)), int(round(p.col))] == 0:
            continue
        t = min(
            by_frame[p.frame]["targets"],
            key=lambda t: np.hypot(t["centroid"][0] - p.row, t["centroid"][1] - p.col),
        )
        assert t["track_id"] == p.track_id
    files = sorted((out / "mot").glob("*.txt"))
    assert len(files) == 1 and json.loads((out / "mot" / "sequences.json").read_text())
    lines = [list(map(float, ln.split(","))) for ln in files[0].read_text().splitlines()]
    assert all(len(ln) == 10 and ln[7:] == [-1, -1, -1] for ln in lines)
    assert len(lines) == sum(len(s["targets"]) for s in manifest["samples"])
    # 1-based frames and box corners (MOTChallenge): check one line against the mask
    frame, tid, left, top, w, h = lines[0][:6]
    lab, _ = ndimage.label(rec.labels[int(frame) - 1] > 0, structure=np.ones((3, 3)))
    boxes = [(s[1].start + 1, s[0].start + 1, s[1].stop - s[1].start, s[0].stop - s[0].start)
             for s in ndimage.find_objects(lab)]  # fmt: skip
    assert (left, top, w, h) in boxes
    # a reference reader reads it back
    mm = pytest.importorskip("motmetrics")
    df = mm.io.loadtxt(str(files[0]), fmt="mot15-2D")
    assert len(df) == len(lines) and df.index.get_level_values(0).min() == 1
    # --tracks with frames the images do not have: one sentence, exit 2
    (tmp_path / "bad.csv").write_text("frame,track_id,row,col,area,score\n40,1,3,3,1,0.5\n")
    bad = ["export", str(tmp_path / "rec.tif"), str(tmp_path / "gt.tif"), "--out",
           str(tmp_path / "e2"), "--tracks", str(tmp_path / "bad.csv")]  # fmt: skip
    assert main(bad) == 2


def test_append_keeps_track_ids_and_untracked_exports_write_no_mot(tmp_path, recording):
    rec = recording
    masks = rec.labels > 0
    points = {}
    for r in rec.tracks:
        points.setdefault(("rec", r["frame"]), []).append((r["row"], r["col"], 10 + r["track_id"]))
    kw = {"sources": ["rec"] * 6, "reviewed_only": False}
    export_training_set(tmp_path / "a", rec.frames[:6], masks[:6], track_points=points, **kw)
    first = json.loads((tmp_path / "a" / "manifest.json").read_text())
    ids = {t["track_id"] for s in first["samples"] for t in s["targets"]}
    assert ids == {11, 12}
    # append the next frames without track points: the first samples keep their ids
    kw2 = {**kw, "frame_indices": list(range(6, 12))}
    export_training_set(tmp_path / "a", rec.frames[6:], masks[6:], if_exists="append", **kw2)
    after = json.loads((tmp_path / "a" / "manifest.json").read_text())
    old = [s for s in after["samples"] if s["frame_index"] < 6]
    assert {t["track_id"] for s in old for t in s["targets"]} == {11, 12}
    assert all(t["track_id"] is None for s in after["samples"][6:] for t in s["targets"])
    mot = next((tmp_path / "a" / "mot").glob("*.txt")).read_text().splitlines()
    assert {int(ln.split(",")[1]) for ln in mot} >= {11, 12}  # untracked ones get ids above
    export_training_set(tmp_path / "b", rec.frames[:3], masks[:3], **kw | {"sources": ["x"] * 3})
    assert not (tmp_path / "b" / "mot").exists()
    assert "targets" not in json.loads((tmp_path / "b" / "manifest.json").read_text())["samples"][0]
