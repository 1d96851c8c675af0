"""Samples the CPU time of a PostgreSQL cluster (its postmaster and every child) until
STOP_FILE exists, keeping each process's last reading, so that backends which exit before
the end (the node closing its pool) still count. Prints the cores used, as a JSON line."""
import json
import os
import sys
import time

master, stop_file = int(sys.argv[1]), sys.argv[2]
tick = os.sysconf("SC_CLK_TCK")


def ticks(pid):
    try:
        text = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def children(pid):
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


start_time = time.time()
first, last = {}, {}
while True:
    for pid in [master] + children(master):
        value = ticks(pid)
        if value is not None:
            first.setdefault(pid, value)
            last[pid] = value
    if os.path.exists(stop_file):
        break
    time.sleep(0.25)
elapsed = time.time() - start_time
used = sum(last[p] - first[p] for p in last) / tick
print(json.dumps({"figure": "pg_server_cpu", "cores": round(used / elapsed, 2), "processes": len(last),
                  "note": "the benchmark cluster's processes over the whole generator run, warm-up included"}))
