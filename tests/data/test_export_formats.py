"""COCO instances and YOLO boxes beside an IRSTD export, read back with reference readers
(pycocotools' COCO + annToMask; YOLO lines against scikit-image regionprops boxes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage.measure import label, regionprops

from napari_irsam.data.export import export_training_set
from napari_irsam.data.export_formats import (
    check_formats,
    rle_counts,
    rle_counts_string,
    rle_encode,
    track_points_of,
)


def scene(n: int = 4, h: int = 20, w: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Frames with 1-px, diagonal-touching (one 8-connected target), border and 3×4 targets."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 200, (n, h, w)).astype(np.uint8)
    masks = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        masks[i, 2, 3 + i] = 1  # a 1-pixel target
        masks[i, 8, 8], masks[i, 9, 9] = 2, 2  # diagonal neighbours: one target (8-connected)
        masks[i, h - 2 :, w - 3 :] = 3  # at the border
        masks[i, 12:15, 15 + i : 19 + i] = 4
    masks[3] = 0  # a frame without targets
    return images, masks


def regionprops_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(min_row, min_col, max_row, max_col) of 8-connected components, sorted."""
    return sorted(r.bbox for r in regionprops(label(mask > 0, connectivity=2)))


@pytest.fixture
def exported(tmp_path: Path):
    images, masks = scene()
    res = export_training_set(
        tmp_path / "ex",
        images,
        masks,
        sources=["rec.tif"] * 4,
        test_ratio=0.5,
        formats=("irstd", "coco", "yolo"),
        track_points={("rec.tif", 0): [(13.0, 16.5, 7)], ("rec.tif", 1): [(2.0, 4.0, 9)]},
    )
    return tmp_path / "ex", res, masks


def test_rle_matches_pycocotools_and_decodes() -> None:
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(1)
    for k in range(60):
        h, w = rng.integers(1, 30, 2)
        m = rng.random((h, w)) < [0.0, 1.0, 0.1, 0.5][k % 4]
        ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
        assert rle_counts_string(rle_counts(m)) == ref
        rle = rle_encode(m)
        back = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        np.testing.assert_array_equal(back.astype(bool), m)


def test_rle_without_pycocotools_is_the_same(monkeypatch) -> None:
    m = np.zeros((7, 9), bool)
    m[2:4, 3:7] = True
    with_lib = rle_encode(m)
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    assert rle_encode(m) == with_lib
    assert rle_counts(m) == [23, 2, 5, 2, 5, 2, 5, 2, 17]  # column-major, 7 × 9


def test_coco_reads_back_with_pycocotools(exported) -> None:
    coco_mod = pytest.importorskip("pycocotools.coco")
    folder, res, masks = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    names = {s["name"]: s for s in manifest["samples"]}
    seen = 0
    for split in ("train", "test"):
        coco = coco_mod.COCO(str(folder / "annotations" / f"instances_{split}.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["target"]
        for img in coco.loadImgs(coco.getImgIds()):
            sample = names[img["file_name"][:-4]]
            assert sample["split"] == split and (folder / "images" / img["file_name"]).is_file()
            mask = masks[sample["frame_index"]] > 0
            assert (img["height"], img["width"]) == mask.shape
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
            union = np.zeros(mask.shape, bool)
            for a in anns:
                m = coco.annToMask(a).astype(bool)
                assert label(m, connectivity=2).max() == 1  # one target per annotation
                assert a["area"] == m.sum() and not (union & m).any()
                r0, c0, r1, c1 = regionprops(m.astype(np.uint8))[0].bbox
                assert a["bbox"] == [c0, r0, c1 - c0, r1 - r0]
                union |= m
            np.testing.assert_array_equal(union, mask)  # the masks, reproduced
            assert len(anns) == len(regionprops_boxes(mask))
            seen += 1
    assert seen == 4


def test_yolo_boxes_match_regionprops(exported) -> None:
    import yaml

    folder, res, masks = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    for s in manifest["samples"]:
        mask = masks[s["frame_index"]]
        h, w = mask.shape
        lines = (folder / "labels" / f"{s['name']}.txt").read_text().splitlines()
        got = []
        for line in lines:
            cls, cx, cy, bw, bh = line.split()
            assert cls == "0"
            cx, cy, bw, bh = (float(v) for v in (cx, cy, bw, bh))
            got.append(
                tuple(
                    round(v)
                    for v in (
                        (cy - bh / 2) * h,
                        (cx - bw / 2) * w,
                        (cy + bh / 2) * h,
                        (cx + bw / 2) * w,
                    )
                )  # fmt: skip
            )
        assert sorted(got) == regionprops_boxes(mask)
    doc = yaml.safe_load((folder / "yolo.yaml").read_text())
    assert doc["names"] == {0: "target"} and doc["nc"] == 1
    listed = []
    for key, split in (("train", "train"), ("val", "test")):
        entries = (folder / doc[key]).read_text().split()
        assert entries == [f"./images/{n}.png" for n in res.train + res.test if n in
                           [s["name"] for s in manifest["samples"] if s["split"] == split]]  # fmt: skip
        for e in entries:  # Ultralytics: images/x.png → labels/x.txt
            assert (folder / e).is_file()
            assert (folder / e.replace("/images/", "/labels/")[:-4]).with_suffix(".txt").is_file()
        listed += entries
    assert len(listed) == 4
    one_px = (folder / "labels" / f"{manifest['samples'][0]['name']}.txt").read_text()
    assert "0 0.116667 0.125000 0.033333 0.050000" in one_px  # pixel (2, 3) of 20×30: edges


def test_track_ids_and_append_keeps_them(exported) -> None:
    folder, res, masks = exported
    images, masks = scene()

    def track_ids() -> dict[tuple[int, tuple], int]:
        out = {}
        man = json.loads((folder / "manifest.json").read_text())
        by_name = {s["name"]: s["frame_index"] for s in man["samples"]}
        for split in ("train", "test"):
            doc = json.loads((folder / "annotations" / f"instances_{split}.json").read_text())
            files = {im["id"]: im["file_name"][:-4] for im in doc["images"]}
            for a in doc["annotations"]:
                if "track_id" in a:
                    out[(by_name[files[a["image_id"]]], tuple(a["bbox"]))] = a["track_id"]
        return out

    expected = {(0, (15.0, 12.0, 4.0, 3.0)): 7, (1, (4.0, 2.0, 1.0, 1.0)): 9}
    assert track_ids() == expected
    more = images.copy()
    more[:, 0, 0] = 255  # new pixels: new samples
    export_training_set(
        folder, more, masks, sources=["rec2.tif"] * 4, if_exists="append", formats=["irstd"]
    )
    man = json.loads((folder / "manifest.json").read_text())
    assert len(man["samples"]) == 8
    assert man["exports"][-1]["formats"] == ["irstd", "coco", "yolo"]  # kept in sync
    assert track_ids() == expected
    n_images = sum(
        len(json.loads((folder / "annotations" / f"instances_{s}.json").read_text())["images"])
        for s in ("train", "test")
    )
    assert n_images == 8 and len(list((folder / "labels").glob("*.txt"))) == 8


def test_track_id_of_a_ring_and_not_of_a_far_point(tmp_path: Path) -> None:
    """A ring does not contain its centroid: the nearest target within 3 px takes the id; a
    point farther than that from every target gives no id."""
    images = np.zeros((1, 16, 16), np.uint8)
    masks = np.zeros((1, 16, 16), np.uint8)
    masks[0, 3:8, 3:8] = 1
    masks[0, 4:7, 4:7] = 0  # a ring around (5, 5)
    masks[0, 12, 12] = 1
    export_training_set(
        tmp_path / "ex",
        images,
        masks,
        sources=["a"],
        test_ratio=0.0,
        formats=["coco"],
        track_points={("a", 0): [(5.0, 5.0, 3), (12.0, 7.0, 4)]},
    )
    doc = json.loads((tmp_path / "ex" / "annotations" / "instances_train.json").read_text())
    ids = {tuple(a["bbox"]): a.get("track_id") for a in doc["annotations"]}
    assert ids == {(3.0, 3.0, 5.0, 5.0): 3, (12.0, 12.0, 1.0, 1.0): None}


def test_track_points_of_duck_typed_targets() -> None:
    class T:
        def __init__(self, frame, centroid, track_id=None):
            self.frame, self.centroid = frame, centroid
            if track_id is not None:
                self.track_id = track_id

    got = track_points_of(
        [
            T(0, (1.0, 2.0), 3),
            T(0, (5.0, 5.0)),
            T(2, (4.0, 4.0), 8),
            {"frame": 1, "centroid": (0.5, 0.5), "track_id": 4},
        ],  # fmt: skip
        {0: ("a", 10), 1: ("a", 11)},
    )
    assert got == {("a", 10): [(1.0, 2.0, 3)], ("a", 11): [(0.5, 0.5, 4)]}


def test_bad_format_is_one_sentence() -> None:
    with pytest.raises(ValueError, match="Unknown export format 'voc'; choose from irstd"):
        check_formats(["coco", "voc"])


def test_cli_export_formats(tmp_path: Path, capsys) -> None:
    import tifffile

    from napari_irsam.cli import main

    images, masks = scene()
    tifffile.imwrite(tmp_path / "img.tif", images)
    tifffile.imwrite(tmp_path / "msk.tif", masks)
    out = tmp_path / "out"
    args = ["export", str(tmp_path / "img.tif"), str(tmp_path / "msk.tif"), "--out", str(out)]
    assert main([*args, "--format", "coco", "yolo"]) == 0
    assert (out / "annotations" / "instances_train.json").is_file()
    assert (out / "yolo.yaml").is_file() and (out / "images").is_dir()
    with pytest.raises(SystemExit) as err:
        main([*args, "--format", "voc"])
    assert err.value.code == 2 and "invalid choice: 'voc'" in capsys.readouterr().err


def test_widget_writes_chosen_formats(make_napari_viewer, tmp_path: Path) -> None:
    images, masks = scene()
    viewer = make_napari_viewer()
    viewer.add_image(images, name="rec")
    viewer.add_labels(masks, name="IRSAM mask [rec]")
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Export training set")
    widget.out_edit.setText(str(tmp_path / "ex"))
    widget.reviewed_check.setChecked(False)  # no review: export every frame
    widget.coco_check.click()
    widget.yolo_check.click()
    result = widget.export(sync=True)
    assert result is not None and len(result.written) == 4
    assert (tmp_path / "ex" / "annotations" / "instances_test.json").is_file()
    assert len(list((tmp_path / "ex" / "labels").glob("*.txt"))) == 4
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert man["exports"][-1]["formats"] == ["irstd", "coco", "yolo"]


def test_review_tracks_reach_coco(make_napari_viewer, qtbot, tmp_path: Path, monkeypatch) -> None:
    """Review a recording in "Review targets" (targets linked into tracks), export with COCO
    ticked in "Export training set": every annotation carries the track id of its target, one
    id per moving target."""
    pytest.importorskip("trackpy")
    from pycocotools.coco import COCO

    from napari_irsam.data.synthetic_video import make_recording
    from napari_irsam.segment import label_targets

    monkeypatch.setenv("NAPARI_IRSAM_REVIEW_DIR", str(tmp_path / "reviews"))
    rec = make_recording(8, (64, 64), n_targets=2, seed=3, snr_range=(25, 30), flicker_rate=0)
    mask, top = np.zeros_like(rec.labels), 0
    for f, frame in enumerate(rec.labels):
        mask[f] = label_targets(frame > 0, top + 1)
        top = max(top, int(mask[f].max()))
    viewer = make_napari_viewer()
    viewer.add_image(rec.frames, name="ir")
    viewer.add_labels(mask, name="IRSAM mask [ir]")
    _, reviewer = viewer.window.add_plugin_dock_widget("napari-irsam", "Review targets")
    reviewer.start_button.click()
    qtbot.waitUntil(lambda: "IRSAM tracks [ir]" in viewer.layers, timeout=60000)
    _, exporter = viewer.window.add_plugin_dock_widget("napari-irsam", "Export training set")
    exporter.image_combo.setCurrentText("ir")
    exporter.labels_combo.setCurrentText("IRSAM mask [ir]")
    exporter.out_edit.setText(str(tmp_path / "ex"))
    exporter.reviewed_check.setChecked(False)
    exporter.coco_check.click()
    assert exporter.export(sync=True) is not None
    manifest = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    frame_of = {f"{s['name']}.png": s["frame_index"] for s in manifest["samples"]}
    pairs = set()
    for split in ("train", "test"):
        coco = COCO(str(tmp_path / "ex" / "annotations" / f"instances_{split}.json"))
        for ann in coco.loadAnns(coco.getAnnIds()):
            img = coco.loadImgs([ann["image_id"]])[0]
            gt = rec.labels[frame_of[img["file_name"]]][coco.annToMask(ann).astype(bool)]
            pairs.add((int(np.bincount(gt).argmax()), ann["track_id"]))
    assert len(pairs) == 2 and len({g for g, _ in pairs}) == len({t for _, t in pairs}) == 2
