#!/usr/bin/env bash
# Prepares Postfach on shared storage as a benchmark target (issue 14): a single-node Garage,
# a fresh PostgreSQL database, two nodes (a, b) on both, and HAProxy in front of them with
# send-proxy-v2. Targets: bench/postfach-shared.json (node a directly: one node on
# PostgreSQL + Garage) and bench/postfach-cluster.json (both nodes behind HAProxy).
# Usage: bench/cluster.sh start | stop        (see docs/benchmarks.md)
# Needs: garage (cargo install --locked garage), haproxy, dnsmasq, a PostgreSQL on
# 127.0.0.1:5432 with the postfach_test role that scripts/test creates, and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
D=/tmp/postfach-cluster
PW="tractor violet mango whisper"
PG=${POSTFACH_BENCH_PG:-postgres://postfach_test:postfach_test@127.0.0.1:5432}
MAILBENCH=${MAILBENCH_BIN:-/tmp/mailbench-target/release/mailbench}
GARAGE=${GARAGE_BIN:-$(command -v garage || echo "$HOME/.cargo/bin/garage")}

stop() {
    for pidfile in "$D"/*.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
        rm -f "$pidfile"
    done
    sleep 1
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

stop 2>/dev/null || true
rm -rf "$D" && mkdir -p "$D/garage"
[ -n "${NO_BUILD:-}" ] || cargo build --release -p postfach
ulimit -n "$(ulimit -Hn)"

# --- Garage, one node, replication factor 1 ---
cat > "$D/garage/garage.toml" <<EOF
metadata_dir = "$D/garage/meta"
data_dir = "$D/garage/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:23901"
rpc_public_addr = "127.0.0.1:23901"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:23900"
root_domain = ".s3.garage.localhost"
EOF
g() { "$GARAGE" -c "$D/garage/garage.toml" "$@"; }
nice -n "${NICE:-0}" "$GARAGE" -c "$D/garage/garage.toml" server >"$D/garage.log" 2>&1 &
echo $! > "$D/garage.pid"
for _ in $(seq 100); do g status >/dev/null 2>&1 && break; sleep 0.2; done
node_id=$(g node id -q | cut -d@ -f1)
g layout assign -z dc1 -c 10G "$node_id" >/dev/null
g layout apply --version 1 >/dev/null
key=$(g key create postfach-bench)
key_id=$(echo "$key" | awk '/Key ID/ {print $NF}')
secret=$(echo "$key" | awk '/Secret key/ {print $NF}')
g bucket create postfach >/dev/null
g bucket allow --read --write --owner postfach --key postfach-bench >/dev/null

# --- PostgreSQL: a fresh database ---
db=postfach_bench_cluster
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"

# --- the nodes: a on 21xxx, b on 22xxx, trusting HAProxy's source address 127.0.0.3 ---
for n in a:21 b:22; do
    name=${n%%:*}; p=${n##*:}
    cat > "$D/node-$name.toml" <<EOF
hostname = "mail.example.test"
data_dir = "$D/data-$name"
database = "$PG/$db"
[listen]
smtp = ["127.0.0.1:${p}025"]
submission = ["127.0.0.1:${p}587"]
submissions = ["127.0.0.1:${p}465"]
imap = ["127.0.0.1:${p}143"]
imaps = ["127.0.0.1:${p}993"]
pop3 = ["127.0.0.1:${p}110"]
pop3s = ["127.0.0.1:${p}995"]
https = []
http = []
[cluster]
node = "$name"
[blobs]
backend = "s3"
endpoint = "http://127.0.0.1:23900"
bucket = "postfach"
region = "garage"
access_key_id = "$key_id"
secret_access_key = "$secret"
[proxy]
trusted_networks = ["127.0.0.3/32"]
[security]
allow_plaintext_auth = true
max_failures_per_ip = 1000000
max_failures_per_login = 1000000
[limits]
max_connections_per_ip = 100000
max_connections_per_service = 100000
[outbound]
rate_limit_per_hour = 1000000
[dns]
resolver = "127.0.0.1:20053"
[log]
level = "warn"
EOF
done
pf() { target/release/postfach --config "$D/node-a.toml" "$@"; }
echo "bench customer passphrase 1" | pf customer add bench --password-stdin
pf domain add example.test --customer bench --verified
for user in sink bob alice idle fetch4k fetch100k; do
    echo "$PW" | pf mailbox add "$user@example.test" --password-stdin --tls-required off >/dev/null
done

# --- the local resolver the bench uses (as bench/start.sh) ---
if ! (exec 3<>/dev/udp/127.0.0.1/20053) 2>/dev/null || [ ! -f /tmp/postfach-bench/dnsmasq.pid ]; then
    dnsmasq --port=20053 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
        --local='/#/' --pid-file="$D/dnsmasq.pid" 2>>"$D/dnsmasq.log" || true
fi

for name in a b; do
    nice -n "${NICE:-0}" target/release/postfach --config "$D/node-$name.toml" serve >>"$D/node-$name.log" 2>&1 &
    echo $! > "$D/node-$name.pid"
done

# --- HAProxy: 23xxx, round robin over both nodes, PROXY v2 from 127.0.0.3 ---
{
    printf 'global\n    maxconn 8000\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 300s\n    timeout server 300s\n'
    for svc in 025 587 465 143 993 110 995; do
        printf 'listen p%s\n    bind 127.0.0.1:23%s\n    balance roundrobin\n    source 127.0.0.3\n' "$svc" "$svc"
        printf '    server a 127.0.0.1:21%s send-proxy-v2\n    server b 127.0.0.1:22%s send-proxy-v2\n' "$svc" "$svc"
    done
} > "$D/haproxy.cfg"
nice -n "${NICE:-0}" haproxy -db -f "$D/haproxy.cfg" >"$D/haproxy.log" 2>&1 &
echo $! > "$D/haproxy.pid"

for port in 21143 22143 23143; do
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
done
[ -x "$MAILBENCH" ] || echo "note: build mailbench (see ../shared/bench/README.md)" >&2
echo "Postfach cluster bench target ready: node a 21xxx, node b 22xxx, HAProxy 23xxx"
