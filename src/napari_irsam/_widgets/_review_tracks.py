"""Tracks in the "Review targets" widget: review a moving target once, not once per frame.

Thin: linking is :func:`napari_irsam.tracks.link_targets`, positions on missed frames are
:func:`napari_irsam.tracks.predict_position`, filling one is
:func:`napari_irsam.grow.grow_target`. On a stack (N > 1 frames) the review's targets are linked
when the review starts (in a thread worker; "Link tracks" links again after edits); each target
gets its ``track_id`` (the table's "track" column; saved with the review) and a Tracks layer
``"IRSAM tracks [<image>]"`` shows them beside the mask.

Keys (viewer-wide, while the widget is open):

* **Shift-T** accept the selected target's whole track (its pending targets), go to the next track;
* **Shift-X** reject the whole track (its targets leave the mask; Ctrl-Z on the mask brings them
  back one frame at a time), go to the next track;
* **Shift-K** next track with pending targets;
* **Shift-F** fill: on a frame where the selected track has no target, grow one at the track's
  predicted position and put it on the track; on a frame where it has one, go to the track's
  next missed frame first.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from napari.layers import Tracks
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ..grow import NoTargetError
from ..review import Target
from ..tracks import (
    INSTALL_HINT,
    TrackParams,
    TrackPoint,
    group_tracks,
    link_targets,
    predict_position,
    track_gaps,
    tracks_layer_data,
)
from . import _review_view as view
from ._review_actions import weak_key_handler

TRACKS = "IRSAM tracks"
#: (napari key, what it does, TrackReview method)
TRACK_SHORTCUTS: tuple[tuple[str, str, str], ...] = (
    ("Shift-T", "accept the whole track", "accept_track"),
    ("Shift-X", "reject the whole track", "reject_track"),
    ("Shift-K", "next track", "next_track"),
    ("Shift-F", "fill the track's missed frame (grow at its predicted position)", "fill"),
)


def _point(t: Target) -> TrackPoint:
    return TrackPoint(t.frame, int(t.track_id or 0), *t.centroid, t.area, t.peak_score, t.target_id)


def _link_job(targets: list[Target], n_frames: int, params: TrackParams) -> list[TrackPoint]:
    return link_targets(targets, n_frames, params)


class TrackReview(QObject):
    """The tracks part of a :class:`~napari_irsam._widgets.review.ReviewWidget` ``w``: a "Tracks"
    box at the bottom of the widget, the Tracks layer, the track keys."""

    def __init__(self, w: Any, params: TrackParams = TrackParams()) -> None:
        super().__init__(w)
        self._w = weakref.ref(w)
        self.params = params
        self.worker: Any = None  #: the running link worker, if any
        self.box = QGroupBox("Tracks")
        self.link_button = QPushButton("Link tracks")
        self.link_button.setToolTip("Link the targets of all frames into tracks (again)")
        self.info = QLabel("")
        self.info.setWordWrap(True)
        keys = "".join(
            f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{d}</td></tr>" for k, d, _ in TRACK_SHORTCUTS
        )
        self.shortcuts = QLabel(f"<table>{keys}</table>")
        row = QHBoxLayout()
        row.addWidget(self.link_button)
        row.addWidget(self.info, 1)
        inner = QVBoxLayout()
        inner.addLayout(row)
        inner.addWidget(self.shortcuts)
        self.box.setLayout(inner)
        w.layout().addWidget(self.box)
        self.link_button.clicked.connect(lambda: self.link())
        self._unbound: dict[str, Any] = {}
        self._bind_keys()
        w.installEventFilter(self)
        viewer, unbound = w.viewer, self._unbound
        w.destroyed.connect(lambda *_: _unbind(viewer, unbound))

    # ------------------------------------------------------------------------------ plumbing
    @property
    def w(self) -> Any:
        return self._w()

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 (Qt API)
        """Keys follow the widget: unbound when it closes or napari un-docks it, bound again
        when docked."""
        if ev.type() == QEvent.Type.Close and self.w is not None:
            _unbind(self.w.viewer, self._unbound)
        elif ev.type() == QEvent.Type.ParentChange and self.w is not None:
            if self.w.parent() is not None:
                self._bind_keys()
            else:
                _unbind(self.w.viewer, self._unbound)
        return False

    def _bind_keys(self) -> None:
        if self._unbound or self.w is None:
            return
        me = weakref.ref(self)
        for key, _, method in TRACK_SHORTCUTS:
            handler = weak_key_handler(me, method, "irsam_tracks")
            self._unbound[key] = self.w.viewer.bind_key(key, handler, overwrite=True)

    def _ready(self) -> bool:
        w = self.w
        if w is None or w.state is None or w.labels_layer is None:
            if w is not None:
                w._warn("Press Start review first (choose the image and its mask).")
            return False
        return True

    def _track_of_selection(self) -> int | None:
        t = self.w.selected_target()
        if t is None or t.track_id is None:
            self.w._warn("Select a target on a track first (the table's track column).")
            return None
        return int(t.track_id)

    def _track(self, tid: int) -> list[Target]:
        ts = [t for t in self.w.state.targets.values() if t.track_id == tid]
        return sorted((t for t in ts if t.status != "rejected"), key=lambda t: t.frame)

    # ------------------------------------------------------------------------------ linking
    def bound(self) -> None:
        """A review started (or was restored): show its tracks, linking them if it has none."""
        w = self.w
        if w is None or w.state is None:
            return
        if w.state.n_frames < 2:
            self.info.setText("One frame: nothing to link.")
            return
        if any(t.track_id is not None for t in w.state.targets.values()):
            self.refresh_layer()
        else:
            self.link()

    def link(self) -> Any:
        """Link the review's targets (not the rejected ones) in a thread worker; the ids land
        in the review state, the table and the Tracks layer when it returns."""
        if not self._ready():
            return None
        from napari.qt.threading import create_worker

        w = self.w
        targets = [t for t in w.state.targets.values() if t.status != "rejected"]
        self.info.setText("Linking…")
        self.link_button.setEnabled(False)
        worker = create_worker(_link_job, targets, w.state.n_frames, self.params)
        worker.returned.connect(self._linked)
        worker.errored.connect(self._link_failed)
        worker.finished.connect(self._link_finished)  # bound methods: Qt drops them with us
        self.worker = worker
        worker.start()
        return worker

    def _link_finished(self) -> None:
        try:
            self.link_button.setEnabled(True)
        except RuntimeError:  # the widget was deleted while linking
            pass

    def _link_failed(self, exc: BaseException) -> None:
        w = self.w
        if w is None:
            return
        msg = INSTALL_HINT if isinstance(exc, ImportError) else str(exc)
        self.info.setText("Not linked.")
        w._warn(msg)

    def _linked(self, points: list[TrackPoint]) -> None:
        try:
            self._apply_links(points)
        except RuntimeError:  # the widget was deleted while linking
            pass

    def _apply_links(self, points: list[TrackPoint]) -> None:
        w = self.w
        if w is None or w.state is None:
            return
        changed = []
        for p in points:
            t = w.state.targets.get((p.frame, p.target_id))
            if t is not None and t.status != "rejected":  # edited meanwhile: keep what is there
                t.track_id = p.track_id
                changed.append(t)
        w.table.update_targets(changed)
        w._save([])
        self.refresh_layer()

    def refresh_layer(self) -> None:
        """Create or update the Tracks layer from the review's linked, non-rejected targets."""
        w = self.w
        if w is None or w.state is None or w.image_layer is None or w.labels_layer is None:
            return
        pts = [
            _point(t)
            for t in w.state.targets.values()
            if t.track_id is not None and t.status != "rejected"
        ]
        n_tracks = len({p.track_id for p in pts})
        self.info.setText(f"{n_tracks} track(s), {len(pts)} target(s) on them.")
        if len(view.lead_shape(w.labels_layer)) != 1 or not pts:
            return  # a Tracks layer needs one time axis (the ids are in the table either way)
        data = tracks_layer_data(pts)
        name = view.output_name(TRACKS, w.image_layer.name)
        layer = next(
            (ly for ly in w.viewer.layers if isinstance(ly, Tracks) and ly.name == name), None
        )
        if layer is not None:
            layer.data = data
            return
        scale = tuple(w.labels_layer.scale[-3:])
        translate = tuple(w.labels_layer.translate[-3:])
        w.viewer.add_tracks(
            data, name=name, scale=scale, translate=translate, tail_length=8, head_length=0
        )
        w.viewer.layers.selection.active = w.labels_layer  # painting and keys stay on the mask

    def changed(self, targets: list[Target]) -> None:
        """Targets changed in the review (edits, rejections, adds): follow them in the layer."""
        if (
            targets
            and self.w is not None
            and any(t.track_id is not None for t in self.w.state.targets.values())
        ):
            self.refresh_layer()

    # ------------------------------------------------------------------------------ actions
    def accept_track(self) -> None:
        """Accept every pending target of the selected target's track; go to the next track."""
        if not self._ready() or (tid := self._track_of_selection()) is None:
            return
        w = self.w
        done = [w.state.accept(t.frame, t.target_id) for t in self._track(tid)]
        w.table.update_targets(done)
        w._save([])
        w._refresh_progress()
        w.status.setText(f"Track {tid} accepted ({len(done)} target(s)).")
        self.next_track(after=tid)

    def reject_track(self) -> None:
        """Remove every target of the selected target's track from the mask; next track."""
        if not self._ready() or (tid := self._track_of_selection()) is None:
            return
        w = self.w
        track = self._track(tid)
        for t in track:
            r0, c0, r1, c1 = t.bbox
            frame = view.flat(w.labels_layer)[t.frame]
            rr, cc = np.nonzero(frame[r0:r1, c0:c1] == t.target_id)
            w._write(t.frame, rr + r0, cc + c0, 0)
        w.status.setText(f"Track {tid} rejected ({len(track)} target(s) removed from the mask).")
        self.refresh_layer()
        self.next_track(after=tid)

    def next_track(self, after: int | None = None) -> None:
        """Select the first pending target of the next track (by id) that has pending targets."""
        if not self._ready():
            return
        w = self.w
        if after is None:
            sel = w.selected_target()
            after = -1 if sel is None or sel.track_id is None else int(sel.track_id)
        pending = sorted(
            {t.track_id for t in w.state.targets.values() if t.status == "pending" and t.track_id}
        )
        if not pending:
            w._info("Every track is reviewed.")
            return
        tid = next((i for i in pending if i > after), pending[0])
        first = next(t for t in self._track(tid) if t.status == "pending")
        w.table.select_key(first.key)  # selects, steps to its frame and centres on it
        w.status.setText(f"Track {tid}: {len(self._track(tid))} target(s).")

    def fill(self) -> Target | None:
        """Grow the selected track's target on the current frame at its predicted position, or
        go to the track's next missed frame when this one already has its target."""
        if not self._ready() or (tid := self._track_of_selection()) is None:
            return None
        w = self.w
        track = self._track(tid)
        frame = view.current_frame(w.viewer, w.labels_layer)
        pts = [_point(t) for t in track]
        if any(t.frame == frame for t in track):
            gaps = track_gaps(pts)
            if not gaps:
                w._info(f"Track {tid} has no missed frame between its first and last target.")
                return None
            nxt = next((g for g in gaps if g > frame), gaps[0])
            r, c = predict_position(pts, nxt)
            view.centre_on(w.viewer, w.labels_layer, nxt, (r, c), (0, 0, 1, 1))
            w.status.setText(
                f"Frame {nxt}: track {tid} has no target; Shift-F adds it at ({r:.0f}, {c:.0f})."
            )
            return None
        r, c = predict_position(pts, frame)
        try:
            t = w.grow_into_mask(frame, r, c, snap=3)
        except NoTargetError as exc:
            return w._warn(f"Track {tid}, frame {frame}: {exc}")
        if t is None:
            return None
        t.track_id = tid
        w.table.update_targets([t])
        w.table.select_key(t.key, quiet=True)  # the next Shift-F continues with this track
        w._save([])
        self.refresh_layer()
        w.status.setText(f"Track {tid}: target added on frame {frame} ({t.area} px).")
        return t


def _unbind(viewer: Any, unbound: dict[str, Any]) -> None:
    for key, previous in list(unbound.items()):
        viewer.bind_key(key, previous, overwrite=True)  # None: unbind
        unbound.pop(key)


__all__ = ["TRACKS", "TRACK_SHORTCUTS", "TrackReview", "group_tracks"]
