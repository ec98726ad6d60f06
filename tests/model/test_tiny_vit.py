import itertools

import pytest
import torch

from napari_irsam.model.tiny_vit import TinyViT, WindowAttention, bias_index


def test_stage_shapes_match_spec(release_run):
    s = release_run["shapes"]
    assert s["patch_embed"] == (1, 64, 256, 256)
    assert s["layers.0"] == (1, 128 * 128, 128)
    assert s["layers.1"] == (1, 64 * 64, 160)
    assert s["layers.2"] == (1, 64 * 64, 320)  # stride-1 merge 160 → 320
    assert s["layers.3"] == (1, 64 * 64, 320)
    assert s["neck"] == (1, 256, 64, 64)
    out = release_run["out"]
    assert tuple(out.embedding.shape) == (1, 256, 64, 64)
    assert tuple(out.interm.shape) == (1, 160, 64, 64)


def _first_appearance_index(window: int) -> torch.Tensor:
    """The enumeration the spec describes: offsets numbered in order of first appearance."""
    points = list(itertools.product(range(window), range(window)))
    offsets: dict[tuple[int, int], int] = {}
    idxs = []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            if off not in offsets:
                offsets[off] = len(offsets)
            idxs.append(offsets[off])
    return torch.tensor(idxs).view(len(points), len(points))


@pytest.mark.parametrize("window", [7, 14])
def test_bias_index_closed_form_equals_enumeration(window):
    assert torch.equal(bias_index(window), _first_appearance_index(window))
    assert int(bias_index(window).max()) == window * window - 1


def test_qkv_layout_is_interleaved_per_head():
    torch.manual_seed(0)
    dim, heads, w = 64, 2, 3
    attn = WindowAttention(dim, heads, w).eval()
    with torch.no_grad():
        attn.attention_biases.normal_()
    x = torch.randn(2, w * w, dim)
    kd = dim // heads
    xn = attn.norm(x)
    qkv = attn.qkv(xn)  # (B, N, 3·dim): per head [q | k | v]
    outs = []
    for h in range(heads):
        chunk = qkv[..., h * 3 * kd : (h + 1) * 3 * kd]
        q, k, v = chunk[..., :kd], chunk[..., kd : 2 * kd], chunk[..., 2 * kd :]
        bias = attn.attention_biases[h][bias_index(w)]
        a = (q @ k.transpose(-1, -2) / kd**0.5 + bias).softmax(-1)
        outs.append(a @ v)
    expected = attn.proj(torch.cat(outs, -1))
    torch.testing.assert_close(attn(x), expected)


def test_native_resolution_grid():
    torch.manual_seed(0)
    enc = TinyViT().eval()
    with torch.no_grad():
        emb, interm = enc(torch.randn(1, 3, 256, 192))
    assert tuple(emb.shape) == (1, 256, 16, 12)
    assert tuple(interm.shape) == (1, 16, 12, 160)


def test_parity_with_mobilesam_tinyvit():
    """Same random weights in MobileSAM's own TinyViT (Apache-2.0 package) → identical output."""
    ref_mod = pytest.importorskip("mobilesam_lite.mobile_sam.modeling.tiny_vit_sam")
    ref = ref_mod.TinyViT(
        img_size=1024,
        in_chans=3,
        num_classes=1000,
        embed_dims=[64, 128, 160, 320],
        depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10],
        window_sizes=[7, 7, 14, 7],
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )
    ours = TinyViT()
    g = torch.Generator().manual_seed(3)
    sd = {}
    for k, v in ref.state_dict().items():
        if not v.is_floating_point():
            sd[k] = v
        elif k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(v.shape, generator=g) * 0.1
    ref.load_state_dict(sd)
    ours.load_state_dict(sd, strict=True)
    ref.train()
    ref.eval()  # rebuilds MobileSAM's eval-time bias cache after loading
    ours.eval()
    x = torch.randn(1, 3, 1024, 1024, generator=g)
    with torch.no_grad():
        expected = ref(x)
        got, _ = ours(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
