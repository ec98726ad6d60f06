import pytest
import torch

from napari_irsam.model import available_devices, select_device
from napari_irsam.model.device import autocast_for


def test_auto_picks_the_best_available():
    devs = available_devices()
    assert devs[-1] == "cpu"
    assert select_device("auto") == torch.device(devs[0])
    assert select_device(None) == torch.device(devs[0])
    if torch.cuda.is_available():
        assert devs[0].startswith("cuda")


def test_explicit_and_unavailable_devices():
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            select_device("cuda")
    with pytest.raises(ValueError, match="Unsupported device"):
        select_device("xla")


def test_autocast_is_noop_on_cpu():
    with autocast_for(torch.device("cpu"), "fp16"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32
