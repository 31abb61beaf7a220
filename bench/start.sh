#!/usr/bin/env bash
# Starts the bench resolver and Postfach (NICE=-10 to match the peers' priority).
set -euo pipefail
cd "$(dirname "$0")/.."
PF=/tmp/postfach-bench
mkdir -p "$PF"
ulimit -n "$(ulimit -Hn)"
dnsmasq --port=20053 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
    --local='/#/' --pid-file="$PF/dnsmasq.pid" 2>>"$PF/dnsmasq.log"
nice -n "${NICE:-0}" target/release/postfach --config bench/postfach.toml serve >>"$PF/postfach.log" 2>&1 &
echo $! > "$PF/postfach.pid"
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/20143) 2>/dev/null && exit 0
    sleep 0.2
done
echo "Postfach did not start; see $PF/postfach.log" >&2
exit 1
