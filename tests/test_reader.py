import numpy as np
import pytest
import tifffile
from skimage import io as skio

from data.bombs import png_bomb, sparse_tiff_bomb
from napari_irsam._reader import napari_get_reader, read_infrared
from napari_irsam.data.lazy import is_lazy


def test_reader_rejects_unsupported(tmp_path):
    (tmp_path / "a.csv").write_text("x")
    assert napari_get_reader(str(tmp_path / "a.csv")) is None
    assert napari_get_reader([str(tmp_path / "a.csv")]) is None


def test_16bit_stack_has_ir_contrast_and_metadata(tmp_path):
    rng = np.random.default_rng(0)
    stack = (30000 + rng.normal(0, 20, (3, 32, 32))).astype(np.uint16)
    tifffile.imwrite(tmp_path / "seq.tif", stack)
    reader = napari_get_reader(str(tmp_path / "seq.tif"))
    [(data, meta, kind)] = reader(str(tmp_path / "seq.tif"))
    assert kind == "image" and data.shape == (3, 32, 32) and meta["colormap"] == "gray"
    lo, hi = meta["contrast_limits"]
    assert 29800 < lo < hi < 30200
    assert meta["metadata"]["dtype"] == "uint16" and len(meta["metadata"]["frame_names"]) == 3


def test_folder_and_file_list(tmp_path):
    for i in range(3):
        skio.imsave(tmp_path / f"f{i}.png", np.full((8, 8), i * 10, np.uint8), check_contrast=False)
    [(data, meta, _)] = napari_get_reader(str(tmp_path))(str(tmp_path))
    assert data.shape == (3, 8, 8) and meta["name"] == tmp_path.name
    files = [str(tmp_path / "f2.png"), str(tmp_path / "f0.png")]
    [(data, _, _)] = napari_get_reader(files)(files)
    assert list(data[:, 0, 0]) == [20, 0]


def test_viewer_opens_tiff_and_folder(make_napari_viewer, tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((2, 16, 16), np.float32))
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "s.tif"), plugin="napari-irsam")
    assert layer.data.shape == (2, 16, 16)
    (tmp_path / "frames").mkdir()
    for i in range(2):
        skio.imsave(
            tmp_path / "frames" / f"{i}.png", np.zeros((8, 8), np.uint8), check_contrast=False
        )
    [layer] = viewer.open(str(tmp_path / "frames"), plugin="napari-irsam")
    assert layer.data.shape == (2, 8, 8)


# ------------------------------------------------------- hostile sizes, lazy stacks, mixed sizes


@pytest.fixture()
def notes():
    """The napari notifications shown during a test."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: list(notification_manager.records[start:])


def test_viewer_refuses_a_bomb_with_one_notification(make_napari_viewer, tmp_path, notes):
    viewer = make_napari_viewer()
    for bomb in (
        sparse_tiff_bomb(tmp_path / "b.tif", side=24_000),
        png_bomb(tmp_path / "b.png"),
    ):
        layers = viewer.open(str(bomb), plugin="napari-irsam")
        assert layers == [] and len(viewer.layers) == 0
    shown = [n for n in notes() if n.severity >= "error"]
    assert len(shown) == 2, shown
    assert "24,000 × 24,000 pixels" in shown[0].message
    assert "decompression bomb" in shown[1].message


def test_missing_file_is_a_notification_not_a_traceback(tmp_path, notes):
    assert read_infrared(str(tmp_path / "gone.tif")) == [(None,)]
    assert "does not exist" in notes()[-1].message


def test_big_stack_opens_lazily_in_napari(make_napari_viewer, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    stack = (1000 + rng.normal(0, 20, (12, 24, 20))).astype(np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", stack, photometric="minisblack")
    monkeypatch.setenv("NAPARI_IRSAM_LAZY_BYTES", "1000")  # 11 KB counts as "big" here
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "big.tif"), plugin="napari-irsam")
    assert is_lazy(layer.data) and layer.data.shape == (12, 24, 20)
    lo, hi = layer.contrast_limits
    assert 900 < lo < hi < 1100
    viewer.dims.set_point(0, 7)
    np.testing.assert_array_equal(np.asarray(layer.data[7]), stack[7])


def test_mixed_size_folder_opens_as_one_layer_per_size(make_napari_viewer, tmp_path, notes):
    for i, shape in enumerate([(8, 8), (10, 6), (8, 8)]):
        skio.imsave(tmp_path / f"f{i}.png", np.full(shape, i, np.uint8), check_contrast=False)
    [(_, m0, _), (_, m1, _)] = read_infrared(str(tmp_path))
    assert m0["metadata"]["frame_names"] == ["f0", "f2"] and m1["metadata"]["frame_names"] == ["f1"]
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path), plugin="napari-irsam")
    assert [ly.name for ly in layers] == [f"{tmp_path.name} [8×8]", f"{tmp_path.name} [6×10]"]
    assert [ly.data.shape for ly in layers] == [(2, 8, 8), (10, 6)]
    said = [n.message for n in notes() if "sizes" in n.message]
    assert said and "opened as 2 layers" in said[-1], said
