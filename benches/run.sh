#!/usr/bin/env bash
# Runs kvgit's benchmark suite and writes the dated results table.
#
#   benches/run.sh                      # the whole suite, N = 10k, 100k, 1M
#   benches/run.sh merge history        # some bench targets only
#   benches/run.sh facade -- update     # a target, and a criterion filter
#   benches/run.sh defaults             # the facade with default options
#   benches/run.sh -- 'merge|update' --quick
#
# Arguments before `--` name bench targets of kvgit-benches (core, merge,
# history, facade, gc, postgres, defaults; all of them if none is given); arguments
# after `--` go to criterion (a filter regex over the ids, `--quick`, ...).
# The environment variables of the suite apply: KVGIT_BENCH_SIZES (e.g.
# `10k,1M`), KVGIT_BENCH_BACKENDS (e.g. `memory,raw_sled`; the postgres
# target's are `sled` and `postgres`) and KVGIT_BENCH_PG_URL (the
# PostgreSQL server of the postgres target; by default
# scripts/pg-test-server.sh's throwaway cluster, started if needed).
#
# When the run is over, benches/report.py reads criterion's estimates of
# every id measured by this run and writes benches/results/YYYY-MM-DD.md
# (or $KVGIT_BENCH_OUT): the targets named in the issues, the 1M / 10k
# ratios, kvgit over raw sled, and every id's mean. The raw criterion and
# suite output is kept beside it in benches/results/YYYY-MM-DD.log.
#
# The whole suite takes on the order of half an hour on 2 idle cores
# (stores of 1M keys are built once per bench target); run it on a quiet
# machine, since the figures are wall-clock times.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

targets=()
while (($#)) && [[ "$1" != "--" ]]; do
    targets+=("$1")
    shift
done
if (($#)); then
    shift # the `--`
fi
criterion_args=("$@")

bench_flags=()
for t in "${targets[@]}"; do
    bench_flags+=(--bench "$t")
done
if ((${#targets[@]} == 0)); then
    # Every bench target (not the library's unit tests).
    bench_flags=(--benches)
fi

day="$(date +%F)"
out="${KVGIT_BENCH_OUT:-$here/results/$day.md}"
log="${out%.md}.log"
mkdir -p "$(dirname "$out")"

# Results written from now on belong to this run (criterion's files have
# one-second mtime resolution at worst: start a second early).
start=$(($(date +%s) - 1))

echo "run.sh: cargo bench -p kvgit-benches ${bench_flags[*]} -- ${criterion_args[*]:-}" >&2
echo "run.sh: sizes ${KVGIT_BENCH_SIZES:-10k,100k,1M}, backends ${KVGIT_BENCH_BACKENDS:-all}; log in $log" >&2
cargo bench -p kvgit-benches "${bench_flags[@]}" -- "${criterion_args[@]}" 2>&1 | tee "$log"

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty=""
if ! git -C "$root" diff --quiet HEAD -- crates benches 2>/dev/null; then
    dirty=" (with uncommitted changes)"
fi
# The postgres target prints which server it used and whether its commits
# are durable (fsync): carry that line into the table.
pg_notes=()
pg_line="$(grep -m1 '^kvgit-benches: postgres: server ' "$log" || true)"
if [[ -n "$pg_line" ]]; then
    pg_notes=(--note "PostgreSQL: ${pg_line#kvgit-benches: postgres: server }.")
fi
python3 "$here/report.py" --since "$start" --out "$out" --log "$log" \
    --note "Commit ${commit}${dirty}; \`benches/run.sh ${targets[*]:-} ${criterion_args[*]:+-- ${criterion_args[*]}}\`; KVGIT_BENCH_SIZES=${KVGIT_BENCH_SIZES:-default}, KVGIT_BENCH_BACKENDS=${KVGIT_BENCH_BACKENDS:-default}." \
    ${pg_notes[@]+"${pg_notes[@]}"}
echo "run.sh: wrote $out" >&2
