"""The bundled ``default`` checkpoint (issue 6): present, verified, and it finds a clear target."""

import json

import numpy as np
import torch
from scipy import ndimage

from napari_irsam.data.synthetic import make_scene
from napari_irsam.inference import Predictor
from napari_irsam.model import weights as W
from napari_irsam.model.checkpoint import file_sha256


def test_bundled_default_is_registered_and_its_sha256_matches():
    entries = json.loads((W.BUNDLED_DIR / "registry.json").read_text())
    entry = next(e for e in entries if e["name"] == "default")
    path = W.bundled_default()
    assert path is not None and path.name == entry["filename"]
    assert file_sha256(path) == entry["sha256"]
    assert W.resolve_weights("default") == path  # resolve_weights re-checks the sha256
    assert path.stat().st_size < 25e6  # fp16 parameters: about 21 MB


def test_default_model_loads_offline_and_is_what_names_resolve_to():
    model, info = W.load_model()
    assert info.model_id == "default" and info.kind == "napari-irsam"
    assert not model.training and model.config.wpmd_levels and model.config.gad_mode == "both"
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp16 file, fp32 model


def test_default_records_its_data_and_never_a_test_split():
    from napari_irsam.model import read_checkpoint

    meta = read_checkpoint(W.bundled_default()).metadata
    sources = " ".join(d["data"] for d in meta["data_provenance"])
    assert "SIRST" in sources and "NUDT-SIRST" in sources and "synthetic" in sources
    splits = meta["train_config"]["split"]
    assert splits and all("trainval" in s and "test" not in s for s in splits)
    assert meta["val_names"] and meta["val"]["effort"]["gt_targets"] > 0


def test_default_is_calibrated_on_its_held_out_names():
    """The bundled default carries the calibration ``napari-irsam calibrate`` fitted on its
    held-out trainval names; the Predictor applies it unless told otherwise."""
    model, _ = W.load_model()
    cal = model.calibration
    assert cal is not None and "held-out" in cal.fitted_on and "140 frames" in cal.fitted_on
    assert cal.temperature > 1  # IRSAM's logits are over-confident
    assert 0.5 <= cal.threshold < cal.min_peak < 1
    p = Predictor(model, device="cpu", maps=())
    assert (p.temperature, p.threshold, p.min_peak) == (
        cal.temperature,
        cal.threshold,
        cal.min_peak,
    )


def test_default_model_finds_clear_targets_where_they_are():
    """Generated frames (not what it was trained on): one clear target (SNR 10–12, 9–60 px) on
    sky, cloud and ground clutter, 5 seeds each. Measured (issue 10): v2 and v3 found 14 of 15
    within 3 px; v4 and v5 (more real-data training; fewer corrections on the real test splits)
    12 of 15 — both give sky seeds 3 and 11 and ground seed 11 a peak probability ≤ 0.01 — with
    4 (v4) and 7 (v5) false detections over the 15 frames, all on ground clutter. v5 with its
    calibration (threshold 0.6, least target peak 0.8, as the Predictor runs it by default): 12 of
    15, 3 false detections. The bounds guard against a broken default (v1 found 5 of 11 real
    targets). (The generator's sea glint gives several detections per frame: a known weakness,
    not asserted.)"""
    model, _ = W.load_model("default")
    predictor = Predictor(model, device="cpu", maps=())
    hits, frames, false = 0, 0, 0
    for background in ("sky", "cloud", "ground"):
        for seed in (3, 5, 7, 11, 42):
            scene = make_scene(
                (256, 256),
                n_targets=1,
                seed=seed,
                background=background,
                snr_range=(10.0, 12.0),
                size_range=(9, 60),
                point_fraction=0.0,
            )
            pred = predictor.predict_frame(scene.image)
            labels, n = ndimage.label(pred.mask)
            assert n <= 4, f"{background} seed {seed}: {n} detections on a frame with one target"
            gt_r, gt_c = ndimage.center_of_mass(scene.labels > 0)
            centres = ndimage.center_of_mass(pred.mask, labels, range(1, n + 1)) if n else []
            near = [np.hypot(r - gt_r, c - gt_c) <= 3 for r, c in centres]
            hits += any(near)
            false += len(near) - sum(near)
            frames += 1
    assert hits >= 12, f"found {hits} of {frames} clear targets"
    assert false <= 5, f"{false} false detections on {frames} frames of one target each"
