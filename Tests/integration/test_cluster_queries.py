"""Live queries across cluster nodes (issue 15, point 1): a QUERY_SUB on any node answers as one
node holding every record would (where, sort, limit, projection), and its QUERY_UPDATEs and
SERVER_EVENTs come from whichever owners the writes land on; when partitions move (a node
joins) or fail over (a node is killed), the subscription carries on without resubscribing and
its result equals a fresh QUERY_SUB's.

Each subscriber's result is kept by applying its updates strictly: an ENTER for a key it holds,
or an UPDATE or LEAVE for one it does not, fails the test (a lost or duplicated update)."""
from __future__ import annotations

import random
import threading
import time

import pytest

from cluster_support import ClusterNode, kill_all, server_partition, start_cluster
from topgun_client import HLC, Connection, connect, http_sync, new_id, put_op, remove_op, summarize

WAIT = 30.0
MAP_WAIT = 60.0


@pytest.fixture(scope="module")
def cluster(topgun_bin, tmp_path_factory, postgres_database):
    made = start_cluster(topgun_bin, tmp_path_factory, postgres_database())
    yield made
    kill_all(made)


class Subscriber:
    """A live query and the result its messages build, checked strictly. Subscribers sharing a
    connection share what it receives: whichever pumps hands each message to its owner."""

    by_connection: dict[int, list["Subscriber"]] = {}

    def __init__(self, conn: Connection, map_name: str, query: dict, fields: list[str] | None = None):
        self.conn = conn
        self.query_id = new_id()
        self.events: list[dict] = []
        self.siblings = Subscriber.by_connection.setdefault(id(conn), [])
        self.siblings.append(self)
        first = conn.query(map_name, query, fields=fields, query_id=self.query_id, timeout=WAIT)
        self.has_more = first.get("hasMore")
        self.result: dict[str, object] = {}
        for item in first["results"]:
            assert item["key"] not in self.result, f"key {item['key']} twice in QUERY_RESP"
            self.result[item["key"]] = item["value"]
        self.limit = query.get("limit")

    def pump(self, within: float = 0.2) -> None:
        for message in self.conn.collect(within):
            if message.get("type") == "SERVER_EVENT":
                self.siblings[0].events.append(message["payload"])
            if message.get("type") != "QUERY_UPDATE":
                continue
            for sibling in self.siblings:
                if sibling.query_id == message["payload"]["queryId"]:
                    sibling.apply(message["payload"])

    def apply(self, update: dict) -> None:
        if True:
            key, change = update["key"], update["changeType"]
            if change == "ENTER":
                assert key not in self.result, f"ENTER for {key}, which the subscriber holds: {summarize(update)}"
                self.result[key] = update["value"]
            elif change == "UPDATE":
                assert key in self.result, f"UPDATE for {key}, which the subscriber does not hold: {summarize(update)}"
                self.result[key] = update["value"]
            elif change == "LEAVE":
                assert key in self.result, f"LEAVE for {key}, which the subscriber does not hold: {summarize(update)}"
                del self.result[key]
            if self.limit is not None:
                assert len(self.result) <= self.limit, f"{len(self.result)} rows held under limit {self.limit}"

    def wait_for(self, expected: dict, timeout: float = WAIT, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if self.result == expected:
                return
        missing = sorted(set(expected) - set(self.result))[:10]
        extra = sorted(set(self.result) - set(expected))[:10]
        differ = sorted(k for k in set(expected) & set(self.result) if expected[k] != self.result[k])[:10]
        raise AssertionError(f"{what}: result differs: missing {missing}, extra {extra}, different {differ}")


def fresh(node: ClusterNode, map_name: str, query: dict, fields=None) -> dict:
    conn = connect(node.ws_url, node.token, timeout=WAIT)
    try:
        resp = conn.query(map_name, query, fields=fields, timeout=WAIT)
        return {item["key"]: item["value"] for item in resp["results"]}
    finally:
        conn.close()


def expected_rows(values: dict[str, dict], group: int, limit: int | None, fields=None) -> dict:
    rows = [(k, v) for k, v in values.items() if v is not None and v["group"] == group]
    rows.sort(key=lambda kv: (-kv[1]["rank"], kv[0]))
    if limit is not None:
        rows = rows[:limit]
    if fields:
        return {k: {f: v[f] for f in fields if f in v} for k, v in rows}
    return dict(rows)


def write(conn: Connection, hlc: HLC, map_name: str, changes: list[tuple[str, dict | None]]) -> None:
    ops = []
    for key, value in changes:
        op_id = new_id()
        if value is None:
            ops.append(remove_op(op_id, map_name, key, {"value": None, "timestamp": hlc.now()}))
        else:
            ops.append(put_op(op_id, map_name, key, {"value": value, "timestamp": hlc.now()}))
    ack = conn.write(ops, timeout=WAIT)["payload"]
    assert all(r["success"] for r in ack.get("results", [])), ack


def query_for(group: int, limit: int | None) -> dict:
    query: dict = {"where": {"group": group}, "sort": {"rank": "desc"}}
    if limit is not None:
        query["limit"] = limit
    return query


def test_a_live_query_on_one_node_answers_and_follows_writes_through_every_node(cluster):
    map_name = "cq-" + new_id()[:8]
    nodes = [cluster.nodes[n] for n in ("n1", "n2", "n3")]
    tenant = nodes[0].tenant
    view = nodes[0].cluster()
    owner_of = {p["partitionId"]: p["owner"] for p in view["partitions"]}
    keys = [f"row-{i:03d}" for i in range(90)]
    assert {owner_of[server_partition(k, tenant)] for k in keys} == {"n1", "n2", "n3"}

    writers = [connect(n.ws_url, n.token, timeout=WAIT) for n in nodes]
    hlc = HLC("cq-writer")
    values: dict[str, dict | None] = {}
    try:
        initial = [(k, {"rank": i * 7 % 90, "group": i % 3, "name": k}) for i, k in enumerate(keys)]
        write(writers[1], hlc, map_name, initial)
        values.update(dict(initial))

        sub_conn = connect(nodes[0].ws_url, nodes[0].token, timeout=WAIT)
        try:
            top = Subscriber(sub_conn, map_name, query_for(1, 5))
            everything = Subscriber(sub_conn, map_name, query_for(1, None), fields=["rank"])
            assert top.result == expected_rows(values, 1, 5)
            assert top.has_more is True
            assert everything.result == expected_rows(values, 1, None, ["rank"])
            assert fresh(nodes[2], map_name, query_for(1, 5)) == top.result, "the same answer on another node"

            # Random writes through every node: new rows, rank changes that move rows in and out
            # of the top 5, group changes (leave/enter), deletes.
            rng = random.Random(1915)
            for round_ in range(12):
                changes = []
                for _ in range(6):
                    key = rng.choice(keys + [f"new-{round_}-{j}" for j in range(3)])
                    if rng.random() < 0.15 and values.get(key) is not None:
                        changes.append((key, None))
                    else:
                        changes.append((key, {"rank": rng.randrange(200), "group": rng.randrange(3), "name": key}))
                write(writers[round_ % 3], hlc, map_name, changes)
                for key, value in changes:
                    values[key] = value
                top.pump(0.05)
                everything.pump(0.05)
            top.wait_for(expected_rows(values, 1, 5), what="top 5 after the writes")
            everything.wait_for(expected_rows(values, 1, None, ["rank"]), what="every match after the writes")
            assert fresh(nodes[1], map_name, query_for(1, 5)) == top.result
            # SERVER_EVENTs of writes that reached every owner came to the subscriber once each.
            assert top.events or everything.events
        finally:
            sub_conn.close()
    finally:
        for conn in writers:
            conn.close()


def test_a_clients_own_writes_are_not_echoed_to_it_whichever_node_owns_them(cluster):
    """One node sends a write's SERVER_EVENT to every watcher of the map but its writer; so does
    the cluster, whether the written keys' owner is the writer's node or another."""
    map_name = "cq-echo-" + new_id()[:8]
    n1, n2 = cluster.nodes["n1"], cluster.nodes["n2"]
    tenant = n1.tenant
    owner_of = {p["partitionId"]: p["owner"] for p in n1.cluster()["partitions"]}
    # Six keys owned by each node (which keys those are depends on the tenant's id).
    by_owner: dict[str, list[str]] = {"n1": [], "n2": [], "n3": []}
    for i in range(10_000):
        key = f"echo-{i:04d}"
        owned = by_owner[owner_of[server_partition(key, tenant)]]
        if len(owned) < 6:
            owned.append(key)
        if all(len(owned) == 6 for owned in by_owner.values()):
            break
    keys = sorted(k for owned in by_owner.values() for k in owned)
    assert len(keys) == 18
    writer_conn = connect(n1.ws_url, n1.token, timeout=WAIT)
    other_conn = connect(n2.ws_url, n2.token, timeout=WAIT)
    try:
        writer = Subscriber(writer_conn, map_name, {})
        other = Subscriber(other_conn, map_name, {})
        hlc = HLC("echo-writer")
        for start in range(0, len(keys), 6):
            write(writer_conn, hlc, map_name, [(k, {"rank": i, "group": 0}) for i, k in enumerate(keys[start:start + 6], start)])
        expected = {k: {"rank": i, "group": 0} for i, k in enumerate(keys)}
        writer.wait_for(expected, what="the writer's own live query")
        other.wait_for(expected, what="the other client's live query")
        writer.pump(0.5)
        other.pump(0.5)
        assert sorted(e["key"] for e in other.events) == keys, "every other watcher gets each write's SERVER_EVENT once"
        assert [e["key"] for e in writer.events] == [], "the writer is sent none of its own writes' SERVER_EVENTs"
    finally:
        writer_conn.close()
        other_conn.close()


def test_a_key_pinned_live_query_follows_its_keys_owners(cluster):
    map_name = "cq-pinned-" + new_id()[:8]
    nodes = [cluster.nodes[n] for n in ("n1", "n2", "n3")]
    keys = [f"pin-{i}" for i in range(6)]
    writer = connect(nodes[2].ws_url, nodes[2].token, timeout=WAIT)
    hlc = HLC("pin-writer")
    try:
        write(writer, hlc, map_name, [(k, {"rank": i, "group": 0}) for i, k in enumerate(keys + ["other"])])
        sub_conn = connect(nodes[0].ws_url, nodes[0].token, timeout=WAIT)
        try:
            pinned = Subscriber(sub_conn, map_name, {"where": {"_key": {"$in": keys[:3]}}})
            assert set(pinned.result) == set(keys[:3])
            write(writer, hlc, map_name, [(keys[0], {"rank": 100, "group": 0}), ("other", {"rank": 5, "group": 1})])
            pinned.wait_for({keys[0]: {"rank": 100, "group": 0}, keys[1]: {"rank": 1, "group": 0}, keys[2]: {"rank": 2, "group": 0}},
                            what="pinned keys after a write")
        finally:
            sub_conn.close()
    finally:
        writer.close()


class Churn(threading.Thread):
    """Writes random rows through the given nodes until stopped; remembers the last acknowledged
    value of each key (writes refused while partitions move are simply not counted)."""

    def __init__(self, nodes: list[ClusterNode], map_name: str, keys: list[str], seed: int):
        super().__init__(daemon=True)
        self.nodes, self.map_name, self.keys = nodes, map_name, keys
        self.rng = random.Random(seed)
        self.values: dict[str, dict | None] = {}
        self.stopping = threading.Event()
        self.acked = 0
        self.failure: BaseException | None = None

    def run(self):
        hlc = HLC(f"churn-{self.map_name}")
        conns: dict[str, Connection] = {}
        try:
            while not self.stopping.is_set():
                node = self.rng.choice([n for n in self.nodes if n.alive()])
                key = self.rng.choice(self.keys)
                value = {"rank": self.rng.randrange(500), "group": self.rng.randrange(2), "name": key}
                try:
                    conn = conns.get(node.node_id) or connect(node.ws_url, node.token, timeout=10)
                    conns[node.node_id] = conn
                    op_id = new_id()
                    conn.send({"type": "OP_BATCH", "payload": {"ops": [put_op(op_id, self.map_name, key, {"value": value, "timestamp": hlc.now()})]}})
                    ack = conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == op_id, timeout=10)["payload"]
                    if all(r["success"] for r in ack.get("results", [])):
                        self.values[key] = value
                        self.acked += 1
                except Exception:
                    # The node is going, or refused the write: it is not counted; try elsewhere.
                    old = conns.pop(node.node_id, None)
                    if old is not None:
                        old.close()
                    time.sleep(0.05)
                time.sleep(0.01)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.failure = error
        finally:
            for conn in conns.values():
                conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        assert self.failure is None, self.failure


def pump_until_settled(made, members: set[str], subscribers, timeout: float = 60) -> None:
    """Reads the subscribers' updates until the cluster settles on `members`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for subscriber, _, _ in subscribers:
            subscriber.pump(0.2)
        try:
            made.settled(members, timeout=0.5)
            return
        except AssertionError:
            continue
    made.settled(members, timeout=0.5)


def keep_writing(churn: "Churn", subscribers, more: int = 60, timeout: float = 30) -> None:
    """Reads the subscribers' updates until the churn acknowledged `more` writes."""
    target = churn.acked + more
    deadline = time.monotonic() + timeout
    while churn.acked < target and time.monotonic() < deadline:
        for subscriber, _, _ in subscribers:
            subscriber.pump(0.2)


def all_values(node: ClusterNode, map_name: str) -> dict:
    """Every record of the map, read through another path than live queries: HTTP sync deltas
    from the start (gathered from every owner), tombstones as None."""
    hlc = HLC("reference-reader")
    since = {"millis": 0, "counter": 0, "nodeId": ""}
    values: dict = {}
    for _ in range(200):
        records, since = http_poll(node, hlc, map_name, since)
        if not records:
            return values
        for key, record in records.items():
            values[key] = record["record"]["value"]
    raise AssertionError("the delta did not end")


def settle_and_compare(subscribers: list[tuple[Subscriber, dict, list | None]], node: ClusterNode, map_name: str, what: str) -> None:
    """Each subscriber's result ends equal to its query over the map's records as HTTP sync
    reads them (not through the live-query coordinator under test)."""
    deadline = time.monotonic() + MAP_WAIT
    for subscriber, query, fields in subscribers:
        expected = None
        while time.monotonic() < deadline:
            subscriber.pump(0.3)
            expected = expected_rows(all_values(node, map_name), query["where"]["group"], query.get("limit"), fields)
            if subscriber.result == expected:
                break
        subscriber.wait_for(expected, timeout=5, what=what)
        assert fresh(node, map_name, query, fields) == expected, f"{what}: a fresh QUERY_SUB agrees"


def test_live_queries_carry_on_while_a_joining_node_takes_partitions(topgun_bin, tmp_path_factory, postgres_database):
    made = start_cluster(topgun_bin, tmp_path_factory, postgres_database(), nodes=("n1", "n2"))
    try:
        map_name = "cq-move"
        keys = [f"mv-{i}" for i in range(150)]
        n1 = made.nodes["n1"]
        churn = Churn([made.nodes["n1"], made.nodes["n2"]], map_name, keys, seed=7)
        churn.start()
        time.sleep(1.0)
        sub_conn = connect(n1.ws_url, n1.token, timeout=WAIT)
        try:
            queries = [(query_for(1, 10), None), (query_for(0, None), ["rank"])]
            subscribers = [(Subscriber(sub_conn, map_name, q, f), q, f) for q, f in queries]
            made.add("n3")
            pump_until_settled(made, {"n1", "n2", "n3"}, subscribers)
            churn.nodes = [made.nodes[n] for n in ("n1", "n2", "n3")]
            settled_at = churn.acked
            keep_writing(churn, subscribers)
            churn.stop()
            assert churn.acked > settled_at + 30, (settled_at, churn.acked)
            settle_and_compare(subscribers, made.nodes["n3"], map_name, "after the move")
        finally:
            sub_conn.close()
    finally:
        kill_all(made)


def test_live_queries_carry_on_when_an_owner_is_killed(topgun_bin, tmp_path_factory, postgres_database):
    made = start_cluster(topgun_bin, tmp_path_factory, postgres_database())
    try:
        map_name = "cq-failover"
        keys = [f"fo-{i}" for i in range(150)]
        churn = Churn([made.nodes["n1"], made.nodes["n2"]], map_name, keys, seed=11)
        churn.start()
        time.sleep(1.5)
        n1 = made.nodes["n1"]
        sub_conn = connect(n1.ws_url, n1.token, timeout=WAIT)
        try:
            queries = [(query_for(1, 10), None), (query_for(0, None), ["rank"])]
            subscribers = [(Subscriber(sub_conn, map_name, q, f), q, f) for q, f in queries]
            owner_of = {p["partitionId"]: p["owner"] for p in n1.cluster()["partitions"]}
            before_kill = dict(churn.values)
            made.nodes["n3"].kill()
            pump_until_settled(made, {"n1", "n2"}, subscribers)
            # Writes go on for a while after the failover, to every partition.
            keep_writing(churn, subscribers)
            churn.stop()
            assert sub_conn.is_open(), "the subscriber's connection stays open across the failover"
            moved = [k for k, v in churn.values.items() if owner_of[server_partition(k, n1.tenant)] == "n3" and before_kill.get(k) != v]
            assert len(moved) >= 5, f"writes reached the killed node's partitions after the kill: {len(moved)}"
            settle_and_compare(subscribers, made.nodes["n2"], map_name, "after the failover")
        finally:
            sub_conn.close()
    finally:
        kill_all(made)


def http_poll(node: ClusterNode, hlc: HLC, map_name: str, since: dict) -> tuple[dict, dict]:
    result = http_sync(node.http_url, node.token, {
        "clientId": hlc.node_id, "clientHlc": hlc.now(), "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": since}]}, timeout=WAIT)
    assert result.status == 200, result
    body = result.decoded()
    assert not body.get("errors"), body
    (delta,) = [d for d in body["deltas"] if d["mapName"] == map_name]
    return {r["key"]: r for r in delta["records"]}, delta["serverSyncTimestamp"]


def test_http_sync_on_any_node_reads_and_writes_the_whole_grid(cluster):
    """POST /sync (issue 15, point 4): deltas and queries gathered from every owner."""
    map_name = "cq-http-" + new_id()[:8]
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    hlc = HLC("http-grid")
    writer = connect(n1.ws_url, n1.token, timeout=WAIT)
    try:
        write(writer, hlc, map_name, [(f"h-{i:03d}", {"i": i, "color": "red" if i % 3 == 0 else "blue"}) for i in range(120)])
    finally:
        writer.close()

    # A first sync from n3, in as many polls as its byte budget needs: every record, once.
    reader = HLC("http-grid-reader")
    since = {"millis": 0, "counter": 0, "nodeId": ""}
    seen: dict[str, dict] = {}
    for _ in range(50):
        records, since = http_poll(n3, reader, map_name, since)
        if not records:
            break
        assert not set(records) & set(seen), "a record sent twice"
        seen.update(records)
    assert set(seen) == {f"h-{i:03d}" for i in range(120)}
    assert all(r["eventType"] == "PUT" for r in seen.values())

    # Writes through HTTP on n2 (keys of every owner), then the next poll on n1 has exactly them.
    ops = [put_op(f"hp-{i}", map_name, f"h-{i:03d}", {"value": {"i": -i, "color": "green"}, "timestamp": hlc.now()}) for i in range(0, 30, 3)]
    ops += [remove_op(f"hr-{i}", map_name, f"h-{i:03d}", {"value": None, "timestamp": hlc.now()}) for i in range(1, 10, 2)]
    result = http_sync(n2.http_url, n2.token, {"clientId": "http-grid", "clientHlc": hlc.now(), "operations": ops}, timeout=WAIT)
    assert result.status == 200, result
    body = result.decoded()
    assert not body.get("errors") and body["ack"]["lastId"] == ops[-1]["id"], body
    records, since = http_poll(n1, reader, map_name, since)
    assert set(records) == {f"h-{i:03d}" for i in range(0, 30, 3)} | {f"h-{i:03d}" for i in range(1, 10, 2)}, sorted(records)
    assert all(records[f"h-{i:03d}"]["eventType"] == "REMOVE" for i in range(1, 10, 2))
    assert http_poll(n2, reader, map_name, since)[0] == {}

    # A query paged by its cursor on n2 returns every match once, whichever node holds it.
    expected = {f"h-{i:03d}" for i in range(120) if i % 3 == 0 and i >= 30}
    got: list[str] = []
    cursor = None
    for _ in range(20):
        query = {"queryId": "Q", "mapName": map_name, "filter": {"color": "red"}, "limit": 7}
        if cursor:
            query["cursor"] = cursor
        result = http_sync(n2.http_url, n2.token, {"clientId": "http-grid", "clientHlc": hlc.now(), "queries": [query]}, timeout=WAIT)
        body = result.decoded()
        assert result.status == 200 and not body.get("errors"), body
        (page,) = body["queryResults"]
        assert len(page["results"]) <= 7
        got += [r["key"] for r in page["results"]]
        if not page.get("hasMore"):
            break
        cursor = page["nextCursor"]
        assert cursor, page
    assert sorted(got) == sorted(expected), "every match once"


def test_pages_of_a_sorted_query_with_a_cursor_come_from_every_owner(cluster):
    map_name = "cq-pages-" + new_id()[:8]
    n1, n2 = cluster.nodes["n1"], cluster.nodes["n2"]
    hlc = HLC("pages-writer")
    values = {f"pg-{i:02d}": {"rank": (i * 37) % 50, "group": i % 2, "name": f"pg-{i:02d}"} for i in range(50)}
    writer = connect(n2.ws_url, n2.token, timeout=WAIT)
    try:
        write(writer, hlc, map_name, list(values.items()))
    finally:
        writer.close()
    expected = [k for k, _ in sorted(((k, v) for k, v in values.items() if v["group"] == 1), key=lambda kv: (-kv[1]["rank"], kv[0]))]
    conn = connect(n1.ws_url, n1.token, timeout=WAIT)
    try:
        got: list[str] = []
        cursor = None
        for _ in range(20):
            query = {**query_for(1, 6)}
            if cursor:
                query["cursor"] = cursor
            page = conn.query(map_name, query, fields=["rank"], timeout=WAIT)
            assert len(page["results"]) <= 6
            assert all(set(r["value"]) == {"rank"} for r in page["results"]), page
            got += [r["key"] for r in page["results"]]
            if cursor:
                assert page.get("cursorStatus") == "valid", page
            if not page.get("hasMore"):
                break
            cursor = page["nextCursor"]
        assert got == expected, "pages in the query's order, every match once"
    finally:
        conn.close()


def test_a_grouped_query_aggregates_every_owners_records(cluster):
    map_name = "cq-groups-" + new_id()[:8]
    n2, n3 = cluster.nodes["n2"], cluster.nodes["n3"]
    hlc = HLC("groups-writer")
    values = {f"gr-{i:02d}": {"rank": i, "group": i % 3} for i in range(60)}
    writer = connect(n3.ws_url, n3.token, timeout=WAIT)
    try:
        write(writer, hlc, map_name, list(values.items()))
    finally:
        writer.close()
    conn = connect(n2.ws_url, n2.token, timeout=WAIT)
    try:
        page = conn.query(map_name, {"groupBy": ["group"], "aggregations": [{"func": "sum", "field": "rank"}, {"func": "max", "field": "rank"}]},
                          timeout=WAIT)
    finally:
        conn.close()
    rows = {r["value"]["group"]: r["value"] for r in page["results"]}
    assert set(rows) == {0, 1, 2}, page
    for group in range(3):
        ranks = [v["rank"] for v in values.values() if v["group"] == group]
        assert rows[group]["__count"] == len(ranks)
        assert rows[group]["__sum_rank"] == sum(ranks)
        assert rows[group]["__max_rank"] == max(ranks)
