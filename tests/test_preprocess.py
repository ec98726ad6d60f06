import numpy as np
import pytest

from napari_irsam.preprocess import (
    as_frame_stack,
    blend_window,
    percentile_limits,
    plan_tiles,
    render_canvas,
    to_model_range,
)


@pytest.mark.parametrize(
    ("shape", "rgb", "n", "single"),
    [
        ((5, 6), None, 1, True),
        ((3, 5, 6), None, 3, False),
        ((5, 6, 3), None, 1, True),
        ((2, 5, 6, 4), None, 2, False),
        ((5, 6, 3), False, 5, False),
    ],
)
def test_frame_stack_shapes(shape, rgb, n, single):
    stack, was_single = as_frame_stack(np.zeros(shape, np.uint8), rgb=rgb)
    assert stack.shape[0] == n and was_single is single


@pytest.mark.parametrize(
    ("value", "exc", "msg"),
    [
        (np.float32(3.0), ValueError, "0 dimension"),
        (np.zeros(5), ValueError, "1 dimension"),
        (np.zeros((0, 8, 8)), ValueError, "empty"),
        (np.zeros((4, 4), complex), TypeError, "complex"),
        (np.zeros((4, 4), bool), TypeError, "bool"),
        (np.array([[None, 1], [2, 3]]), TypeError, "object"),
        (np.zeros((1, 1)), ValueError, "at least 2×2"),
        (np.zeros((1, 2, 3, 4, 5)), ValueError, "5 dimension"),
    ],
)
def test_bad_input_gives_one_clear_error(value, exc, msg):
    with pytest.raises(exc, match=msg):
        as_frame_stack(value)


def test_uint8_passes_through_and_16bit_is_stretched():
    f8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = to_model_range(f8)
    assert out.shape == (16, 16, 3) and np.array_equal(out[..., 0], f8.astype(np.float32))
    rng = np.random.default_rng(0)
    f16 = (1000 + rng.integers(0, 200, (64, 64))).astype(np.uint16)
    out = to_model_range(f16)
    assert out.min() == 0.0 and out.max() > 250.0  # a narrow 16-bit range fills 0–255


def test_nan_inf_float_frames_are_finite():
    f = np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32)
    f[0, 0], f[1, 1], f[2, 2] = np.nan, np.inf, -np.inf
    out = to_model_range(f)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
    assert percentile_limits(np.full((4, 4), 7.0), 1, 99) == (7.0, 8.0)


def test_rgba_drops_alpha():
    f = np.zeros((4, 4, 4), np.uint8)
    f[..., 3] = 255
    f[..., 0] = 10
    out = to_model_range(f)
    assert out.shape == (4, 4, 3) and out[..., 0].max() == 10 and out[..., 2].max() == 0


def test_plans():
    squash = plan_tiles((300, 200), 512, "squash")
    assert squash.squash and squash.origins == ((0, 0),) and squash.scaled_hw == (512, 512)
    small = plan_tiles((300, 200), 512, "auto", max_upscale=2.0)
    assert (
        small.scaled_hw == (512, 341) and small.canvas_hw == (512, 512) and len(small.origins) == 1
    )
    tiny = plan_tiles((20, 30), 512, "auto", max_upscale=2.0)
    assert tiny.scaled_hw == (40, 60) and tiny.canvas_hw == (512, 512)
    big = plan_tiles((1000, 600), 512, "auto", overlap=64)
    assert big.scaled_hw == (1000, 600) and len(big.origins) == 3 * 2
    ys = sorted({y for y, _ in big.origins})
    assert (
        ys[0] == 0 and ys[-1] == 1000 - 512 and all(b - a <= 512 - 64 for a, b in zip(ys, ys[1:]))
    )
    with pytest.raises(ValueError, match="geometry"):
        plan_tiles((10, 10), 64, "stretch")


def test_canvas_truncates_like_the_release():
    img = np.full((2, 2, 3), 100.7, np.float32)
    canvas = render_canvas(img, plan_tiles((2, 2), 4, "tile"))
    assert canvas.dtype == np.uint8 and canvas.shape == (4, 4, 3) and (canvas == 100).all()


def test_blend_window():
    w = blend_window(64, 16)
    assert w.shape == (64, 64) and w.max() == 1.0 and w[0, 0] < 0.01 and w[32, 32] == 1.0
    assert (blend_window(8, 0) == 1).all()


def test_small_model_inputs_keep_a_sane_tile_count():
    """A model fine-tuned at 64 px with the default 64 px overlap once advanced 1 px per tile
    (192² tiles for a 256² frame, a 'Run IRSAM' that never finished): overlaps are capped at
    half a tile."""
    plan = plan_tiles((256, 256), 64, "tile", overlap=64)
    ys = sorted({y for y, _ in plan.origins})
    assert len(plan.origins) == 7 * 7
    assert ys == list(range(0, 193, 32))
    w = blend_window(64, 64)  # ramps over the overlap actually used (32 px)
    assert w[0, 0] < 0.02 and w[8, 8] < w[16, 16] < w[31, 31] and w[31, 31] > 0.95
    # the 256 px release tiles keep their 64 px overlap
    assert len(plan_tiles((1000, 600), 256, "tile", overlap=64).origins) == 5 * 3
