#!/usr/bin/env bash
# Run the whole test suite headless: Qt offscreen, inside a private D-Bus session with a
# freshly unlocked gnome-keyring (the real Secret Service), HOME pointed at a temporary
# folder so no user file or key is touched. The converted embedded model stays cached in
# the real user cache. Extra arguments go to pytest.
#
# Tests run on parallel workers (pytest-xdist), one per core up to four, each file kept on one
# worker and files that share state outside their process on the same one (tests/conftest.py,
# docs/testing.md). TEST_WORKERS=0, or `-n 0` among the arguments, runs them in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}"
export COGNITIVETWIN_CACHE_DIR="${COGNITIVETWIN_CACHE_DIR:-$XDG_CACHE_HOME/CognitiveTwin}"
export COGNITIVETWIN_TEST_OUTPUT="${COGNITIVETWIN_TEST_OUTPUT:-$PWD/test-output}"
export QT_QPA_PLATFORM=offscreen
export PYTHONUNBUFFERED=1
test_home=$(mktemp -d)
trap 'rm -rf "$test_home"' EXIT
export HOME="$test_home"
mkdir -p "$COGNITIVETWIN_TEST_OUTPUT"
# The suite starts many Python processes (workers, children, CLI runs): where
# PYTHONDONTWRITEBYTECODE is set, each would compile every module it imports again (torch's
# and transformers' too: 14 s instead of 6 s a process). The first import writes it instead.
unset PYTHONDONTWRITEBYTECODE

workers=${TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}
if [ "$workers" -gt 4 ]; then workers=4; fi
xdist=yes
for arg in "$@"; do
  case "$arg" in
    -n | -n* | --numprocesses*) workers="" ;;
    no:xdist) xdist="" ;;
  esac
done
if [ -n "$xdist" ]; then
  if [ -n "$workers" ]; then set -- -n "$workers" "$@"; fi
  set -- --dist loadscope "$@"
fi

if command -v dbus-run-session >/dev/null 2>&1 && command -v gnome-keyring-daemon >/dev/null 2>&1; then
  exec dbus-run-session -- sh -c 'echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; exec "$0" -m pytest "$@"' "$VENV/bin/python" "$@"
fi
echo "run-tests: no dbus-run-session/gnome-keyring: keyring tests will take the no-backend path" >&2
exec "$VENV/bin/python" -m pytest "$@"
