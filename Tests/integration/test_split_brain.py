"""Split brain (issue 15, point 6), with real processes on a real network split: three nodes, each
in a network namespace of its own (netsplit.py), on one PostgreSQL database.

A node cut off from its peers (but not from the database) no longer reaches a majority of its
table: it stops acknowledging PERSISTED and REPLICATED writes and says so in /ready, while the
majority goes on acknowledging; APPLIED writes are still taken on both sides. A node cut off from
everything loses its lease, its partitions fail over to the majority, and the writes it took at
APPLIED meanwhile reach the new owners when the network heals, where they merge (the CRDT
decides, never a side). After healing, every write made on either side is there."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import netsplit
from cluster_support import Cluster, ClusterNode, server_partition
from topgun_client import HLC, connect, new_id, put_op

WAIT = 30.0


class NamespacedNode(ClusterNode):
    def __init__(self, network: netsplit.Network, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.network = network

    def command(self) -> list[str]:
        command = super().command()
        return self.network.run_in(self.node_id) + command + ["--host", self.network.address(self.node_id)]


@pytest.fixture
def split_cluster(topgun_bin, tmp_path_factory, postgres_database):
    reason = netsplit.available()
    if reason:
        pytest.skip(reason)
    url = urllib.parse.urlparse(postgres_database())
    network = netsplit.Network(["n1", "n2", "n3"], url.port or 5432)
    # The nodes reach the database through the forwarder on the bridge.
    postgres_url = url._replace(netloc=f"{url.username}@{network.database_address}:{network.database_port}").geturl()
    made = Cluster(topgun_bin, tmp_path_factory, postgres_url)
    try:
        for node_id in ("n1", "n2", "n3"):
            node = NamespacedNode(network, topgun_bin, tmp_path_factory.mktemp(node_id), postgres_url, node_id, made.master_key_file)
            made.nodes[node_id] = node
            node.start()
        made.settled({"n1", "n2", "n3"})
        yield made, network
    finally:
        network.heal()
        for node in made.nodes.values():
            node.kill()
        network.close()


def ready(node: ClusterNode) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(node.http_url + "/ready", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError as error:
        return 0, {"error": str(error)}


def wait_until(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last})")


def key_owned_by(owner: str, tenant: str, view: dict, prefix: str) -> str:
    owner_of = {p["partitionId"]: p["owner"] for p in view["partitions"]}
    for i in range(10_000):
        key = f"{prefix}-{i}"
        if owner_of[server_partition(key, tenant)] == owner:
            return key
    raise AssertionError(f"no key owned by {owner}")


def put_on(conn, map_name: str, key: str, value, hlc: HLC, concern: str | None, timeout: float = WAIT) -> dict:
    """One write: the OP_ACK, or the ERROR that refused it."""
    op_id = new_id()
    batch = {"type": "OP_BATCH", "payload": {"ops": [put_op(op_id, map_name, key, {"value": value, "timestamp": hlc.now()})]}}
    if concern:
        batch["payload"]["writeConcern"] = concern
    conn.send(batch)
    return conn.wait_for(("OP_ACK", "ERROR"), lambda m: m["type"] == "ERROR" or m["payload"]["lastId"] == op_id, timeout=timeout)


def put(node: ClusterNode, map_name: str, key: str, value, hlc: HLC, concern: str | None, timeout: float = WAIT) -> dict:
    """One write on a fresh connection (a refused write holds back later acks of its connection)."""
    conn = connect(node.ws_url, node.token, timeout=timeout)
    try:
        return put_on(conn, map_name, key, value, hlc, concern, timeout)
    finally:
        conn.close()


def acknowledged(reply: dict, level: str | None = None) -> bool:
    if reply["type"] != "OP_ACK":
        return False
    results = reply["payload"].get("results", [])
    return all(r["success"] for r in results) and (level is None or reply["payload"].get("achievedLevel") == level)


def values(node: ClusterNode, map_name: str) -> dict:
    conn = connect(node.ws_url, node.token, timeout=WAIT)
    try:
        return {r["key"]: r["value"] for r in conn.query(map_name, {}, timeout=WAIT)["results"]}
    finally:
        conn.close()


def test_a_node_cut_off_from_its_peers_stops_acknowledging_and_the_majority_goes_on(split_cluster):
    cluster, network = split_cluster
    n1, n2 = cluster.nodes["n1"], cluster.nodes["n2"]
    view = n1.cluster()
    hlc = HLC("split-writer")
    map_name = "split-" + new_id()[:6]
    mine = key_owned_by("n1", n1.tenant, view, "mine")
    theirs = key_owned_by("n2", n1.tenant, view, "theirs")
    assert acknowledged(put(n1, map_name, mine, "before", hlc, "PERSISTED"), "PERSISTED")

    network.cut_from_peers("n1")
    status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(ready(n1)), "n1 says it is cut off")
    assert "majority" in body.get("detail", ""), body
    assert ready(n2)[0] == 200, "the majority stays ready"

    # The minority refuses to acknowledge what it cannot promise; APPLIED is still taken.
    refused = put(n1, map_name, mine, "during-persisted", hlc, "PERSISTED")
    assert refused["type"] == "ERROR" and refused["payload"]["code"] == 503, refused
    refused = put(n1, map_name, mine, "during-replicated", hlc, "REPLICATED")
    assert refused["type"] == "ERROR" and refused["payload"]["code"] == 503, refused
    assert acknowledged(put(n1, map_name, mine, "during-applied", hlc, "APPLIED"), "APPLIED")
    # The majority acknowledges its own partitions' writes as before.
    assert acknowledged(put(n2, map_name, theirs, "majority", hlc, "PERSISTED"), "PERSISTED")

    network.heal()
    wait_until(lambda: ready(n1)[0] == 200, "n1 ready again after the heal")
    assert acknowledged(put(n1, map_name, mine, "after", hlc, "PERSISTED"), "PERSISTED")
    seen = wait_until(lambda: (lambda v: v if v.get(theirs) == "majority" and v.get(mine) == "after" else None)(values(cluster.nodes["n3"], map_name)),
                      "both sides' writes on n3")
    assert seen[mine] == "after" and seen[theirs] == "majority"


def test_applied_writes_on_both_sides_of_a_full_split_merge_when_it_heals(split_cluster):
    cluster, network = split_cluster
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    view = n1.cluster()
    map_name = "heal-" + new_id()[:6]
    shared = key_owned_by("n1", n1.tenant, view, "shared")
    only_n1 = key_owned_by("n1", n1.tenant, view, "only-n1")
    minority_hlc, majority_hlc = HLC("minority-writer"), HLC("majority-writer")
    assert acknowledged(put(n1, map_name, shared, "before", minority_hlc, "PERSISTED"))

    # n1 loses everything: its peers and the database. Until its lease runs out it still
    # takes writes at APPLIED (in memory, its flushes failing); then the majority takes its
    # partitions over and writes the same key, later.
    # (Connections are opened before: authenticating a new one needs the database.)
    minority_conn = connect(n1.ws_url, n1.token, timeout=WAIT)
    network.cut_from_peers("n1")
    network.cut_from_database("n1")
    try:
        assert acknowledged(put_on(minority_conn, map_name, shared, "minority", minority_hlc, "APPLIED"), "APPLIED")
        assert acknowledged(put_on(minority_conn, map_name, only_n1, "minority-only", minority_hlc, "APPLIED"), "APPLIED")
        refused = put_on(minority_conn, map_name, only_n1, "minority-persisted", minority_hlc, "PERSISTED", timeout=20)
        assert not acknowledged(refused), f"a node without its database and its peers acknowledged PERSISTED: {refused}"
    finally:
        minority_conn.close()
    wait_until(lambda: all(p["owner"] != "n1" for p in n2.cluster()["partitions"]), "n1's partitions fail over", timeout=60)
    assert acknowledged(put(n2, map_name, shared, "majority", majority_hlc, "PERSISTED"), "PERSISTED")

    network.heal()
    wait_until(lambda: ready(n1)[0] == 200, "n1 ready again after the heal", timeout=60)
    cluster.settled({"n1", "n2", "n3"}, timeout=60)
    # The PERSISTED write n1 refused to acknowledge was applied all the same (a refused ack
    # means "not confirmed", and the client sends it again): as the latest write of its key,
    # it wins the merge.
    expected = {shared: "majority", only_n1: "minority-persisted"}
    def merged():
        seen = {n.node_id: {k: values(n, map_name).get(k) for k in expected} for n in (n1, n2, n3)}
        return True if all(view == expected for view in seen.values()) else seen

    deadline = time.monotonic() + 60
    while (outcome := merged()) is not True and time.monotonic() < deadline:
        time.sleep(0.5)
    assert outcome is True, f"the writes of both sides merged, everywhere: {outcome}"
