import numpy as np
import pytest
import torch

from napari_irsam.inference import Predictor
from napari_irsam.model import IRSAMConfig, IRSAMOutput, build_irsam


class PixelEcho(torch.nn.Module):
    """A stand-in model whose logits are (pixel − 100) / 10: shows exactly where each output
    pixel came from, so tiling, padding and rescaling can be checked for alignment."""

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.image_size = size
        self.calls = 0

    def forward_all(self, x: torch.Tensor) -> IRSAMOutput:
        self.calls += 1
        b, _, h, w = x.shape
        logits = (x[:, :1] - 100.0) / 10.0
        feats = x[:, :1].expand(b, 4, h, w) / 255.0 + torch.arange(4.0).view(1, 4, 1, 1)
        edge = torch.full((b, 1, h // 4, w // 4), 0.5)
        return IRSAMOutput(
            logits,
            torch.sigmoid(logits),
            feats,
            feats[:, :3],
            {"0": {"edge": edge, "diffused": edge}},
        )


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_irsam(
        IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0", "1"))
    )


def _expected_prob(frame_uint8):
    return 1.0 / (1.0 + np.exp(-(frame_uint8.astype(np.float64) - 100.0) / 10.0))


@pytest.mark.parametrize("shape", [(20, 12), (32, 32), (75, 50), (100, 130)])
def test_tiling_and_padding_are_pixel_aligned(shape):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, shape).astype(np.uint8)
    pred = Predictor(PixelEcho(32), "cpu", geometry="tile", overlap=8).predict_frame(frame)
    assert pred.prob.shape == shape
    np.testing.assert_allclose(pred.prob, _expected_prob(frame), atol=1e-5)
    assert pred.mask.dtype == bool and np.array_equal(pred.mask, frame > 100)


def test_large_frames_use_overlapping_tiles():
    model = PixelEcho(32)
    frame = np.zeros((100, 70), np.uint8)
    Predictor(model, "cpu", geometry="auto", overlap=8, batch_size=64).predict_frame(frame)
    assert model.calls == 1  # all tiles of the frame went through in one batch
    model2 = PixelEcho(32)
    Predictor(model2, "cpu", geometry="auto", overlap=8, batch_size=1).predict_frame(frame)
    assert model2.calls == 4 * 3  # 100 → 4 rows, 70 → 3 columns of 32² tiles


def test_auto_upscales_small_frames_and_maps_back():
    frame = np.zeros((16, 8), np.uint8)
    frame[4:12, 2:6] = 200
    pred = Predictor(PixelEcho(32), "cpu", geometry="auto", max_upscale=2.0).predict_frame(frame)
    assert pred.prob.shape == (16, 8)
    assert pred.mask[6:10, 3:5].all() and not pred.mask[:2].any()


def test_release_parity_path(release_model):
    """geometry='squash' on a 512² uint8 frame == sigmoid(release forward) exactly."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (512, 512)).astype(np.uint8)
    pred = Predictor(release_model, "cpu", geometry="squash").predict_frame(frame)
    with torch.inference_mode():
        x = torch.from_numpy(frame).float()[None, None].repeat(1, 3, 1, 1)
        logits, edges = release_model(x)
    np.testing.assert_allclose(pred.prob, torch.sigmoid(logits)[0, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(pred.edges, edges[0, 0].numpy(), atol=1e-6)
    assert np.array_equal(pred.mask, (logits > 0)[0, 0].numpy())
    assert pred.wpmd_edges is None  # the release has no WPMD


@pytest.mark.parametrize(
    "frame",
    [
        np.random.default_rng(0).integers(0, 255, (40, 56)).astype(np.uint8),
        np.random.default_rng(0).integers(0, 65535, (40, 56)).astype(np.uint16),
        np.random.default_rng(0).integers(-500, 500, (40, 56)).astype(np.int32),
        np.where(np.eye(40, 56) > 0, np.nan, np.random.default_rng(0).normal(size=(40, 56))).astype(
            np.float32
        ),
        np.random.default_rng(0).integers(0, 255, (40, 56, 3)).astype(np.uint8),
        np.random.default_rng(0).integers(0, 255, (40, 56, 4)).astype(np.uint8),
    ],
    ids=["uint8", "uint16", "int32", "float-nan", "rgb", "rgba"],
)
def test_every_input_kind(tiny_model, frame):
    pred = Predictor(tiny_model, "cpu").predict_frame(frame)
    h, w = frame.shape[:2]
    assert pred.prob.shape == (h, w) and pred.edges.shape == (h, w) and pred.mask.shape == (h, w)
    assert pred.granularity_local.shape == (h, w, 3) and pred.granularity_global.shape == (h, w, 3)
    assert pred.wpmd_edges.shape == (h, w) and pred.wpmd_diffused.shape == (h, w)
    for arr in (pred.prob, pred.edges, pred.granularity_local, pred.wpmd_edges):
        assert np.isfinite(arr).all()
    assert 0 <= pred.granularity_global.min() and pred.granularity_global.max() <= 1


def test_stack_generator_progress_and_cancel(tiny_model):
    stack = np.random.default_rng(0).integers(0, 255, (5, 48, 48)).astype(np.uint8)
    pred = Predictor(tiny_model, "cpu", batch_size=2)
    steps = list(pred.iter_predict(stack))
    assert [s.index for s in steps] == [0, 1, 2, 3, 4] and all(s.total == 5 for s in steps)
    # same frames give the same result whether batched or not
    single = Predictor(tiny_model, "cpu", batch_size=1).predict(stack)
    for a, b in zip(steps, single):
        np.testing.assert_allclose(a.prediction.prob, b.prob, atol=1e-4)
    calls = {"n": 0}

    def stop_after_two():
        calls["n"] += 1
        return calls["n"] > 2

    partial = list(
        Predictor(tiny_model, "cpu", batch_size=1).iter_predict(stack, should_stop=stop_after_two)
    )
    assert [s.index for s in partial] == [0, 1]
    gen = Predictor(tiny_model, "cpu").iter_predict(stack)
    next(gen)
    gen.close()  # a consumer may stop between frames


def test_predictor_argument_errors(tiny_model):
    with pytest.raises(ValueError, match="threshold"):
        Predictor(tiny_model, "cpu", threshold=2.0)
    with pytest.raises(ValueError, match="geometry"):
        Predictor(tiny_model, "cpu", geometry="warp")
    p = Predictor(tiny_model, "cpu")
    with pytest.raises(ValueError, match="one frame"):
        p.predict_frame(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(TypeError, match="real numbers"):
        p.predict(np.zeros((8, 8), complex))


class NativeEcho(PixelEcho):
    """PixelEcho declared as an any-size model (native encoder, tiled PE)."""

    config = IRSAMConfig(name="native-echo", image_size=32, encoder_scale=1, pe_mode="tile")


@pytest.mark.parametrize("shape", [(2, 2), (20, 12), (75, 50), (100, 130)])
def test_any_size_models_see_whole_frames_pixel_aligned(shape):
    frame = np.random.default_rng(2).integers(0, 256, shape).astype(np.uint8)
    model = NativeEcho()
    pred = Predictor(model, "cpu", max_side=256).predict_frame(frame)
    assert model.calls == 1  # one pass over the whole (padded) frame, no upscaling, no tiles
    np.testing.assert_allclose(pred.prob, _expected_prob(frame), atol=1e-5)


def test_any_size_models_tile_beyond_max_side_and_blend_exactly():
    frame = np.random.default_rng(3).integers(0, 256, (150, 90)).astype(np.uint8)
    model = NativeEcho()
    pred = Predictor(model, "cpu", max_side=64, overlap=16, batch_size=1).predict_frame(frame)
    assert model.calls == 3 * 2  # 160 → 3 rows, 96 → 2 columns of 64² tiles
    np.testing.assert_allclose(pred.prob, _expected_prob(frame), atol=1e-5)


def test_stack_of_frames_of_one_size_batches_whole_frames():
    stack = np.random.default_rng(4).integers(0, 256, (5, 40, 40)).astype(np.uint8)
    model = NativeEcho()
    out = Predictor(model, "cpu", batch_size=4).predict(stack)
    assert model.calls == 2 and len(out) == 5  # 4 + 1 whole frames


def test_display_maps_only_when_asked(tiny_model):
    frame = np.random.default_rng(5).integers(0, 256, (48, 40)).astype(np.uint8)
    bare = Predictor(tiny_model, "cpu", maps=()).predict_frame(frame)
    assert bare.granularity_local is None and bare.wpmd_edges is None
    full = Predictor(tiny_model, "cpu").predict_frame(frame)
    assert full.granularity_local.shape == (48, 40, 3) and full.wpmd_edges.shape == (48, 40)
    np.testing.assert_allclose(bare.prob, full.prob, atol=1e-6)
    with pytest.raises(ValueError, match="display maps"):
        Predictor(tiny_model, "cpu", maps=("pca",))


def test_native_fine_model_outputs_full_resolution_logits_for_any_frame():
    torch.manual_seed(0)
    model = build_irsam("native-fine")
    with torch.inference_mode():
        for h, w in ((64, 96), (160, 224)):
            out = model.forward_all(torch.rand(1, 3, h, w) * 255)
            assert out.mask_logits.shape == (1, 1, h, w) and out.edges.shape == (1, 1, h, w)
    # an untrained fine head starts at the prior probability (0.01), not at noise
    assert model.fine_head.out.bias.item() == pytest.approx(np.log(0.01 / 0.99))
