"""Prints the issue-14 cluster figures (ops/bench/run cluster) as a readable summary: the
raw numbers, the ratios that do not depend on the machine, and whether each goal is met."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]


def find(figure, **match):
    return [r for r in rows if r.get("figure") == figure and all(r.get(k) == v for k, v in match.items())]


def one(figure, **match):
    found = find(figure, **match)
    return found[0] if found else None


def verdict(ok):
    return "goal met" if ok else "GOAL MISSED"


print()
machine = one("machine")
setup = one("cluster_setup")
if machine:
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['mem_gib']} GiB, {machine['date']}")
    print(f"  All nodes, PostgreSQL and the load generator share these {machine['cores']} cores: more nodes add no CPU here,")
    print("  so the figures show what clustering costs per put (forwarding, replication to a backup), not how it scales")
    print("  on separate machines.")
if setup:
    print(f"  PostgreSQL: one throw-away server, {setup['pg_settings']}; BENCH_SCALE {setup['scale']}")
    if setup.get("node_args"):
        print(f"  EXTRA NODE OPTIONS (CLUSTER_NODE_ARGS, not the defaults): {setup['node_args']}")

points = find("cluster_throughput")
node_logs = find("cluster_node_log")
# Scenarios in which a node's replication to a backup failed for good (a message over a limit).
broken = {}
for log in node_logs:
    if log["replication_failures_too_large"]:
        broken.setdefault(log["scenario"], [])
        broken[log["scenario"]].append(f"{log['node']}: {log['replication_failures_too_large']} sends refused as too large")
broken = {k: "; ".join(v) for k, v in broken.items()}


def variant(p):
    return p["label"].split("-", 2)[2]


def point(n, name):
    return next((p for p in points if p["nodes"] == n and variant(p) == name), None)


if points:
    first = points[0]
    print()
    print(f"(1) Acknowledged PERSISTED puts/s, every put a new key, {first['ops_per_batch']} puts of {first['value_bytes']} B per OP_BATCH, "
          f"{first['batches_in_flight']} batches in flight in all (the same in every row)")
    print("    owner       = 24 clients, each with one WebSocket per node, each batch's keys owned by the node it goes to (PARTITION_MAP)")
    print("    single      = the same 24 clients all on n1, which forwards the ops of partitions it does not own to their owners")
    print("    single-wide = as many connections on n1 as owner routing opens (24 x nodes), the same batches in flight")
    print("    CPU: user+sys over the measured window, 100% = one core; CPU-s/1k = CPU seconds per 1,000 acknowledged puts")
    print(f"    {'nodes':>5} {'routing':>11} {'conns':>5} {'puts/s':>9} {'x 1 node':>8} {'rtt p50':>9} {'rtt p99':>9}  {'node CPU % (each = sum)':<24} "
          f"{'PG %':>5} {'gen %':>5}  {'CPU-s/1k: nodes':>15} {'PG':>6} {'total':>6}  load avg")
    ones = [p["puts_per_s"] for p in points if p["nodes"] == 1]
    base = statistics.mean(ones) if ones else None
    for p in points:
        load = one("load", label=p["label"])
        ratio = p["puts_per_s"] / base if base else float("nan")
        each = "/".join(f"{c:.0f}" for c in p["node_cpu_pct"]) + f" = {p['nodes_cpu_pct_total']:.0f}"
        print(f"    {p['nodes']:>5} {variant(p):>11} {p['connections']:>5} {p['puts_per_s']:>9,.0f} {ratio:>8.2f} "
              f"{p['rtt_p50_ms']:>7.1f}ms {p['rtt_p99_ms']:>7.1f}ms  {each:<24} "
              f"{p['pg_cpu_pct']:>5.0f} {p['generator_cpu_pct']:>5.0f}  {p['node_cpu_s_per_1000_puts']:>15.4f} {p['pg_cpu_s_per_1000_puts']:>6.4f} "
              f"{p['total_cpu_s_per_1000_puts']:>6.4f}  {load['load_avg_1m_before'] if load else '?'}")
        bad = broken.get(f"tp{p['nodes']}")
        if bad:
            print(f"          REPLICATION TO BACKUPS BROKEN in this cluster ({bad}): figure not representative")
        if p["errors"] or p["refused_batches"]:
            print(f"          errors {p['errors']}, refused batches {p['refused_batches']}, resent {p['resent_batches']}: {p['first_errors'][:2]}")
    print("    ('x 1 node' is against the mean of the 1-node rows, which are one setup measured twice.)")
    for n in (2, 3):
        o = point(n, "owner")
        for name in ("single", "single-wide"):
            s_ = point(n, name)
            if o and s_:
                print(f"    {n} nodes: owner routing / {name} = {o['puts_per_s'] / s_['puts_per_s']:.2f} x the puts/s, "
                      f"{s_['total_cpu_s_per_1000_puts'] / o['total_cpu_s_per_1000_puts']:.2f} x less CPU per put")
    for name in ("owner", "single"):
        c1 = point(1, name)
        for n in (2, 3):
            cn = point(n, name)
            if c1 and cn:
                print(f"    {name}, {n} nodes vs 1: puts/s x {cn['puts_per_s'] / c1['puts_per_s']:.2f}, CPU per put x "
                      f"{cn['total_cpu_s_per_1000_puts'] / c1['total_cpu_s_per_1000_puts']:.2f} (nodes alone x "
                      f"{cn['node_cpu_s_per_1000_puts'] / c1['node_cpu_s_per_1000_puts']:.2f})")

failovers = find("failover")
if failovers:
    print()
    print("(2) Failover: 3 nodes, lease 5 s, heartbeat 1 s (defaults), light PERSISTED load on the survivors; SIGKILL of one node;")
    print("    time from the kill to the first acknowledged write of a key the dead node owned (probes retry every "
          f"{failovers[0]['retry_ms']} ms through a surviving node)")
    firsts = []
    for f in failovers:
        firsts.append(f["first_ack_s"])
        tables = ", ".join(f"{n} {t:.2f} s" for n, t in zip(f["survivors"], f["table_without_victim_s"]))
        times = " ".join(f"{t:.2f}" for t in f["probe_ack_s"])
        print(f"    {f['label']}: killed {f['victim']} ({f['victim_partitions']} partitions): first ack {f['first_ack_s']:.2f} s, "
              f"all {f['probes_recovered']}/{f['probes']} probes {f['all_acked_s']:.2f} s (each: {times}); "
              f"table without it announced by {tables}")
        print(f"        probe rtt before the kill p50 {f['probe_pre_kill_rtt_p50_ms']:.1f} ms; refused attempts after the kill "
              f"{sum(f['probe_refusals_after_kill'])}, longest attempt {max(f['probe_longest_attempt_after_kill_s']):.2f} s; "
              f"load acked puts/s from {f['load_buckets_from_s']} s: {f['load_acked_puts_per_s']}")
        if f["errors"]:
            print(f"        errors {f['errors']}: {f['first_errors'][:2]}")
    median = statistics.median(firsts)
    print(f"    median first ack {median:.2f} s over {len(firsts)} runs; goal < 10 s: {verdict(median < 10 and max(firsts) < 10)} "
          f"(worst {max(firsts):.2f} s)")

fill = one("cluster_fill")
drain = one("cluster_drain")
settled = one("cluster_settled", label="rebalance")
rebalance = one("cluster_rebalance")
if fill or settled:
    print()
    print("(3) Rebalance: a 3rd node joins 2 nodes holding the records")
    if fill:
        print(f"    load: {fill['records_acked']:,} records ({fill['value_bytes']} B values) in {fill['seconds']:.1f} s = {fill['puts_per_s']:,.0f} puts/s "
              f"({fill['write_concern']}, {fill['connections']} connections routed by owner, {fill['ops_per_batch']} puts per batch)")
    if drain:
        print(f"    write-behind drained {drain['seconds_after_fill']:.1f} s after the load ({drain['rows']:,} rows in PostgreSQL; "
              f"node RSS {drain['node_rss_mib']} MiB)")
    if settled and rebalance:
        if settled["settled"]:
            print(f"    n3 spawned -> ready line {rebalance['ready_line_s']:.2f} s -> member {settled.get('new_node_member_s')} s -> "
                  f"first partition {settled.get('new_node_first_owner_s')} s -> settled {settled['seconds']:.2f} s "
                  f"(same table v{settled['table_version']} on all nodes, none MIGRATING; owners {settled['owned']}; "
                  f"at most {settled['max_migrating_seen']} partitions MIGRATING at once; {settled['table_versions_seen']} table versions seen)")
        else:
            print(f"    n3 spawned -> ready line {rebalance['ready_line_s']:.2f} s -> member {settled.get('new_node_member_s')} s -> "
                  f"first partition {settled.get('new_node_first_owner_s')} s -> NOT SETTLED after {settled['seconds']:.0f} s: table "
                  f"v{settled['table_version']}, owners {settled['owned']}, {settled['max_migrating_seen']} partitions MIGRATING at most, "
                  f"{settled['table_versions_seen']} table versions seen")
        print(f"    node RSS after: {rebalance['node_rss_mib']} MiB; rows in PostgreSQL after: {rebalance['rows_after']:,}")
        if broken.get("rb"):
            print(f"    REPLICATION TO BACKUPS BROKEN in this cluster during the load ({broken['rb']})")
        print(f"    goal < 60 s: {verdict(settled['settled'] and settled['seconds'] < 60)}"
              + ("" if rebalance["records"] >= 1_000_000 else f" (at {rebalance['records']:,} records, not the goal's 1,000,000)"))

latencies = [r for r in find("latency") if str(r.get("label", "")).startswith("cluster-latency-")]
if latencies:
    def lat_variant(r):
        return r["label"][len("cluster-latency-"):].rsplit("-", 1)[0]

    def ms(v):
        return f"{v:.1f}" if isinstance(v, (int, float)) else "-"

    first = latencies[0]
    print()
    print(f"(4) Live-query latency across nodes: {first['subscribers']:,} "
          f"subscribers (an empty live query each, one map), round-robin over the nodes; one writer on n1 putting "
          f"{first['writes_per_s']:.0f} keys/s at APPLIED")
    print("    3-nodes        = 3 nodes of one cluster (each subscriber's node coordinates its query, every owner computes it as a feed)")
    print("    1-node-cluster = the same code on a cluster of one node (its feeds through its own stream)")
    print("    single-node    = one node without --cluster-port (no coordination): the baseline")
    print("    latency from the writer's send: QUU = QUERY_UPDATE (what changes the subscriber's result), SE = SERVER_EVENT, ack = the writer's OP_ACK")
    print("    node CPU % = each node's CPU while writing (100% = one core); drain = from the last write to the last delivery;")
    print("    CPU/write = all nodes' CPU from the first write to the last delivery, per write (each write reaches every subscriber)")
    print(f"    {'variant':>14} {'subs':>5} {'writes':>6} {'QUU p50':>7} {'QUU p99':>7} {'QUU max':>7} {'SE p50':>7} {'SE p99':>7} "
          f"{'ack p50':>7} {'ack p99':>7}  {'QUU p99 per node':<20} {'node CPU %':<16} {'gen %':>5} {'drain':>6} {'CPU/write':>9}  load avg")
    for r in latencies:
        load = one("load", label=r["label"])
        per_node = "/".join(ms(v) for v in r.get("query_update_p99_ms_by_url", []))
        cpu = "/".join(f"{c:.0f}" for c in r.get("node_cpu_pct", []))
        if r.get("node_cpu_pct"):
            cpu += f" = {sum(r['node_cpu_pct']):.0f}"
        print(f"    {lat_variant(r):>14} {r['subscribers']:>5} {r['writes']:>6} {ms(r['query_update_p50_ms']):>7} {ms(r['query_update_p99_ms']):>7} "
              f"{ms(r['query_update_max_ms']):>7} {ms(r.get('server_event_p50_ms')):>7} {ms(r.get('server_event_p99_ms')):>7} "
              f"{ms(r['writer_ack_p50_ms']):>7} {ms(r.get('writer_ack_p99_ms')):>7}  {per_node:<20} {cpu:<16} "
              f"{r['generator_cores'] * 100:>5.0f} {ms(r.get('drain_s')):>5}s {ms(r.get('node_cpu_ms_per_write')):>7}ms  "
              f"{load['load_avg_1m_before'] if load else '?'}")
        if r["query_updates"] < r["expected_deliveries"] or r["errors"]:  # not drained in time, or refused
            print(f"          {r['query_updates']:,} of {r['expected_deliveries']:,} QUERY_UPDATEs arrived"
                  + (f" ({r['drain_s']:.0f} s after the last write)" if "drain_s" in r else "")
                  + f"; errors {r['errors']}: {r['first_errors'][:2]}")
            if r.get("subscribers_closed_during_run"):
                print(f"          {r['subscribers_closed_during_run']} subscribers closed by their node during the run (close codes {', '.join(r['close_codes'])})")
            if "writes_updating_none" in r:
                print(f"          writes whose QUERY_UPDATE reached every subscriber {r['writes_updating_all']}, some {r['writes_updating_some']}, "
                      f"none {r['writes_updating_none']}; writes (by seq) not reaching all: {', '.join(r['writes_not_updating_all_seq_ranges'])}")
        if r.get("writer_acks_forwarded") or r.get("query_updates_owned_by_other_node"):
            print(f"          writer's acks, writes n1 owns: p50 {ms(r['writer_ack_local_p50_ms'])} / p99 {ms(r['writer_ack_local_p99_ms'])} ms "
                  f"({r['writer_acks_local']}), writes it forwards: p50 {ms(r['writer_ack_forwarded_p50_ms'])} / p99 "
                  f"{ms(r['writer_ack_forwarded_p99_ms'])} ms ({r['writer_acks_forwarded']}); QUERY_UPDATEs of writes the subscriber's "
                  f"node owns: p50 {ms(r['query_update_owned_by_subscriber_node_p50_ms'])} / p99 {ms(r['query_update_owned_by_subscriber_node_p99_ms'])} ms, "
                  f"another node owns: p50 {ms(r['query_update_owned_by_other_node_p50_ms'])} / p99 {ms(r['query_update_owned_by_other_node_p99_ms'])} ms")
        quarters = r.get("p99_ms_by_quarter_of_run")
        if quarters:
            print(f"          first delivery p99 by quarter of the run: {', '.join(quarters)} ms")

    # A run whose subscribers did not all get every QUERY_UPDATE (closed by their node, or not
    # drained in time) measured only what arrived: it is left out of the ratios.
    def complete(r):
        return r["query_updates"] >= r["expected_deliveries"] and not r.get("subscribers_closed_during_run")

    incomplete = sorted({lat_variant(r) for r in latencies if not complete(r)})
    if incomplete:
        print(f"    left out of the ratios (not every QUERY_UPDATE arrived): {', '.join(incomplete)} "
              f"({sum(1 for r in latencies if not complete(r))} of {len(latencies)} runs)")

    def mean_of(name, field):
        values = [r[field] for r in latencies if lat_variant(r) == name and complete(r) and isinstance(r.get(field), (int, float))]
        return statistics.mean(values) if values else None

    for base in ("single-node", "1-node-cluster"):
        for field, what in (("query_update_p50_ms", "QUERY_UPDATE p50"), ("query_update_p99_ms", "QUERY_UPDATE p99"),
                            ("server_event_p99_ms", "SERVER_EVENT p99"), ("writer_ack_p50_ms", "writer ack p50"),
                            ("node_cpu_ms_per_write", "nodes' CPU per write")):
            c, b = mean_of("3-nodes", field), mean_of(base, field)
            if c is not None and b:
                print(f"    3-nodes / {base}: {what} x {c / b:.2f} ({c:.1f} / {b:.1f} ms)")
    c1, s1 = mean_of("1-node-cluster", "query_update_p99_ms"), mean_of("single-node", "query_update_p99_ms")
    if c1 is not None and s1:
        print(f"    1-node-cluster / single-node: QUERY_UPDATE p99 x {c1 / s1:.2f} (the coordination alone, without other nodes)")
    print("    (ratios against the mean of each variant's rounds; issue 3's goal for one node is p99 < 20 ms)")

if node_logs:
    print()
    print("Node logs (failed replications to backups are logged at debug):")
    for log in node_logs:
        levels = ", ".join(f"{k} {v}" for k, v in sorted(log["levels"].items()) if k in ("warning", "error", "critical"))
        line = f"    {log['scenario']}/{log['node']}: {log['replication_failures']} failed replications"
        if log["replication_failures_too_large"]:
            line += f", {log['replication_failures_too_large']} of them too large"
            if log["largest_refused_message_bytes"]:
                line += f" (largest refused message {log['largest_refused_message_bytes'] / 2**20:.1f} MiB)"
        others = log.get("other_failure_reasons") or []
        if others:
            line += "; other reasons: " + ", ".join(f"{n}x {r!r}" for r, n in others[:2])
        if levels:
            line += f"; {levels}"
        print(line)
        if log["first_too_large"]:
            print(f"        first: {log['first_too_large'][:300]}")

times = find("cluster_part_time")
if times:
    print()
    print("Wall time per part: " + ", ".join(f"({t['part']}) {t['seconds']:.0f} s" for t in times))
