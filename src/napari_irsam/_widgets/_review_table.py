"""The targets table of the "Review targets" widget: one row per target, sortable, filterable.

Rows are keyed by ``(frame, target id)`` and updated in place when targets change, so a table of
thousands of targets is not rebuilt on every edit. Every column sorts numerically.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ..review import STATUSES, Target

COLUMNS = ("frame", "id", "centroid", "area", "peak", "status", "track")
STATUS_COL = COLUMNS.index("status")
TOOLTIPS = (
    "Frame index (leading axes flattened in C order)",
    "Label id of the target in the mask",
    "Centroid (row, col) in pixels of its frame",
    "Area in pixels",
    "Peak IRSAM probability inside the target (– without a probability layer)",
    "pending / accepted / rejected / added / edited",
    "Track id: the target on other frames (– before linking, or on no track)",
)
STATUS_COLOURS = {
    "pending": "#9e9e9e",
    "accepted": "#4caf50",
    "rejected": "#e53935",
    "added": "#42a5f5",
    "edited": "#ffa726",
}
KEY_ROLE = Qt.ItemDataRole.UserRole + 1


class _Item(QTableWidgetItem):
    """A read-only cell that sorts by ``sort_key`` instead of its text."""

    def __init__(self, text: str, sort_key: Any) -> None:
        super().__init__(text)
        self.sort_key = sort_key
        self.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        try:
            return self.sort_key < other.sort_key  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            return super().__lt__(other)


def _cells(t: Target) -> list[tuple[str, Any]]:
    tie = (t.frame, t.target_id)
    if t.peak_score is None:
        peak = "–"
    else:  # a probability in [0, 1]; a classical detector's saliency can be any size
        peak = f"{t.peak_score:.2f}" if abs(t.peak_score) <= 1 else f"{t.peak_score:.4g}"
    return [
        (str(t.frame), tie),
        (str(t.target_id), (t.target_id, t.frame)),
        (f"({t.centroid[0]:.1f}, {t.centroid[1]:.1f})", (*t.centroid, *tie)),
        (str(t.area), (t.area, *tie)),
        (peak, (-1.0 if t.peak_score is None else t.peak_score, *tie)),
        (t.status, (STATUSES.index(t.status), *tie)),
        ("–" if t.track_id is None else str(t.track_id), (t.track_id or 0, *tie)),
    ]


class TargetTable(QTableWidget):
    """Rows of targets; single row selection; filters hide rows (sorting is kept)."""

    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(list(COLUMNS))
        for col, tip in enumerate(TOOLTIPS):
            self.horizontalHeaderItem(col).setToolTip(tip)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        # every column as wide as its contents except the centroid, which takes what is left
        # (elided, full text in its tooltip): in a narrow dock the status column stays whole
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("centroid"), QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self._first: dict[tuple[int, int], QTableWidgetItem] = {}  # key → its column-0 item
        self._filter: tuple[str | None, int | None] = (None, None)

    # ------------------------------------------------------------------------------- contents
    def set_targets(self, targets: Iterable[Target]) -> None:
        """Replace every row."""
        self.setSortingEnabled(False)
        self.setRowCount(0)
        self._first.clear()
        self._upsert(list(targets))

    def update_targets(self, targets: Iterable[Target]) -> None:
        """Update the rows of these targets (new targets get a row); selection is kept."""
        targets = list(targets)
        if not targets:
            return
        keep = self.current_key()
        self.setSortingEnabled(False)
        self._upsert(targets)
        if keep is not None:
            self.select_key(keep, quiet=True)

    def remove_keys(self, keys: Iterable[tuple[int, int]]) -> None:
        """Drop the rows of these targets (records the review no longer has)."""
        for key in keys:
            first = self._first.pop(key, None)
            if first is not None:
                self.removeRow(first.row())

    def _upsert(self, targets: list[Target]) -> None:
        for t in targets:
            first = self._first.get(t.key)
            if first is None:
                row = self.rowCount()
                self.insertRow(row)
            else:
                row = first.row()
            for col, (text, key) in enumerate(_cells(t)):
                item = self.item(row, col)
                if isinstance(item, _Item):
                    item.setText(text)
                    item.sort_key = key
                else:
                    item = _Item(text, key)
                    self.setItem(row, col, item)
                if col == STATUS_COL:
                    item.setForeground(QBrush(QColor(STATUS_COLOURS[t.status])))
                elif COLUMNS[col] == "centroid":
                    item.setToolTip(text)
            first = self.item(row, 0)
            first.setData(KEY_ROLE, t.key)
            self._first[t.key] = first
        self.setSortingEnabled(True)  # re-sorts by the current header column
        self.apply_filter(*self._filter)

    # ------------------------------------------------------------------------------- queries
    def key_at(self, row: int) -> tuple[int, int] | None:
        item = self.item(row, 0)
        key = None if item is None else item.data(KEY_ROLE)
        return None if key is None else (int(key[0]), int(key[1]))

    def current_key(self) -> tuple[int, int] | None:
        rows = self.selectionModel().selectedRows() if self.selectionModel() else []
        return self.key_at(rows[0].row()) if rows else None

    def row_of(self, key: tuple[int, int]) -> int | None:
        first = self._first.get(key)
        return None if first is None else first.row()

    def visible_keys(self) -> list[tuple[int, int]]:
        """Keys of the rows the filter shows, in display (sorted) order."""
        keys = (self.key_at(r) for r in range(self.rowCount()) if not self.isRowHidden(r))
        return [k for k in keys if k is not None]

    # ------------------------------------------------------------------------------- selection
    def select_key(self, key: tuple[int, int], quiet: bool = False) -> bool:
        """Select the row of ``key`` (``quiet``: without emitting selection signals)."""
        row = self.row_of(key)
        if row is None:
            return False
        if quiet:
            self.blockSignals(True)
            self.selectionModel().blockSignals(True)
        try:
            self.selectRow(row)
            self.scrollToItem(self.item(row, 0))
        finally:
            if quiet:
                self.blockSignals(False)
                self.selectionModel().blockSignals(False)
                self.viewport().update()
        return True

    # ------------------------------------------------------------------------------- filters
    def apply_filter(self, status: str | None, frame: int | None) -> None:
        """Show only rows of ``status`` (None: all) on ``frame`` (None: every frame)."""
        self._filter = (status, frame)
        for row in range(self.rowCount()):
            key = self.key_at(row)
            st = self.item(row, STATUS_COL)
            hide = key is None or (
                (status is not None and st is not None and st.text() != status)
                or (frame is not None and key[0] != frame)
            )
            self.setRowHidden(row, hide)
