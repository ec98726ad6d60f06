"""FLIR radiometric files (SEQ/CSQ/FFF, R-JPEG) → °C frames and camera metadata, in the core,
the napari reader and the CLI. Files are written by tests/data/flir_files.py from known counts
and constants; flyr (an independent R-JPEG reader) reads the same files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_irsam.data.flir import FlirSequence, ThermalFormatError, jpeg_kind
from napari_irsam.data.io import read_frames
from napari_irsam.data.thermal import celsius_to_raw, raw_to_celsius, read_thermal

sys.path.insert(0, str(Path(__file__).parent))
import flir_files as F  # noqa: E402


def planck_blackbody(raw: np.ndarray, cam: dict) -> np.ndarray:
    """The bare Planck inversion (emissivity 1, no atmosphere, no window), in °C."""
    r1, r2, b, f, o = (
        cam[k] for k in ("planck_r1", "planck_r2", "planck_b", "planck_f", "planck_o")
    )
    return b / np.log(r1 / (r2 * (raw.astype(np.float64) + o)) + f) - 273.15


BLACKBODY = {
    **F.CAMERA,
    "emissivity": 1.0,
    "object_distance_m": 0.0,
    "ir_window_transmission": 1.0,
}


@pytest.fixture
def seq(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    raws = [F.raw_frame(seed=i) for i in range(3)]
    return F.write_seq(tmp_path / "flight.seq", raws), raws


def test_seq_frames_are_celsius_from_the_planck_formula(tmp_path: Path) -> None:
    raws = [F.raw_frame(seed=i) for i in range(3)]
    path = F.write_seq(tmp_path / "bb.seq", raws, cams=[BLACKBODY] * 3)
    stack = read_frames(path)
    assert stack.data.shape == (3, 24, 32) and stack.data.dtype == np.float32
    assert stack.frame_names == ["bb_0000", "bb_0001", "bb_0002"]
    for got, raw in zip(stack.data, raws):
        # float32 constants in the file: agreement to 1 mK
        np.testing.assert_allclose(got, planck_blackbody(raw, BLACKBODY), atol=1e-3)
    assert stack.data[2, 5, 9] > stack.data[2, 0, 0] + 10  # the hot target is hot


def test_seq_metadata_and_timestamps(seq) -> None:
    path, _ = seq
    meta = read_frames(path).metadata["thermal"]
    cam = meta["camera"]
    assert meta["unit"] == "°C" and meta["format"] == "SEQ"
    assert cam["emissivity"] == pytest.approx(0.95)
    assert cam["object_distance_m"] == pytest.approx(12.5)
    assert cam["reflected_temperature_c"] == pytest.approx(21.5, abs=1e-3)
    assert cam["atmospheric_temperature_c"] == pytest.approx(18.0, abs=1e-3)
    assert cam["relative_humidity"] == pytest.approx(0.55)
    for k in ("planck_r1", "planck_r2", "planck_b", "planck_f"):
        assert cam[k] == pytest.approx(F.CAMERA[k], rel=1e-6)
    assert cam["planck_o"] == -7340
    assert cam["camera_model"] == "FLIR T540" and cam["camera_serial"] == "12345678"
    assert meta["timestamps"] == [
        "2024-05-17T11:30:00.000+02:00",
        "2024-05-17T11:30:00.033+02:00",
        "2024-05-17T11:30:00.067+02:00",
    ]
    assert meta["time_s"] == [0.0, 0.033, 0.067]
    json.dumps(meta)  # goes into layer metadata and export manifests as is


def test_general_case_matches_flyr_and_inverts(tmp_path: Path) -> None:
    """Emissivity 0.95, 12.5 m of humid air: flyr (independent R-JPEG reader) on our file
    gives the same temperatures, and celsius_to_raw inverts raw_to_celsius."""
    flyr = pytest.importorskip("flyr")
    raw = F.raw_frame()
    path = F.write_rjpeg(tmp_path / "IR_0001.jpg", raw)
    assert jpeg_kind(path) == "flir"
    ours = read_frames(path).data[0]
    theirs = flyr.unpack(str(path)).celsius
    # flyr uses 273.17 in one humidity term: a few 0.1 mK apart
    np.testing.assert_allclose(ours, theirs, atol=2e-3)
    assert not np.allclose(ours, planck_blackbody(raw, F.CAMERA), atol=0.5)  # corrections act
    np.testing.assert_allclose(celsius_to_raw(ours.astype(np.float64), F.CAMERA), raw, atol=0.05)


def test_rjpeg_metadata_and_stack_of_rjpegs(tmp_path: Path) -> None:
    for i in range(2):
        F.write_rjpeg(tmp_path / f"IR_{i:04d}.jpg", F.raw_frame(seed=i), chunk=500)
    stack = read_frames(tmp_path)  # a folder of R-JPEGs, as a drone flight leaves them
    assert stack.data.shape == (2, 24, 32) and stack.data.dtype == np.float32
    assert stack.metadata["thermal"]["format"] == "R-JPEG"
    assert stack.metadata["thermal"]["camera"]["emissivity"] == pytest.approx(0.95)
    assert stack.frame_names == ["IR_0000", "IR_0001"]


def test_plain_and_dji_jpegs(tmp_path: Path) -> None:
    from PIL import Image

    from napari_irsam.data.thermal import dji_warnings

    plain = tmp_path / "plain.jpg"
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(plain)
    assert jpeg_kind(plain) is None
    stack = read_frames(plain)
    assert stack.data.dtype == np.uint8 and not stack.metadata
    dji = F.write_dji_like(tmp_path / "DJI_0001_R.JPG")
    assert jpeg_kind(dji) == "dji"
    assert read_frames(dji).data.dtype == np.uint8  # the palette picture
    (msg,) = dji_warnings([plain, dji])
    assert msg.startswith("DJI_0001_R.JPG is a DJI radiometric JPEG") and "SDK" in msg
    with pytest.raises(ValueError, match="plain.jpg is not a FLIR radiometric file"):
        read_frames([F.write_rjpeg(tmp_path / "IR.jpg", F.raw_frame()), plain])


def test_csq_jpegls_frames(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("imagecodecs")
    raws = [F.raw_frame(seed=i) for i in range(2)]
    path = F.write_seq(tmp_path / "rec.csq", raws, encoding="jpegls")
    le = read_frames(F.write_seq(tmp_path / "rec.seq", raws)).data
    np.testing.assert_array_equal(read_frames(path).data, le)  # lossless
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # as if not installed
    with pytest.raises(ThermalFormatError, match=r"pip install 'napari-irsam\[thermal\]'"):
        read_frames(path)


def test_png_counts_and_big_endian_header(tmp_path: Path) -> None:
    raw = F.raw_frame()
    path = tmp_path / "one.fff"
    path.write_bytes(F.fff(raw, encoding="png", header_order=">"))
    with FlirSequence(path) as s:
        assert len(s) == 1
        np.testing.assert_array_equal(s.frame(0).raw, raw)


def test_lazy_stack_reads_the_same(seq) -> None:
    path, _ = seq
    eager, _, _ = read_thermal([path], lazy=False)
    lazy, meta, _ = read_thermal([path], lazy=True)
    assert type(lazy).__module__.startswith("dask") and lazy.shape == eager.shape
    np.testing.assert_array_equal(np.asarray(lazy), eager)


def test_big_recording_opens_lazily(seq, monkeypatch) -> None:
    """Over NAPARI_IRSAM_LAZY_BYTES the reader's layer is a dask array of °C frames, decoded
    when read; the metadata is complete without decoding a frame's counts."""
    from napari_irsam._reader import read_infrared

    path, _ = seq
    eager = read_frames(path, lazy=False).data
    monkeypatch.setenv("NAPARI_IRSAM_LAZY_BYTES", "1")
    ((data, meta, kind),) = read_infrared(str(path))
    assert kind == "image" and type(data).__module__.startswith("dask")
    assert len(meta["metadata"]["thermal"]["timestamps"]) == 3
    np.testing.assert_array_equal(np.asarray(data[2]), eager[2])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:100], "truncated|damaged"),  # not one complete frame
        (lambda b: b"not a flir file" * 10, "holds no FLIR FFF frame"),
        (lambda b: b[:8], "too small"),
    ],
)
def test_damaged_files_are_one_sentence(seq, damage, message) -> None:
    path, _ = seq
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=message) as err:
        read_frames(path)
    assert "\n" not in str(err.value)


def test_recording_cut_short_keeps_its_complete_frames(seq, capsys) -> None:
    """A SEQ cut inside frame 2 (camera stopped, copy interrupted): frames 0 and 1 open, the
    metadata, the reader and the CLI say the rest is incomplete."""
    from napari_irsam.cli import main
    from napari_irsam.data.thermal import stack_warnings

    path, raws = seq
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) * 2 // 3 + 500])
    stack = read_frames(path)
    assert stack.data.shape == (2, 24, 32)
    np.testing.assert_allclose(stack.data[1], read_thermal([path])[0][1])
    note = stack.metadata["thermal"]["truncated"]
    assert note.startswith("the file ends in an incomplete frame after frame 1")
    assert stack_warnings(stack) == [f"flight.seq: {note}."]
    out = path.parent / "pred"
    assert main(["predict", str(path), "--out", str(out), "--model", "tophat"]) == 0
    assert "incomplete frame after frame 1" in capsys.readouterr().err
    assert len(list(out.glob("*.png"))) == 2


def test_raw_to_celsius_refuses_zero_emissivity() -> None:
    with pytest.raises(ValueError, match="Emissivity"):
        raw_to_celsius(np.ones((2, 2)), {**F.CAMERA, "emissivity": 0.0})


def test_napari_opens_seq_with_metadata(make_napari_viewer, seq) -> None:
    path, _ = seq
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-irsam")
    assert layer.data.shape == (3, 24, 32) and layer.data.dtype == np.float32
    thermal = layer.metadata["thermal"]
    assert thermal["camera"]["emissivity"] == pytest.approx(0.95)
    assert len(thermal["timestamps"]) == 3
    lo, hi = layer.contrast_limits
    assert 20 < lo < hi < 200  # °C, not counts


def test_napari_notifies_dji(make_napari_viewer, tmp_path: Path, monkeypatch) -> None:
    import napari.utils.notifications as notifications

    from napari_irsam import _reader

    said: list[str] = []
    monkeypatch.setattr(notifications, "show_info", lambda msg: said.append(msg))
    layers = _reader.read_infrared(str(F.write_dji_like(tmp_path / "DJI_0002_R.JPG")))
    assert layers[0][0].dtype == np.uint8
    assert len(said) == 1 and "DJI radiometric JPEG" in said[0]


def test_cli_predict_and_export_on_seq(seq, tmp_path: Path, capsys) -> None:
    import tifffile

    from napari_irsam.cli import main

    path, _ = seq
    out = tmp_path / "pred"
    assert main(["predict", str(path), "--out", str(out), "--model", "tophat"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [
        "flight_0000.png",
        "flight_0001.png",
        "flight_0002.png",
    ]
    masks = np.zeros((3, 24, 32), np.uint8)
    masks[:, 5:7, 9:11] = 1
    tifffile.imwrite(tmp_path / "masks.tif", masks)
    exp = tmp_path / "export"
    assert main(["export", str(path), str(tmp_path / "masks.tif"), "--out", str(exp)]) == 0
    manifest = json.loads((exp / "manifest.json").read_text())
    thermal = manifest["provenance"]["thermal"]
    assert thermal["camera"]["planck_o"] == -7340 and len(thermal["timestamps"]) == 3
    dji = F.write_dji_like(tmp_path / "DJI_0003_R.JPG")
    assert main(["predict", str(dji), "--out", str(tmp_path / "p2"), "--model", "tophat"]) == 0
    assert "DJI radiometric JPEG" in capsys.readouterr().err


def test_export_widget_carries_thermal_metadata(make_napari_viewer, seq, tmp_path: Path) -> None:
    """Open a SEQ in napari, export it with "Export training set": the manifest keeps the
    camera parameters and the timestamps of the exported frames."""
    path, _ = seq
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(path), plugin="napari-irsam")
    masks = np.zeros(image.data.shape, np.uint8)
    masks[:, 5:7, 9:11] = 1
    viewer.add_labels(masks, name=f"IRSAM mask [{image.name}]")
    _, widget = viewer.window.add_plugin_dock_widget("napari-irsam", "Export training set")
    widget.out_edit.setText(str(tmp_path / "ex"))
    widget.reviewed_check.setChecked(False)
    assert widget.export(sync=True) is not None
    manifest = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    thermal = manifest["provenance"]["thermal"]
    assert thermal["camera"]["emissivity"] == pytest.approx(0.95) and thermal["unit"] == "°C"
    stamps = [thermal["timestamps"][s["frame_index"]] for s in manifest["samples"]]
    assert stamps == [
        "2024-05-17T11:30:00.000+02:00",
        "2024-05-17T11:30:00.033+02:00",
        "2024-05-17T11:30:00.067+02:00",
    ]
