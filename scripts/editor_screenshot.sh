#!/usr/bin/env bash
# docs/images/editor_hover.png: `resdsl lsp` in a real editor. Neovim (Debian's `neovim`, 0.7) opens
# specs/cifar20.rd in a tmux pane with scripts/editor_screenshot.lua (the server started for *.rd, inlay
# hints drawn), the cursor goes to `stage conv3` and K asks the server for its hover; the pane is captured
# with its colours (tmux capture-pane -e), turned into HTML by `aha` and rendered to PNG by headless chromium.
# Needs: apt-get install neovim aha tmux chromium; `make .venv/.installed` (resdsl with its lsp extra).
# Usage: scripts/editor_screenshot.sh [OUT.png]   (default docs/images/editor_hover.png)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/images/editor_hover.png}
cols=104 rows=32
for tool in nvim tmux aha chromium; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install neovim tmux aha chromium)" >&2; exit 1; }
done
tmp=$(mktemp -d)
session="resdsl-shot-$$"
trap 'tmux -L "$session" kill-server 2>/dev/null || true; rm -rf "$tmp"' EXIT
export XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data XDG_STATE_HOME=$tmp/state XDG_CACHE_HOME=$tmp/cache
tmux -L "$session" -f /dev/null new-session -d -x $cols -y $rows \
    -e RESDSL_LSP="$PWD/.venv/bin/resdsl" -e TERM=xterm-256color \
    -e XDG_CONFIG_HOME="$XDG_CONFIG_HOME" -e XDG_DATA_HOME="$XDG_DATA_HOME" \
    -e XDG_STATE_HOME="$XDG_STATE_HOME" -e XDG_CACHE_HOME="$XDG_CACHE_HOME" \
    "nvim -u scripts/editor_screenshot.lua specs/cifar20.rd"
pane() { tmux -L "$session" capture-pane -p "$@"; }
wait_for() {  # until the pane shows $1 (the server's answer), at most 30 s
    for _ in $(seq 150); do pane | grep -qF -- "$1" && return 0; sleep 0.2; done
    echo "error: the editor never showed '$1'; the pane:" >&2; pane >&2; exit 1
}
wait_for "-> 32x16x16"                                  # inlay hints from the server
tmux -L "$session" send-keys 15G w                        # the cursor on `conv3` of `stage conv3 = ...`
tmux -L "$session" send-keys K                            # hover
wait_for "stage conv3: output 32x16x16"
sleep 0.5
pane -e >"$tmp/pane.ansi"
{
    printf '<!DOCTYPE html><html><head><meta charset="utf-8"><style>'
    printf 'body{margin:0;background:#1c1c1c}pre{margin:0;padding:10px 12px;color:#d0d0d0;'
    printf 'font:15px/1.2 "DejaVu Sans Mono",monospace}</style></head><body><pre>'
    aha --no-header <"$tmp/pane.ansi"
    printf '</pre></body></html>\n'
} >"$tmp/pane.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
    --window-size=$((cols * 9 + 24)),$((rows * 18 + 20)) --screenshot="$tmp/shot.png" "file://$tmp/pane.html" \
    >/dev/null 2>&1
mkdir -p "$(dirname "$out")"
mv "$tmp/shot.png" "$out"
echo "wrote $out"
