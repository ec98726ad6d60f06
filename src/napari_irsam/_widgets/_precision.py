"""The "precision" choice of "Run IRSAM" and "Fine-tune IRSAM": fp32, bf16 or fp16 (autocast).

Mixed precision only exists on CUDA here (``model.device.autocast_for`` is a no-op elsewhere), so
bf16/fp16 are offered as usable only when the chosen device is a CUDA GPU; on the CPU (or MPS) the
combo shows fp32, the other entries are greyed out and the tooltip says why.
"""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox

PRECISIONS = ("fp32", "bf16", "fp16")
CPU_TIP = (
    "The CPU computes in fp32 (mixed precision runs on CUDA GPUs only); choose a cuda device "
    "for bf16/fp16."
)
CUDA_TIP = (
    "fp32: full precision. bf16: mixed precision, about as accurate and faster on recent GPUs "
    "(recommended). fp16: mixed precision for older GPUs (training scales the loss)."
)


def _cuda_ready(device: str) -> tuple[bool, bool]:
    """(CUDA usable for ``device``, bf16 supported there)."""
    if not (device.startswith("cuda") or device == "auto"):
        return False, False
    import torch

    if not torch.cuda.is_available():
        return False, False
    try:
        bf16 = bool(torch.cuda.is_bf16_supported())
    except Exception:  # noqa: BLE001 (old drivers raise instead of answering)
        bf16 = False
    return True, bf16


class PrecisionCombo(QComboBox):
    """fp32 / bf16 / fp16; call :meth:`follow` with the chosen device whenever it changes."""

    def __init__(self) -> None:
        super().__init__()
        self.addItems(PRECISIONS)
        self.follow("cpu")

    def follow(self, device: str) -> None:
        """Enable bf16/fp16 only where they run (a CUDA device); fall back to fp32 otherwise."""
        cuda, bf16 = _cuda_ready(str(device))
        usable = {"fp32": True, "bf16": cuda and bf16, "fp16": cuda}
        model = self.model()
        for i, name in enumerate(PRECISIONS):
            item = model.item(i)
            if item is not None:
                item.setEnabled(usable[name])
        if not usable[self.currentText()]:
            self.setCurrentText("fp32")
        self.setToolTip(CUDA_TIP if cuda else CPU_TIP)

    def value(self) -> str:
        return self.currentText()
