"""scripts/setup.sh and the Qt start check: a fresh machine gets one clear line, never an abort.

The script's decisions are exercised with stand-in system commands first on PATH (``id``,
``dpkg-query``, ``apt-get``, ``sudo``…): a user who is not root, packages that are missing, no
sudo, no Debian. ``SETUP_SKIP_PIP=1`` stops it before the virtual environment (tested for real by
``.ci/run``, which runs the README's test command).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from napari_irsam import _qt_check

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "setup.sh"
pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def _fake_system(tmp_path: Path, *, root: bool, installed: set[str], sudo: str | None) -> Path:
    """A bin folder whose id/dpkg-query/apt-get/apt-cache/sudo answer as told; apt calls are
    logged to ``apt.log`` instead of doing anything."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    _stub(bin_dir, "id", f'[ "$1" = -u ] && echo {0 if root else 1000} || /usr/bin/id "$@"')
    cases = " ".join(sorted(installed)) or "none"
    _stub(
        bin_dir,
        "dpkg-query",
        f'for p in {cases}; do [ "$p" = "$3" ] && echo "install ok installed" && exit 0; done\n'
        "exit 1",
    )
    _stub(bin_dir, "apt-get", f'echo "apt-get $*" >> {log}')
    # like Ubuntu 24.04: libglib2.0-0 is only a virtual name there, libglib2.0-0t64 is real
    _stub(bin_dir, "apt-cache", '[ "$2" = libglib2.0-0 ] && exit 100; exit 0')
    if sudo == "ok":
        _stub(bin_dir, "sudo", f'[ "$1" = -n ] && exit 0; echo "sudo $*" >> {log}; "$@"')
    elif sudo == "password":
        _stub(bin_dir, "sudo", "exit 1")
    return bin_dir


def _run(bin_dir: Path | None, mode: str = "test", path: str | None = None, **env):
    base = path if path is not None else os.environ["PATH"]
    full = {
        **os.environ,
        "PATH": f"{bin_dir}:{base}" if bin_dir else base,
        "SETUP_SKIP_PIP": "1",
        "PYTHON": sys.executable,
        **env,
    }
    return subprocess.run(
        [shutil.which("sh"), str(SCRIPT), mode],
        capture_output=True,
        text=True,
        env=full,
        stdin=subprocess.DEVNULL,
    )


def _no_sudo_path(tmp_path: Path) -> str:
    """PATH without any sudo (the machine may have one): a folder of links to what sh needs."""
    keep = tmp_path / "sysbin"
    keep.mkdir()
    for tool in ("sed", "grep", "tr", "dirname", "cat", "echo"):
        found = shutil.which(tool)
        if found:
            (keep / tool).symlink_to(found)
    return str(keep)


def test_nothing_missing_is_a_no_op(tmp_path):
    all_pkgs = set(
        "xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0 "
        "libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-cursor0 libxkbcommon-x11-0 "
        "libx11-xcb1 libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libdbus-1-3 "
        "libfontconfig1".split()
    )
    bin_dir = _fake_system(tmp_path, root=False, installed=all_pkgs, sudo=None)
    res = _run(bin_dir)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "apt.log").exists()  # no apt-get, no sudo


def test_missing_packages_without_sudo_stop_with_one_line(tmp_path):
    bin_dir = _fake_system(tmp_path, root=False, installed={"xauth"}, sudo=None)
    res = _run(bin_dir, path=_no_sudo_path(tmp_path))
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no sudo" in lines[0]
    assert "apt-get install" in lines[0] and "xvfb" in lines[0] and "libxcb-icccm4" in lines[0]
    assert "xauth" not in lines[0] and "|" not in lines[0]  # installed ones and alternatives
    assert not (tmp_path / "apt.log").exists()


def test_sudo_wanting_a_password_without_a_terminal_stops(tmp_path):
    bin_dir = _fake_system(tmp_path, root=False, installed=set(), sudo="password")
    res = _run(bin_dir)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "password" in res.stderr and "sudo apt-get install" in res.stderr


def test_missing_packages_are_installed_through_sudo(tmp_path):
    bin_dir = _fake_system(tmp_path, root=False, installed={"xvfb"}, sudo="ok")
    res = _run(bin_dir, mode="gui")
    assert res.returncode == 0, res.stderr
    log = (tmp_path / "apt.log").read_text().splitlines()
    assert log[0] == "sudo apt-get update -qq"
    install = [ln for ln in log if ln.startswith("apt-get install")][0].split()
    assert "libxcb-keysyms1" in install and "libgl1" in install
    assert "xvfb" not in install and "xauth" not in install  # gui mode: no Xvfb
    # the alternative this distribution has (the stand-in apt-cache knows only the t64 name)
    assert "libglib2.0-0t64" in install and "libglib2.0-0" not in install


def test_root_installs_without_sudo(tmp_path):
    bin_dir = _fake_system(tmp_path, root=True, installed=set(), sudo=None)
    res = _run(bin_dir)
    assert res.returncode == 0, res.stderr
    log = (tmp_path / "apt.log").read_text()
    assert "sudo" not in log and "xvfb" in log and "xauth" in log


def test_not_debian_names_the_packages(tmp_path):
    res = _run(None, path=_no_sudo_path(tmp_path))  # no dpkg-query, no apt-get
    assert res.returncode == 0
    assert "not a Debian/Ubuntu system" in res.stderr and "xvfb" in res.stderr


def test_old_python_is_refused_in_one_line(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "oldpython", 'case "$*" in -V) echo "Python 3.8.10";; *) exit 1;; esac')
    res = _run(bin_dir, PYTHON="oldpython")
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "3.8.10" in res.stderr and ">= 3.10" in res.stderr


def test_bad_mode_is_a_usage_error():
    res = _run(None, mode="everything")
    assert res.returncode == 2 and "usage" in res.stderr


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    command = "./scripts/setup.sh test && .venv/bin/python -m pytest"
    assert f"\n{command}\n" in readme
    assert command in (ROOT / ".ci" / "run").read_text()
    assert "apt-get" not in (ROOT / ".ci" / "run").read_text()  # one list of packages


# --- the Qt start check (conftest and `napari-irsam demo` ask it before Qt starts) ---------------


def test_qt_check_names_a_missing_display():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":4242"  # nothing listens there
    env.pop("QT_QPA_PLATFORM", None)
    problem = _qt_check.qt_start_problem(env)
    assert problem is not None and "DISPLAY: :4242" in problem and "\n" not in problem


def test_qt_check_names_a_missing_xvfb(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["PATH"] = str(tmp_path)  # no Xvfb anywhere
    problem = _qt_check.qt_start_problem(env, xvfb=True)
    assert problem is not None and "Xvfb is not installed" in problem


def test_qt_check_lists_libraries_ldd_cannot_find(tmp_path, monkeypatch):
    qt = tmp_path / "Qt6"
    (qt / "plugins" / "platforms").mkdir(parents=True)
    (qt / "plugins" / "platforms" / "libqxcb.so").write_bytes(b"")
    _stub(
        tmp_path,
        "ldd",
        'echo "\tlibxcb-icccm.so.4 => not found"; echo "\tlibc.so.6 => /lib/libc.so.6 (0x1)"',
    )
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert _qt_check.missing_libraries(qt) == ["libxcb-icccm.so.4"]


def test_qt_check_passes_here_under_the_test_display():
    if not os.environ.get("DISPLAY"):
        pytest.skip("no display (pytest-xvfb disabled)")
    assert _qt_check.qt_start_problem(xvfb=True) is None  # pytest-xvfb provides DISPLAY


def test_demo_without_a_display_says_so_in_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":4242"
    env.pop("QT_QPA_PLATFORM", None)
    res = subprocess.run(
        [sys.executable, "-m", "napari_irsam", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 2 and "Fatal Python error" not in res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]  # one line
    assert "no X display" in res.stderr
