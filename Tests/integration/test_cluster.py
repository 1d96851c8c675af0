"""The cluster (issue 14): several `topgun data-plane` processes on one PostgreSQL database,
on loopback, with short leases. One 3-node cluster is shared by the module; tests that kill,
add or remove nodes make their own.

What is covered so far: membership leases, the coordinator's table (balanced owners, backups,
epochs), `GET /cluster` agreeing on every node, `PARTITION_MAP` naming every node, a node id
held by a live node refused, a node's writes to its own partitions acknowledged and stored,
and a stopped node's partitions taken over by the others."""
from __future__ import annotations

import math
import subprocess
import threading
import time
import urllib.request

import pytest

from cluster_support import LEASE, PARTITIONS, Cluster, ClusterNode, server_partition
from conftest import _pg_bin
from topgun_client import HLC, Replica, connect, fnv1a, op_batch, or_add_op, put_op, ts_str


def stored_keys(postgres_url: str, map_name: str) -> set[str]:
    result = subprocess.run([_pg_bin("psql"), postgres_url, "-At", "-v", "ON_ERROR_STOP=1", "-c",
                             f"SELECT record_key FROM records WHERE map_name = '{map_name}'"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return set(result.stdout.decode().split())


@pytest.fixture(scope="module")
def cluster(topgun_bin, tmp_path_factory, postgres_database):
    made = Cluster(topgun_bin, tmp_path_factory, postgres_database())
    for node_id in ("n1", "n2", "n3"):
        made.add(node_id)
    made.settled({"n1", "n2", "n3"})
    yield made
    made.stop_all()


def test_three_nodes_split_the_partitions(cluster):
    view = cluster.settled({"n1", "n2", "n3"})
    for node in cluster.running():
        assert node.cluster() == view, "every node reports the same table"
    assert view["clusterId"]
    members = {m["nodeId"]: m for m in view["members"]}
    assert set(members) == {"n1", "n2", "n3"}
    for node_id, node in cluster.nodes.items():
        assert members[node_id]["status"] == "ACTIVE"
        assert members[node_id]["websocket"] == node.ws_url
        assert members[node_id]["http"] == node.http_url
    partitions = view["partitions"]
    assert [p["partitionId"] for p in partitions] == list(range(PARTITIONS))
    owned = {n: sum(1 for p in partitions if p["owner"] == n) for n in members}
    assert max(owned.values()) <= math.ceil(PARTITIONS / 3) + 1 and min(owned.values()) >= PARTITIONS // 3 - 1, owned
    for p in partitions:
        assert len(p["backups"]) == 1 and p["backups"][0] != p["owner"] and p["backups"][0] in members, p
        assert p["epoch"] >= 1 and p["state"] == "ACTIVE"


def test_metrics_name_the_clusters_table_and_streams(cluster):
    cluster.settled({"n1", "n2", "n3"})
    for node in cluster.running():
        with urllib.request.urlopen(node.http_url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("topgun_cluster_")}
        assert values.get("topgun_cluster_members") == 3, values
        assert 89 <= values.get("topgun_cluster_partitions_owned", 0) <= 92, values
        # A settled cluster on loopback has lost no push between its nodes.
        assert values.get("topgun_cluster_stream_gaps_total") == 0, values
        assert values.get("topgun_cluster_stream_overflows_total") == 0, values


def test_a_client_on_one_node_writes_keys_every_node_owns(cluster):
    view = cluster.settled({"n1", "n2", "n3"})
    owner_of = {p["partitionId"]: p["owner"] for p in view["partitions"]}
    node = cluster.nodes["n1"]
    keys = [f"spread-{i}" for i in range(60)]
    owners = {owner_of[server_partition(k, node.tenant)] for k in keys}
    assert owners == {"n1", "n2", "n3"}, "the keys fall in partitions of every node"
    conn = connect(node.ws_url, node.token)
    try:
        hlc = HLC("spread-writer")
        ops = [put_op(f"s-{i}", "cluster-spread", key, {"value": {"k": key}, "timestamp": hlc.now()}) for i, key in enumerate(keys)]
        ack = conn.write(ops, timeout=30)["payload"]
    finally:
        conn.close()
    assert ack["achievedLevel"] == "PERSISTED", ack
    assert all(r["success"] for r in ack["results"]), ack
    # Acknowledged at PERSISTED: committed to the shared records table by each key's owner.
    assert set(keys) <= stored_keys(cluster.postgres_url, "cluster-spread")


def test_replicated_writes_wait_for_the_backups(cluster):
    node = cluster.nodes["n3"]
    cluster.settled({"n1", "n2", "n3"})
    keys = [f"replicated-{i}" for i in range(30)]
    conn = connect(node.ws_url, node.token)
    try:
        hlc = HLC("replicated-writer")
        ops = [put_op(f"r-{i}", "cluster-replicated", key, {"value": {"i": i}, "timestamp": hlc.now()}) for i, key in enumerate(keys)]
        ack = conn.write(ops, write_concern="REPLICATED", timeout=30)["payload"]
    finally:
        conn.close()
    assert ack["achievedLevel"] == "REPLICATED", ack
    assert all(r["success"] and r["achievedLevel"] == "REPLICATED" for r in ack["results"]), ack


def test_merkle_sync_on_any_node_sees_every_owners_records(cluster):
    """A client that was offline catches up through Merkle sync on whichever node it reaches:
    the map's tree and leaves are gathered from every owner (LWW and OR-Map)."""
    cluster.settled({"n1", "n2", "n3"})
    writer_node = cluster.nodes["n1"]
    lww_name, or_name = "cluster-merkle", "cluster-merkle-or"
    # The LWW records are written through all three nodes, 40 each (every owner's keys each time).
    for index, node_id in enumerate(("n2", "n3")):
        other = Replica(f"merkle-writer-{node_id}", cluster.nodes[node_id].ws_url, cluster.nodes[node_id].token)
        other_conn = other.connect()
        try:
            ops = [put_op(f"m-{i}", lww_name, f"mk-{i}", {"value": {"i": i}, "timestamp": other.hlc.now()}) for i in range(40 * (index + 1), 40 * (index + 2))]
            assert other_conn.write(ops, timeout=30)["payload"]["achievedLevel"] == "PERSISTED"
        finally:
            other.disconnect()
    writer = Replica("merkle-writer", writer_node.ws_url, writer_node.token)
    conn = writer.connect()
    try:
        ops = [put_op(f"m-{i}", lww_name, f"mk-{i}", {"value": {"i": i}, "timestamp": writer.hlc.now()}) for i in range(40)]
        assert conn.write(ops, timeout=30)["payload"]["achievedLevel"] == "PERSISTED"
        or_ops = []
        for i in range(40):
            t = writer.hlc.now()
            or_ops.append(or_add_op(f"o-{i}", or_name, f"set-{i % 8}", {"value": f"item-{i}", "timestamp": t, "tag": ts_str(t)}))
        conn.write(or_ops, timeout=30)
    finally:
        writer.disconnect()
    for node_id in ("n1", "n2", "n3"):
        node = cluster.nodes[node_id]
        reader = Replica(f"merkle-reader-{node_id}", node.ws_url, node.token)
        reader.connect()
        try:
            stats = reader.merkle_sync(lww_name, timeout=30)
            assert stats["merged"] == 120, stats
            assert reader.merkle_sync(lww_name, timeout=30)["serverRoot"] == reader.lww(lww_name).root(), "roots equal after the catch-up"
            assert {k: v["i"] for k, v in reader.lww(lww_name).live().items()} == {f"mk-{i}": i for i in range(120)}
            or_stats = reader.ormap_sync(or_name, timeout=30)
            assert or_stats["added"] == 40, or_stats
            assert reader.ormap_sync(or_name, timeout=30)["serverRoot"] == reader.ormap(or_name).root()
        finally:
            reader.disconnect()


def test_partition_map_names_every_node(cluster):
    node = cluster.nodes["n2"]
    view = cluster.settled({"n1", "n2", "n3"})
    conn = connect(node.ws_url, node.token)
    try:
        conn.send({"type": "PARTITION_MAP_REQUEST", "payload": {"currentVersion": 0}})
        payload = conn.wait_for("PARTITION_MAP")["payload"]
    finally:
        conn.close()
    assert payload["version"] == view["tableVersion"]
    assert {n["nodeId"]: n["endpoints"]["websocket"] for n in payload["nodes"]} == {i: n.ws_url for i, n in cluster.nodes.items()}
    owner_of = {p["partitionId"]: p["owner"] for p in view["partitions"]}
    # Entry p of the map is the client partition p: rotated by the tenant's offset.
    offset = fnv1a(node.tenant) % PARTITIONS
    for entry in payload["partitions"]:
        assert entry["ownerNodeId"] == owner_of[(entry["partitionId"] + offset) % PARTITIONS]


def test_a_node_id_held_by_a_live_node_is_refused(cluster):
    twin = ClusterNode(cluster.binary, cluster.tmp.mktemp("twin"), cluster.postgres_url, "n1", cluster.master_key_file)
    result = subprocess.run(twin.command(), capture_output=True, timeout=60, cwd=twin.workdir)
    assert result.returncode != 0
    assert b"held by another live node" in result.stderr, result.stderr.decode()[-2000:]


def test_a_stopped_node_hands_its_partitions_to_the_others(topgun_bin, tmp_path_factory, postgres_database):
    small = Cluster(topgun_bin, tmp_path_factory, postgres_database())
    try:
        for node_id in ("a", "b"):
            small.add(node_id)
        before = small.settled({"a", "b"})
        assert small.nodes["b"].stop(timeout=30) == 0, small.nodes["b"].stderr_tail()
        after = small.settled({"a"})
        assert after["tableVersion"] > before["tableVersion"]
        moved = [p for p in after["partitions"] if before["partitions"][p["partitionId"]]["owner"] == "b"]
        assert moved and all(p["epoch"] > before["partitions"][p["partitionId"]]["epoch"] for p in moved)
        # Once it has left, its lease is gone: the others no longer list it.
        deadline = time.monotonic() + 10
        while "b" in {m["nodeId"] for m in small.nodes["a"].cluster()["members"]}:
            assert time.monotonic() < deadline, small.nodes["a"].cluster()["members"]
            time.sleep(0.1)
    finally:
        small.stop_all()


def test_a_killed_node_fails_over_after_its_lease(topgun_bin, tmp_path_factory, postgres_database):
    small = Cluster(topgun_bin, tmp_path_factory, postgres_database())
    try:
        for node_id in ("a", "b"):
            small.add(node_id)
        small.settled({"a", "b"})
        small.nodes["b"].kill()
        after = small.settled({"a"}, timeout=30)
        statuses = {m["nodeId"]: m["status"] for m in after["members"]}
        assert statuses.get("a") == "ACTIVE"
        # The dead node is gone from the table's members once its partitions moved.
        assert statuses.get("b") in (None, "DEAD")
    finally:
        small.stop_all()


# ---------------------------------------------------------------------------------------------
# Membership changes under load: every acknowledged write survives.


class Writer(threading.Thread):
    """Writes batches of new keys through one node (moving to the next node of `nodes` when its
    connection fails, as a cluster-mode client does) and keeps what was acknowledged."""

    def __init__(self, nodes: list[ClusterNode], map_name: str, prefix: str, batch: int = 20,
                 write_concern: str = "PERSISTED"):
        super().__init__(daemon=True)
        self.write_concern = write_concern
        self.nodes = nodes
        self.map_name = map_name
        self.prefix = prefix
        self.batch = batch
        self.acked: dict[str, int] = {}
        self.refused = 0
        self.failures = 0
        self.halt = threading.Event()
        self.hlc = HLC(f"writer-{prefix}")

    def run(self):
        conn = None
        index = 0
        turn = 0
        pending = None
        while not self.halt.is_set():
            node = self.nodes[turn % len(self.nodes)]
            try:
                if conn is None:
                    if not node.alive():
                        turn += 1
                        continue
                    conn = connect(node.ws_url, node.token)
                if pending is None:
                    keys = [f"{self.prefix}-{index + j}" for j in range(self.batch)]
                    pending = (keys, [put_op(f"{self.prefix}-op-{index + j}", self.map_name, key,
                                             {"value": {"n": index + j}, "timestamp": self.hlc.now()})
                                      for j, key in enumerate(keys)], index)
                    index += self.batch
                keys, ops, first = pending
                conn.send(op_batch(ops, None if self.write_concern == "PERSISTED" else self.write_concern))
                last = ops[-1]["id"]
                reply = conn.wait_for(("OP_ACK", "ERROR"), lambda m: m["type"] == "ERROR" or m["payload"]["lastId"] == last, timeout=20)
                if reply["type"] == "OP_ACK" and all(r["success"] for r in reply["payload"]["results"]):
                    assert reply["payload"]["achievedLevel"] in ("PERSISTED", self.write_concern), reply
                    for j, key in enumerate(keys):
                        self.acked[key] = first + j
                    pending = None
                else:
                    # Not acknowledged: sent again (as the TypeScript client does), the same ops.
                    self.refused += 1
                    time.sleep(0.05)
            except Exception:  # the node went away: the next one
                self.failures += 1
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
                conn = None
                turn += 1
                time.sleep(0.1)
        if conn is not None:
            conn.close()

    def stop(self) -> dict[str, int]:
        self.halt.set()
        self.join(60)
        return self.acked


def stored_values(postgres_url: str, map_name: str) -> dict[str, int]:
    """Every stored LWW row of `map_name` and its `n`, read from the records table's payload via the
    server's own reader: a query on each key's owner (below) checks memory; this checks storage."""
    result = subprocess.run([_pg_bin("psql"), postgres_url, "-At", "-v", "ON_ERROR_STOP=1", "-c",
                             f"SELECT record_key FROM records WHERE map_name = '{map_name}' AND kind = 'lww'"],
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return {key: 0 for key in result.stdout.decode().split()}


def check_acknowledged(cluster_: Cluster, acked: dict[str, int], map_name: str) -> None:
    assert acked, "the writer got acknowledgements"
    # A write acknowledged at REPLICATED is in memory on its owner and backups, and committed
    # soon after (a failed-over one once its new owner wrote what the copy held, a displaced one
    # once its new owner took it): storage must hold it eventually, not at once.
    deadline = time.monotonic() + 30
    while True:
        stored = stored_values(cluster_.postgres_url, map_name)
        missing = [k for k in acked if k not in stored]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not missing, f"{len(missing)} acknowledged writes are not stored, e.g. {missing[:5]}"
    # And each owner holds them in memory: a query pinned to keys is served by their owner
    # (asked again while the table still moves: a node refuses keys it does not own).
    some = cluster_.running()[0]
    keys = sorted(acked)
    for start in range(0, len(keys), 200):
        chunk = keys[start:start + 200]
        deadline = time.monotonic() + 30
        pending = set(chunk)
        while pending:
            assert time.monotonic() < deadline, f"keys not readable from their owners: {sorted(pending)[:5]}"
            owner_of = {p["partitionId"]: p["owner"] for p in some.cluster()["partitions"]}
            by_owner: dict[str, list[str]] = {}
            for key in sorted(pending):
                by_owner.setdefault(owner_of[server_partition(key, some.tenant)], []).append(key)
            for owner, owned in by_owner.items():
                node = cluster_.nodes[owner]
                conn = connect(node.ws_url, node.token)
                try:
                    qid = f"check-{start}-{owner}-{time.monotonic_ns()}"
                    conn.send({"type": "QUERY_SUB", "payload": {"queryId": qid, "mapName": map_name,
                                                                  "query": {"where": {"_key": {"$in": owned}}}}})
                    reply = conn.wait_for(("QUERY_RESP", "ERROR"),
                                          lambda m: m["type"] == "ERROR" or m["payload"]["queryId"] == qid, timeout=30)
                finally:
                    conn.close()
                if reply["type"] == "ERROR":
                    continue
                found = {r["key"]: r["value"]["n"] for r in reply["payload"]["results"]}
                assert found == {k: acked[k] for k in owned}, f"node {owner} lacks or differs on {set(owned) ^ set(found)}"
                pending -= set(owned)
            if pending:
                time.sleep(0.3)


def test_a_joining_node_takes_partitions_while_writers_run(topgun_bin, tmp_path_factory, postgres_database):
    grow = Cluster(topgun_bin, tmp_path_factory, postgres_database())
    try:
        for node_id in ("a", "b"):
            grow.add(node_id)
        grow.settled({"a", "b"})
        # A cluster-aware client follows the map: it is sent each newer one.
        follower = connect(grow.nodes["a"].ws_url, grow.nodes["a"].token)
        follower.send({"type": "PARTITION_MAP_REQUEST", "payload": {"currentVersion": 0}})
        first = follower.wait_for("PARTITION_MAP")["payload"]
        writers = [Writer([grow.nodes["a"], grow.nodes["b"]], "join-load", f"w{i}") for i in range(2)]
        for w in writers:
            w.start()
        time.sleep(1)
        grow.add("c")
        after = grow.settled({"a", "b", "c"}, timeout=60)
        pushed = follower.wait_for("PARTITION_MAP", lambda m: m["payload"]["version"] >= after["tableVersion"], timeout=10)["payload"]
        follower.close()
        assert pushed["version"] > first["version"]
        assert "c" in {n["nodeId"] for n in pushed["nodes"]}
        time.sleep(0.5)
        acked = {}
        for w in writers:
            acked.update(w.stop())
        owned_by_c = sum(1 for p in after["partitions"] if p["owner"] == "c")
        assert owned_by_c >= PARTITIONS // 3 - 1
        check_acknowledged(grow, acked, "join-load")
    finally:
        grow.stop_all()


def test_a_node_killed_under_load_loses_no_acknowledged_write(topgun_bin, tmp_path_factory, postgres_database):
    crash = Cluster(topgun_bin, tmp_path_factory, postgres_database())
    try:
        for node_id in ("a", "b", "c"):
            crash.add(node_id)
        crash.settled({"a", "b", "c"})
        writers = [Writer([crash.nodes["a"], crash.nodes["b"]], "kill-load", "k0"),
                   Writer([crash.nodes["c"], crash.nodes["a"]], "kill-load", "k1"),
                   Writer([crash.nodes["b"], crash.nodes["a"]], "kill-load", "k2", write_concern="REPLICATED")]
        for w in writers:
            w.start()
        time.sleep(1.5)
        crash.nodes["c"].kill()
        killed = time.monotonic()
        # Its partitions have new owners once its lease expired and the coordinator noticed:
        # within the lease and two heartbeats, checked with twice that as slack.
        deadline = 2 * (float(LEASE[1]) + 2 * float(LEASE[3]))
        while any(p["owner"] == "c" for p in crash.nodes["a"].cluster()["partitions"]):
            assert time.monotonic() - killed < deadline, f"the dead node still owns partitions after {deadline} s"
            time.sleep(0.05)
        crash.settled({"a", "b"}, timeout=60)
        time.sleep(1)
        acked = {}
        for w in writers:
            acked.update(w.stop())
        check_acknowledged(crash, acked, "kill-load")
        # Restarted under the same id, it rejoins (once its old lease expired) and gets its
        # share back; nothing acknowledged goes missing on the way.
        crash.nodes["c"].start()
        after = crash.settled({"a", "b", "c"}, timeout=60)
        assert sum(1 for p in after["partitions"] if p["owner"] == "c") >= PARTITIONS // 3 - 1
        check_acknowledged(crash, acked, "kill-load")
    finally:
        crash.stop_all()


def test_a_node_restarted_at_once_under_load_loses_no_acknowledged_write(topgun_bin, tmp_path_factory, postgres_database):
    crash = Cluster(topgun_bin, tmp_path_factory, postgres_database())
    try:
        for node_id in ("a", "b", "c"):
            crash.add(node_id)
        crash.settled({"a", "b", "c"})
        # Killed and started again at once under load: the new run takes its lease the moment
        # the old one expires, racing the coordinator's failover of the old run's partitions,
        # and then takes its share back by migration while the writers go on.
        writers = [Writer([crash.nodes["a"], crash.nodes["b"]], "restart-load", "r0"),
                   Writer([crash.nodes["b"], crash.nodes["a"]], "restart-load", "r1", write_concern="REPLICATED")]
        for w in writers:
            w.start()
        time.sleep(1.5)
        crash.nodes["b"].kill()
        crash.nodes["b"].start()
        crash.settled({"a", "b", "c"}, timeout=60)
        time.sleep(1)
        acked = {}
        for w in writers:
            acked.update(w.stop())
        assert any(key.startswith("r1-") for key in acked), "no REPLICATED write was acknowledged"
        check_acknowledged(crash, acked, "restart-load")
    finally:
        crash.stop_all()


def test_a_node_leaving_under_load_hands_its_partitions_over(topgun_bin, tmp_path_factory, postgres_database):
    shrink = Cluster(topgun_bin, tmp_path_factory, postgres_database())
    try:
        for node_id in ("a", "b", "c"):
            shrink.add(node_id)
        shrink.settled({"a", "b", "c"})
        writers = [Writer([shrink.nodes["a"]], "leave-load", "l0"), Writer([shrink.nodes["b"]], "leave-load", "l1")]
        for w in writers:
            w.start()
        time.sleep(1)
        assert shrink.nodes["c"].stop(timeout=60) == 0, shrink.nodes["c"].stderr_tail()
        after = shrink.settled({"a", "b"}, timeout=30)
        assert all(p["owner"] != "c" and "c" not in p["backups"] for p in after["partitions"])
        time.sleep(0.5)
        acked = {}
        for w in writers:
            acked.update(w.stop())
        check_acknowledged(shrink, acked, "leave-load")
    finally:
        shrink.stop_all()
