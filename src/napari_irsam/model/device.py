"""Device selection: CUDA > Apple MPS > CPU, overridable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def available_devices() -> list[str]:
    """Devices that exist on this machine, best first (e.g. ``["cuda:0", "cpu"]``)."""
    devices = (
        [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve ``None``/``"auto"`` to the best available device; check an explicit one exists.

    Raises:
        ValueError: the requested device is not available here.
    """
    if device is None or str(device) == "auto":
        return torch.device(available_devices()[0])
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                "CUDA was requested but no CUDA GPU is available; use 'cpu' or 'auto'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{dev} was requested but only {torch.cuda.device_count()} GPU(s) exist."
            )
    elif dev.type == "mps" and "mps" not in available_devices():
        raise ValueError("Apple MPS was requested but is not available; use 'cpu' or 'auto'.")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unsupported device {str(device)!r}; use 'auto', 'cpu', 'cuda' or 'mps'.")
    return dev


PRECISIONS = ("fp32", "fp16", "bf16")


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS`, on any device.

    Raises:
        ValueError: anything else (one sentence naming the accepted values).
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be 'fp32', 'fp16' or 'bf16', got {precision!r}.")
    return precision


@contextlib.contextmanager
def autocast_for(device: torch.device, precision: str = "fp32") -> Iterator[None]:
    """Mixed precision on GPU (``"fp16"``/``"bf16"``); a no-op for ``"fp32"`` and on the CPU.

    An invalid ``precision`` raises a ``ValueError`` on every device, the CPU included.
    """
    check_precision(precision)
    if precision == "fp32" or device.type != "cuda":
        yield
        return
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    with torch.autocast(device_type="cuda", dtype=dtype):
        yield


def block_triton_without_cuda() -> bool:
    """Make ``import triton`` fail in this process when there is no CUDA device; True if it did.

    ``torch.optim`` imports ``torch._dynamo``, which imports triton when it is installed (pip's
    default Linux torch wheel ships it). Triton's bundled LLVM crashes the process (segmentation
    fault) when Mesa's llvmpipe OpenGL — napari's renderer on machines without a GPU driver — is
    already loaded, so fine-tuning inside napari would kill it. Triton only generates GPU kernels;
    without CUDA it has nothing to do, and torch treats an unimportable triton as absent.
    """
    import sys

    if "triton" in sys.modules or "torch._dynamo" in sys.modules or torch.cuda.is_available():
        return False
    sys.modules["triton"] = None  # type: ignore[assignment]  # import → ImportError
    return True
