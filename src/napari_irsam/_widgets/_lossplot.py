"""The live curve of "Fine-tune IRSAM": training loss per step and validation IoU per epoch.

Drawn with QPainter (no plotting dependency): left axis = training loss (cyan line), right axis =
validation IoU in % (orange points joined by a line, one per finished epoch), x axis = training
step. A single point is drawn as a dot with its value, so the first step already shows something.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QWidget

LOSS_COLOUR = QColor("#4dd0e1")
VAL_COLOUR = QColor("#ffa726")


class LossPlot(QWidget):
    """Training loss per step (``add``) and validation IoU per epoch (``add_validation``)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []  #: training loss, one per step
        self.validation: list[tuple[int, float]] = []  #: (step, IoU in [0, 1]) per epoch
        self.note = ""  #: a last word drawn in the plot ("cancelled", …)
        self.setMinimumHeight(120)
        self.setToolTip(
            "Cyan: training loss per step (left axis). Orange: validation IoU after each epoch "
            "(right axis, %). x: training step."
        )

    def clear(self) -> None:
        self.values.clear()
        self.validation.clear()
        self.note = ""
        self.update()

    def add(self, value: float) -> None:
        self.values.append(float(value))
        self.update()

    def add_validation(self, step: int, iou: float) -> None:
        self.validation.append((int(step), float(iou)))
        self.update()

    def set_note(self, text: str) -> None:
        self.note = text
        self.update()

    # ------------------------------------------------------------------------------- drawing
    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.black)
        fm = p.fontMetrics()
        left, right = fm.horizontalAdvance("0.000") + 10, fm.horizontalAdvance("100") + 12
        top, bottom = fm.height() + 4, fm.height() * 2 + 6
        box = QRectF(left, top, max(self.width() - left - right, 10), self.height() - top - bottom)
        p.setPen(QPen(QColor("#9e9e9e"), 1))
        p.drawRect(box)
        p.drawText(
            QRectF(0, self.height() - fm.height() - 2, self.width(), fm.height()),
            Qt.AlignmentFlag.AlignHCenter,
            "step",
        )
        p.setPen(LOSS_COLOUR)
        p.drawText(2, fm.ascent() + 1, "loss")
        p.setPen(VAL_COLOUR)
        p.drawText(int(box.right()) + 4, fm.ascent() + 1, "val IoU %")
        if not self.values:
            p.setPen(Qt.GlobalColor.white)
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, self.note or "no step yet")
            return
        n = max(len(self.values), max((s for s, _ in self.validation), default=0), 1)
        lo, hi = min(self.values), max(self.values)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5 * abs(lo) - 1e-3, hi + 0.5 * abs(hi) + 1e-3

        def x(step: float) -> float:  # step 1 … n across the box (a single step: the middle)
            return box.center().x() if n == 1 else box.left() + box.width() * (step - 1) / (n - 1)

        def y(v: float, a: float, b: float) -> float:
            return box.bottom() - box.height() * (v - a) / (b - a)

        p.setPen(QColor("#bdbdbd"))
        p.drawText(2, int(box.top()) + fm.ascent(), f"{hi:.3f}")
        p.drawText(2, int(box.bottom()), f"{lo:.3f}")
        p.drawText(int(box.left()), int(box.bottom()) + fm.ascent() + 2, "1")
        p.drawText(
            QRectF(box.left(), box.bottom() + 2, box.width(), fm.height()),
            Qt.AlignmentFlag.AlignRight,
            str(n),
        )
        p.drawText(int(box.right()) + 4, int(box.top()) + fm.ascent(), "100")
        p.drawText(int(box.right()) + 4, int(box.bottom()), "0")
        pts = [QPointF(x(i + 1), y(v, lo, hi)) for i, v in enumerate(self.values)]
        self._series(p, pts, LOSS_COLOUR)
        vpts = [QPointF(x(max(s, 1)), y(100 * iou, 0.0, 100.0)) for s, iou in self.validation]
        self._series(p, vpts, VAL_COLOUR, dots=True)
        p.setPen(Qt.GlobalColor.white)
        text = f"loss {self.values[-1]:.3f} (min {min(self.values):.3f})"
        if self.validation:
            text += f" · val IoU {100 * self.validation[-1][1]:.1f}"
        if self.note:
            text += f" · {self.note}"
        p.drawText(
            QRectF(box.left() + 4, box.top() + 2, box.width() - 8, fm.height()),
            Qt.AlignmentFlag.AlignLeft,
            text,
        )

    @staticmethod
    def _series(p: QPainter, pts: list[QPointF], colour: QColor, dots: bool = False) -> None:
        if len(pts) > 1:
            p.setPen(QPen(colour, 1.5))
            p.drawPolyline(QPolygonF(pts))
        if dots or len(pts) == 1:
            p.setPen(QPen(colour, 1))
            p.setBrush(colour)
            for pt in pts:
                p.drawEllipse(pt, 3.0, 3.0)
