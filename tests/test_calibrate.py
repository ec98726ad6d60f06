"""Detection calibration: temperature, threshold and least target peak (napari_irsam.calibrate,
napari_irsam.model.calibration), applied by the Predictor, stored by ``napari-irsam calibrate``."""

import json

import numpy as np
import pytest
import torch

from napari_irsam.calibrate import fit_calibration, fit_temperature
from napari_irsam.cli import main
from napari_irsam.data.synthetic import make_dataset
from napari_irsam.inference import Predictor
from napari_irsam.model import IRSAMConfig, build_irsam, load_model, save_checkpoint
from napari_irsam.model.calibration import Calibration
from napari_irsam.targets_large import drop_weak_targets
from test_inference import PixelEcho


def test_calibration_metadata_round_trip_and_bad_values():
    cal = Calibration(4.2, 0.6, 0.8, "held-out")
    assert Calibration.from_metadata({"calibration": cal.to_metadata()}) == cal
    assert Calibration.from_metadata({}) is None and Calibration.from_metadata(None) is None
    with pytest.raises(ValueError, match="temperature"):
        Calibration(temperature=0.0)
    with pytest.raises(ValueError, match="min_peak"):
        Calibration(min_peak=1.5)


def test_fit_temperature_recovers_the_temperature_labels_were_drawn_with():
    rng = np.random.default_rng(0)
    logits = [rng.normal(0, 12, (64, 64)) for _ in range(8)]
    masks = [rng.random(lg.shape) < 1 / (1 + np.exp(-lg / 3.0)) for lg in logits]
    assert fit_temperature(logits, masks) == pytest.approx(3.0, rel=0.08)


@pytest.mark.parametrize("band_rows", [1024, 3])  # one band, and targets across band borders
def test_drop_weak_targets_removes_whole_targets_below_the_peak(band_rows):
    prob = np.zeros((12, 12), np.float32)
    prob[1:7, 1:3] = 0.6
    prob[4, 2] = 0.95  # a confident seed: the whole 6x2 target stays
    prob[8:11, 6:10] = 0.7  # no seed: the target goes
    prob[2, 9], prob[3, 10] = 0.7, 0.95  # diagonal neighbours are one target (8-connected)
    mask = prob > 0.5
    removed = drop_weak_targets(mask, prob, 0.9, band_rows=band_rows)
    assert removed == 1
    expected = prob > 0.5
    expected[8:11, 6:10] = False
    np.testing.assert_array_equal(mask, expected)


def _frames():
    """Frames with a strong target (peak logit 12) and a weak false alarm (peak logit 4) each,
    and target halos (logit 1) that a higher threshold trims."""
    rng = np.random.default_rng(3)
    logits, masks = [], []
    for _ in range(6):
        lg = np.full((40, 40), -12.0) + rng.normal(0, 0.5, (40, 40))
        gt = np.zeros((40, 40), bool)
        gt[10:14, 10:14] = True
        lg[8:16, 8:16] = 1.0  # a halo twice the target's side
        lg[10:14, 10:14] = 12.0
        lg[30:32, 30:32] = 4.0  # false alarm
        logits.append(lg)
        masks.append(gt)
    return logits, masks


def test_fit_calibration_cuts_false_alarms_and_halos_without_losing_targets():
    logits, masks = _frames()
    cal, rows = fit_calibration(logits, masks, "synthetic")
    base = next(r for r in rows if (r.threshold, r.min_peak) == (0.5, 0.0))
    best = next(r for r in rows if (r.threshold, r.min_peak) == (cal.threshold, cal.min_peak))
    # uncalibrated: 6 false alarms and 6 reshapes (halo IoU 16/64) per 6 targets
    assert (base.misses, base.false_alarms, base.reshapes) == (0, 6, 6)
    assert (best.misses, best.false_alarms, best.reshapes) == (0, 0, 0)
    t = cal.temperature
    assert 1 / (1 + np.exp(-1.0 / t)) <= cal.threshold  # the halo is below the threshold
    assert 1 / (1 + np.exp(-4.0 / t)) < cal.min_peak <= 1 / (1 + np.exp(-12.0 / t))
    assert cal.fitted_on == "synthetic"


def test_fit_calibration_never_trades_targets_for_fewer_false_alarms():
    logits, masks = _frames()
    for lg in logits[:3]:  # half the targets are as weak as the alarms
        lg[10:14, 10:14] = 4.0
    cal, rows = fit_calibration(logits, masks)
    best = next(r for r in rows if (r.threshold, r.min_peak) == (cal.threshold, cal.min_peak))
    assert best.misses == 0
    # a filter that removes every peak-4 target would score better but miss three targets
    assert any(r.misses == 3 and r.actions_per_100 < best.actions_per_100 for r in rows)
    with pytest.raises(ValueError, match="all empty"):
        fit_calibration(logits, [np.zeros_like(m) for m in masks])


class CalibratedEcho(PixelEcho):
    """PixelEcho (logits (pixel − 100) / 10) carrying a calibration, as load_model attaches it."""

    def __init__(self, cal: Calibration) -> None:
        super().__init__(32)
        self.calibration = cal


@pytest.mark.parametrize("band_pixels", [None, 0])  # ordinary path and band by band
def test_predictor_applies_the_model_calibration(band_pixels):
    frame = np.full((48, 48), 60, np.uint8)
    frame[5:9, 5:9] = 150  # logit 5: probability σ(5/2) = 0.92 after T = 2
    frame[30:34, 30:34] = 120  # logit 2: σ(1) = 0.73, a target below the least peak
    frame[6, 6] = 200  # logit 10: the first target's seed
    cal = Calibration(temperature=2.0, threshold=0.6, min_peak=0.9)
    kw = {"geometry": "tile", "overlap": 8, "band_pixels": band_pixels}
    pred = Predictor(CalibratedEcho(cal), "cpu", **kw).predict_frame(frame)
    expected = 1 / (1 + np.exp(-(frame.astype(np.float64) - 100) / 10 / 2.0))
    np.testing.assert_allclose(pred.prob, expected, atol=1e-5)
    assert pred.mask[5:9, 5:9].all() and not pred.mask[30:34, 30:34].any()
    assert pred.mask.sum() == 16
    # explicit values win over the calibration; a model without one keeps the release's 0.5
    loose = Predictor(CalibratedEcho(cal), "cpu", threshold=0.6, min_peak=0.0, **kw)
    assert loose.predict_frame(frame).mask.sum() == 32
    plain = Predictor(PixelEcho(32), "cpu", **kw)
    assert (plain.temperature, plain.threshold, plain.min_peak) == (1.0, 0.5, 0.0)


def test_calibrate_cli_writes_a_checkpoint_that_load_model_applies(tmp_path):
    ds = make_dataset(tmp_path / "ds", 8, seed=2, size=(64, 64))
    torch.manual_seed(0)
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0",))
    save_checkpoint(build_irsam(cfg), tmp_path / "tiny.pt", metadata={"note": "kept"})
    out, js = tmp_path / "cal.pt", tmp_path / "cal.json"
    rc = main(
        f"calibrate {tmp_path / 'tiny.pt'} {ds} --val-fraction 0.5 --out {out} "
        f"--device cpu --json {js}".split()
    )
    assert rc == 0
    model, _ = load_model(str(out))
    doc = json.loads(js.read_text())
    assert model.calibration == Calibration(**doc["calibration"])
    assert "4 frames" in model.calibration.fitted_on
    assert len(doc["grid"]) > 10
    p = Predictor(model, "cpu", maps=())
    assert (p.temperature, p.threshold) == (
        model.calibration.temperature,
        doc["calibration"]["threshold"],
    )
    # the uncalibrated source is untouched and gets none
    assert load_model(str(tmp_path / "tiny.pt"))[0].calibration is None
    assert main(f"calibrate {tmp_path / 'tiny.pt'} /no/ds --out {out}".split()) == 2


def test_predict_cli_takes_the_calibration_or_explicit_values(tmp_path):
    from skimage import io as skio

    ds = make_dataset(tmp_path / "ds", 2, seed=3, size=(64, 64))
    torch.manual_seed(0)
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0",))
    cal = Calibration(temperature=3.0, threshold=0.505, min_peak=0.525)
    ckpt = tmp_path / "cal.pt"
    save_checkpoint(build_irsam(cfg), ckpt, metadata={"calibration": cal.to_metadata()})
    img = ds / "images" / "syn_00000.png"
    frame = skio.imread(img)
    model = load_model(str(ckpt))[0]
    written = []
    for extra, kw in (
        ("", {}),
        ("--threshold 0.5 --min-peak 0", {"threshold": 0.5, "min_peak": 0}),
    ):
        out = tmp_path / f"o{len(extra)}"
        argv = f"predict {img} --out {out} --model {ckpt} --device cpu {extra}".split()
        assert main(argv) == 0
        expected = Predictor(model, "cpu", maps=(), **kw).predict_frame(frame).mask
        written.append(skio.imread(out / "syn_00000.png") > 0)
        np.testing.assert_array_equal(written[-1], expected)
    assert written[0].sum() < written[1].sum()  # the calibration changed the masks
    assert main(f"predict {img} --out {tmp_path / 'bad'} --model {ckpt} --min-peak 2".split()) == 2


@pytest.mark.parametrize("band_pixels", [None, 0])  # ordinary path and band by band
def test_predictor_redraws_outlines_with_the_calibrated_refinement(band_pixels):
    frame = np.full((48, 48), 60, np.uint8)
    frame[4:9, 4:9] = 130  # a dim halo the model (logit > 0 above 100) marks with the target
    frame[5:8, 5:8] = 200  # the bright core: 0.6 of the contrast is 144
    cal = Calibration(temperature=1.0, threshold=0.5, min_peak=0.0, refine=0.6)
    kw = {"geometry": "tile", "overlap": 8, "band_pixels": band_pixels}
    refined = Predictor(CalibratedEcho(cal), "cpu", **kw).predict_frame(frame).mask
    assert refined.sum() == 9 and refined[5:8, 5:8].all()
    unrefined = Predictor(CalibratedEcho(cal), "cpu", refine=0.0, **kw).predict_frame(frame).mask
    assert unrefined.sum() == 25
    with pytest.raises(ValueError, match="refine"):
        Predictor(CalibratedEcho(cal), "cpu", refine=1.5)
