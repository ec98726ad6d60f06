import os
import pickle

import pytest
import torch

from napari_irsam.model import (
    IRSAM_ONLY_KEYS,
    CheckpointError,
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


def test_attention_bias_is_not_stale_after_loading(official_dict, tmp_path):
    """spec §8.1: a model put in eval() before loading must use the loaded biases."""
    torch.save(official_dict, tmp_path / "official.pth")
    m = build_irsam("release")  # eval() already called
    torch.manual_seed(2)
    x = torch.rand(1, 3, 512, 512) * 255
    load_checkpoint(m, tmp_path / "official.pth")
    with torch.inference_mode():
        after_load = m(x)[0]
        fresh = build_irsam("release")
        fresh.load_state_dict(official_dict)
        fresh.train()
        fresh.eval()
        reference = fresh(x)[0]
    torch.testing.assert_close(after_load, reference)


def test_own_checkpoint_round_trip_with_metadata(tmp_path, tiny_config):
    torch.manual_seed(0)
    m = build_irsam(tiny_config)
    with torch.no_grad():
        m.image_encoder.wpmd["1"].gamma.fill_(0.3)
    path = tmp_path / "ckpt" / "model.pt"
    sha = save_checkpoint(m, path, metadata={"epoch": 3, "data_sha256": "abc"})
    assert sha == file_sha256(path)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    m2 = build_irsam(checkpoint=path)  # config comes from the checkpoint
    assert m2.config == m.config
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    report = load_checkpoint(build_irsam(tiny_config), path)
    assert report.kind == "napari-irsam" and report.metadata["epoch"] == 3 and report.sha256 == sha


def test_half_checkpoint_is_smaller_and_close(tmp_path, tiny_config):
    torch.manual_seed(0)
    m = build_irsam(tiny_config)
    save_checkpoint(m, tmp_path / "f32.pt")
    save_checkpoint(m, tmp_path / "f16.pt", half=True)
    assert os.path.getsize(tmp_path / "f16.pt") < 0.6 * os.path.getsize(tmp_path / "f32.pt")
    m16 = build_irsam(checkpoint=tmp_path / "f16.pt")
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(m16(x)[0], m(x)[0], rtol=0.05, atol=0.05)


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
