#!/usr/bin/env bash
# Stops Postfach and the bench resolver.
PF=/tmp/postfach-bench
for pidfile in "$PF/postfach.pid" "$PF/dnsmasq.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
    rm -f "$pidfile"
done
sleep 1
