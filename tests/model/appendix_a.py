"""The release's state-dict layout, expanded from the collapsed table of the spec (Appendix A).

Written independently of the model code so that key/shape compatibility is checked against the
spec rather than against ourselves.
"""

from __future__ import annotations


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def _conv_bn(prefix: str, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.c.weight": shape, **_bn(f"{prefix}.bn", shape[0])}


def _ln(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def _lin(prefix: str, out: int, inp: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (out, inp), f"{prefix}.bias": (out,)}


def _mlp3(prefix: str, out: int) -> dict[str, tuple[int, ...]]:
    return {
        **_lin(f"{prefix}.layers.0", 256, 256),
        **_lin(f"{prefix}.layers.1", 256, 256),
        **_lin(f"{prefix}.layers.2", out, 256),
    }


def _convt(prefix: str, cin: int, cout: int, k: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (cin, cout, k, k), f"{prefix}.bias": (cout,)}


def appendix_a() -> dict[str, tuple[int, ...]]:
    """key → shape for all 465 entries of the released IRSAM state dict."""
    k: dict[str, tuple[int, ...]] = {}
    e = "image_encoder"
    k |= _conv_bn(f"{e}.patch_embed.seq.0", (32, 3, 3, 3))
    k |= _conv_bn(f"{e}.patch_embed.seq.2", (64, 32, 3, 3))
    for i in (0, 1):
        b = f"{e}.layers.0.blocks.{i}"
        k |= _conv_bn(f"{b}.conv1", (256, 64, 1, 1))
        k |= _conv_bn(f"{b}.conv2", (256, 1, 3, 3))
        k |= _conv_bn(f"{b}.conv3", (64, 256, 1, 1))
    for s, cin, cout in ((0, 64, 128), (1, 128, 160), (2, 160, 320)):
        d = f"{e}.layers.{s}.downsample"
        k |= _conv_bn(f"{d}.conv1", (cout, cin, 1, 1))
        k |= _conv_bn(f"{d}.conv2", (cout, 1, 3, 3))
        k |= _conv_bn(f"{d}.conv3", (cout, cout, 1, 1))
    for s, dim, heads, win, blocks in ((1, 128, 4, 7, 2), (2, 160, 5, 14, 6), (3, 320, 10, 7, 2)):
        for i in range(blocks):
            b = f"{e}.layers.{s}.blocks.{i}"
            k[f"{b}.attn.attention_biases"] = (heads, win * win)
            k |= _ln(f"{b}.attn.norm", dim)
            k |= _lin(f"{b}.attn.qkv", 3 * dim, dim)
            k |= _lin(f"{b}.attn.proj", dim, dim)
            k |= _ln(f"{b}.mlp.norm", dim)
            k |= _lin(f"{b}.mlp.fc1", 4 * dim, dim)
            k |= _lin(f"{b}.mlp.fc2", dim, 4 * dim)
            k |= _conv_bn(f"{b}.local_conv", (dim, 1, 3, 3))
    k |= _ln(f"{e}.norm_head", 320)
    k |= _lin(f"{e}.head", 1000, 320)
    k[f"{e}.neck.0.weight"] = (256, 320, 1, 1)
    k |= _ln(f"{e}.neck.1", 256)
    k[f"{e}.neck.2.weight"] = (256, 256, 3, 3)
    k |= _ln(f"{e}.neck.3", 256)

    p = "prompt_encoder"
    k[f"{p}.pe_layer.positional_encoding_gaussian_matrix"] = (2, 128)
    k[f"{p}.pe_layer_2.positional_encoding_gaussian_matrix"] = (2, 32)
    for i in range(4):
        k[f"{p}.point_embeddings.{i}.weight"] = (1, 256)
    k[f"{p}.not_a_point_embed.weight"] = (1, 256)
    k[f"{p}.mask_downscaling.0.weight"] = (4, 1, 2, 2)
    k[f"{p}.mask_downscaling.0.bias"] = (4,)
    k |= _ln(f"{p}.mask_downscaling.1", 4)
    k[f"{p}.mask_downscaling.3.weight"] = (16, 4, 2, 2)
    k[f"{p}.mask_downscaling.3.bias"] = (16,)
    k |= _ln(f"{p}.mask_downscaling.4", 16)
    k[f"{p}.mask_downscaling.6.weight"] = (256, 16, 1, 1)
    k[f"{p}.mask_downscaling.6.bias"] = (256,)
    k[f"{p}.no_mask_embed.weight"] = (1, 256)

    m = "mask_decoder"
    t = f"{m}.transformer"
    for i in (0, 1):
        layer = f"{t}.layers.{i}"
        for proj in "qkv":
            k |= _lin(f"{layer}.self_attn.{proj}_proj", 256, 256)
        k |= _lin(f"{layer}.self_attn.out_proj", 256, 256)
        for n in range(1, 5):
            k |= _ln(f"{layer}.norm{n}", 256)
        for att in ("cross_attn_token_to_image", "cross_attn_image_to_token"):
            for proj in "qkv":
                k |= _lin(f"{layer}.{att}.{proj}_proj", 128, 256)
            k |= _lin(f"{layer}.{att}.out_proj", 256, 128)
        k |= _lin(f"{layer}.mlp.lin1", 2048, 256)
        k |= _lin(f"{layer}.mlp.lin2", 256, 2048)
    for proj in "qkv":
        k |= _lin(f"{t}.final_attn_token_to_image.{proj}_proj", 128, 256)
    k |= _lin(f"{t}.final_attn_token_to_image.out_proj", 256, 128)
    k |= _ln(f"{t}.norm_final_attn", 256)
    k[f"{m}.iou_token.weight"] = (1, 256)
    k[f"{m}.mask_tokens.weight"] = (4, 256)
    k |= _convt(f"{m}.output_upscaling.0", 256, 64, 2)
    k |= _ln(f"{m}.output_upscaling.1", 64)
    k |= _convt(f"{m}.output_upscaling.3", 64, 32, 2)
    for i in range(4):
        k |= _mlp3(f"{m}.output_hypernetworks_mlps.{i}", 32)
    k |= _mlp3(f"{m}.iou_prediction_head", 4)
    # IRSAM-only
    k[f"{m}.edge_token.weight"] = (1, 256)
    k |= _mlp3(f"{m}.edge_mlp", 32)
    k |= _convt(f"{m}.compress_vit_feat.0", 160, 256, 2)
    k |= _ln(f"{m}.compress_vit_feat.1", 256)
    k |= _convt(f"{m}.compress_vit_feat.3", 256, 32, 2)
    k |= _convt(f"{m}.embedding_encoder.0", 256, 64, 2)
    k |= _ln(f"{m}.embedding_encoder.1", 64)
    k |= _convt(f"{m}.embedding_encoder.3", 64, 32, 2)
    k |= _convt(f"{m}.embedding_maskfeature.0", 32, 64, 3)
    k |= _ln(f"{m}.embedding_maskfeature.1", 64)
    k |= _convt(f"{m}.embedding_maskfeature.3", 64, 32, 3)
    return k


#: The 26 keys mobile_sam.pt lacks (spec §5.2), written out independently.
MOBILE_SAM_MISSING = (
    {
        "mask_decoder.edge_token.weight",
        "prompt_encoder.pe_layer_2.positional_encoding_gaussian_matrix",
    }
    | {f"mask_decoder.edge_mlp.layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    | {
        f"mask_decoder.{m}.{i}.{p}"
        for m in ("compress_vit_feat", "embedding_encoder", "embedding_maskfeature")
        for i in (0, 1, 3)
        for p in ("weight", "bias")
    }
)
