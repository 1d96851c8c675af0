"""Shared by the cluster tests (test_cluster.py, test_cluster_domains.py): a data-plane node of a
cluster, a cluster of such nodes on one PostgreSQL database with short leases, and the server's
partition function (a key's partition, or a counter's or lock's name's)."""
from __future__ import annotations

import json
import time
import urllib.request

from conftest import TopGunProcess
from topgun_client import fnv1a

PARTITIONS = 271
LEASE = ("--lease-timeout", "1.5", "--heartbeat-interval", "0.3")


class ClusterNode(TopGunProcess):
    """A data-plane node of a cluster: its own node id, a shared master key, a cluster port."""

    def __init__(self, binary, workdir, postgres_url, node_id, master_key_file, extra_args=()):
        super().__init__(binary, "postgres", workdir, postgres_url=postgres_url, extra_args=extra_args)
        self.node_id = node_id
        self.master_key_file = master_key_file

    def command(self) -> list[str]:
        return [self.binary, "data-plane", "--postgres-url", self.postgres_url, "--master-key-file", str(self.master_key_file),
                "--port", "0", "--json", "--dev-tenant", "--node-id", self.node_id, "--cluster-port", "0", *LEASE] + self.extra_args

    def cluster(self) -> dict:
        with urllib.request.urlopen(self.http_url + "/cluster", timeout=10) as response:
            assert response.headers["Content-Type"] == "application/json"
            return json.loads(response.read())


class Cluster:
    def __init__(self, topgun_bin, tmp_path_factory, postgres_url):
        self.binary = topgun_bin
        self.tmp = tmp_path_factory
        self.postgres_url = postgres_url
        self.master_key_file = tmp_path_factory.mktemp("cluster-key") / "master.key"
        self.nodes: dict[str, ClusterNode] = {}

    def add(self, node_id: str, start: bool = True, extra_args=()) -> ClusterNode:
        node = ClusterNode(self.binary, self.tmp.mktemp(node_id), self.postgres_url, node_id, self.master_key_file, extra_args)
        self.nodes[node_id] = node
        if start:
            node.start()
        return node

    def running(self) -> list[ClusterNode]:
        return [n for n in self.nodes.values() if n.alive()]

    def settled(self, members: set[str], timeout: float = 30) -> dict:
        """Waits until every running node reports one table whose owners are exactly `members`."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            views = [n.cluster() for n in self.running()]
            versions = {v["tableVersion"] for v in views}
            partitions = views[0]["partitions"]
            owned = [sum(1 for p in partitions if p["owner"] == m) for m in members]
            if (len(versions) == 1 and {p["owner"] for p in partitions} == members and max(owned) - min(owned) <= 1
                    and all(p["state"] == "ACTIVE" for p in partitions)):
                return views[0]
            last = [(v["tableVersion"], sorted({p["owner"] for p in v["partitions"]})) for v in views]
            time.sleep(0.1)
        raise AssertionError(f"the cluster did not settle on {sorted(members)}: {last}")

    def stop_all(self):
        for node in self.nodes.values():
            node.stop()


def server_partition(key: str, tenant: str) -> int:
    return (fnv1a(key) % PARTITIONS + fnv1a(tenant) % PARTITIONS) % PARTITIONS


def start_cluster(topgun_bin, tmp_path_factory, postgres_url, nodes=("n1", "n2", "n3")) -> Cluster:
    """A cluster of `nodes`, settled with every node owning its share. Nodes starting together
    move most partitions in a few rounds of migrations: on a loaded 2-core machine that can
    take well over the usual 30 s."""
    made = Cluster(topgun_bin, tmp_path_factory, postgres_url)
    try:
        for node_id in nodes:
            made.add(node_id)
        made.settled(set(nodes), timeout=120)
    except BaseException:
        kill_all(made)
        raise
    return made


def kill_all(cluster_: Cluster) -> None:
    # Nothing is checked at the end: SIGKILL is quicker than graceful leaves in turn.
    for node in cluster_.nodes.values():
        node.kill()
