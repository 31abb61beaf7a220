#!/usr/bin/env python3
"""Where the CPU time of one load run goes, per process group (docs/benchmarks.md, issue 14).

Runs a command (a mailbench run) and reports the CPU seconds (user + system, children
included) that each group of processes used meanwhile: Postfach, PostgreSQL, Garage,
HAProxy and the load client. With the number of messages the run handled, that is the
CPU cost per message of each part, the basis of the scale model.

    python3 bench/cpu_split.py --messages 2000 -- mailbench smtp --port 21025 ...
"""
import argparse
import json
import os
import subprocess
import sys

GROUPS = {
    "postfach": ("postfach",),
    "postgresql": ("postgres",),
    "garage": ("garage",),
    "haproxy": ("haproxy",),
    "client": ("mailbench",),
}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_group():
    """CPU seconds so far of every live process, summed per group (reaped children included)."""
    totals = dict.fromkeys(GROUPS, 0.0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, cutime, cstime are fields 14-17 (1-based) of the whole line.
        ticks = sum(int(v) for v in fields[11:15])
        for group, names in GROUPS.items():
            if any(name.startswith(n) for n in names):
                totals[group] += ticks / TICKS
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, required=True, help="how many messages (or operations) the run handles")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    before = cpu_by_group()
    result = subprocess.run(command, capture_output=True, text=True)
    after = cpu_by_group()
    if result.returncode != 0:
        sys.exit(f"the command failed: {result.stderr}")
    used = {g: round(after[g] - before[g], 2) for g in GROUPS}
    per_message_ms = {g: round(1000 * s / args.messages, 3) for g, s in used.items()}
    print(json.dumps({"cpu_s": used, "cpu_ms_per_message": per_message_ms, "run": result.stdout.strip().splitlines()[-1:]}))


if __name__ == "__main__":
    main()
