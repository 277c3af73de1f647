#!/usr/bin/env bash
# kvgit's main job on the embedded sled store, end to end, through the
# `kvgit` command line: build it, create a store, write, branch, merge two
# concurrent counter updates, read the history, export, collect garbage and
# verify. Usage: bash scripts/demo.sh [STORE_DIR] (default ./demo.kvgit; an
# existing store there is replaced).
set -euo pipefail
cd "$(dirname "$0")/.."

store="${1:-demo.kvgit}"
echo "== building the kvgit command line (release)"
cargo build --release -q -p kvgit-cli
# Where cargo put it: CARGO_TARGET_DIR (or the workspace's target/).
bin="${CARGO_TARGET_DIR:-target}/release/kvgit"
kv() { echo "\$ kvgit $*" >&2; "$bin" --store "$store" "$@"; }

rm -rf "$store"
kv init
kv put greeting "hello, kvgit" -m "first commit"
printf '100' | kv put hits -m "start the counter"
kv put user/alice admin
kv put user/bob reader -m "two users"
kv ls user/
kv get greeting; echo

echo "== two branches update the counter concurrently"
kv branch dev
kv put hits 115 -m "main: +15"
kv --branch dev put hits 120 -m "dev: +20"
kv --branch dev rm user/bob -m "dev: bob leaves"
kv merge dev --counter hits
echo "hits after the merge: $(kv get hits)"

echo "== history"
kv log --graph
kv history hits
kv diff dev main

echo "== export, stats, gc, sweep, verify"
kv export
kv stats
kv gc --high 15 --low 10 --yes
kv sweep
kv verify
kv stats
echo "== done: the store is at $store"
