"""The question "Export training set" asks when its output folder is not empty."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QMessageBox, QWidget


def ask_about_folder(parent: QWidget, folder: Path) -> str | None:
    """Ask what to do with a non-empty output folder: "append" (only when it holds an earlier
    export), "new" (write to a new folder) or None (cancel)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Export training set")
    is_export = (folder / "manifest.json").is_file()
    text = f"{folder} is not empty."
    if is_export:
        text += " It holds an earlier export: append only new samples (duplicates skipped)?"
    else:
        text += " It is not a napari-irsam export, so it can only be left as it is."
    box.setText(text)
    append = box.addButton("Append (skip duplicates)", QMessageBox.ButtonRole.AcceptRole)
    append.setEnabled(is_export)
    new = box.addButton("Write to a new folder", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(new)
    box.exec()
    clicked = box.clickedButton()
    return "append" if clicked is append else "new" if clicked is new else None
