import numpy as np
import tifffile
from skimage import io as skio

from napari_irsam._writer import write_labels_png_folder, write_labels_tiff


def test_tiff_round_trip(tmp_path):
    labels = np.zeros((3, 10, 10), np.int32)
    labels[1, 2:4, 2:4] = 5
    [path] = write_labels_tiff(str(tmp_path / "l.tif"), labels, {})
    np.testing.assert_array_equal(tifffile.imread(path), labels)


def test_png_folder_uses_frame_names(tmp_path):
    labels = np.zeros((2, 6, 6), np.int32)
    labels[0, 1, 1] = 3
    meta = {"metadata": {"frame_names": ["Misc_1", "Misc_2"]}}
    paths = write_labels_png_folder(str(tmp_path / "masks"), labels, meta)
    assert [p.split("/")[-1] for p in paths] == ["Misc_1.png", "Misc_2.png"]
    assert skio.imread(paths[0])[1, 1] == 255 and skio.imread(paths[1]).max() == 0
    single = write_labels_png_folder(str(tmp_path / "one"), labels[0], {})
    assert single[0].endswith("frame_0000.png")


def test_viewer_save_layer(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.eye(8, dtype=np.int32))
    viewer.layers.save(str(tmp_path / "saved.tif"), selected=False, plugin="napari-irsam")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "saved.tif"), layer.data)
