#!/usr/bin/env python3
"""Memory an unauthenticated client can make a mail server hold (issue 11).

Opens N connections (default 15) from 127.0.0.1 and, without ever logging in:

  mx-hold     sends a 48 MiB DATA on the MX port and stops before the final dot
  mx-finish   then sends the final dot on all of them at once (N messages to accept)
  imap-sync   sends `a LOGIN {52428800}` and waits for the continuation
  imap-plus   sends `a LOGIN {52428800+}` followed by the 50 MiB, without waiting

and samples the server's RSS and PSS (summed over its process tree) every 20 ms. It
prints one JSON line per phase with the baseline and the peak growth.

    python3 bench/preauth_memory.py --pid "$(cat /tmp/postfach-bench/postfach.pid)" \\
        --smtp-port 20025 --imap-port 20143 --rcpt sink@example.test

Loopback only. Run it against a freshly started server (bench/start.sh), so the growth
is not hidden by memory an earlier run left in the allocator.
"""

import argparse
import json
import os
import socket
import threading
import time

MIB = 1024 * 1024


def tree(pid):
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def memory_kib(pid):
    rss = pss = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


class Sampler:
    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, (0, 0), threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            rss, pss = memory_kib(self.pid)
            self.peak = (max(self.peak[0], rss), max(self.peak[1], pss))
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def read_reply(sock):
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
        lines = data.split(b"\r\n")
        # SMTP: the last complete line has a space after the code.
        complete = [l for l in lines[:-1] if l]
        if complete and (len(complete[-1]) < 4 or complete[-1][3:4] != b"-"):
            return data


def smtp_open(port, rcpt):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    read_reply(s)
    for cmd in (b"EHLO attacker.example", b"MAIL FROM:<a@attacker.example>", b"RCPT TO:<" + rcpt.encode() + b">", b"DATA"):
        s.sendall(cmd + b"\r\n")
        reply = read_reply(s)
        if not reply[:1] in (b"2", b"3"):
            raise SystemExit(f"{cmd!r} refused: {reply!r}")
    return s


LINE = b"x" * 998 + b"\r\n"


def send_body(s, size):
    header = b"From: a@attacker.example\r\nTo: victim@example.test\r\nSubject: big\r\n\r\n"
    s.sendall(header)
    block = LINE * 64
    sent = len(header)
    while sent < size:
        s.sendall(block)
        sent += len(block)


def phase(name, pid, work):
    time.sleep(1)
    base = memory_kib(pid)
    started = time.time()
    with Sampler(pid) as sampler:
        detail = work()
        time.sleep(1)
    peak = sampler.peak
    out = {
        "phase": name,
        "rss_base_mib": round(base[0] / 1024, 1),
        "rss_peak_growth_mib": round((peak[0] - base[0]) / 1024, 1),
        "pss_peak_growth_mib": round((peak[1] - base[1]) / 1024, 1),
        "wall_s": round(time.time() - started, 1),
    }
    out.update(detail or {})
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--smtp-port", type=int, default=20025)
    ap.add_argument("--imap-port", type=int, default=20143)
    ap.add_argument("--rcpt", default="sink@example.test")
    ap.add_argument("--connections", type=int, default=15)
    ap.add_argument("--data-mib", type=int, default=48)
    args = ap.parse_args()
    n, size = args.connections, args.data_mib * MIB

    mx = []

    def hold():
        threads = []
        for _ in range(n):
            s = smtp_open(args.smtp_port, args.rcpt)
            mx.append(s)
            threads.append(threading.Thread(target=send_body, args=(s, size)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"connections": n, "data_mib_each": args.data_mib}

    def finish():
        replies = [None] * n

        def end(i, s):
            s.sendall(b".\r\n")
            replies[i] = read_reply(s)[:3].decode(errors="replace")

        threads = [threading.Thread(target=end, args=(i, s)) for i, s in enumerate(mx)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in mx:
            s.close()
        return {"replies": sorted(set(replies))}

    def imap(plus):
        def run():
            replies = []

            def one():
                s = socket.create_connection(("127.0.0.1", args.imap_port), timeout=60)
                s.recv(4096)
                marker = b"+" if plus else b""
                s.sendall(b"a LOGIN {52428800" + marker + b"}\r\n")
                if plus:
                    try:
                        block = b"x" * 65536
                        for _ in range(800):
                            s.sendall(block)
                        s.sendall(b"\r\n")  # the end of the command line
                    except OSError:
                        pass
                s.settimeout(10)
                try:
                    replies.append(s.recv(4096)[:60].decode(errors="replace").strip())
                except OSError as e:
                    replies.append(f"({e.__class__.__name__})")
                s.close()

            threads = [threading.Thread(target=one) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return {"connections": n, "replies": sorted(set(replies))}

        return run

    phase("mx-hold", args.pid, hold)
    phase("mx-finish", args.pid, finish)
    phase("imap-sync", args.pid, imap(False))
    phase("imap-plus", args.pid, imap(True))


if __name__ == "__main__":
    main()
