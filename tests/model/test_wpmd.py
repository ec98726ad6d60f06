import pytest
import torch

from napari_irsam.model import build_irsam
from napari_irsam.model.wpmd import WPMD, haar_detail_energy, pm_step


def test_haar_energy_zero_on_flat_and_high_on_step():
    flat = torch.full((1, 2, 8, 8), 3.0)
    assert haar_detail_energy(flat).max() < 1e-2
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0
    s = haar_detail_energy(step)[0, 0]
    assert s[:, 3].min() > 0.9  # the column pair straddling the step
    assert s[:, 0].max() < 1e-2


def test_pm_step_conserves_mean_and_smooths_noise():
    torch.manual_seed(0)
    u = torch.randn(1, 1, 32, 32)
    g = torch.ones_like(u)
    v = pm_step(u, g, 0.25)
    torch.testing.assert_close(v.mean(), u.mean(), atol=1e-5, rtol=0)
    assert v.var() < u.var()


def test_conductance_preserves_edges_more_than_flat_regions():
    block = WPMD(1, steps=3, lam=0.25, k_init=0.1)
    u = torch.zeros(1, 1, 16, 16)
    u[..., 8:] = 1.0
    u = u + 0.01 * torch.randn_like(u)
    diffused, _ = block.diffuse(u)
    # the step edge survives (contrast stays > 0.8) while noise is smoothed
    assert (diffused[..., 12:].mean() - diffused[..., :4].mean()) > 0.8


def test_zero_init_is_identity_and_maps_exposed():
    block = WPMD(8)
    x = torch.randn(2, 8, 12, 10)
    y, maps = block(x)
    assert torch.equal(y, x)
    assert maps["edge"].shape == (2, 1, 12, 10) and maps["diffused"].shape == (2, 1, 12, 10)
    assert (maps["edge"] > 0).all()


def test_invalid_parameters_rejected():
    with pytest.raises(ValueError, match="0.25"):
        WPMD(4, lam=0.5)
    with pytest.raises(ValueError, match="step"):
        WPMD(4, steps=0)


def test_paper_from_release_weights_gives_release_encoder_features(tiny_config):
    from dataclasses import replace

    torch.manual_seed(0)
    release = build_irsam(replace(tiny_config, wpmd_levels=(), gad_mode="deep"))
    paper = build_irsam(tiny_config, checkpoint=release.state_dict())
    x = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        a, b = release.forward_all(x), paper.forward_all(x)
    assert torch.equal(a.embedding, b.embedding)
    assert torch.equal(a.interm, b.interm)
    assert set(b.wpmd) == {"0", "1"}
    # once trained (non-zero gamma), WPMD changes the features
    with torch.no_grad():
        paper.image_encoder.wpmd["0"].gamma.fill_(0.5)
        c = paper.forward_all(x)
    assert not torch.allclose(c.embedding, a.embedding)
