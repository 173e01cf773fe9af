#!/usr/bin/env bash
# Smoke test of the real binary in a real terminal (tmux, 80x24): start `btsdr drill`, run a
# check until [PASS], open and close help, quit through the quit popup, then check the
# terminal was restored and the session journal verifies with `btsdr journal verify`.
#
# Usage: bash tests/smoke/tmux_drill.sh   (from anywhere; needs tmux; builds target/debug/btsdr
# if it is missing). Exits non-zero on failure and prints the last screen.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BTSDR_BIN:-$ROOT/target/debug/btsdr}"
SOCK="btsdr-smoke-$$"          # a private tmux server, never the user's
SESSION="smoke"
TIMEOUT="${SMOKE_TIMEOUT:-30}" # seconds per wait

command -v tmux >/dev/null || { echo "smoke: tmux is not installed (apt-get install tmux)" >&2; exit 2; }
if [[ ! -x "$BIN" ]]; then
    echo "smoke: building $BIN" >&2
    (cd "$ROOT" && cargo build --quiet) || { echo "smoke: cargo build failed" >&2; exit 2; }
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/btsdr-smoke.XXXXXX")"
cleanup() {
    tmux -L "$SOCK" kill-server 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

tm() { tmux -L "$SOCK" "$@"; }
screen() { tm capture-pane -p -t "$SESSION" 2>/dev/null || true; }

fail() {
    echo "smoke: FAIL: $*" >&2
    echo "----- last screen -----" >&2
    screen >&2
    echo "-----------------------" >&2
    if [[ -s "$WORK/exit" ]]; then echo "btsdr exit status: $(cat "$WORK/exit")" >&2; fi
    exit 1
}

# wait_for TEXT [what]: poll the screen until it contains TEXT (fixed string).
wait_for() {
    local text="$1" what="${2:-$1}" deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        if screen | grep -qF -- "$text"; then return 0; fi
        sleep 0.2
    done
    fail "waited ${TIMEOUT}s for $what"
}

# wait_gone TEXT: poll until the screen no longer contains TEXT.
wait_gone() {
    local text="$1" deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! screen | grep -qF -- "$text"; then return 0; fi
        sleep 0.2
    done
    fail "waited ${TIMEOUT}s for \"$text\" to go away"
}

keys() { tm send-keys -t "$SESSION" "$@"; }

mkdir -p "$WORK/data" "$WORK/config"
# The shell that hosts btsdr prints a marker and btsdr's exit status when it returns, so we
# can tell "the terminal is back" from "btsdr still drawing".
tm new-session -d -s "$SESSION" -x 80 -y 24 \
    "env BTSDR_DATA_DIR='$WORK/data' BTSDR_CONFIG_DIR='$WORK/config' BTSDR_OPERATOR=smoke TERM=xterm-256color \
     '$BIN' drill 2>'$WORK/stderr'; echo \$? >'$WORK/exit'; echo SMOKE-SHELL-BACK; cat '$WORK/stderr'; exec sleep 600"
tm set-option -t "$SESSION" remain-on-exit on >/dev/null

# 1. The run screen.
wait_for "Steps " "the run screen"
wait_for "DRILL" "the DRILL badge"

# 2. Move to the first check (prep.sql-version, second step) and run it.
keys j
wait_for "prep.sql-version" "the check to be selected"
keys Enter
wait_for "[PASS]" "the check to pass"

# 3. Help opens and closes.
keys '?'
wait_for "Keys (run)" "the help popup"
keys Escape
wait_gone "Keys (run)"

# 4. Quit: the popup asks first; answer yes.
keys q
wait_for "journal is always safe" "the quit popup"
keys y
wait_for "SMOKE-SHELL-BACK" "btsdr to exit and the shell to come back"

# 5. The terminal was restored: no alternate screen left, the post-exit message printed.
[[ "$(cat "$WORK/exit")" == "0" ]] || fail "btsdr exited with status $(cat "$WORK/exit")"
alt="$(tm display-message -p -t "$SESSION" '#{alternate_on}')"
[[ "$alt" == "0" ]] || fail "the terminal is still in the alternate screen"
wait_for "The journal is safe at" "the post-exit message"
screen | grep -q "Steps " && fail "the run screen is still drawn after exit"

# 6. The session journal verifies.
shopt -s nullglob
journals=("$WORK"/data/sessions/*.jsonl)
((${#journals[@]} == 1)) || fail "expected one session journal in $WORK/data/sessions, found ${#journals[@]}"
if ! out="$(BTSDR_DATA_DIR="$WORK/data" BTSDR_CONFIG_DIR="$WORK/config" "$BIN" journal verify "${journals[0]}" 2>&1)"; then
    echo "$out" >&2
    fail "btsdr journal verify failed"
fi
grep -q '"step_finished"' "${journals[0]}" || fail "the journal has no step_finished record"
grep -q '"prep.sql-version"' "${journals[0]}" || fail "the journal does not name prep.sql-version"

echo "smoke: OK ($out)"
