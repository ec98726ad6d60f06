"""Batch pre-segmentation (napari_irsam.batch, ``napari-irsam predict``): single process and a
Dask cluster give the same files, reruns skip finished frames, hostile inputs are refused."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from skimage import io as skio

from data.bombs import sparse_tiff_bomb
from napari_irsam import batch as bt
from napari_irsam.cli import main
from napari_irsam.model import IRSAMConfig, build_irsam, save_checkpoint

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    rng = np.random.default_rng(3)
    frames = rng.normal(60, 4, (5, 48, 56)).clip(0, 255).astype(np.uint8)
    for f in range(5):
        frames[f, 10 + 4 * f : 13 + 4 * f, 20:23] = 220  # one bright 3×3 target per frame
        frames[f, 30:32, 40 - 3 * f : 42 - 3 * f] = 200
    (root / "images").mkdir()
    for f in range(5):
        skio.imsave(root / "images" / f"img_{f}.png", frames[f], check_contrast=False)
    tifffile.imwrite(root / "stack.tif", frames[:3].astype(np.uint16) * 100)
    return [str(root / "images"), str(root / "stack.tif")]


def _outputs(folder):
    pngs = {p.name: skio.imread(p) for p in sorted(folder.glob("*.png"))}
    rows = list(csv.DictReader(open(folder / "targets.csv")))
    return pngs, rows


def _same(a, b):
    (pa, ra), (pb, rb) = a, b
    assert sorted(pa) == sorted(pb) and ra == rb
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


def test_two_threaded_workers_write_what_one_process_writes(tmp_path, inputs, capsys):
    assert main(["predict", *inputs, "--out", str(tmp_path / "one"), "--model", "tophat"]) == 0
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        argv = ["predict", *inputs, "--out", str(tmp_path / "two"), "--model", "tophat"]
        argv += ["--cluster", cluster.scheduler_address, "--batch-frames", "2"]
        assert main(argv) == 0
        worked = {ts.key for ts in cluster.scheduler.tasks.values()}
    one, two = _outputs(tmp_path / "one"), _outputs(tmp_path / "two")
    _same(one, two)
    assert len(one[0]) == 8 and one[1]  # 5 files + 3 stack frames; targets found
    assert "8 frame(s)" in capsys.readouterr().out
    assert len(worked) in (0, 4)  # 4 batches of ≤ 2 frames (forgotten once gathered)


@pytest.fixture()
def one_torch_thread():
    """Two workers × several torch threads on a busy machine thrash: one thread each."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_irsam_on_two_workers_loads_the_model_once_per_process(tmp_path, inputs, one_torch_thread):
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0",))
    save_checkpoint(build_irsam(cfg), tmp_path / "tiny.pt")
    spec = bt.ModelSpec(str(tmp_path / "tiny.pt"), "cpu")
    batches = bt.plan_batches(inputs[1:], batch_frames=1)  # 3 tasks
    local = dict(bt.iter_local(spec, batches, str(tmp_path / "one")))
    bt._SEGMENTERS.clear()
    before = bt.LOADS["count"]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = dict(bt.iter_cluster(spec, batches, str(tmp_path / "two"), client))
        ran_on = {ts.processing_on for ts in cluster.scheduler.tasks.values()}
    # both workers live in this process here: one load for 3 tasks (a worker process each loads
    # once, keyed on the checkpoint's path, size and mtime)
    assert bt.LOADS["count"] - before == 1, ran_on
    assert {b: r for b, (_, r) in got.items()} == {b: r for b, (_, r) in local.items()}
    for p in sorted((tmp_path / "one").glob("*.png")):
        np.testing.assert_array_equal(skio.imread(p), skio.imread(tmp_path / "two" / p.name))


def test_rerun_skips_finished_frames_and_an_interrupted_frame_leaves_no_file(
    tmp_path, inputs, monkeypatch, capsys
):
    out = tmp_path / "o"
    calls = {"n": 0}
    from napari_irsam.data import io as dio

    write = dio.write_png

    def dying(path, image):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed while writing frame 3
        write(path, image)

    monkeypatch.setattr(dio, "write_png", dying)
    with pytest.raises(KeyboardInterrupt):
        main(["predict", inputs[0], "--out", str(out), "--model", "tophat"])
    assert len(list(out.glob("*.png"))) == 2
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary leftovers
    monkeypatch.setattr(dio, "write_png", write)
    assert main(["predict", inputs[0], "--out", str(out), "--model", "tophat"]) == 0
    assert "(2 already written, skipped)" in capsys.readouterr().out
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert main(["predict", inputs[0], "--out", str(out), "--model", "tophat"]) == 0
    assert "(5 already written, skipped)" in capsys.readouterr().out
    assert first == {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    ref = tmp_path / "ref"
    assert main(["predict", inputs[0], "--out", str(ref), "--model", "tophat"]) == 0
    _same(_outputs(out), _outputs(ref))


def test_mixed_size_folder_is_segmented_frame_by_frame(tmp_path):
    for i, shape in enumerate([(20, 24), (30, 18)]):
        frame = np.zeros(shape, np.uint8)
        frame[8:10, 8:10] = 200
        skio.imsave(tmp_path / f"f{i}.png", frame, check_contrast=False)
    assert main(["predict", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "tophat"]) == 0
    assert skio.imread(tmp_path / "o" / "f1.png").shape == (30, 18)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cluster", "local:0"], "worker count"),
        (["--cluster", "yarn"], "local:N or a scheduler address"),
        (["--batch-frames", "0"], "at least 1"),
    ],
)
def test_bad_cluster_arguments_exit_2(tmp_path, inputs, capsys, extra, message):
    argv = ["predict", inputs[0], "--out", str(tmp_path / "o"), "--model", "tophat", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_bomb_is_refused_before_any_work(tmp_path, inputs, capsys):
    bomb = sparse_tiff_bomb(tmp_path / "bomb.tif")
    argv = ["predict", inputs[0], str(bomb), "--out", str(tmp_path / "o"), "--model", "tophat"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "40,000 × 40,000 pixels" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused from the headers, before the first frame


def test_a_second_run_on_the_same_cluster_writes_its_own_folder(tmp_path, inputs):
    spec = bt.ModelSpec("tophat")
    batches = bt.plan_batches(inputs[:1], batch_frames=2)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for out in ("a", "b"):  # same batches: task keys must not hand back run "a"'s results
            done = list(bt.iter_cluster(spec, batches, str(tmp_path / out), client))
            assert sum(n for _, (n, _) in done) == 5
    assert len(list((tmp_path / "b").glob("*.png"))) == 5


def test_a_very_large_frame_stays_lazy_and_its_mask_becomes_a_zarr_store(
    tmp_path, monkeypatch, one_torch_thread
):
    """Frames over LARGE_PIXELS (shrunk here) go band by band with disk-backed results, the
    mask is written as a chunked zarr store equal to the ordinary path's PNG, reruns skip it and
    the plugin's reader opens it as a Labels layer on the store."""
    import napari_irsam.banded as banded
    import napari_irsam.targets_large as tl
    from napari_irsam._reader import napari_get_reader
    from napari_irsam.data import mask_store

    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0",))
    save_checkpoint(build_irsam(cfg), tmp_path / "tiny.pt")
    rng = np.random.default_rng(5)
    frame = rng.normal(60, 6, (150, 140)).clip(0, 255).astype(np.uint8)
    frame[40:44, 50:54] = 230
    frame[100:103, 20:23] = 210
    (tmp_path / "in").mkdir()
    skio.imsave(tmp_path / "in" / "big.png", frame, check_contrast=False)
    args = [
        "predict",
        str(tmp_path / "in"),
        "--model",
        str(tmp_path / "tiny.pt"),
        "--threshold",
        "0.45",
    ]
    assert main([*args, "--out", str(tmp_path / "ref")]) == 0
    ref_png = skio.imread(tmp_path / "ref" / "big.png")

    monkeypatch.setattr(tl, "LARGE_PIXELS", 5000)
    monkeypatch.setattr(banded, "RESULT_BYTES", 1000)
    monkeypatch.setattr(mask_store, "CHUNK", 64)
    monkeypatch.setattr(bt, "_SEGMENTERS", {})  # a predictor built with the shrunk limit
    real, seen = banded.predict_banded, []

    def spy(predictor, frame, should_stop=None):
        pred = real(predictor, frame, should_stop)
        seen.append((type(frame), type(pred.prob), type(pred.mask)))
        return pred

    monkeypatch.setattr(banded, "predict_banded", spy)
    out = tmp_path / "big"
    assert main([*args, "--out", str(out)]) == 0
    assert [s[1:] for s in seen] == [(np.memmap, np.memmap)]  # band by band, results on disk
    store = out / "big.zarr"
    assert store.is_dir() and not (out / "big.png").exists()
    assert not list(out.glob(".*.partial"))
    z = mask_store.open_mask_zarr(store, writable=False)
    assert z.shape == frame.shape and z.dtype == np.uint8
    np.testing.assert_array_equal(z[:], ref_png)
    rows = list(csv.DictReader(open(out / "targets.csv")))
    assert rows == list(csv.DictReader(open(tmp_path / "ref" / "targets.csv")))
    stamp = (store / "zarr.json").stat().st_mtime_ns
    assert main([*args, "--out", str(out)]) == 0
    assert (store / "zarr.json").stat().st_mtime_ns == stamp  # skipped on a rerun

    reader = napari_get_reader(str(store))
    [(data, meta, kind)] = reader(str(store))
    assert kind == "labels" and meta["name"] == "big mask"
    data[0, 0] = 255  # painting writes through to the store
    assert mask_store.open_mask_zarr(store, writable=False)[0, 0] == 255
