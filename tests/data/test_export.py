import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage import io as skio

from napari_irsam.cli import main
from napari_irsam.data.dataset import IRSTDDataset
from napari_irsam.data.export import export_training_set, split_blocks


def _frames(n=6, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 200, (n, 16, 16)).astype(dtype)
    masks = np.zeros((n, 16, 16), np.int32)
    for i in range(n):
        masks[i, 4 + i % 5, 3:5] = i + 1
    return imgs, masks


def test_layout_manifest_hashes_and_training_reader(tmp_path):
    imgs, masks = _frames()
    res = export_training_set(
        tmp_path / "ex",
        imgs,
        masks,
        reviewed=[True] * 5 + [False],
        provenance={"model_id": "m", "checkpoint_sha256": "abc", "threshold": 0.5},
        statuses={"accepted": 3},
    )
    assert len(res.written) == 5 and "frame_0005" not in res.written  # unreviewed left out
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert man["provenance"]["checkpoint_sha256"] == "abc" and man["status_counts"] == {
        "accepted": 3
    }
    for s in man["samples"]:
        data = (tmp_path / "ex" / "images" / f"{s['name']}.png").read_bytes()
        assert hashlib.sha256(data).hexdigest() == s["image_sha256"]
        mask = skio.imread(tmp_path / "ex" / "masks" / f"{s['name']}.png")
        assert set(np.unique(mask)) == {0, 255}
    ds = IRSTDDataset(tmp_path / "ex", "train")
    assert len(ds) == len(res.train) and ds[0].mask.sum() == 2
    assert sorted(res.train + res.test) == sorted(res.written)


def test_split_is_seeded_and_keeps_blocks_together():
    groups = ["a"] * 30 + ["b"] * 10
    s1, s2 = split_blocks(groups, 0.25, seed=1), split_blocks(groups, 0.25, seed=1)
    assert s1 == s2 and 0 < sum(s1) < 40
    for start in range(0, 40, 10):
        assert len(set(s1[start : start + 10])) == 1  # a block of 10 frames is never split
    assert not all(split_blocks(["x"] * 5, 0.5, 0))  # one block: it stays in training


def test_refuses_overwrite_appends_without_duplicates_or_new_folder(tmp_path):
    imgs, masks = _frames()
    export_training_set(tmp_path / "ex", imgs, masks)
    with pytest.raises(ValueError, match="not empty; choose 'append' or a new folder"):
        export_training_set(tmp_path / "ex", imgs, masks)
    more, more_masks = _frames(3, seed=5)
    res = export_training_set(
        tmp_path / "ex",
        np.concatenate([imgs, more]),
        np.concatenate([masks, more_masks]),
        names=[f"f{i}" for i in range(9)],
        if_exists="append",
    )
    assert len(res.written) == 3 and len(res.skipped_duplicates) == 6
    assert len(list((tmp_path / "ex" / "images").iterdir())) == 9
    res = export_training_set(tmp_path / "ex", imgs, masks, if_exists="new")
    assert res.folder.name == "ex_2" and len(res.written) == 6


def test_16bit_sources_stay_16bit(tmp_path):
    imgs, masks = _frames(dtype=np.uint16)
    imgs = imgs * 300
    export_training_set(tmp_path / "ex", imgs, masks)
    back = skio.imread(tmp_path / "ex" / "images" / "frame_0000.png")
    assert back.dtype == np.uint16 and np.array_equal(back, imgs[0])


def test_bad_paths(tmp_path):
    imgs, masks = _frames()
    with pytest.raises(ValueError, match="parent folder does not exist"):
        export_training_set(tmp_path / "no" / "ex", imgs, masks)
    with pytest.raises(ValueError, match="No frame is marked reviewed"):
        export_training_set(tmp_path / "ex", imgs, masks, reviewed=[False] * 6)


def test_cli_export(tmp_path, capsys):
    imgs, masks = _frames()
    tifffile.imwrite(tmp_path / "seq.tif", imgs)
    tifffile.imwrite(tmp_path / "labels.tif", masks.astype(np.uint16))
    argv = [
        "export",
        str(tmp_path / "seq.tif"),
        str(tmp_path / "labels.tif"),
        "--out",
        str(tmp_path / "ex"),
    ]
    assert main(argv) == 0
    assert "6 sample(s) written" in capsys.readouterr().out
    assert main(argv) == 2  # the folder is no longer empty
    assert "not empty" in capsys.readouterr().err


def test_manifest_says_which_image_format_and_keeps_export_history(tmp_path):
    imgs, masks = _frames(3, dtype=np.uint16)
    export_training_set(
        tmp_path / "ex",
        imgs,
        masks,
        provenance={"model_id": "a"},
        frame_statuses=[{"accepted": 1}] * 3,
    )
    more, more_masks = _frames(2, dtype=np.uint8, seed=3)
    export_training_set(
        tmp_path / "ex",
        more,
        more_masks,
        names=["b0", "b1"],
        if_exists="append",
        provenance={"model_id": "b"},
    )
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    fmt = {s["name"]: s["image_format"] for s in man["samples"]}
    assert fmt == {
        "frame_0000": "png16",
        "frame_0001": "png16",
        "frame_0002": "png16",
        "b0": "png8",
        "b1": "png8",
    }
    assert man["image_format"] == "mixed" and "png16" in man["image_formats"]
    assert [e["provenance"]["model_id"] for e in man["exports"]] == ["a", "b"]
    assert all(e["export_time"] for e in man["exports"])
    assert man["samples"][0]["statuses"] == {"accepted": 1} and man["samples"][0]["export"] == 1
    assert man["samples"][-1]["export"] == 2


def test_append_is_refused_into_a_foreign_folder_and_never_replaces_files(tmp_path):
    imgs, masks = _frames(2)
    foreign = tmp_path / "foreign"
    (foreign / "images").mkdir(parents=True)
    (foreign / "images" / "frame_0000.png").write_bytes(b"precious")
    with pytest.raises(ValueError, match="not a napari-irsam export"):
        export_training_set(foreign, imgs, masks, if_exists="append")
    assert (foreign / "images" / "frame_0000.png").read_bytes() == b"precious"
    # an export whose folder also holds an unlisted file (interrupted export): new name
    export_training_set(tmp_path / "ex", imgs[:1], masks[:1])
    (tmp_path / "ex" / "images" / "frame_0001.png").write_bytes(b"orphan")
    res = export_training_set(tmp_path / "ex", imgs, masks, if_exists="append")
    assert res.written == ["frame_0001_2"] and res.skipped_duplicates == ["frame_0000"]
    assert (tmp_path / "ex" / "images" / "frame_0001.png").read_bytes() == b"orphan"


def test_more_bad_inputs_give_one_sentence(tmp_path):
    imgs, masks = _frames(3)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="it is a file, not a folder"):
        export_training_set(tmp_path / "file", imgs, masks)
    with pytest.raises(ValueError, match="Choose an output folder"):
        export_training_set("", imgs, masks)
    with pytest.raises(ValueError, match="differ in shape"):
        export_training_set(tmp_path / "ex", imgs, masks[:, :8])
    with pytest.raises(ValueError, match="Got 2 names for 3 frame"):
        export_training_set(tmp_path / "ex", imgs, masks, names=["a", "b"])
    export_training_set(tmp_path / "ex", imgs[0], masks[0])  # a single (H, W) frame
    (tmp_path / "ex" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        export_training_set(tmp_path / "ex", imgs, masks, if_exists="append")


def test_read_only_parent_folder_is_refused(tmp_path, monkeypatch):
    imgs, masks = _frames()
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if os.access(ro, os.W_OK):  # root: permission bits do not bind it, so the OS answer is faked
        real_access = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda p, mode, **kw: (
                False if Path(p) == ro and mode & os.W_OK else real_access(p, mode, **kw)
            ),
        )
    try:
        with pytest.raises(ValueError, match="the folder is not writable"):
            export_training_set(ro / "ex", imgs, masks)
        assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o700)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root writes into read-only folders; test_write_errors_become_one_sentence covers the "
    "same refusal with a failing writer",
)
def test_read_only_images_folder_is_refused(tmp_path):
    imgs, masks = _frames(3)
    sub = tmp_path / "ro_images"
    export_training_set(sub, imgs[:1], masks[:1])
    os.chmod(sub / "images", 0o500)
    try:
        with pytest.raises(ValueError, match="Cannot write the export"):
            export_training_set(sub, imgs, masks, if_exists="append")
    finally:
        os.chmod(sub / "images", 0o700)


def test_names_are_made_file_safe_and_progress_is_reported(tmp_path):
    imgs, masks = _frames(3)
    seen = []
    res = export_training_set(
        tmp_path / "ex",
        imgs,
        masks,
        names=["a/b", "x.png", "a/b"],
        progress=lambda d, t: seen.append((d, t)),
    )
    assert res.written == ["a_b", "x_png", "a_b_2"]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert len(IRSTDDataset(tmp_path / "ex", names=res.written)) == 3


def test_write_errors_become_one_sentence(tmp_path, monkeypatch):
    """A write failing half-way (disk full, read-only sub-folder; root ignores chmod) → ValueError."""
    imgs, masks = _frames(2)

    def refuse(path, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("napari_irsam.data.export.atomic_write_bytes", refuse)
    with pytest.raises(ValueError, match=r"Cannot write the export to .*: Permission denied\.$"):
        export_training_set(tmp_path / "ex", imgs, masks)


def test_one_file_per_frame_sequence_is_split_in_blocks(tmp_path, capsys):
    imgs, masks = _frames(20)
    per_file = [f"/seq/f{i}.png" for i in range(20)]
    res = export_training_set(
        tmp_path / "ex", imgs, masks, sources=per_file, groups=["/seq"] * 20, test_ratio=0.5
    )
    names = [f"frame_{i:04d}" for i in range(20)]
    flags = [n in res.test for n in names]
    # one block of 10 on each side (which one is test depends on the seed, see below)
    assert len(set(flags[:10])) == 1 and flags[10:] == [not flags[0]] * 10
    man = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert man["samples"][3]["source"] == "/seq/f3.png"
    # the CLI: a folder of frames is one sequence
    (tmp_path / "frames").mkdir()
    (tmp_path / "labels").mkdir()
    for i in range(20):
        skio.imsave(tmp_path / "frames" / f"f{i:02d}.png", imgs[i], check_contrast=False)
        skio.imsave(
            tmp_path / "labels" / f"f{i:02d}.png", masks[i].astype(np.uint8), check_contrast=False
        )
    argv = ["export", str(tmp_path / "frames"), str(tmp_path / "labels")]
    assert main(argv + ["--out", str(tmp_path / "cli"), "--test-ratio", "0.5"]) == 0
    test = (tmp_path / "cli" / "splits" / "test.txt").read_text().split()
    # the CLI (same default seed) makes exactly the split the function made
    assert test == [f"f{i:02d}" for i in range(20) if flags[i]]


def test_which_block_is_test_depends_on_the_seed(tmp_path):
    imgs, masks = _frames(20)
    first_is_test = set()
    for seed in range(8):
        res = export_training_set(
            tmp_path / f"ex{seed}", imgs, masks, groups=["/seq"] * 20, test_ratio=0.5, seed=seed
        )
        flags = [f"frame_{i:04d}" in res.test for i in range(20)]
        assert len(set(flags[:10])) == 1 and flags[10:] == [not flags[0]] * 10
        first_is_test.add(flags[0])
    assert first_is_test == {True, False}  # a seeded draw, not a fixed rule


def test_sparse_frames_are_blocked_by_frame_index():
    frames = [0, 1, 2, 4, 12, 13, 20, 25, 31, 33]
    s = split_blocks(["seq"] * len(frames), 0.3, seed=0, positions=frames)
    blocks = {}
    for flag, f in zip(s, frames):
        blocks.setdefault(f // 10, set()).add(flag)
    assert all(len(v) == 1 for v in blocks.values()) and 0 < sum(s) < len(s)
    assert s == split_blocks(["seq"] * len(frames), 0.3, seed=0, positions=frames)
