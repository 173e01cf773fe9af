#!/usr/bin/env bash
# Fuzz the parsers that take outside input, briefly (CI: .ci/run). Each target starts from
# its kept seed corpus (fuzz/corpus/TARGET: the shipped runbooks, their expressions and SQL,
# a config and an answers file); new inputs go to a temporary copy, so the kept corpus only
# changes by hand. A crash leaves its input in fuzz/artifacts/TARGET and fails the run.
# Usage: bash fuzz/run.sh [SECONDS per target, default 20]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
# `--sanitizer none`: coverage-guided on the stable toolchain (address sanitizing needs nightly).
cargo fuzz build --sanitizer none -O
work="$(mktemp -d "${TMPDIR:-/tmp}/btsdr-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
for t in $(cargo fuzz list); do
    mkdir -p "$work/$t"
    cp -r "corpus/$t/." "$work/$t/" 2>/dev/null || true
    echo "fuzz: $t for ${secs}s" >&2
    cargo fuzz run --sanitizer none -O "$t" "$work/$t" -- \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 2>&1 | grep -E '^(Done|#[0-9]+ +DONE)|SUMMARY|panicked' || true
    if compgen -G "artifacts/$t/*" >/dev/null; then
        echo "fuzz: $t found an input that crashes: $(ls artifacts/$t)" >&2
        exit 1
    fi
done
