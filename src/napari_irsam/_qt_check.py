"""Can Qt start here? Asked in a child process, so a missing library is a sentence, not an abort.

When Qt's xcb platform plugin cannot load (a system library missing) or cannot reach a display,
Qt calls ``abort()``: the interpreter dies with "Fatal Python error: Aborted" and nothing else
gets a chance to explain. ``napari-irsam demo`` and the test suite (``tests/conftest.py``) ask
:func:`qt_start_problem` first; it starts a ``QApplication`` in a child interpreter and, when that
fails, names what is missing (shared libraries found by ``ldd`` on the platform plugin, or the
display) in one line.

    python -m napari_irsam._qt_check        # exit 0 and no output when Qt can start

This module never imports Qt itself.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: one-line hint appended to every problem
SETUP_HINT = (
    "./scripts/setup.sh gui (or test) installs the system packages on Debian/Ubuntu; see README.md"
)

_CHILD = """
import sys
from qtpy.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
sys.exit(0)
"""


def _qt_dir() -> Path | None:
    """The Qt installation of the Qt binding qtpy would pick (PyQt6 first), or None."""
    for binding, sub in (("PyQt6", "Qt6"), ("PySide6", "Qt"), ("PyQt5", "Qt5")):
        spec = importlib.util.find_spec(binding)
        if spec is not None and spec.origin:
            folder = Path(spec.origin).parent / sub
            if folder.is_dir():
                return folder
    return None


def missing_libraries(qt_dir: Path | None = None) -> list[str]:
    """Shared libraries the xcb platform plugin needs and the dynamic loader cannot find.

    Returns sonames such as ``["libxcb-icccm.so.4"]`` (empty when all resolve, when ``ldd`` is
    not available, or when no Qt binding is installed)."""
    qt_dir = qt_dir or _qt_dir()
    if qt_dir is None:
        return []
    targets = [qt_dir / "plugins" / "platforms" / "libqxcb.so", *qt_dir.glob("lib/lib*XcbQpa.so*")]
    missing: list[str] = []
    for target in targets:
        if not target.is_file():
            continue
        try:
            out = subprocess.run(
                ["ldd", str(target)], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return missing
        for line in out.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+not found", line)
            if m and m.group(1) not in missing:
                missing.append(m.group(1))
    return missing


def qt_start_problem(
    env: dict[str, str] | None = None, timeout: float = 120, xvfb: bool = False
) -> str | None:
    """None when a ``QApplication`` starts in a child process with ``env`` (default: this
    process's environment); otherwise one sentence saying what is missing.

    ``xvfb``: the display is expected from Xvfb (the test suite's pytest-xvfb), so a missing
    ``Xvfb`` program is named as the cause when there is no display."""
    env = dict(os.environ if env is None else env)
    if xvfb and not env.get("DISPLAY") and shutil.which("Xvfb", path=env.get("PATH")) is None:
        return (
            "The tests need a virtual display and Xvfb is not installed (Debian/Ubuntu package "
            f"xvfb); {SETUP_HINT}."
        )
    if importlib.util.find_spec("qtpy") is None or _qt_dir() is None:
        return "No Qt binding is installed in this Python: pip install 'napari[pyqt6]'."
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"Qt did not start within {timeout:.0f} s (is the display responding?)."
    if proc.returncode == 0:
        return None
    err = proc.stderr
    libs = missing_libraries()
    if libs:
        return f"Qt cannot start: system libraries missing: {', '.join(libs)}. {SETUP_HINT}."
    platform = env.get("QT_QPA_PLATFORM", "")
    if "could not connect to display" in err or (
        sys.platform.startswith("linux")
        and not platform
        and not env.get("DISPLAY")
        and not env.get("WAYLAND_DISPLAY")
    ):
        shown = env.get("DISPLAY") or "none set"
        return (
            f"Qt cannot start: no X display to connect to (DISPLAY: {shown}); run it in a "
            "desktop session, with ssh -X, or under xvfb-run -a."
        )
    lines = [ln.strip() for ln in err.splitlines() if ln.strip() and "Fatal Python" not in ln]
    qt_lines = [ln for ln in lines if ln.startswith("qt.") or "plugin" in ln]
    detail = (qt_lines or lines or [f"exit status {proc.returncode}"])[0]
    return f"Qt cannot start: {detail} {SETUP_HINT}."


def main() -> int:
    problem = qt_start_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
