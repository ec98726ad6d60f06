import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch
from skimage import io as skio

from napari_irsam.classical import detect
from napari_irsam.cli import build_parser, main
from napari_irsam.data.dataset import IRSTDDataset
from napari_irsam.data.synthetic import make_dataset
from napari_irsam.effort import EFFORT_KEYS, EffortAccumulator
from napari_irsam.metrics import evaluate
from napari_irsam.model import IRSAMConfig, build_irsam, save_checkpoint


def run(command: str) -> int:
    """Run the CLI on a space-separated command line (test paths have no spaces)."""
    return main(command.split())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("cli") / "ds", 6, seed=1, size=(64, 64))


def test_version_runs_as_module():
    out = subprocess.run(
        [sys.executable, "-m", "napari_irsam", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("napari-irsam ")


def test_predict_classical_on_files_folders_and_stacks(tmp_path, dataset):
    stack = np.stack([skio.imread(p) for p in sorted((dataset / "images").iterdir())[:2]])
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    rc = run(
        f"predict {dataset / 'images'} {tmp_path / 'stack.tif'} --out {tmp_path / 'o'} --model tophat"
    )
    assert rc == 0
    pngs = sorted(p.name for p in (tmp_path / "o").glob("*.png"))
    assert len(pngs) == 6 + 2 and "stack_0000.png" in pngs
    rows = list(csv.DictReader(open(tmp_path / "o" / "targets.csv")))
    assert rows and set(rows[0]) == {"image", "target_id", "row", "col", "area", "peak_score"}
    mask = skio.imread(tmp_path / "o" / "syn_00000.png")
    expected = detect("tophat", skio.imread(dataset / "images" / "syn_00000.png")).mask
    np.testing.assert_array_equal(mask > 0, expected)


def test_predict_with_a_checkpoint(tmp_path, dataset):
    torch.manual_seed(0)
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0",))
    save_checkpoint(build_irsam(cfg), tmp_path / "tiny.pt")
    img = dataset / "images" / "syn_00001.png"
    model = tmp_path / "tiny.pt"
    assert run(f"predict {img} --out {tmp_path / 'p'} --model {model} --device cpu") == 0
    assert skio.imread(tmp_path / "p" / "syn_00001.png").shape == (64, 64)
    # --tta: the masks of the flip-averaged model
    assert run(f"predict {img} --out {tmp_path / 't'} --model {model} --device cpu --tta") == 0
    from napari_irsam.inference import Predictor
    from napari_irsam.model import load_model

    frame = skio.imread(img)
    expected = Predictor(load_model(str(model))[0], "cpu", maps=(), tta=True).predict_frame(frame)
    np.testing.assert_array_equal(skio.imread(tmp_path / "t" / "syn_00001.png") > 0, expected.mask)


def test_evaluate_matches_metrics_module(tmp_path, dataset):
    js = tmp_path / "r.json"
    assert run(f"evaluate {dataset} --split test --model maxmedian --mode paper --json {js}") == 0
    got = json.loads(js.read_text())
    ds = IRSTDDataset(dataset, "test")
    samples = [ds[i] for i in range(len(ds))]
    ref = evaluate(
        [detect("maxmedian", s.image).mask for s in samples],
        [np.where(s.mask, 255, 0).astype(np.uint8) for s in samples],
        mode="paper",
    )
    assert set(got) == {"iou", "niou", "pd", "fa", "n_images", "mode", "effort", "target_ap"}
    for k in ("iou", "niou", "pd", "fa", "n_images"):
        assert got[k] == pytest.approx(ref[k])
    eff = EffortAccumulator()
    for s in samples:
        d = detect("maxmedian", s.image)
        eff.update(d.mask, s.mask, d.saliency)
    want = eff.compute()
    assert set(got["effort"]) == set(EFFORT_KEYS)
    for k in EFFORT_KEYS:
        assert got["effort"][k] == pytest.approx(want[k])
    assert got["target_ap"] == pytest.approx(want["target_ap"])


def test_precision_is_a_choice(tmp_path, dataset, capsys):
    img = dataset / "images" / "syn_00001.png"
    with pytest.raises(SystemExit) as exc:
        run(f"predict {img} --out {tmp_path / 'p'} --model tophat --precision fp64")
    assert exc.value.code == 2
    assert "--precision" in capsys.readouterr().err
    assert run(f"predict {img} --out {tmp_path / 'q'} --model tophat --precision bf16") == 0


def test_evaluate_predictions_folder_with_512_protocol(tmp_path, dataset):
    preds = tmp_path / "preds"
    preds.mkdir()
    for p in (dataset / "masks").iterdir():
        skio.imsave(preds / p.name, skio.imread(p), check_contrast=False)
    js = tmp_path / "r.json"
    cmd = (
        f"evaluate {dataset} --split test --predictions {preds} --size 512 --mode paper --json {js}"
    )
    assert run(cmd) == 0
    r = json.loads(js.read_text())
    assert r["iou"] == pytest.approx(1.0) and r["pd"] == 1.0 and r["fa"] == 0.0


def test_train_tiny_run(tmp_path, dataset):
    out = tmp_path / "run"
    rc = run(
        f"train {dataset} --out {out} --split train --config paper --size 64 --epochs 1 --batch-size 2 --device cpu"
    )
    assert rc == 0 and (tmp_path / "run" / "best.pt").is_file()
    # best.pt is calibrated on the run's held-out frames at the end (--no-calibrate: left alone)
    from napari_irsam.model import load_model

    cal = load_model(str(out / "best.pt"))[0].calibration
    assert cal is not None and "held-out" in cal.fitted_on and 0.5 <= cal.threshold <= 0.8
    args = build_parser().parse_args(f"train {dataset} --out o --no-calibrate".split())
    assert args.calibrate is False


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "/no/such/file.png", "--out", "OUT", "--model", "tophat"], "does not exist"),
        (
            ["predict", "IMG", "--out", "OUT", "--model", "/no/model.pt"],
            "neither a checkpoint file",
        ),
        (
            ["evaluate", "/no/dataset", "--split", "test", "--model", "tophat"],
            "not an IRSTD dataset",
        ),
        (
            ["evaluate", "DS", "--split", "missing.txt", "--model", "tophat"],
            "Split file missing.txt not found",
        ),
        (["evaluate", "DS", "--split", "test"], "exactly one of --model or --predictions"),
        (["train", "/no/dataset", "--out", "OUT"], "does not exist"),
        (["evaluate", "DS", "--split", "test", "--mode", "lenient"], "invalid choice"),
    ],
)
def test_bad_input_exit_2_one_line(tmp_path, dataset, capsys, argv, message):
    argv = [
        a.replace("OUT", str(tmp_path / "o"))
        .replace("DS", str(dataset))
        .replace("IMG", str(dataset / "images" / "syn_00000.png"))
        for a in argv
    ]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1
