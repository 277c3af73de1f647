#!/usr/bin/env bash
# Checks the declared minimum supported Rust version (`rust-version` in the
# workspace Cargo.toml) against what the build needs:
#
# 1. every package in Cargo.lock that a library crate or the binary builds
#    (normal and build dependencies, all features, every platform) declares
#    a `rust-version` no newer than ours;
# 2. every workspace crate inherits the declared version;
# 3. our own code uses no std API newer than it: clippy's `incompatible_msrv`
#    lint, which reads `rust-version` (denied in the workspace lints, and
#    run by .ci/run's clippy step with every feature on; `--clippy` here
#    runs it too).
#
# Older toolchains cannot be installed everywhere this runs, so the check
# reads declarations instead of building with the old compiler. Needs
# cargo and jq.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

declared="$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)"
if [[ -z "$declared" ]]; then
    echo "check-msrv: no rust-version in the workspace Cargo.toml" >&2
    exit 1
fi
echo "declared rust-version: $declared"

# The crates users build; benches and dev-dependencies are not part of it.
roots='["kvgit-core","kvgit-merge","kvgit-gc","kvgit-postgres","kvgit","kvgit-cli"]'

cargo metadata --format-version 1 --locked --all-features |
    jq -r --arg declared "$declared" --argjson roots "$roots" '
    def ver: split(".") | map(tonumber) | . + [0, 0, 0] | .[0:3];
    . as $m
    | ($m.packages | map({key: .id, value: .}) | from_entries) as $pkgs
    | ($m.workspace_members) as $members
    | ($m.resolve.nodes | map({key: .id, value: .}) | from_entries) as $nodes
    # Normal and build edges only (a dev edge has kind "dev").
    | def deps($id): $nodes[$id].deps[]
        | select(any(.dep_kinds[]; .kind != "dev")) | .pkg;
    # Everything reachable from the roots through those edges.
    [ $members[] | select($pkgs[.].name as $n | $roots | index($n)) ] as $start
    | { seen: {}, todo: $start }
    | until(.todo | length == 0;
        .todo[0] as $id | .todo |= .[1:]
        | if .seen[$id] then . else
            .seen[$id] = true | .todo += [deps($id)]
          end)
    | .seen | keys[] as $id | $pkgs[$id]
    | if ($members | index($id)) then
        if .rust_version != $declared then
          "MISMATCH \(.name) declares rust-version \(.rust_version // "none"), the workspace \($declared)"
        else empty end
      elif .rust_version != null and (.rust_version | ver) > ($declared | ver) then
        "NEWER \(.name) \(.version) needs rustc \(.rust_version)"
      else empty end
    ' >"${TMPDIR:-/tmp}/check-msrv.$$"

status=0
if [[ -s "${TMPDIR:-/tmp}/check-msrv.$$" ]]; then
    echo "check-msrv: the lock file or the manifests disagree with rust-version $declared:" >&2
    cat "${TMPDIR:-/tmp}/check-msrv.$$" >&2
    echo "raise rust-version, or pin an older version (cargo update -p NAME --precise VERSION)" >&2
    status=1
else
    echo "every locked dependency of the published crates builds with rustc $declared"
fi
rm -f "${TMPDIR:-/tmp}/check-msrv.$$"

if [[ "${1:-}" == "--clippy" && $status == 0 ]]; then
    cargo clippy --workspace --all-targets --all-features -- -D warnings -D clippy::incompatible_msrv
fi
exit $status
