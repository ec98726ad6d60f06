"""An invalid ``precision`` is refused with one sentence on every device, the CPU included."""

from __future__ import annotations

import pytest
import torch

from napari_irsam.model import device as device_mod
from napari_irsam.model.device import PRECISIONS, autocast_dtype, autocast_for, check_precision

DEVICES = ["cpu", "mps", "cuda", "cuda:1"]  # devices need not exist: the check comes first


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["fp64", "float16", "FP16", "half", "", None, 16])
def test_invalid_precision_is_one_sentence_on_every_device(device, precision):
    with pytest.raises(ValueError, match=r"^precision must be 'fp32', 'fp16' or 'bf16', got ") as e:
        with autocast_for(torch.device(device), precision):
            pytest.fail("the body ran with an invalid precision")
    msg = str(e.value)
    assert repr(precision) in msg and msg.count(".") == 1 and msg.endswith(".")


@pytest.mark.parametrize("bf16_cpu", [False, True])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_cpu_autocasts_bf16_only_where_it_has_bf16_instructions(
    precision, bf16_cpu, monkeypatch
):
    monkeypatch.setattr(device_mod, "cpu_bf16_supported", lambda: bf16_cpu)
    assert check_precision(precision) == precision
    on = precision == "bf16" and bf16_cpu
    assert autocast_dtype(torch.device("cpu"), precision) == (torch.bfloat16 if on else None)
    assert autocast_dtype(torch.device("mps"), precision) is None
    ran = []
    with autocast_for(torch.device("cpu"), precision):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
        ran.append(torch.is_autocast_enabled("cpu"))
    assert ran == [on] and y.dtype == (torch.bfloat16 if on else torch.float32)


def test_cuda_dtypes_are_fixed():
    assert autocast_dtype(torch.device("cuda"), "fp16") == torch.float16
    assert autocast_dtype(torch.device("cuda"), "bf16") == torch.bfloat16
    assert autocast_dtype(torch.device("cuda"), "fp32") is None
