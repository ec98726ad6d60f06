#!/bin/sh
# Set up this repository on a fresh machine: system libraries, then .venv with the package.
#
#   ./scripts/setup.sh gui    # Qt/xcb/OpenGL libraries + .venv with ".[all]"     (napari-irsam demo)
#   ./scripts/setup.sh test   # the same + Xvfb     + .venv with ".[testing]" (python -m pytest)
#
# On Debian/Ubuntu, missing system packages are installed with apt-get (through sudo when not
# root). Where that is impossible (no apt, no sudo, no terminal for sudo's password) it stops with
# one line naming the packages to install. Existing .venv folders are reused. Environment:
# PYTHON (default python3), VENV (default .venv), SETUP_SKIP_PIP=1 (system part only).
set -eu

MODE=${1:-}
case "$MODE" in
  gui | test) ;;
  *) echo "usage: $0 gui|test" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# Qt's xcb platform plugin, OpenGL (vispy) and what they load. "a|b": either package will do
# (Ubuntu 24.04 and Debian 13 renamed some libraries with a t64 suffix).
QT_PACKAGES="libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0 \
libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-cursor0 libxkbcommon-x11-0 libx11-xcb1 \
libgl1 libegl1 libgl1-mesa-dri libglib2.0-0|libglib2.0-0t64 libdbus-1-3 libfontconfig1"
TEST_PACKAGES="xvfb xauth"

die() { echo "setup.sh: $*" >&2; exit 1; }

installed() {  # installed PKG: the package is installed (dpkg's own answer)
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# --- Python: >= 3.10 with the venv module and ensurepip -------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: install Python >= 3.10 (Debian/Ubuntu: python3 python3-venv)."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); napari-irsam needs Python >= 3.10 (set PYTHON=python3.X)."
WANTED=$QT_PACKAGES
[ "$MODE" = test ] && WANTED="$WANTED $TEST_PACKAGES"
if [ ! -x "$VENV/bin/pip" ] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  # Debian/Ubuntu ship ensurepip separately (python3.X-venv) for their own python3 only
  PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  case "$(command -v "$PYTHON")" in
    /usr/bin/*) WANTED="$WANTED python$PYVER-venv" ;;
    *) die "$PYTHON ($(command -v "$PYTHON")) cannot create virtual environments (no ensurepip); use a Python that can (PYTHON=...)." ;;
  esac
fi

# --- system packages -------------------------------------------------------------------------
MISSING=""
if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  for spec in $WANTED; do
    ok=""
    for alt in $(echo "$spec" | tr '|' ' '); do installed "$alt" && ok=1 && break; done
    [ -n "$ok" ] || MISSING="$MISSING $spec"
  done
else
  # not Debian/Ubuntu: only say what is needed, then go on (the Python check below may pass)
  echo "setup.sh: not a Debian/Ubuntu system; make sure the equivalents of these packages are installed: $(echo "$WANTED" | tr -s ' ')" >&2
fi

if [ -n "$MISSING" ]; then
  LIST=$(echo "$MISSING" | sed 's/^ //')
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 \
      || die "missing system packages and no sudo to install them; as root run: apt-get install$(echo " $LIST" | sed 's/|[^ ]*//g')"
    if ! sudo -n true 2>/dev/null && [ ! -t 0 ]; then
      die "missing system packages and sudo needs a password but there is no terminal; run: sudo apt-get install$(echo " $LIST" | sed 's/|[^ ]*//g')"
    fi
    SUDO=sudo
  fi
  echo "setup.sh: installing system packages: $LIST"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || die "apt-get update failed (offline, or no rights); packages needed: $LIST"
  PKGS=""
  for spec in $MISSING; do  # first alternative this distribution knows
    pick=""
    for alt in $(echo "$spec" | tr '|' ' '); do
      if apt-cache show "$alt" >/dev/null 2>&1; then pick=$alt; break; fi
    done
    [ -n "$pick" ] || die "no package $spec in this distribution's lists; install its equivalent."
    PKGS="$PKGS $pick"
  done
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $PKGS \
    || die "apt-get install failed; packages needed:$PKGS"
fi

[ "${SETUP_SKIP_PIP:-0}" = 1 ] && exit 0

# --- the virtual environment -----------------------------------------------------------------
EXTRA=all
[ "$MODE" = test ] && EXTRA=testing
if [ ! -x "$VENV/bin/pip" ]; then
  "$PYTHON" -m venv --clear "$VENV" || die "could not create $VENV with $PYTHON."
fi
"$VENV/bin/pip" install -e ".[$EXTRA]" || die "pip install -e \".[$EXTRA]\" failed (see above)."
echo "setup.sh: ready ($VENV, extra [$EXTRA])."
