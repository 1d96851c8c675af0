"""Summarises the stderr of a scenario's nodes (ops/bench/run cluster): one JSON line per node
with its line counts by level and its failed replications to backups (logged at debug, which
is why the cluster mode runs its nodes at --log-level debug), since a backup that stops
receiving changes changes every figure of the run.

    cluster_logs.py SCENARIO NODE=FILE ...
"""
import json
import re
import sys

scenario = sys.argv[1]
for arg in sys.argv[2:]:
    node, path = arg.split("=", 1)
    levels = {}
    failures = []
    sizes = []
    lines = 0
    try:
        text = open(path, errors="replace").read().splitlines()
    except OSError:
        text = []
    for line in text:
        lines += 1
        match = re.match(r"^\S+ (\w+) ", line)
        if match:
            levels[match.group(1)] = levels.get(match.group(1), 0) + 1
        if "replication to a backup failed" in line:
            failures.append(line)
            size = re.search(r"message of (\d+) bytes", line)
            if size:
                sizes.append(int(size.group(1)))
    too_large = [f for f in failures if "larger than the limit" in f or "exceeds the cluster frame limit" in f]
    # The other failures by reason (numbers and ports blanked), most frequent first.
    reasons = {}
    for f in failures:
        if f in too_large:
            continue
        reason = re.search(r"error=(.*?) \[DataPlane\]", f)
        key = re.sub(r"\d+", "N", reason.group(1) if reason else f)[:160]
        reasons[key] = reasons.get(key, 0) + 1
    print(json.dumps({
        "figure": "cluster_node_log", "scenario": scenario, "node": node, "lines": lines, "levels": levels,
        "replication_failures": len(failures), "replication_failures_too_large": len(too_large),
        "first_replication_failure": failures[0][:400] if failures else None,
        "first_too_large": too_large[0][:400] if too_large else None,
        "largest_refused_message_bytes": max(sizes) if sizes else None,
        "other_failure_reasons": sorted(reasons.items(), key=lambda kv: -kv[1])[:3],
        "last_warning_or_error": next((l[:400] for l in reversed(text) if re.match(r"^\S+ (warning|error|critical) ", l)), None),
    }))
