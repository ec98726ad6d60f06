"""An invalid ``precision`` is refused with one sentence on every device, the CPU included."""

from __future__ import annotations

import pytest
import torch

from napari_irsam.model.device import PRECISIONS, autocast_for, check_precision

DEVICES = ["cpu", "mps", "cuda", "cuda:1"]  # devices need not exist: the check comes first


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["fp64", "float16", "FP16", "half", "", None, 16])
def test_invalid_precision_is_one_sentence_on_every_device(device, precision):
    with pytest.raises(ValueError, match=r"^precision must be 'fp32', 'fp16' or 'bf16', got ") as e:
        with autocast_for(torch.device(device), precision):
            pytest.fail("the body ran with an invalid precision")
    msg = str(e.value)
    assert repr(precision) in msg and msg.count(".") == 1 and msg.endswith(".")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_valid_precisions_are_accepted_and_the_cpu_stays_fp32(precision):
    assert check_precision(precision) == precision
    ran = []
    with autocast_for(torch.device("cpu"), precision):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
        ran.append(torch.is_autocast_enabled())
    assert ran == [False] and y.dtype == torch.float32
