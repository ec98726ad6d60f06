import pytest
import torch

from napari_irsam.model import CONFIGS, IRSAMConfig, build_irsam, get_config

# spec §4, measured on the official model
SPEC_COUNTS = {
    "image_encoder.patch_embed": 19_488,
    "image_encoder.layers.0": 98_944,
    "image_encoder.layers.1": 448_232,
    "image_encoder.layers.2": 2_030_520,
    "image_encoder.layers.3": 2_473_940,
    "image_encoder.neck": 672_768,
    "image_encoder": 6_065_532,
    "prompt_encoder": 6_220,
    "mask_decoder.transformer": 3_291_264,
    "mask_decoder.output_hypernetworks_mlps": 559_232,
    "mask_decoder.iou_prediction_head": 132_612,
    "mask_decoder.edge_mlp": 139_808,
    "mask_decoder.compress_vit_feat": 197_408,
    "mask_decoder.embedding_encoder": 73_952,
    "mask_decoder.embedding_maskfeature": 37_088,
    "mask_decoder": 4_506_852,
}


def test_release_parameter_count(release_model):
    assert sum(p.numel() for p in release_model.parameters()) == 10_578_604
    modules = dict(release_model.named_modules())
    for name, count in SPEC_COUNTS.items():
        assert sum(p.numel() for p in modules[name].parameters()) == count, name


def test_release_state_dict_size(release_model):
    sd = release_model.state_dict()
    assert len(sd) == 465
    assert sum(k.startswith("image_encoder.") for k in sd) == 302
    assert sum(k.startswith("prompt_encoder.") for k in sd) == 18
    assert sum(k.startswith("mask_decoder.") for k in sd) == 145
    # non-persistent buffers stay out of checkpoints (spec §5.1)
    assert not any(k.endswith(("pixel_mean", "pixel_std", "attention_bias_idxs")) for k in sd)


def test_release_forward_contract(release_run):
    logits, edges = release_run["logits"], release_run["edges"]
    assert logits.shape == (1, 1, 512, 512) and edges.shape == (1, 1, 512, 512)
    assert logits.dtype == torch.float32
    assert 0.0 < float(edges.min()) and float(edges.max()) < 1.0
    # not degenerate: finite, and both maps vary over the image (a constant or NaN output, e.g. a
    # broken normalisation or a zeroed decoder, satisfies every line above)
    assert torch.isfinite(logits).all() and torch.isfinite(edges).all()
    assert float(logits.std()) > 1e-3 and float(edges.std()) > 1e-4


def test_release_forward_follows_official_geometry(release_model):
    """Normalise → nearest 2× → encoder → decoder (256²) → bilinear 512²."""
    import torch.nn.functional as F

    m = release_model
    torch.manual_seed(5)
    x = torch.randint(0, 256, (1, 3, 512, 512)).float()
    hyper: list[torch.Tensor] = []  # the mask token's hypernetwork weights, (B, 32)
    hook = m.mask_decoder.output_hypernetworks_mlps[0].register_forward_hook(
        lambda mod, inp, out: hyper.append(out)
    )
    try:
        with torch.inference_mode():
            logits, edges = m(x)
            xn = F.interpolate((x - m.pixel_mean) / m.pixel_std, size=(1024, 1024), mode="nearest")
            emb, interm = m.image_encoder(xn)
            pe = m.prompt_encoder.get_dense_pe()
            _, dense = m.prompt_encoder(points=None, boxes=None, masks=None)
            dec = m.mask_decoder.decode(emb, interm, pe, dense)
    finally:
        hook.remove()
    assert dec.mask_logits.shape == (1, 1, 256, 256)
    ref = F.interpolate(dec.mask_logits, size=(512, 512), mode="bilinear", align_corners=False)
    torch.testing.assert_close(logits, ref)
    # edge gating, recomputed from its parts: M = (w_mask · upscaled) · (1 + σ(edge))
    ungated = (hyper[-1].unsqueeze(1) @ dec.upscaled.flatten(2)).view(1, 1, 256, 256)
    torch.testing.assert_close(dec.mask_logits, ungated * (1 + dec.edges))
    # and the gate is not a no-op here: it changes the logits by more than the tolerance above
    assert float((dec.mask_logits - ungated).abs().max()) > 1e-3


def test_batch_equals_per_image(tiny_config):
    torch.manual_seed(0)
    m = build_irsam(tiny_config)
    x = torch.rand(3, 3, 64, 64) * 255
    with torch.no_grad():
        batched = m(x)[0]
        single = torch.cat([m(x[i : i + 1])[0] for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-4)


def test_fast_mode_runs_encoder_at_native_resolution():
    cfg = get_config("fast")
    assert cfg.encoder_scale == 1 and cfg.mode == "native-x1"
    torch.manual_seed(0)
    m = build_irsam(IRSAMConfig(**{**cfg.to_dict(), "image_size": 128}))
    with torch.no_grad():
        out = m.forward_all(torch.rand(1, 3, 128, 128) * 255)
    assert out.embedding.shape[-2:] == (8, 8)  # 128 / 16
    assert out.mask_logits.shape == (1, 1, 128, 128)


def test_configs_and_errors():
    assert set(CONFIGS) >= {"release", "paper", "fast"}
    assert get_config("paper").gad_mode == "both" and get_config("paper").wpmd_levels == ("0", "1")
    assert IRSAMConfig.from_dict(get_config("paper").to_dict()) == get_config("paper")
    with pytest.raises(ValueError, match="Unknown IRSAM configuration"):
        get_config("huge")
    with pytest.raises(ValueError, match="Unknown model configuration fields"):
        IRSAMConfig.from_dict({"name": "x", "bogus": 1})
    m = build_irsam(IRSAMConfig(image_size=64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        m(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="multiples of 16"):
        m(torch.zeros(1, 3, 60, 60))
