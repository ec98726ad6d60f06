import numpy as np
import tifffile
from skimage import io as skio

from napari_irsam._reader import napari_get_reader


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
