import os
import pickle

import pytest
import torch

from napari_irsam.model import (
    IRSAM_ONLY_KEYS,
    CheckpointError,
    available_devices,
    build_irsam,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from napari_irsam.model.checkpoint import file_sha256

from .appendix_a import MOBILE_SAM_MISSING, appendix_a


def _random_dict(keys: dict, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in keys.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.05
    return sd


@pytest.fixture(scope="module")
def official_dict():
    return _random_dict(appendix_a())


def test_official_state_dict_loads_strictly(release_model, official_dict):
    m = build_irsam("release")
    report = load_checkpoint(m, official_dict, strict=True)
    assert report.kind == "irsam" and report.missing == [] and report.unexpected == []
    for k, v in m.state_dict().items():
        assert torch.equal(v, official_dict[k]), k


def test_mobile_sam_dict_loads_with_exactly_irsam_keys_missing(official_dict):
    assert IRSAM_ONLY_KEYS == MOBILE_SAM_MISSING
    mobile = {k: v for k, v in official_dict.items() if k not in MOBILE_SAM_MISSING}
    assert len(mobile) == 465 - 26
    report = load_checkpoint(build_irsam("release"), mobile)
    assert report.kind == "mobile_sam"
    assert set(report.missing) == MOBILE_SAM_MISSING
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(build_irsam("release"), mobile, strict=True)


def test_other_missing_or_unexpected_keys_are_named(official_dict):
    broken = dict(official_dict)
    del broken["image_encoder.neck.0.weight"]
    with pytest.raises(CheckpointError, match=r"missing image_encoder\.neck\.0\.weight"):
        load_checkpoint(build_irsam("release"), broken)
    extra = dict(official_dict, **{"image_encoder.wpmd.9.kappa": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"unexpected image_encoder\.wpmd\.9\.kappa"):
        load_checkpoint(build_irsam("release"), extra)
    wrong = dict(official_dict, **{"mask_decoder.iou_token.weight": torch.zeros(2, 256)})
    with pytest.raises(CheckpointError, match="wrong shapes for mask_decoder.iou_token.weight"):
        load_checkpoint(build_irsam("release"), wrong)
    report = load_checkpoint(build_irsam("release"), broken, strict=False)
    assert report.kind == "partial" and report.missing == ["image_encoder.neck.0.weight"]


def test_paper_model_accepts_release_and_mobile_sam_dicts(official_dict):
    m = build_irsam("paper")
    assert load_checkpoint(m, official_dict).kind == "irsam-without-wpmd"
    mobile = {k: v for k, v in official_dict.items() if k not in MOBILE_SAM_MISSING}
    report = load_checkpoint(build_irsam("paper"), mobile)
    assert report.kind == "mobile_sam"
    assert all(
        k in MOBILE_SAM_MISSING or k.startswith("image_encoder.wpmd.") for k in report.missing
    )


def test_loaded_attention_biases_take_effect_in_eval_mode(tiny_config):
    """spec §8.1: the official TinyViT caches its attention biases when ``eval()`` is called, so
    weights loaded into a model already in eval mode would be ignored. Ours indexes them in every
    forward; this guards against such a cache coming back. Only the attention biases change
    between the two loads, and by enough to move the output."""
    torch.manual_seed(0)
    m = build_irsam(tiny_config)  # eval() already called
    sd = m.state_dict()
    bias_keys = [k for k in sd if k.endswith("attention_biases")]
    assert bias_keys and all(not sd[k].any() for k in bias_keys)  # built as zeros
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.inference_mode():
        before = m(x)[0]
    g = torch.Generator().manual_seed(1)
    changed = {**sd, **{k: torch.randn(sd[k].shape, generator=g) * 3 for k in bias_keys}}
    load_checkpoint(m, changed, strict=True)
    fresh = build_irsam(tiny_config)
    fresh.load_state_dict(changed)
    with torch.inference_mode():
        after, reference = m(x)[0], fresh(x)[0]
    spread = float(before.std())
    assert float((after - before).abs().max()) > 0.1 * spread  # the biases matter here
    torch.testing.assert_close(after, reference, rtol=0, atol=1e-4 * spread)


def test_own_checkpoint_round_trip_with_metadata(tmp_path, tiny_config):
    torch.manual_seed(0)
    m = build_irsam(tiny_config)
    with torch.no_grad():
        m.image_encoder.wpmd["1"].gamma.fill_(0.3)
    path = tmp_path / "ckpt" / "model.pt"
    sha = save_checkpoint(m, path, metadata={"epoch": 3, "data_sha256": "abc"})
    assert sha == file_sha256(path)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left
    m2 = build_irsam(checkpoint=path)  # config comes from the checkpoint
    assert m2.config == m.config
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    report = load_checkpoint(build_irsam(tiny_config), path)
    assert report.kind == "napari-irsam" and report.metadata["epoch"] == 3 and report.sha256 == sha


#: largest logit error of fp16 weights, as a fraction of the logits' standard deviation over the
#: image. Measured on this tiny model: max error 3.9e-4 for a standard deviation of 0.056 (0.7 %);
#: the issue-14 tolerance (0.05 absolute) was 90 % of that spread and passed anything
HALF_TOLERANCE = 0.02


def test_half_checkpoint_is_smaller_and_close(tmp_path, tiny_config):
    """fp16 weights move the logits by a small fraction of their spread over the image; the
    tolerance is relative to that spread (the logits of an untrained model span little), and
    the same check fails for a real fault such as one layer's weights zeroed."""
    torch.manual_seed(0)
    m = build_irsam(tiny_config)
    save_checkpoint(m, tmp_path / "f32.pt")
    save_checkpoint(m, tmp_path / "f16.pt", half=True)
    assert os.path.getsize(tmp_path / "f16.pt") < 0.6 * os.path.getsize(tmp_path / "f32.pt")
    m16 = build_irsam(checkpoint=tmp_path / "f16.pt")
    broken = build_irsam(checkpoint=tmp_path / "f32.pt")
    with torch.no_grad():
        broken.mask_decoder.output_upscaling[0].weight.zero_()
    for seed in range(3):
        torch.manual_seed(seed)
        x = torch.rand(1, 3, 64, 64) * 255
        with torch.no_grad():
            ref, half, bad = m(x)[0], m16(x)[0], broken(x)[0]
        spread = float(ref.std())
        assert spread > 0
        assert float((half - ref).abs().max()) < HALF_TOLERANCE * spread
        assert float((bad - ref).abs().max()) > 10 * HALF_TOLERANCE * spread


@pytest.mark.parametrize("device", available_devices())
def test_half_checkpoint_loads_onto_a_device_with_buffers_kept_fp32(tmp_path, tiny_config, device):
    """In the file only floating *parameters* are fp16; BatchNorm statistics and the prompt
    encoder's positional-encoding matrix stay fp32 and bit-exact. Loaded onto a device, every
    tensor is fp32 on that device and the buffers equal the originals exactly."""
    torch.manual_seed(0)
    m = build_irsam(tiny_config)
    with torch.no_grad():  # non-trivial BatchNorm statistics, not representable in fp16
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 1).add_(1 / 3)
                mod.running_var.uniform_(0.5, 2).add_(1 / 3)
    save_checkpoint(m, tmp_path / "f16.pt", half=True)
    stored = read_checkpoint(tmp_path / "f16.pt").state_dict
    params = {k for k, _ in m.named_parameters()}
    buffers = {k for k in stored if k not in params and stored[k].is_floating_point()}
    assert any(k.endswith("running_var") for k in buffers)
    assert "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix" in buffers
    assert all(stored[k].dtype == torch.float16 for k in params)
    own = m.state_dict()
    for k in buffers:
        assert stored[k].dtype == torch.float32 and torch.equal(stored[k], own[k]), k

    dev = torch.device(device)
    loaded = build_irsam(checkpoint=tmp_path / "f16.pt").to(dev)
    into = build_irsam(tiny_config).to(dev)  # a model already on the device, loaded in place
    load_checkpoint(into, tmp_path / "f16.pt")
    for model in (loaded, into):
        sd = model.state_dict()
        for k, v in sd.items():
            assert v.device.type == dev.type, k
            if v.is_floating_point():
                assert v.dtype == torch.float32, k
        for k in buffers:
            assert torch.equal(sd[k].cpu(), own[k]), k
        for k in params:  # parameters: fp32 holding the fp16-rounded values
            assert torch.equal(sd[k].cpu(), stored[k].float()), k


def test_corrupted_weights_detected(tmp_path, tiny_config):
    m = build_irsam(tiny_config)
    save_checkpoint(m, tmp_path / "m.pt")
    obj = torch.load(tmp_path / "m.pt", weights_only=True)
    obj["state_dict"]["mask_decoder.iou_token.weight"] += 1
    torch.save(obj, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="corrupted"):
        read_checkpoint(tmp_path / "bad.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    torch.save({"x": _Evil()}, tmp_path / "evil2.pt")
    for p in (path, tmp_path / "evil2.pt"):
        with pytest.raises(CheckpointError, match="Refused to load .*could run code"):
            load_checkpoint(build_irsam(), p)
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_bad_files_give_one_sentence(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a plain PyTorch weights file"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"a": 1}, tmp_path / "nodict.pt")
    with pytest.raises(CheckpointError, match="state dict of tensors"):
        read_checkpoint(tmp_path / "nodict.pt")
    with pytest.raises(CheckpointError, match="path or a state dict"):
        read_checkpoint(42)


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_always_give_checkpoint_error(tmp_path, seed):
    import numpy as np

    data = np.random.default_rng(seed).integers(0, 256, 64 + 97 * seed, dtype=np.uint8).tobytes()
    if seed % 2:  # a zip header makes torch try its archive reader
        data = b"PK\x03\x04" + data
    (tmp_path / "junk.pt").write_bytes(data)
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "junk.pt")
