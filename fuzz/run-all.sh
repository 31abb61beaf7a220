#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after another, with its
# seed corpus and dictionary. Exit 1 when a target crashed (input in fuzz/artifacts/).
# Usage: fuzz/run-all.sh [SECONDS] [target...]     (needs: cargo install cargo-fuzz)
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(cargo fuzz list)
nice -n 10 cargo fuzz build -s none || exit 2
fail=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" logs
    dict=()
    [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
    echo "== $t (${secs}s)"
    if nice -n 10 cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
        >"logs/$t.log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "logs/$t.log"
        grep -E '^#[0-9]+.*(DONE|cov:)' "logs/$t.log" | tail -1
    else
        fail=1
        echo "!! $t crashed"
        grep -E 'panicked at|^SUMMARY|Test unit written' "logs/$t.log"
    fi
done
exit $fail
