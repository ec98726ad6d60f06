"""What the IRSAM widgets of one viewer share: reviews in progress and hand-overs, with events.

One :class:`Session` per napari viewer (:func:`session_for`). The "IRSAM" dock and every single
widget opened from the Plugins menu find the same one, so it does not matter whether the steps
live in the dock's tabs or in separate docks:

* "Review targets" registers the live :class:`~napari_irsam.review.ReviewState` of the mask it
  reviews (:meth:`Session.bind_review`) and says when it changed (:meth:`Session.review_touched`);
  "Export training set" listens to :attr:`Session.review_changed` (no polling), "Run IRSAM" asks
  :meth:`Session.review_of` before it rewrites frames of a mask under review.
* "Export training set" offers its result to fine-tuning (:meth:`Session.offer_dataset`),
  "Fine-tune IRSAM" offers its best checkpoint to "Run IRSAM" (:meth:`Session.offer_checkpoint`).
* :attr:`Session.step_requested` asks the dock to show a step (``"run"``, ``"review"``,
  ``"export"``, ``"finetune"``).

Sessions are kept in a :class:`weakref.WeakKeyDictionary` keyed by the real viewer (never a
``PublicOnlyProxy``), and a session holds no reference to its viewer or widgets (psygnal keeps
weak references to bound-method receivers), so closing a viewer frees its session and no state
leaks from one viewer to another. Layers are identified by ``unique_id`` (the same through a
proxy, never reused).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from psygnal import Signal

STEPS = ("run", "review", "export", "finetune")


@dataclass
class Review:
    """A review in progress: its live state, where it autosaves, and the layers' names."""

    state: Any  #: :class:`napari_irsam.review.ReviewState`
    sidecar: str  #: autosave folder
    labels_name: str
    image_name: str


@dataclass
class DatasetOffer:
    """An export offered to fine-tuning: the folder and the checkpoint to start from."""

    folder: str
    init: str  #: "scratch", "default" or a checkpoint path
    taken: bool = False  #: set by a fine-tune widget that filled its form with it


@dataclass
class CheckpointOffer:
    """A fine-tuned checkpoint offered to "Run IRSAM"."""

    path: str
    taken: bool = False  #: set by a Run IRSAM widget that selected it


class Session:
    """Shared state of the IRSAM widgets of one viewer (see the module docstring)."""

    #: (labels unique_id) a review started, changed or ended
    review_changed = Signal(object)
    #: (DatasetOffer) "Fine-tune on this export"
    dataset_offered = Signal(object)
    #: (CheckpointOffer) "Use in Run IRSAM"
    checkpoint_offered = Signal(object)
    #: (step name) show this step (the dock switches tabs)
    step_requested = Signal(str)

    def __init__(self) -> None:
        self._reviews: dict[Any, Review] = {}
        self.last_dataset: DatasetOffer | None = None
        self.last_checkpoint: CheckpointOffer | None = None

    # ------------------------------------------------------------------------------- reviews
    def bind_review(self, labels: Any, image: Any, state: Any, sidecar: str) -> None:
        """``labels`` (a Labels layer) is now under review with ``state``."""
        self._reviews[labels.unique_id] = Review(state, str(sidecar), labels.name, image.name)
        self.review_changed.emit(labels.unique_id)

    def end_review(self, labels: Any) -> None:
        """The review of ``labels`` stopped (the layer was removed, or another mask is reviewed);
        its autosave stays on disk."""
        if labels is not None and self._reviews.pop(labels.unique_id, None) is not None:
            self.review_changed.emit(labels.unique_id)

    def review_touched(self, labels: Any) -> None:
        """The review of ``labels`` changed (a status, a reviewed flag, an edit)."""
        if labels is not None and labels.unique_id in self._reviews:
            self.review_changed.emit(labels.unique_id)

    def review(self, labels: Any) -> Review | None:
        return None if labels is None else self._reviews.get(getattr(labels, "unique_id", None))

    def review_by_id(self, labels_id: Any) -> Review | None:
        """The review of the labels layer whose ``unique_id`` is ``labels_id``, or None."""
        return self._reviews.get(labels_id)

    def review_of(self, labels: Any) -> Any | None:
        """The live ReviewState of ``labels``, or None when it is not under review."""
        rev = self.review(labels)
        return None if rev is None else rev.state

    # ------------------------------------------------------------------------------ hand-overs
    def offer_dataset(self, folder: str, init: str) -> DatasetOffer:
        """Offer an export to the fine-tune widgets; ``.taken`` says whether one took it."""
        offer = DatasetOffer(str(folder), str(init))
        self.last_dataset = offer
        self.dataset_offered.emit(offer)
        return offer

    def offer_checkpoint(self, path: str) -> CheckpointOffer:
        """Offer a checkpoint to the Run IRSAM widgets; ``.taken`` says whether one took it."""
        offer = CheckpointOffer(str(path))
        self.last_checkpoint = offer
        self.checkpoint_offered.emit(offer)
        return offer

    def request_step(self, step: str) -> None:
        if step not in STEPS:
            raise ValueError(f"Unknown step {step!r}; one of {STEPS}.")
        self.step_requested.emit(step)


_SESSIONS: weakref.WeakKeyDictionary[Any, Session] = weakref.WeakKeyDictionary()


def real_viewer(viewer: Any) -> Any:
    """The viewer behind napari's ``PublicOnlyProxy`` (``__wrapped__`` is public API of wrapt)."""
    return getattr(viewer, "__wrapped__", viewer)


def session_for(viewer: Any) -> Session:
    """The session of ``viewer`` (a viewer or its proxy), created on first use."""
    key = real_viewer(viewer)
    session = _SESSIONS.get(key)
    if session is None:
        session = _SESSIONS[key] = Session()
    return session


def connect(widget: Any, signal: Any, slot: Any) -> None:
    """Connect ``signal`` to ``slot`` (a bound method of the Qt ``widget``) until the widget is
    destroyed: a slot is never called on a deleted Qt object."""
    signal.connect(slot)
    method = weakref.WeakMethod(slot)  # the closure must not keep the widget alive

    def _disconnect(*_: Any) -> None:
        live = method()
        if live is not None:
            try:
                signal.disconnect(live)
            except (ValueError, RuntimeError):
                pass

    widget.destroyed.connect(_disconnect)
