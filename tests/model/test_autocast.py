"""Mixed precision is really on inside the forward when asked for, and off otherwise.

CUDA autocast cannot run without a CUDA device (``torch.autocast("cuda")`` only warns and disables
itself), and these tests must mean something on CPU-only machines. So ``torch.autocast`` is
replaced by a stand-in that records the device type and dtype ``autocast_for`` asks for and then
enters the *CPU* autocast with that same dtype: the model's layers then really compute in
fp16/bf16, and forward hooks on every ``Linear``/``Conv2d`` record the dtype they produced inside
the forward. With a real GPU, ``test_real_cuda_autocast`` checks the same thing on CUDA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from napari_irsam import inference
from napari_irsam.inference import Predictor
from napari_irsam.model import IRSAMConfig, build_irsam
from napari_irsam.model.device import autocast_for

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
REAL_AUTOCAST = torch.autocast


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0", "1"))
    return build_irsam(cfg)


@pytest.fixture()
def cuda_autocast_on_cpu(monkeypatch):
    """Replace ``torch.autocast``; returns the list of (device_type, dtype) it was asked for."""
    asked: list[tuple[str, torch.dtype | None]] = []

    def fake(device_type: str, dtype: torch.dtype | None = None, **kwargs):
        asked.append((device_type, dtype))
        return REAL_AUTOCAST("cpu", dtype=dtype, **kwargs)

    monkeypatch.setattr(torch, "autocast", fake)
    return asked


@contextlib.contextmanager
def layer_dtypes(model: nn.Module) -> Iterator[dict[str, set[torch.dtype]]]:
    """Record the output dtypes of every Linear and Conv2d of ``model`` inside the block."""
    seen: dict[str, set[torch.dtype]] = {"linear": set(), "conv": set()}
    hooks = []
    for mod in model.modules():
        kind = (
            "linear" if isinstance(mod, nn.Linear) else "conv" if isinstance(mod, nn.Conv2d) else ""
        )
        if kind:
            hooks.append(
                mod.register_forward_hook(lambda m, i, o, kind=kind: seen[kind].add(o.dtype))
            )
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_autocast_for_cuda_runs_the_forward_in_reduced_precision(
    model, cuda_autocast_on_cpu, precision
):
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad(), layer_dtypes(model) as seen:
        with autocast_for(torch.device("cuda"), precision):
            out = model.forward_all(x)
    assert cuda_autocast_on_cpu == [("cuda", DTYPES[precision])]
    # matmuls and convolutions of encoder and decoder ran in the reduced dtype
    assert DTYPES[precision] in seen["linear"] and DTYPES[precision] in seen["conv"]
    assert torch.isfinite(out.mask_logits.float()).all()


@pytest.mark.parametrize(
    ("device", "precision"), [("cuda", "fp32"), ("cpu", "fp16"), ("cpu", "bf16"), ("mps", "bf16")]
)
def test_fp32_mps_and_cpus_without_bf16_never_enter_autocast(
    model, cuda_autocast_on_cpu, device, precision, monkeypatch
):
    from napari_irsam.model import device as device_mod

    monkeypatch.setattr(device_mod, "cpu_bf16_supported", lambda: False)
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad(), layer_dtypes(model) as seen:
        with autocast_for(torch.device(device), precision):
            model.forward_all(x)
    assert cuda_autocast_on_cpu == []
    assert seen["linear"] == {torch.float32} and seen["conv"] == {torch.float32}


def test_predictor_runs_its_forward_under_its_precision(model, cuda_autocast_on_cpu, monkeypatch):
    """The Predictor hands its precision to ``autocast_for`` around the forward (its device is
    the CPU here, so the device it passes is swapped for "cuda" on the way) and returns float32
    maps whatever the precision."""
    calls = []

    def as_if_on_cuda(device: torch.device, precision: str = "fp32"):
        calls.append((device.type, precision))
        return autocast_for(torch.device("cuda"), precision)

    monkeypatch.setattr(inference, "autocast_for", as_if_on_cuda)
    frame = np.random.default_rng(0).integers(0, 256, (48, 40)).astype(np.uint8)
    with layer_dtypes(model) as seen:
        pred = Predictor(model, "cpu", precision="bf16", maps=()).predict_frame(frame)
    assert calls == [("cpu", "bf16")] and cuda_autocast_on_cpu == [("cuda", torch.bfloat16)]
    assert torch.bfloat16 in seen["linear"]
    assert pred.prob.dtype == np.float32 and pred.edges.dtype == np.float32
    assert np.isfinite(pred.prob).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_real_cuda_autocast(model, precision):
    m = build_irsam(model.config).cuda()
    m.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 64, 64, device="cuda") * 255
    with torch.no_grad(), layer_dtypes(m) as seen:
        with autocast_for(torch.device("cuda"), precision):
            out = m.forward_all(x)
    assert DTYPES[precision] in seen["linear"] and torch.isfinite(out.mask_logits.float()).all()


@pytest.mark.skipif(
    not __import__("napari_irsam.model.device", fromlist=["x"]).cpu_bf16_supported(),
    reason="this CPU has no bf16 instructions",
)
def test_cpu_bf16_inference_stays_close_to_fp32(model):
    """On a CPU with bf16 instructions, ``precision="bf16"`` really computes in bf16 and the
    probabilities stay within a few hundredths of fp32's."""
    frame = np.random.default_rng(0).integers(0, 255, (96, 80)).astype(np.uint8)
    frame[40:44, 30:34] = 255
    full = Predictor(model, "cpu", maps=()).predict_frame(frame)
    with layer_dtypes(model) as seen:
        half = Predictor(model, "cpu", maps=(), precision="bf16").predict_frame(frame)
    assert torch.bfloat16 in seen["linear"] and torch.bfloat16 in seen["conv"]
    assert np.abs(full.prob - half.prob).max() < 0.05
    assert np.mean(full.mask == half.mask) > 0.99
