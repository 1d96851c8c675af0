"""Prints the issue-3 figures (ops/bench/run dataplane|postgres) with their ratios to the
ceilings measured in the same run, and whether each goal is met."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]


def find(figure, **match):
    for row in rows:
        if row.get("figure") == figure and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def cpu(label, row):
    load = find("load", label=label)
    text = ""
    if row and row.get("server_cores") is not None:
        text += f", server {row['server_cores']:.2f} cores, generator {row['generator_cores']:.2f} cores"
    if load:
        text += f", load avg {load['load_avg_1m_before']}"
    return text


def verdict(ok):
    return "goal met" if ok else "GOAL MISSED"


print()
machine = find("machine")
if machine:
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['mem_gib']} GiB, {machine['date']}")

echoes = [row for row in (find("throughput", target="echo"), find("throughput", target="echo-global-pool")) if row]
for row in echoes:
    where = "tasks on the event loops" if row["target"] == "echo" else "tasks on the global pool"
    print(f"(a) echo server (same stack, {where}, {row['frame_bytes']}-byte frames, {row['connections']} connections, "
          f"window {row['window']}): {row['batches_per_s']:,.0f} round trips/s (rtt p50 {row['rtt_p50_ms']:.1f} ms{cpu(row['target'], row)})")
# Goal (a) is measured in pairs (echo, then the node, back to back): the median of the
# pairs' ratios is the goal's figure.
pairs = []
for n in range(1, 10):
    pair_echo = find("throughput", target=f"echo-pair-{n}")
    pair_node = find("throughput", target=f"topgun-working-set-pair-{n}")
    if pair_echo and pair_node:
        pairs.append((n, pair_echo, pair_node))
# The ceiling of the other figures is the fastest echo of the run, so their ratios never
# flatter the node.
all_echoes = echoes + [pair_echo for _, pair_echo, _ in pairs]
echo = max(all_echoes, key=lambda row: row["batches_per_s"]) if all_echoes else None
if echo:
    print(f"(a) ceiling: {echo['batches_per_s']:,.0f} round trips/s (the fastest echo of this run)")
in_process = find("write_path_in_process")
if in_process:
    print(f"(a) write path in one process (decode, merge, journal, ack; no network), working set of {in_process['records']:,} keys: "
          f"{in_process['batches_per_s']:,.0f} batches/s = {in_process['us_per_batch']:.0f} us of CPU per batch of 100 puts")
for target, keys in (("topgun", "every put a new key"), ("topgun-working-set", "working set of 500,000 keys")):
    for concern in ("FIRE_AND_FORGET", "APPLIED"):
        row = find("throughput", target=target, write_concern=concern)
        if row:
            ratio = row["batches_per_s"] / echo["batches_per_s"] if echo else float("nan")
            goal = f" -> {verdict(ratio >= 0.30)} (>= 30%)" if concern == "APPLIED" else ""
            label = "topgun-" + concern + target[len("topgun"):]
            print(f"(a) OP_BATCH x{row['ops_per_batch']} at {concern}, {keys}: {row['batches_per_s']:,.0f} batches/s = {row['puts_per_s']:,.0f} puts/s "
                  f"(rtt p50 {row['rtt_p50_ms']:.0f} ms, p99 {row['rtt_p99_ms']:.0f} ms, errors {row['errors']}{cpu(label, row)}); "
                  f"ratio to echo {ratio:.1%}{goal}")

if pairs:
    ratios = []
    for n, pair_echo, pair_node in pairs:
        ratio = pair_node["batches_per_s"] / pair_echo["batches_per_s"]
        ratios.append(ratio)
        print(f"(a) pair {n}: echo {pair_echo['batches_per_s']:,.0f} round trips/s, then OP_BATCH x{pair_node['ops_per_batch']} at APPLIED, "
              f"working set of 500,000 keys: {pair_node['batches_per_s']:,.0f} batches/s = {pair_node['puts_per_s']:,.0f} puts/s "
              f"(rtt p50 {pair_node['rtt_p50_ms']:.0f} ms, p99 {pair_node['rtt_p99_ms']:.0f} ms, errors {pair_node['errors']}"
              f"{cpu('topgun-APPLIED-working-set-pair-' + str(n), pair_node)}); ratio {ratio:.1%}")
    median = sorted(ratios)[len(ratios) // 2]
    nodes = sorted(pair_node["batches_per_s"] for _, _, pair_node in pairs)
    print(f"(a) APPLIED, working set: median of the {len(ratios)} pairs' ratios {median:.1%} -> {verdict(median >= 0.30)} (>= 30%); "
          f"median node run against the fastest echo of the run: {nodes[len(nodes) // 2] / echo['batches_per_s']:.1%}")

limited = find("throughput", target="topgun-default-limit")
if limited:
    ratio = limited["batches_per_s"] / echo["batches_per_s"] if echo else float("nan")
    print(f"(a) the same, APPLIED, working set, with the default per-connection limit (20,000 ops/s; the runs above raise it): "
          f"{limited['batches_per_s']:,.0f} batches/s, {limited['errors']} batches refused by the limit; ratio to echo {ratio:.1%}")

pg = find("throughput", target="topgun-postgres")
copy_bin = find("pg_copy", format="binary")
copy_csv = find("pg_copy", format="csv")
if pg:
    print(f"(b) OP_BATCH x{pg['ops_per_batch']} at PERSISTED on PostgreSQL, {pg['duration_s']:.0f} s: {pg['puts_per_s']:,.0f} puts/s "
          f"({pg['batches_per_s']:,.0f} batches/s, rtt p50 {pg['rtt_p50_ms']:.0f} ms, p99 {pg['rtt_p99_ms']:.0f} ms, errors {pg['errors']}"
          f"{cpu('topgun-PERSISTED-postgres', pg)})")
    pg_cpu = find("pg_server_cpu")
    if pg_cpu:
        print(f"    PostgreSQL's own CPU during the run: {pg_cpu['cores']:.2f} cores")
    for copy in (copy_bin, copy_csv):
        if copy:
            ratio = pg["puts_per_s"] / copy["rows_per_s"]
            goal = f" -> {verdict(ratio >= 0.50)} (>= 50%)" if copy is copy_bin else ""
            print(f"    ceiling, COPY ({copy['format']}) of the same {copy['rows']:,} rows (payload ~{copy['payload_bytes_avg']} B) into a copy "
                  f"of `records`: {copy['rows_per_s']:,.0f} rows/s; ratio {ratio:.1%}{goal}")

lat = find("latency")
if lat:
    print(f"(c) write-to-subscriber latency, {lat['subscribers']} live queries, {lat['writes_per_s']:.0f} writes/s: "
          f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms over {lat['deliveries']:,} deliveries "
          f"(of {lat['expected_deliveries']:,}{cpu('latency', lat)}) -> {verdict(lat['p99_ms'] < 20)} (p99 < 20 ms)")
    if "query_update_p99_ms" in lat:
        print(f"    the same, to the QUERY_UPDATE that changes the subscriber's result (what a user sees): "
              f"p50 {lat['query_update_p50_ms']:.1f} ms, p99 {lat['query_update_p99_ms']:.1f} ms, max {lat['query_update_max_ms']:.1f} ms "
              f"over {lat['query_updates']:,} updates -> {verdict(lat['query_update_p99_ms'] < 20)} (p99 < 20 ms)")
    if lat.get("writer_ack_p99_ms") is not None:
        print(f"    the writer's OP_ACK (APPLIED), from its send: p50 {lat['writer_ack_p50_ms']:.1f} ms, p99 {lat['writer_ack_p99_ms']:.1f} ms "
              f"over {lat['writer_acks']:,} writes")

for target in ("echo", "topgun"):
    idle = find("idle", target=target)
    if idle:
        per = idle["kib_per_connection"]
        goal = f" -> {verdict(per is not None and per < 32)} (< 32 KiB)" if target == "topgun" else " (the stack's own floor)"
        print(f"(d) idle connections, {target}: {idle['authenticated']:,} of {idle['connections_requested']:,} up in {idle['connect_s']:.1f} s, "
              f"server RSS {idle['server_rss_before_kib'] / 1024:,.0f} -> {idle['server_rss_after_kib'] / 1024:,.0f} MiB = "
              f"{per:.1f} KiB per connection{goal}")
