"""The "precision" choice of "Run IRSAM" and "Fine-tune IRSAM": fp32, bf16 or fp16 (autocast).

Mixed precision runs where ``model.device.autocast_dtype`` gives it a dtype: bf16 and fp16 on a
CUDA GPU, bf16 on a CPU with bf16 instructions (AVX512-BF16/AMX: about 2× faster there), nothing
on MPS or other CPUs. Entries that would silently run as fp32 are greyed out, the combo falls
back to fp32 and the tooltip says why.
"""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox

PRECISIONS = ("fp32", "bf16", "fp16")
CPU_TIP = (
    "This CPU computes in fp32 (it has no bf16 instructions; mixed precision runs on CUDA GPUs "
    "and bf16-capable CPUs); choose a cuda device for bf16/fp16."
)
CPU_BF16_TIP = (
    "fp32: full precision. bf16: mixed precision, about 2× faster on this CPU (it has bf16 "
    "instructions), masks nearly identical. fp16 runs on CUDA GPUs only."
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

    def __init__(self, prefer_bf16: bool = False) -> None:
        """``prefer_bf16``: start at bf16 wherever the first device runs it (Run IRSAM: on the
        held-out benchmark images bf16 needed the same corrections as fp32 in half the time)."""
        super().__init__()
        self.addItems(PRECISIONS)
        self._prefer_bf16 = prefer_bf16
        self.follow("cpu")

    def follow(self, device: str) -> None:
        """Enable bf16/fp16 only where they run; fall back to fp32 otherwise."""
        from ..model.device import cpu_bf16_supported

        cuda, bf16 = _cuda_ready(str(device))
        cpu_bf16 = not cuda and str(device) in ("cpu", "auto") and cpu_bf16_supported()
        usable = {"fp32": True, "bf16": (cuda and bf16) or cpu_bf16, "fp16": cuda}
        model = self.model()
        for i, name in enumerate(PRECISIONS):
            item = model.item(i)
            if item is not None:
                item.setEnabled(usable[name])
        if not usable[self.currentText()]:
            self.setCurrentText("fp32")
        if self._prefer_bf16 and usable["bf16"]:
            self.setCurrentText("bf16")
            self._prefer_bf16 = False  # once: later choices are the user's
        self.setToolTip(CUDA_TIP if cuda else CPU_BF16_TIP if cpu_bf16 else CPU_TIP)

    def value(self) -> str:
        return self.currentText()
