"""Re-running "Run IRSAM" into a mask under review: never overwrite the annotator's work silently.

A frame holds review work when "Review targets" marked it reviewed or one of its targets is not
``pending`` (accepted, rejected, added, edited; see
:meth:`napari_irsam.review.ReviewState.protected_frames`). When a run would write such frames, the
widget asks; the default answer is to **skip** them and run the other frames (what an annotator
expects: corrections stay, the model fills in the rest). "Overwrite" re-runs them too: their
targets come back as fresh ``pending`` model output and the frames are no longer reviewed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from napari.layers import Labels
from qtpy.QtWidgets import QMessageBox, QWidget

from ._layers import MASK, find_layer, output_name
from ._session import Session

SKIP, OVERWRITE, CANCEL = "skip", "overwrite", "cancel"


def frame_list(frames: Sequence[int], most: int = 12) -> str:
    """``"1, 2, 5"``; long lists end with ``"… (40 frames)"``."""
    shown = ", ".join(str(f) for f in frames[:most])
    return shown if len(frames) <= most else f"{shown}, … ({len(frames)} frames)"


def protected_frames(
    viewer: Any, image: Any, indices: Sequence[int], session: Session
) -> tuple[str, list[int]]:
    """(mask name, frames of ``indices`` holding review work) of ``image``'s Run IRSAM mask."""
    name = output_name(MASK, image.name)
    state = session.review_of(find_layer(viewer, name, Labels))
    if state is None:
        return name, []
    chosen = set(int(i) for i in indices)
    return name, [f for f in state.protected_frames() if f in chosen]


def question(mask: str, frames: Sequence[int]) -> str:
    return (
        f"{len(frames)} of the chosen frames of {mask!r} hold review work (reviewed or corrected "
        f"by hand): frame(s) {frame_list(frames)}. Skip them and run the other frames, overwrite "
        "them with new model output, or cancel?"
    )


def choose_frames(
    viewer: Any, image: Any, indices: list[int], ask: Callable[[str], str], session: Session
) -> tuple[list[int], str, str]:
    """(frames to run, note on skipped frames, status message) for a run of ``indices``; asks
    ``ask(question)`` only when some of them hold review work (a review registered in the
    viewer's ``session``). No frames: do not run."""
    mask, protected = protected_frames(viewer, image, indices, session)
    if not protected:
        return indices, "", ""
    choice = ask(question(mask, protected))
    if choice == OVERWRITE:
        return indices, "", ""
    if choice != SKIP:
        return [], "", "Not run: the reviewed frames are left as they are."
    skipped = set(protected)
    keep = [i for i in indices if i not in skipped]
    note = f" Skipped reviewed frame(s) {frame_list(protected)}."
    if not keep:
        return [], note, "Nothing to run: every chosen frame of the mask is reviewed."
    return keep, note, ""


def ask_dialog(parent: QWidget, text: str) -> str:
    """Skip (default) / Overwrite / Cancel → ``"skip"``, ``"overwrite"`` or ``"cancel"``."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Run IRSAM")
    box.setText(text)
    skip = box.addButton("Skip reviewed frames", QMessageBox.ButtonRole.AcceptRole)
    overwrite = box.addButton("Overwrite", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(skip)
    box.exec()
    clicked = box.clickedButton()
    return SKIP if clicked is skip else OVERWRITE if clicked is overwrite else CANCEL
