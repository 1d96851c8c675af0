"""Tenant isolation, adversarially (issue 5, Deliver 2): two tenants use the same map names,
keys, topics, lock names, counter names and query ids, through every message type and HTTP
sync, and neither ever sees the other's data; nor does /metrics name either tenant's data."""
import base64
import pathlib
import sys
import time
import urllib.request
import uuid

import jwt
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from topgun_client import (HLC, Connection, Replica, http_sync, or_add_op, put_op, unpack, whole)  # noqa: E402

MAP = "shared-orders"
ORMAP = "shared-tags"
KEY = "same-key"


def tenant_token(api, sub):
    tenant = api.create_tenant()
    key = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"}).json
    now = int(time.time())
    token = jwt.encode({"sub": sub, "iat": now, "exp": now + 600}, base64.urlsafe_b64decode(key["secret"] + "="),
                       algorithm="HS256", headers={"kid": key["kid"]})
    return tenant, token


def connected(url, token):
    conn = Connection(url)
    assert conn.auth(token)["type"] == "AUTH_ACK"
    return conn


@pytest.fixture
def two(plane):
    a_tenant, a_token = tenant_token(plane.api, "alice")
    b_tenant, b_token = tenant_token(plane.api, "bob")
    a, b = connected(plane.ws_url, a_token), connected(plane.ws_url, b_token)
    yield plane, (a_tenant, a_token, a), (b_tenant, b_token, b)
    a.close()
    b.close()


def test_maps_queries_and_live_events_stay_within_a_tenant(two):
    plane, (_, _, a), (_, _, b) = two
    hlc = HLC("iso")
    # B watches the same map name and the same query id before A writes.
    b.query(MAP, {}, query_id="same-query")
    a.query(MAP, {}, query_id="same-query")
    a.write([put_op(1, MAP, KEY, {"value": {"owner": "A", "secret": 1}, "timestamp": hlc.now()})])
    b.expect_none(("SERVER_EVENT", "QUERY_UPDATE"), within=0.7)
    a.wait_for("QUERY_UPDATE")  # A's own live query saw it
    assert b.query(MAP, {})["results"] == []
    b.write([put_op(1, MAP, KEY, {"value": {"owner": "B"}, "timestamp": hlc.now()})])
    results = a.query(MAP, {})["results"]
    assert [r["value"]["owner"] for r in results] == ["A"], results


def test_merkle_sync_roots_differ_and_walks_show_only_own_records(two):
    plane, (_, a_token, a), (_, b_token, b) = two
    hlc = HLC("iso-sync")
    a.write([put_op(1, MAP, KEY, {"value": "A", "timestamp": hlc.now()})])
    b.send({"type": "SYNC_INIT", "mapName": MAP, "lastSyncTimestamp": 0})
    root = b.wait_for("SYNC_RESP_ROOT")["payload"]
    assert whole(root["rootHash"]) == 0  # B's map of that name is empty
    client = Replica("iso-b", plane.ws_url, b_token)
    client.connect()
    try:
        stats = client.merkle_sync(MAP)
        assert client.lww(MAP).live() == {}, stats
    finally:
        client.disconnect()


def test_ormaps_stay_within_a_tenant(two):
    plane, (_, _, a), (_, b_token, b) = two
    hlc = HLC("iso-or")
    a.write([or_add_op(1, ORMAP, KEY, {"value": "A-tag", "timestamp": hlc.now(), "tag": f"t-{uuid.uuid4()}"})])
    b.send({"type": "ORMAP_SYNC_INIT", "mapName": ORMAP, "rootHash": 0, "bucketHashes": {}, "lastSyncTimestamp": 0})
    assert whole(b.wait_for("ORMAP_SYNC_RESP_ROOT")["payload"]["rootHash"]) == 0
    b.send({"type": "ORMAP_DIFF_REQUEST", "payload": {"mapName": ORMAP, "keys": [KEY]}})
    diff = b.wait_for("ORMAP_DIFF_RESPONSE")["payload"]
    assert all(not e.get("records") for e in diff["entries"]), diff


def test_topics_locks_counters_and_journal_stay_within_a_tenant(two):
    plane, (_, _, a), (_, _, b) = two
    topic = "shared-topic"
    b.send({"type": "TOPIC_SUB", "payload": {"topic": topic}})
    b.ping()
    a.send({"type": "TOPIC_PUB", "payload": {"topic": topic, "data": "for A's tenant only"}})
    b.expect_none("TOPIC_MESSAGE", within=0.7)
    # The same lock name is free in each tenant.
    for conn in (a, b):
        conn.send({"type": "LOCK_REQUEST", "payload": {"requestId": f"r-{uuid.uuid4()}", "name": "shared-lock", "ttl": 10000}})
        assert conn.wait_for(("LOCK_GRANTED",))["type"] == "LOCK_GRANTED"
    # The same counter name counts separately.
    a.send({"type": "COUNTER_SYNC", "payload": {"name": "shared-counter", "state": {"p": {"node-a": 5}, "n": {}}}})
    a.ping()
    b.send({"type": "COUNTER_REQUEST", "payload": {"name": "shared-counter"}})
    state = b.wait_for("COUNTER_RESPONSE")["payload"]["state"]
    positive = state.get("p") or state.get("positive") or {}
    assert positive == {}, state
    # The journal shows only the tenant's own events.
    hlc = HLC("iso-journal")
    a.write([put_op(1, MAP, "journal-key", {"value": "A", "timestamp": hlc.now()})])
    read_id = str(uuid.uuid4())
    b.send({"type": "JOURNAL_READ", "requestId": read_id, "fromSequence": "0", "limit": 10000})
    events = b.wait_for("JOURNAL_READ_RESPONSE", lambda m: m["requestId"] == read_id)["events"]
    assert all(e.get("key") != "journal-key" for e in events), events


def test_http_sync_stays_within_a_tenant(two):
    plane, (_, a_token, a), (_, b_token, _) = two
    hlc = HLC("iso-http")
    a.write([put_op(1, MAP, KEY, {"value": "A over WebSocket", "timestamp": hlc.now()})])
    result = http_sync(plane.http_url, b_token, {"clientId": "b", "clientHlc": hlc.now(),
                                                 "syncMaps": [{"mapName": MAP, "lastSyncTimestamp": {"millis": 0, "counter": 0, "nodeId": ""}}],
                                                 "queries": [{"queryId": "q", "mapName": MAP}]})
    assert result.status == 200, result
    body = unpack(result.body)
    records = [r for d in body.get("deltas", []) for r in d["records"]]
    assert records == [], body
    assert all(q["results"] == [] for q in body.get("queryResults", [])), body
    # B writing the same key over HTTP does not touch A's value.
    http_sync(plane.http_url, b_token, {"clientId": "b", "clientHlc": hlc.now(),
                                        "operations": [put_op("h1", MAP, KEY, {"value": "B over HTTP", "timestamp": hlc.now()})]})
    assert [r["value"] for r in a.query(MAP, {})["results"]] == ["A over WebSocket"]


def test_metrics_never_name_tenants_maps_or_keys(two):
    plane, (a_tenant, _, a), (b_tenant, _, _) = two
    hlc = HLC("iso-metrics")
    a.write([put_op(1, "secret-map-name", "secret-key", {"value": 1, "timestamp": hlc.now()})])
    metrics = urllib.request.urlopen(plane.http_url + "/metrics", timeout=10).read().decode()
    for needle in (a_tenant["id"], b_tenant["id"], "secret-map-name", "secret-key", MAP):
        assert needle not in metrics, needle
