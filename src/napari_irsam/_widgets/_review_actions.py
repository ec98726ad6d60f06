"""Actions of the "Review targets" widget: navigate, accept, reject, flag frames, add targets.

A mixin of :class:`~napari_irsam._widgets.review.ReviewWidget` (kept apart to keep modules small);
it relies on the widget's controls (``ReviewForm``), its bound layers and state, and ``_sync``.
Every change of the mask goes through ``Labels.data_setitem`` so napari's undo (Ctrl-Z) reverts
it, and the review state follows by diffing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..grow import NoTargetError, grow_target
from ..review import ReviewState, Target
from . import _review_view as view
from ._review_ui import SHORTCUTS


def weak_key_handler(ref: weakref.ReferenceType, method: str, prefix: str) -> Callable[[Any], None]:
    """A viewer key handler that calls ``ref().method()`` while the object lives (the viewer's
    keymap never keeps a closed widget alive); named ``{prefix}_{method}`` for napari's keymap."""

    def handler(viewer: Any) -> None:
        obj = ref()
        if obj is not None:
            getattr(obj, method)()

    handler.__name__ = f"{prefix}_{method}"
    return handler


class ReviewActions:
    """Keyboard/button actions; mixed into ``ReviewWidget`` (which provides the attributes)."""

    viewer: Any
    state: ReviewState | None
    image_layer: Any
    labels_layer: Any
    prob_layer: Any
    add_mode: bool
    _busy: bool
    _mode_before_add: str | None
    _unbound: dict[str, Any]
    _mouse_cb: Any
    # provided by ReviewWidget: _warn, _info (notifications), _sync (diff + autosave of frames),
    # _save (autosave), _prob_frame (probability of a frame or None)

    # ------------------------------------------------------------------------------ actions
    def _need_state(self) -> bool:
        if self.state is None:
            self._warn("Press Start review first (choose the image and its mask).")
            return False
        return True

    def selected_target(self) -> Target | None:
        key = self.table.current_key()
        return None if key is None or self.state is None else self.state.targets.get(key)

    def _need_target(self) -> Target | None:
        if not self._need_state():
            return None
        t = self.selected_target()
        if t is None:
            self._warn("Select a target in the table first.")
        return t

    def go_to(self, t: Target) -> None:
        """Step to the target's frame and centre/zoom the camera on it."""
        if self.labels_layer is None:
            return
        view.centre_on(self.viewer, self.labels_layer, t.frame, t.centroid, t.bbox)
        if t.status != "rejected":
            self.labels_layer.selected_label = t.target_id

    def _on_row_selected(self) -> None:
        t = self.selected_target()
        if t is not None:
            self.go_to(t)

    def _move(self, step: int) -> None:
        if not self._need_state():
            return
        keys = self.table.visible_keys()
        if not keys:
            self.status.setText("No target matches the filter.")
            return
        cur = self.table.current_key()
        if cur in keys:
            nxt = keys[(keys.index(cur) + step) % len(keys)]
        else:
            here = view.current_frame(self.viewer, self.labels_layer)
            after = [k for k in keys if k[0] >= here]
            nxt = (
                (after or keys)[0] if step > 0 else ([k for k in keys if k[0] <= here] or keys)[-1]
            )
        self.table.select_key(nxt)

    def next_target(self) -> None:
        self._move(+1)

    def previous_target(self) -> None:
        self._move(-1)

    def accept_selected(self) -> None:
        """Accept the selected target and move to the next one."""
        t = self._need_target()
        if t is None:
            return
        if t.status == "rejected":
            self._warn("A rejected target comes back with undo (Ctrl-Z on the mask layer).")
            return
        self.state.accept(t.frame, t.target_id)
        self.table.update_targets([t])
        self._save([])
        self._refresh_progress()
        self.next_target()

    def reject_selected(self) -> None:
        """Remove the selected target from the mask (undoable with Ctrl-Z) and move on."""
        t = self._need_target()
        if t is None or t.status == "rejected":
            return
        r0, c0, r1, c1 = t.bbox
        frame = view.flat(self.labels_layer)[t.frame]
        rr, cc = np.nonzero(frame[r0:r1, c0:c1] == t.target_id)
        self._write(t.frame, rr + r0, cc + c0, 0)
        self.next_target()

    def _write(self, frame: int, rr: np.ndarray, cc: np.ndarray, value: int) -> list[Target]:
        """Set pixels of one frame through napari (so Ctrl-Z undoes it), then sync and save."""
        idx = view.nd_indices(view.lead_shape(self.labels_layer), frame, rr, cc)
        self._busy = True
        try:
            self.labels_layer.data_setitem(idx, value)
        finally:
            self._busy = False
        return self._sync([frame])

    def set_frame_reviewed(self, reviewed: bool, frame: int | None = None) -> None:
        if not self._need_state():
            self.reviewed_check.setChecked(False)
            return
        f = view.current_frame(self.viewer, self.labels_layer) if frame is None else frame
        changed = self.state.mark_reviewed(f, reviewed)
        self.table.update_targets(changed)
        self._save([])
        self._refresh_progress()

    def toggle_frame_reviewed(self) -> None:
        if self._need_state():
            f = view.current_frame(self.viewer, self.labels_layer)
            self.set_frame_reviewed(not self.state.reviewed[f], f)

    def next_unreviewed_frame(self) -> None:
        if not self._need_state():
            return
        f = self.state.next_unreviewed(view.current_frame(self.viewer, self.labels_layer))
        if f is None:
            self._info("Every frame is reviewed.")
            return
        view.step_to(self.viewer, self.labels_layer, f)

    # ------------------------------------------------------------------------------ add mode
    def toggle_add_mode(self, on: bool | None = None) -> None:
        on = (not self.add_mode) if on is None else bool(on)
        if on and not self._need_state():
            on = False
        self.add_mode = on
        self.add_button.setChecked(on)
        layer = self.labels_layer
        if layer is not None:
            if on:
                self._mode_before_add = str(layer.mode)
                layer.mode = "pan_zoom"  # a click must not paint
            elif self._mode_before_add is not None:
                layer.mode = self._mode_before_add
                self._mode_before_add = None
        if on:
            self.status.setText("Add mode: click on a missed target to add it (Shift-G: off).")

    def _on_mode(self, event: Any = None) -> None:
        """Picking a labels tool (brush, fill, …) while in add mode leaves add mode."""
        layer = self.labels_layer
        if self.add_mode and layer is not None and str(layer.mode) != "pan_zoom":
            self._mode_before_add = None  # keep the tool just chosen
            self.toggle_add_mode(False)
            self.status.setText("Add mode off (a labels tool was chosen).")

    def _on_mouse_drag(self, viewer: Any, event: Any) -> Any:
        """A click (press + release without moving) in add mode adds the target under it."""
        if not self.add_mode or getattr(event, "button", 1) != 1 or event.modifiers:
            return
        position = tuple(event.position)
        start = np.asarray(getattr(event, "pos", (0, 0)), float)
        dragged = False
        yield
        while event.type == "mouse_move":
            now = np.asarray(getattr(event, "pos", start), float)
            dragged = dragged or float(np.abs(now - start).max()) > 3
            yield
        if not dragged:
            self.add_target_at(position)

    def add_target_at(self, world: Any) -> Target | None:
        """Grow a target from a click at world position ``world`` and add it as "added"."""
        if not self._need_state():
            return None
        where = view.world_to_frame_pixel(self.labels_layer, world)
        if where is None:
            return self._warn("The click is outside the image's frames.")
        frame, r, c = where
        try:
            t = self.grow_into_mask(frame, r, c)
        except NoTargetError as exc:
            return self._warn(str(exc))
        if t is not None:
            tid = t.target_id
            self.table.select_key(t.key, quiet=True)
            self.labels_layer.selected_label = tid
            self.status.setText(f"Added target {tid} on frame {frame} ({t.area} px).")
        return t

    def grow_into_mask(
        self, frame: int, r: float, c: float, snap: int | None = None
    ) -> Target | None:
        """Grow a target from pixel (r, c) of ``frame`` (``grow.grow_target``; ``snap`` px to the
        local peak, its default when None) and write it into the mask under a new id; the new
        :class:`Target`, or None (with a warning) when the mask's dtype cannot hold the id.
        Raises :class:`NoTargetError` when nothing stands out there."""
        stack = view.flat(self.labels_layer)
        res = grow_target(
            view.grey_frame(self.image_layer, frame),
            (r, c),
            self._prob_frame(frame),
            occupied=stack[frame] > 0,
            **({} if snap is None else {"snap": snap}),
        )
        tid = self.state.new_id(stack)
        dtype = stack.dtype
        if np.issubdtype(dtype, np.integer) and tid > np.iinfo(dtype).max:
            return self._warn(f"The mask is {dtype}, too small for label {tid}; convert it.")
        rr, cc = np.nonzero(res.mask)
        self._write(frame, rr, cc, tid)
        return self.state.targets.get((frame, tid))

    # ------------------------------------------------------------------------------ view
    def _apply_filter(self, *_: Any) -> None:
        status = self.status_filter.currentData()
        frame = None
        if self.frame_filter.currentIndex() == 1 and self.labels_layer is not None:
            frame = view.current_frame(self.viewer, self.labels_layer)
        self.table.apply_filter(status, frame)

    def _on_step(self, event: Any = None) -> None:
        if self.state is None or self.labels_layer is None:
            return
        f = view.current_frame(self.viewer, self.labels_layer)
        self.reviewed_check.blockSignals(True)
        self.reviewed_check.setChecked(bool(self.state.reviewed[f]))
        self.reviewed_check.setText(f"frame {f} reviewed")
        self.reviewed_check.blockSignals(False)
        if self.frame_filter.currentIndex() == 1:
            self._apply_filter()

    def _refresh_progress(self) -> None:
        self.progress.setText("" if self.state is None else self.state.progress_line())
        self._on_step()

    # ------------------------------------------------------------------------------ viewer keys
    def _bind_viewer(self) -> None:
        """Bind the shortcuts and the add-mode mouse callback on the viewer (weakly: the viewer
        never keeps a closed widget alive)."""
        if self._unbound:
            return
        me = weakref.ref(self)

        def make(method: str) -> Callable[[Any], None]:
            return weak_key_handler(me, method, "irsam_review")

        def on_mouse_drag(viewer: Any, event: Any) -> Any:
            widget = me()
            if widget is not None:
                yield from widget._on_mouse_drag(viewer, event)

        for key, _, method in SHORTCUTS:
            self._unbound[key] = self.viewer.bind_key(key, make(method), overwrite=True)
        self._mouse_cb = on_mouse_drag
        self.viewer.mouse_drag_callbacks.append(on_mouse_drag)

    def _unbind_closure(self) -> Callable[..., None]:
        """Unbinding that does not need ``self`` (it may run after the C++ widget is gone)."""
        viewer, unbound, cb = self.viewer, self._unbound, self._mouse_cb

        def unbind(*_: Any) -> None:
            for key, previous in list(unbound.items()):
                viewer.bind_key(key, previous, overwrite=True)  # None: unbind
                unbound.pop(key)
            if cb in viewer.mouse_drag_callbacks:
                viewer.mouse_drag_callbacks.remove(cb)

        return unbind

    def _unbind_viewer(self) -> None:
        if self.add_mode:
            self.toggle_add_mode(False)
        self._unbind_closure()()
