"""Export appends: sides kept across appends, de-duplication on pixels, leftover temporary files."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_irsam.data import export
from napari_irsam.data.dataset import IRSTDDataset
from napari_irsam.data.export import export_training_set, pixel_key
from napari_irsam.data.io import list_image_files, read_frames
from napari_irsam.data.split import split_blocks


def _stack(n: int, seed: int, shape=(8, 8)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 4000, (n, *shape)).astype(np.uint16)
    masks = (rng.random((n, *shape)) > 0.9).astype(np.int32)
    return imgs, masks


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _sides(folder: Path) -> tuple[dict, dict]:
    """(source, frame) → splits and (group, block) → splits found in an export."""
    frames, blocks = defaultdict(set), defaultdict(set)
    man = _manifest(folder)
    for s in man["samples"]:
        frames[(s["source"], s["frame_index"])].add(s["split"])
        blocks[(s["group"], s["frame_index"] // 10)].add(s["split"])
    train = set((folder / "splits" / "train.txt").read_text().split())
    test = set((folder / "splits" / "test.txt").read_text().split())
    assert not train & test and train | test == {s["name"] for s in man["samples"]}
    return frames, blocks


def test_appends_never_put_a_frame_or_block_on_both_sides(tmp_path):
    """50 seeds × (first export of some reviewed frames, an append of more with another seed,
    an append that re-exports edited masks): every frame and block stays on one side."""
    n, kept, fresh = 40, [], []
    imgs, masks = _stack(n, seed=0)
    # a stack file, and a folder of one file per frame whose files share the split group
    sources = ["/d/seq.tif"] * 20 + [f"/d/run/f{i:02d}.png" for i in range(20)]
    groups = ["/d/seq.tif"] * 20 + ["/d/run"] * 20
    indices = list(range(20)) * 2
    kw = dict(sources=sources, groups=groups, frame_indices=indices, test_ratio=0.3)
    for seed in range(50):
        rng = np.random.default_rng(seed)
        out = tmp_path / f"s{seed}"
        reviewed = rng.random(n) < 0.35
        export_training_set(out, imgs, masks, reviewed=reviewed, seed=seed, **kw)
        reviewed |= rng.random(n) < 0.4
        res = export_training_set(
            out, imgs, masks, reviewed=reviewed, seed=seed + 1, if_exists="append", **kw
        )
        kept.append(len(res.test) / len(res.test + res.train))
        keep = np.flatnonzero(reviewed)
        alone = split_blocks([groups[i] for i in keep], 0.3, seed + 1, positions=keep % 20)
        fresh.append(float(np.mean(alone)))
        edited = masks.copy()
        edited[rng.random(n) < 0.3, 0, 0] = 7  # new masks of some frames: new samples
        export_training_set(
            out, imgs, edited, reviewed=reviewed, seed=seed + 2, if_exists="append", **kw
        )
        frames, blocks = _sides(out)
        mixed = {k: v for k, v in {**frames, **blocks}.items() if len(v) > 1}
        assert not mixed, (seed, mixed)
    # keeping sides shifts the test share little from a one-off split of the same frames
    # (with 4 blocks of 10, both overshoot 0.3: a block is taken until the share is reached)
    assert abs(np.mean(kept) - np.mean(fresh)) < 0.05, (np.mean(kept), np.mean(fresh))


def test_split_blocks_with_fixed_sides():
    groups, pos = ["a"] * 30, list(range(30))
    fixed = [None] * 30
    fixed[3], fixed[25] = True, False  # block 0 was test, block 2 train
    for seed in range(20):
        s = split_blocks(groups, 0.3, seed, positions=pos, fixed=fixed)
        assert all(s[:10]) and not any(s[20:])
    fixed[4] = False  # a block found on both sides before: its frames keep theirs; tie → train
    s = split_blocks(groups, 0.3, 0, positions=pos, fixed=fixed)
    assert s[3] and not s[4] and not any(s[i] for i in range(10) if i not in (3, 4))
    assert split_blocks(groups, 0.3, 5, positions=pos) == split_blocks(
        groups, 0.3, 5, positions=pos, fixed=[None] * 30
    )
    with pytest.raises(ValueError, match="fixed sides"):
        split_blocks(groups, 0.3, 0, positions=pos, fixed=[None])


def test_a_re_encoded_identical_frame_is_still_a_duplicate(tmp_path, monkeypatch):
    imgs, masks = _stack(6, seed=1)
    first = export_training_set(tmp_path / "ex", imgs, masks, sources=["/d/a.tif"] * 6)
    old_bytes = (tmp_path / "ex" / "images" / f"{first.written[0]}.png").read_bytes()

    def other_encoder(arr: np.ndarray) -> bytes:  # same pixels, different PNG bytes
        return iio.imwrite("<bytes>", arr, extension=".png", compress_level=0)

    monkeypatch.setattr(export, "_png_bytes", other_encoder)
    assert other_encoder(imgs[0]) != old_bytes
    again = export_training_set(
        tmp_path / "ex", imgs, masks, sources=["/d/a.tif"] * 6, if_exists="append"
    )
    assert again.written == [] and len(again.skipped_duplicates) == 6
    # the same pixels from another source are new samples …
    other = export_training_set(
        tmp_path / "ex", imgs, masks, sources=["/d/b.tif"] * 6, if_exists="append"
    )
    assert len(other.written) == 6 and other.skipped_duplicates == []
    # … and so is a changed mask; an identical frame twice in one export is written once
    edited = masks.copy()
    edited[2, 0, 0] = 9
    dup = export_training_set(
        tmp_path / "ex",
        np.concatenate([imgs[2:3], imgs[2:3]]),
        np.concatenate([edited[2:3], edited[2:3]]),
        sources=["/d/a.tif"] * 2,
        frame_indices=[2, 2],
        if_exists="append",
    )
    assert len(dup.written) == 1 and len(dup.skipped_duplicates) == 1


def test_manifests_without_pixel_keys_or_groups_still_deduplicate_and_keep_sides(tmp_path):
    """An export written before ``pixels_sha256`` and ``group`` existed: duplicates are found
    by decoding its PNGs, and its blocks keep their sides (group = source)."""
    imgs, masks = _stack(30, seed=2)
    out = tmp_path / "ex"
    export_training_set(out, imgs[:15], masks[:15], sources=["s"] * 15, seed=3, test_ratio=0.4)
    man = _manifest(out)
    for s in man["samples"]:
        del s["pixels_sha256"], s["group"]
    (out / "manifest.json").write_text(json.dumps(man))
    before = {s["frame_index"]: s["split"] for s in man["samples"]}
    res = export_training_set(
        out, imgs, masks, sources=["s"] * 30, seed=4, test_ratio=0.4, if_exists="append"
    )
    assert len(res.skipped_duplicates) == 15 and len(res.written) == 15
    side = {s["frame_index"]: s["split"] for s in _manifest(out)["samples"]}
    assert {i: side[i] for i in before} == before
    assert side[10] == side[14] == side[11] and side[12] == before[10]  # block 1 kept its side
    assert pixel_key("s", imgs[0], masks[0]) != pixel_key("t", imgs[0], masks[0])
    assert pixel_key("s", imgs[0], masks[0]) == pixel_key(
        "s", imgs[0].byteswap().view(">u2"), masks[0]
    )


def _interrupted_export_leftovers(folder: Path) -> list[Path]:
    """What a process killed inside ``atomic_path`` leaves: ``.<stem>.<random>.png``, truncated."""
    left = []
    for sub in ("images", "masks"):
        png = (folder / sub / "frame_0000.png").read_bytes()
        fd, tmp = tempfile.mkstemp(prefix=".frame_0006.", suffix=".png", dir=folder / sub)
        with open(fd, "wb") as f:
            f.write(png[: len(png) // 3])
        left.append(Path(tmp))
    return left


def test_listings_ignore_temporary_files_of_an_interrupted_export(tmp_path):
    imgs, masks = _stack(6, seed=3)
    out = tmp_path / "ex"
    export_training_set(out, imgs, masks)
    left = _interrupted_export_leftovers(out)
    names = [f"frame_{i:04d}" for i in range(6)]

    ds = IRSTDDataset(out)  # no split: the listing training uses for a whole folder
    assert ds.names == names
    assert all(ds[i].image.shape == (8, 8) for i in range(len(ds)))
    assert [p.name for p in list_image_files(out / "images")] == [f"{n}.png" for n in names]
    assert read_frames(out / "images").frame_names == names
    # an append next to the leftovers neither lists nor replaces them
    more, more_masks = _stack(2, seed=4)
    res = export_training_set(out, more, more_masks, names=["frame_0006", "x"], if_exists="append")
    assert res.written == ["frame_0006", "x"] and all(p.is_file() for p in left)
    assert IRSTDDataset(out).names == [*names, "frame_0006", "x"]
