#!/usr/bin/env bash
# Prepares Postfach as a benchmark target: release build, fresh data folder under
# /tmp/postfach-bench, the bench customer, domain and mailboxes, a local DNS resolver
# (dnsmasq answering NXDOMAIN at once, so SPF/DMARC lookups of the load generator's
# sender domain cost a loopback round trip, not a timeout), and the POP3 boxes filled.
# Usage: bench/setup.sh   (then run_suite.py with bench/postfach.json, see docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
PF=/tmp/postfach-bench
MAILBENCH=${MAILBENCH_BIN:-/tmp/mailbench-target/release/mailbench}
command -v dnsmasq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base >/dev/null

[ -n "${NO_BUILD:-}" ] || cargo build --release -p postfach
bench/stop.sh 2>/dev/null || true
rm -rf "$PF" && mkdir -p "$PF"
PW="tractor violet mango whisper"
echo "$PW" > "$PF/PASSWORD"
pf() { target/release/postfach --config bench/postfach.toml "$@"; }
echo "bench customer passphrase 1" | pf customer add bench --password-stdin
pf domain add example.test --customer bench --verified
POP3_BOXES="pop4k1 pop4k2 pop4k3 pop4k4 pop100k1 pop100k2 pop100k3 pop100k4"
for user in sink bob alice idle fetch4k fetch100k $POP3_BOXES; do
    echo "$PW" | pf mailbox add "$user@example.test" --password-stdin --tls-required off >/dev/null
done
bench/start.sh
sleep 1
# One access mode per mailbox: the POP3 boxes are filled over IMAP, then switched to POP3.
# There are four of each, because one POP3 session locks its mailbox (RFC 1939 §8): the
# concurrency-4 cases give each client its own box (mailbench --user-count 4).
for box in $POP3_BOXES; do
    size=${box#pop}; size=${size%[0-9]}
    "$MAILBENCH" populate --host 127.0.0.1 --port 20143 --user "$box@example.test" --pass "$PW" \
        --count 1000 --size "$size" --clear
    pf mailbox set "$box@example.test" --access pop3 >/dev/null
done
echo "Postfach bench target ready; password in $PF/PASSWORD"
