"""Scenarios 8-12: topics, PN counters, locks, the event journal, the partition map and the
answers for features that are not built."""
import uuid

import pytest

from topgun_client import HLC, connect, new_id, put_op, remove_op


@pytest.fixture
def clients(dev_server):
    made = []

    def make():
        conn = connect(dev_server.ws_url, dev_server.token)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- topics -----------------------------------------------------------------------------------


def test_topic_messages_reach_other_subscribers_not_the_publisher(clients):
    a, b, c, d = clients(), clients(), clients(), clients()
    topic = "chat/" + unique("room")
    for conn in (a, b, c):
        conn.send({"type": "TOPIC_SUB", "payload": {"topic": topic}})
        conn.ping()  # the subscription is in place once the PONG is back
    a.send({"type": "TOPIC_PUB", "payload": {"topic": topic, "data": {"hi": 1, "list": [1, 2]}}})
    for conn in (b, c):
        msg = conn.wait_for("TOPIC_MESSAGE", lambda m: m["payload"]["topic"] == topic)
        assert msg["payload"]["data"] == {"hi": 1, "list": [1, 2]}
        assert isinstance(msg["payload"]["timestamp"], (int, float))
    a.expect_none("TOPIC_MESSAGE", within=0.7, what="(the publisher got its own message)")
    d.expect_none("TOPIC_MESSAGE", within=0.1, what="(d never subscribed)")

    # After TOPIC_UNSUB, c hears nothing more.
    c.send({"type": "TOPIC_UNSUB", "payload": {"topic": topic}})
    c.ping()
    a.send({"type": "TOPIC_PUB", "payload": {"topic": topic, "data": "second"}})
    assert b.wait_for("TOPIC_MESSAGE", lambda m: m["payload"]["data"] == "second")
    c.expect_none("TOPIC_MESSAGE", within=0.7)


@pytest.mark.parametrize("topic", ["bad topic!", "", "x" * 257])
def test_invalid_topic_name_gets_error_400(clients, topic):
    a = clients()
    a.send({"type": "TOPIC_SUB", "payload": {"topic": topic}})
    error = a.wait_for("ERROR")
    assert error["payload"]["code"] == 400, error
    a.ping()


# -- PN counters ------------------------------------------------------------------------------


def value_of(state: dict) -> float:
    p = state.get("positive", state.get("p", {}))
    n = state.get("negative", state.get("n", {}))
    return sum(p.values()) - sum(n.values())


def assert_both_spellings(state: dict):
    for key in ("p", "n", "positive", "negative"):
        assert key in state, f"counter state lacks {key!r}: {state}"
    assert state["p"] == state["positive"] and state["n"] == state["negative"], state


def test_pn_counter_merges_both_spellings_and_updates_everyone(clients):
    a, b = clients(), clients()
    name = unique("likes")
    for conn in (a, b):
        conn.send({"type": "COUNTER_REQUEST", "payload": {"name": name}})
        resp = conn.wait_for("COUNTER_RESPONSE", lambda m: m["payload"]["name"] == name)
        assert_both_spellings(resp["payload"]["state"])
        assert value_of(resp["payload"]["state"]) == 0

    # The real client's spelling from A...
    a.send({"type": "COUNTER_SYNC", "payload": {"name": name, "state": {"positive": {"node-a": 5}, "negative": {"node-a": 1}}}})
    for conn in (a, b):
        update = conn.wait_for("COUNTER_UPDATE", lambda m: m["payload"]["name"] == name)
        assert_both_spellings(update["payload"]["state"])
        assert value_of(update["payload"]["state"]) == 4
    # ... and the schema's from B.
    b.send({"type": "COUNTER_SYNC", "payload": {"name": name, "state": {"p": {"node-b": 3}, "n": {}}}})
    for conn in (a, b):
        update = conn.wait_for("COUNTER_UPDATE", lambda m: m["payload"]["name"] == name and value_of(m["payload"]["state"]) == 7)
        state = update["payload"]["state"]
        assert_both_spellings(state)
        assert state["positive"] == {"node-a": 5, "node-b": 3} and state["negative"] == {"node-a": 1}

    # Max-merge: an older state from A changes nothing.
    a.send({"type": "COUNTER_SYNC", "payload": {"name": name, "state": {"positive": {"node-a": 2}, "negative": {}}}})
    update = a.wait_for("COUNTER_UPDATE", lambda m: m["payload"]["name"] == name)
    assert value_of(update["payload"]["state"]) == 7

    # A late subscriber gets the merged state.
    c = clients()
    c.send({"type": "COUNTER_REQUEST", "payload": {"name": name}})
    resp = c.wait_for("COUNTER_RESPONSE", lambda m: m["payload"]["name"] == name)
    assert value_of(resp["payload"]["state"]) == 7


# -- locks ------------------------------------------------------------------------------------


def lock_request(conn, name, ttl=10_000):
    rid = new_id()
    conn.send({"type": "LOCK_REQUEST", "payload": {"requestId": rid, "name": name, "ttl": ttl}})
    return rid


def lock_release(conn, name, token):
    rid = new_id()
    conn.send({"type": "LOCK_RELEASE", "payload": {"requestId": rid, "name": name, "fencingToken": token}})
    return conn.wait_for("LOCK_RELEASED", lambda m: m["payload"]["requestId"] == rid)["payload"]


def test_lock_contention_queues_and_grants_in_turn(clients):
    a, b, c = clients(), clients(), clients()
    name = unique("lock")
    ra = lock_request(a, name)
    granted_a = a.wait_for("LOCK_GRANTED", lambda m: m["payload"]["requestId"] == ra)["payload"]
    assert granted_a["name"] == name and isinstance(granted_a["fencingToken"], (int, float))

    rb = lock_request(b, name)
    b.expect_none(("LOCK_GRANTED", "LOCK_RELEASED"), lambda m: m["payload"]["requestId"] == rb, within=1.0,
                  what="(the lock is held by A: B must wait, never be refused)")

    released = lock_release(a, name, granted_a["fencingToken"])
    assert released["success"] is True and released["name"] == name
    granted_b = b.wait_for("LOCK_GRANTED", lambda m: m["payload"]["requestId"] == rb)["payload"]
    assert granted_b["fencingToken"] > granted_a["fencingToken"]

    # C queues behind B; B disconnects while holding: C gets the lock.
    rc = lock_request(c, name)
    c.expect_none("LOCK_GRANTED", lambda m: m["payload"]["requestId"] == rc, within=0.5)
    b.close()
    granted_c = c.wait_for("LOCK_GRANTED", lambda m: m["payload"]["requestId"] == rc)["payload"]
    assert granted_c["fencingToken"] > granted_b["fencingToken"]

    # A release with the wrong fencing token fails; the right one succeeds.
    assert lock_release(c, name, granted_c["fencingToken"] + 1000)["success"] is False
    assert lock_release(c, name, granted_c["fencingToken"])["success"] is True


def test_lock_release_by_non_holder_fails(clients):
    a, b = clients(), clients()
    name = unique("lock")
    ra = lock_request(a, name)
    token = a.wait_for("LOCK_GRANTED", lambda m: m["payload"]["requestId"] == ra)["payload"]["fencingToken"]
    assert lock_release(b, name, token)["success"] is False
    assert lock_release(a, name, token)["success"] is True


def test_lock_ttl_expiry_grants_the_waiter(clients):
    a, b = clients(), clients()
    name = unique("lock")
    ra = lock_request(a, name, ttl=1000)  # the shortest TTL the legacy server allowed
    a.wait_for("LOCK_GRANTED", lambda m: m["payload"]["requestId"] == ra)
    rb = lock_request(b, name)
    b.wait_for("LOCK_GRANTED", lambda m: m["payload"]["requestId"] == rb, timeout=6.0, what="after A's lease expired")


# -- event journal ----------------------------------------------------------------------------


def test_journal_subscription_and_read(clients):
    a, w = clients(), clients()
    map_name = unique("journal")
    rid = new_id()
    a.send({"type": "JOURNAL_SUBSCRIBE", "requestId": rid, "mapName": map_name})
    a.ping()
    hlc = HLC("jw")
    w.write([put_op(1, map_name, "k", {"value": {"v": 1}, "timestamp": hlc.now()})])
    w.write([put_op(2, map_name, "k", {"value": {"v": 2}, "timestamp": hlc.now()})])
    w.write([remove_op(3, map_name, "k", {"value": None, "timestamp": hlc.now()})])
    events = []
    for _ in range(3):
        m = a.wait_for("JOURNAL_EVENT", lambda m: m["event"]["mapName"] == map_name)
        events.append(m["event"])
    assert [e["type"] for e in events] == ["PUT", "UPDATE", "DELETE"], events
    assert all(e["key"] == "k" for e in events)
    assert events[0]["value"] == {"v": 1} and events[1]["value"] == {"v": 2}
    assert events[1].get("previousValue") in (None, {"v": 1})
    sequences = [e["sequence"] for e in events]
    assert all(isinstance(s, str) and s.isdigit() for s in sequences), sequences
    assert [int(s) for s in sequences] == sorted(int(s) for s in sequences) and len(set(sequences)) == 3
    for e in events:
        assert {"millis", "counter", "nodeId"} <= e["timestamp"].keys()

    read_id = new_id()
    a.send({"type": "JOURNAL_READ", "requestId": read_id, "fromSequence": "1", "limit": 10_000, "mapName": map_name})
    resp = a.wait_for("JOURNAL_READ_RESPONSE", lambda m: m["requestId"] == read_id)
    mine = [e for e in resp["events"] if e["mapName"] == map_name]
    assert [e["sequence"] for e in mine] == sequences, resp
    assert isinstance(resp["hasMore"], bool)

    read_id = new_id()
    a.send({"type": "JOURNAL_READ", "requestId": read_id, "fromSequence": sequences[1], "limit": 1})
    resp = a.wait_for("JOURNAL_READ_RESPONSE", lambda m: m["requestId"] == read_id)
    assert [e["sequence"] for e in resp["events"]] == [sequences[1]]
    assert resp["hasMore"] is True

    # After JOURNAL_UNSUBSCRIBE, nothing more.
    a.send({"type": "JOURNAL_UNSUBSCRIBE", "subscriptionId": rid})
    a.ping()
    w.write([put_op(4, map_name, "k2", {"value": 1, "timestamp": hlc.now()})])
    a.expect_none("JOURNAL_EVENT", within=0.7)


# -- partition map and features not built -----------------------------------------------------


@pytest.mark.parametrize("message", [
    {"type": "PARTITION_MAP_REQUEST", "payload": {"currentVersion": 0}},
    {"type": "PARTITION_MAP_REQUEST"},
], ids=["with-version", "no-payload"])
def test_partition_map_has_271_partitions_owned_by_the_node(clients, message):
    a = clients()
    a.send(message)
    p = a.wait_for("PARTITION_MAP")["payload"]
    assert p["partitionCount"] == 271
    assert len(p["nodes"]) == 1
    node = p["nodes"][0]
    assert node["status"] == "ACTIVE" and node["endpoints"]["websocket"].startswith("ws")
    assert sorted(x["partitionId"] for x in p["partitions"]) == list(range(271))
    assert all(x["ownerNodeId"] == node["nodeId"] and x["backupNodeIds"] == [] for x in p["partitions"])
    assert p["version"] > 0 and isinstance(p["generatedAt"], (int, float))


def test_no_partition_map_when_the_client_is_current(clients):
    a = clients()
    a.send({"type": "PARTITION_MAP_REQUEST", "payload": {"currentVersion": 0}})
    version = a.wait_for("PARTITION_MAP")["payload"]["version"]
    a.send({"type": "PARTITION_MAP_REQUEST", "payload": {"currentVersion": version}})
    a.expect_none("PARTITION_MAP", within=0.7)


UNSUPPORTED = [
    ("search", {"type": "SEARCH", "payload": {"requestId": "R", "mapName": "m", "query": "hello"}},
     "SEARCH_RESP", lambda m: m["payload"]["requestId"] == "R" and m["payload"].get("error")),
    ("search-sub", {"type": "SEARCH_SUB", "payload": {"subscriptionId": "R", "mapName": "m", "query": "hello"}},
     "SEARCH_RESP", lambda m: m["payload"]["requestId"] == "R" and m["payload"].get("error")),
    ("sql", {"type": "SQL_QUERY", "payload": {"sql": "SELECT 1", "queryId": "R"}},
     "SQL_QUERY_RESP", lambda m: m["payload"]["queryId"] == "R" and m["payload"].get("code") == "FEATURE_DISABLED"),
    ("entry-process", {"type": "ENTRY_PROCESS", "requestId": "R", "mapName": "m", "key": "k",
                       "processor": {"name": "builtin:increment", "code": "return {value: 1}"}},
     "ENTRY_PROCESS_RESPONSE", lambda m: m["requestId"] == "R" and m["success"] is False),
    ("entry-process-batch", {"type": "ENTRY_PROCESS_BATCH", "requestId": "R", "mapName": "m", "keys": ["a", "b"],
                             "processor": {"name": "p", "code": "return 1"}},
     "ENTRY_PROCESS_BATCH_RESPONSE", lambda m: m["requestId"] == "R" and all(not r["success"] for r in m["results"].values())
     and set(m["results"]) == {"a", "b"}),
    ("list-resolvers", {"type": "LIST_RESOLVERS", "requestId": "R"},
     "LIST_RESOLVERS_RESPONSE", lambda m: m["requestId"] == "R" and m["resolvers"] == []),
    ("register-resolver", {"type": "REGISTER_RESOLVER", "requestId": "R", "mapName": "m",
                           "resolver": {"name": "r", "code": "return 1"}},
     "REGISTER_RESOLVER_RESPONSE", lambda m: m["requestId"] == "R" and m["success"] is False),
    ("vector-search", {"type": "VECTOR_SEARCH", "payload": {"id": "R", "mapName": "m", "queryVector": b"\x00\x00\x80\x3f", "k": 3}},
     "VECTOR_SEARCH_RESP", lambda m: m["payload"]["id"] == "R" and m["payload"].get("error")),
    ("hybrid-search", {"type": "HYBRID_SEARCH", "payload": {"requestId": "R", "mapName": "m", "queryText": "x",
                                                            "methods": ["fullText"], "k": 3}},
     "HYBRID_SEARCH_RESP", lambda m: m["payload"]["requestId"] == "R" and m["payload"].get("error")),
]


@pytest.mark.parametrize("request_msg,reply_type,check", [u[1:] for u in UNSUPPORTED], ids=[u[0] for u in UNSUPPORTED])
def test_feature_not_built_is_answered_with_its_own_response(clients, request_msg, reply_type, check):
    a = clients()
    a.send(request_msg)
    reply = a.wait_for(reply_type, timeout=5.0)
    assert check(reply), reply
    a.ping()
