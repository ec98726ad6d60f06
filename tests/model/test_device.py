"""Device selection and mixed precision, with CUDA / MPS availability patched.

The machines that run this suite usually have no GPU, so what the code does *when* one is there is
tested by patching ``torch.cuda.is_available`` / ``device_count`` and
``torch.backends.mps.is_available``; nothing is moved to such a device here.
"""

from __future__ import annotations

import pytest
import torch

from napari_irsam.model import available_devices, select_device
from napari_irsam.model.device import autocast_for


@pytest.fixture()
def machine(monkeypatch):
    """``machine(cuda=n, mps=bool)``: pretend this machine has n CUDA GPUs and/or Apple MPS."""

    def _set(cuda: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return _set


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [
        (0, False, ["cpu"]),
        (1, False, ["cuda:0", "cpu"]),
        (2, True, ["cuda:0", "cuda:1", "mps", "cpu"]),
        (0, True, ["mps", "cpu"]),
    ],
)
def test_auto_picks_the_best_available(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert available_devices() == expected
    assert select_device("auto") == torch.device(expected[0])
    assert select_device(None) == torch.device(expected[0])


def test_cuda_index_must_exist(machine):
    machine(cuda=1)
    assert select_device("cuda") == torch.device("cuda")
    assert select_device("cuda:0") == torch.device("cuda:0")
    assert select_device(torch.device("cuda", 0)) == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"cuda:5 was requested but only 1 GPU\(s\) exist"):
        select_device("cuda:5")
    with pytest.raises(ValueError, match="only 1 GPU"):
        select_device("cuda:1")
    machine(cuda=2)
    assert select_device("cuda:1") == torch.device("cuda:1")


def test_mps_only_when_present(machine):
    machine(mps=True)
    assert select_device("mps") == torch.device("mps")
    machine(mps=False)
    with pytest.raises(ValueError, match="Apple MPS was requested but is not available"):
        select_device("mps")


def test_explicit_and_unavailable_devices(machine):
    assert select_device("cpu") == torch.device("cpu")
    machine(cuda=0)
    for name in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match="no CUDA GPU"):
            select_device(name)
    with pytest.raises(ValueError, match="Unsupported device"):
        select_device("xla")


def test_autocast_is_noop_on_cpu():
    with autocast_for(torch.device("cpu"), "fp16"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
        assert not torch.is_autocast_enabled("cpu")
    assert y.dtype == torch.float32
