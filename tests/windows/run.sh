#!/usr/bin/env bash
# The Windows build, proved under Wine (CI: .ci/run). Builds btsdr.exe and the journal,
# batch and TDS test binaries for x86_64-pc-windows-gnu, then runs, under Wine:
#   btsdr.exe --version, check --drill healthy (exit 0), journal verify of that session,
#   report --format html, changelog add twice and list, completions powershell,
#   a TUI drill in tmux that starts and quits cleanly, and the test binaries.
# Needs: rustup target x86_64-pc-windows-gnu, gcc-mingw-w64-x86-64, wine (Debian 12: 8.0).
#
# Wine 8.0 lacks bcryptprimitives.dll, whose ProcessPrng Rust std >= 1.78 imports; a test-only
# stand-in (bcryptprimitives.c, built here with MinGW) is placed next to each executable.
# It never ships: release builds do not contain it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET=x86_64-pc-windows-gnu
OUT="$ROOT/target/$TARGET/debug"
export WINEDEBUG=-all
export WINEPREFIX="${WINEPREFIX:-$ROOT/target/wineprefix}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
WINE="$(command -v wine64 || command -v wine)"
t0=$SECONDS

step() { echo "windows: $*" >&2; }
fail() { echo "windows: FAIL: $*" >&2; exit 1; }

step "building btsdr.exe and the test binaries for $TARGET"
cargo build --quiet --target "$TARGET"
mapfile -t TESTS < <(cargo test --quiet --target "$TARGET" --no-run \
    --test journal --test batch_run --test batch_check --test tds_server \
    --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    try: m=json.loads(l)
    except Exception: continue
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]:
        print(m["executable"])')
((${#TESTS[@]} == 4)) || fail "expected 4 test executables, got ${#TESTS[@]}"
step "build took $((SECONDS - t0)) s"

x86_64-w64-mingw32-gcc -shared -O2 -o "$OUT/bcryptprimitives.dll" tests/windows/bcryptprimitives.c -ladvapi32
cp "$OUT/bcryptprimitives.dll" "$OUT/deps/bcryptprimitives.dll"

if [[ ! -d "$WINEPREFIX" ]]; then
    step "creating the Wine prefix"
    "$WINE" wineboot --init >/dev/null 2>&1 || true
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/btsdr-win.XXXXXX")"
SOCK="btsdr-win-$$"
cleanup() {
    tmux -L "$SOCK" kill-server 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
export BTSDR_DATA_DIR="$WORK/data" BTSDR_CONFIG_DIR="$WORK/config" BTSDR_OPERATOR=wine
mkdir -p "$BTSDR_DATA_DIR" "$BTSDR_CONFIG_DIR"
EXE="$OUT/btsdr.exe"
w() { "$WINE" "$EXE" "$@"; }

step "btsdr.exe --version"
w --version | tee "$WORK/version"
grep -q '^btsdr ' "$WORK/version" || fail "--version printed no version"

step "check --drill healthy"
set +e
w check --drill healthy >"$WORK/check" 2>"$WORK/check.err"
rc=$?
set -e
((rc == 0)) || { cat "$WORK/check" "$WORK/check.err" >&2; fail "check --drill healthy exited $rc"; }
tail -3 "$WORK/check" >&2

step "journal verify of that session"
id="$(w sessions 2>/dev/null | awk 'NR>1 && $1 ~ /^[0-9]/ {print $1; exit}')"
[[ -n "$id" ]] || { w sessions >&2 || true; fail "no session listed after the check"; }
w journal verify "$id" || fail "journal verify $id"

step "report --format html"
w report "$id" --format html -o "$WORK/report.html"
grep -q '</html>' "$WORK/report.html" || fail "the HTML report is incomplete"

step "changelog add twice, then list"
w changelog add --category hotfix "CU4 on SQLBTS01" >/dev/null
w changelog add --category configuration "backup share moved" >/dev/null
n="$(w changelog list | grep -c -E 'CU4 on SQLBTS01|backup share moved' || true)"
((n == 2)) || { w changelog list >&2 || true; fail "changelog list shows $n of 2 entries"; }

step "completions powershell"
w completions powershell | grep -q Register-ArgumentCompleter || fail "no PowerShell completion"

step "a TUI drill in tmux starts and quits cleanly"
if command -v tmux >/dev/null; then
    tmux -L "$SOCK" new-session -d -s win -x 100 -y 30 \
        "env TERM=xterm-256color '$WINE' '$EXE' drill 2>'$WORK/tui.err'; echo \$? >'$WORK/tui.exit'; echo WIN-SHELL-BACK; exec sleep 300"
    screen() { tmux -L "$SOCK" capture-pane -p -t win 2>/dev/null || true; }
    wait_for() {
        local deadline=$((SECONDS + 90))
        while ((SECONDS < deadline)); do
            screen | grep -qF -- "$1" && return 0
            sleep 0.5
        done
        screen >&2
        fail "waited 90 s for: $1"
    }
    # Wine's console draws the screen imperfectly in tmux, so the start is read from the
    # session journal (its first record is written once the run screen is up).
    deadline=$((SECONDS + 120))
    until compgen -G "$BTSDR_DATA_DIR/sessions/*-backup.jsonl" >/dev/null &&
        [[ -s "$(compgen -G "$BTSDR_DATA_DIR/sessions/*-backup.jsonl" | head -1)" ]]; do
        ((SECONDS < deadline)) || { screen >&2; fail "the drill wrote no journal in 120 s"; }
        sleep 1
    done
    sleep 3
    tmux -L "$SOCK" send-keys -t win q
    sleep 2
    tmux -L "$SOCK" send-keys -t win y
    wait_for "WIN-SHELL-BACK"
    [[ "$(cat "$WORK/tui.exit")" == 0 ]] || { cat "$WORK/tui.err" >&2; fail "the drill exited $(cat "$WORK/tui.exit")"; }
    tui_id="$(basename "$(compgen -G "$BTSDR_DATA_DIR/sessions/*-backup.jsonl" | head -1)" .jsonl)"
    [[ -n "$tui_id" ]] || fail "the TUI drill left no session"
    w journal verify "$tui_id" || fail "journal verify $tui_id"
else
    step "tmux is not installed: TUI drill skipped"
fi

step "the journal, batch and TDS tests, under Wine"
for t in "${TESTS[@]}"; do
    step "  $(basename "$t")"
    (cd "$ROOT" && "$WINE" "$t" --test-threads=2) || fail "$(basename "$t") under Wine"
done
step "all passed in $((SECONDS - t0)) s"
