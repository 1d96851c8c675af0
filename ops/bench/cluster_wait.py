"""Polls GET <http>/cluster on every node until the cluster is settled, then prints one JSON line.

Settled: every node answers with the same tableVersion (> 0), no partition is MIGRATING on
any node, every node of --expect owns its share (floor or ceil of 271 / nodes) and no other
node owns any, and every node reports the same owner for every partition.

    cluster_wait.py --http URL,URL,... --expect n1,n2,n3 [--new-node n3] [--since EPOCH]
                    [--timeout S] [--label L] [--interval S]

--since: the seconds figure counts from this time (date +%s.%N; e.g. when the new node was
spawned) rather than from the script's start. With --new-node the line also says when that
node first appeared among the members, first owned a partition, and how many partitions
were MIGRATING at most.
"""
import argparse
import json
import sys
import time
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--http", required=True)
parser.add_argument("--expect", required=True)
parser.add_argument("--new-node")
parser.add_argument("--since", type=float)
parser.add_argument("--timeout", type=float, default=300)
parser.add_argument("--interval", type=float, default=0.2)
parser.add_argument("--label", default="cluster")
args = parser.parse_args()

urls = [u.rstrip("/") for u in args.http.split(",") if u]
expect = sorted(args.expect.split(","))
start = args.since if args.since else time.time()
deadline = time.time() + args.timeout
share = (271 // len(expect), -(-271 // len(expect)))


def get(url):
    try:
        with urllib.request.urlopen(url + "/cluster", timeout=5) as response:
            return json.loads(response.read())
    except Exception as error:  # a node still starting, or busy
        return {"error": str(error)}


polls = 0
versions = set()
max_migrating = 0
member_at = owner_at = None
last = None
while True:
    polls += 1
    views = [get(u) for u in urls]
    now = time.time() - start
    ok = all("error" not in v for v in views)
    migrating = 0
    for v in views:
        if "error" in v:
            continue
        versions.add(v["tableVersion"])
        migrating = max(migrating, sum(1 for p in v["partitions"] if p["state"] != "ACTIVE"))
        if args.new_node:
            if member_at is None and any(m["nodeId"] == args.new_node for m in v["members"]):
                member_at = now
            if owner_at is None and any(p["owner"] == args.new_node for p in v["partitions"]):
                owner_at = now
    max_migrating = max(max_migrating, migrating)
    settled = False
    if ok:
        tables = [[(p["partitionId"], p["owner"], p["state"]) for p in v["partitions"]] for v in views]
        owned = {}
        for p in views[0]["partitions"]:
            owned[p["owner"]] = owned.get(p["owner"], 0) + 1
        settled = (
            len({v["tableVersion"] for v in views}) == 1 and views[0]["tableVersion"] > 0 and migrating == 0
            and all(t == tables[0] for t in tables) and sorted(owned) == expect
            and all(share[0] <= owned[n] <= share[1] for n in expect))
        last = {"version": views[0]["tableVersion"], "owned": owned,
                "members": [(m["nodeId"], m["status"]) for m in views[0]["members"]]}
    else:
        last = {"errors": [v.get("error") for v in views]}
    if settled or time.time() > deadline:
        break
    time.sleep(args.interval)

out = {"figure": "cluster_settled", "label": args.label, "settled": settled, "seconds": round(now, 3), "polls": polls,
       "nodes": len(urls), "table_version": last.get("version"), "owned": last.get("owned"),
       "members": last.get("members"), "table_versions_seen": len(versions), "max_migrating_seen": max_migrating}
if args.new_node:
    out.update({"new_node": args.new_node, "new_node_member_s": None if member_at is None else round(member_at, 3),
                "new_node_first_owner_s": None if owner_at is None else round(owner_at, 3)})
if not settled:
    out["last"] = last
print(json.dumps(out))
sys.exit(0 if settled else 1)
