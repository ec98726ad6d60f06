import pytest
import torch

from napari_irsam.model import CheckpointError, IRSAMConfig, build_irsam, save_checkpoint
from napari_irsam.model import weights as W


def test_registry_knows_mobile_sam_with_the_spec_checksum():
    entry = W.registry()["mobile_sam"]
    assert entry.sha256 == "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"
    assert entry.url and entry.url.endswith("mobile_sam.pt")


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path / "cache"))
    assert W.cache_dir() == tmp_path / "cache"


def test_offline_message_says_where_to_put_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path))
    with pytest.raises(CheckpointError, match=f"put it at {tmp_path}/mobile_sam.pt"):
        W.resolve_weights("mobile_sam", download=False)

    def no_network(*args, **kwargs):
        raise ConnectionError("offline")

    pooch = pytest.importorskip("pooch")
    monkeypatch.setattr(pooch, "retrieve", no_network)
    with pytest.raises(CheckpointError, match="without internet.*put it at"):
        W.resolve_weights("mobile_sam")


def test_cached_file_with_wrong_checksum_is_rejected(monkeypatch, tmp_path):
    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path))
    (tmp_path / "mobile_sam.pt").write_bytes(b"truncated download")
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        W.resolve_weights("mobile_sam")


def test_unknown_names_and_paths(tmp_path):
    with pytest.raises(CheckpointError, match="neither a checkpoint file nor a known model"):
        W.resolve_weights(str(tmp_path / "missing.pt"))


def test_load_model_from_our_checkpoint(tmp_path):
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0",))
    torch.manual_seed(0)
    sha = save_checkpoint(build_irsam(cfg), tmp_path / "tiny.pt", metadata={"note": "test"})
    model, info = W.load_model(tmp_path / "tiny.pt")
    assert model.config == cfg and not model.training
    assert info.sha256 == sha and info.kind == "napari-irsam" and info.model_id == "tiny.pt"
    assert info.as_metadata()["checkpoint_sha256"] == sha and info.mode == "release"


def test_load_model_plain_state_dict_uses_given_config(tmp_path):
    torch.manual_seed(0)
    torch.save(build_irsam("release").state_dict(), tmp_path / "official.pth")
    model, info = W.load_model(tmp_path / "official.pth", config="paper")
    assert model.config.name == "paper" and info.kind == "irsam-without-wpmd"
