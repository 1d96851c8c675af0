"""Quotas and schemas set through the control plane, enforced by the data plane on open
sessions (issue 5: quotas, schema enforcement, usage metering), on SQLite and PostgreSQL."""
import base64
import pathlib
import sys
import time
import urllib.request
import uuid

import jwt
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from topgun_client import HLC, Connection, op_batch, put_op, remove_op  # noqa: E402

LIMITS = {"max_connections": 100, "max_operations_per_second": 10000, "max_storage_bytes": 10**9,
          "max_maps": 100, "max_message_bytes": 1048576, "max_live_subscriptions": 100}


def tenant_with_token(api, limits=None, plan="pro"):
    tenant = api.create_tenant(plan=plan)
    if limits:
        assert api.put(f"/v1/tenants/{tenant['id']}/quotas", {"limits": {**LIMITS, **limits}}).status == 200
    key = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"}).json
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "iat": now, "exp": now + 600}, base64.urlsafe_b64decode(key["secret"] + "="),
                       algorithm="HS256", headers={"kid": key["kid"]})
    return tenant, token


def connected(url, token):
    conn = Connection(url)
    reply = conn.auth(token)
    assert reply["type"] == "AUTH_ACK", reply
    return conn


class Ops:
    def __init__(self):
        self.hlc = HLC(f"client-{uuid.uuid4().hex[:6]}")
        self.next_id = 0

    def put(self, map_name, key, value):
        self.next_id += 1
        return put_op(self.next_id, map_name, key, {"value": value, "timestamp": self.hlc.now()})

    def remove(self, map_name, key):
        self.next_id += 1
        return remove_op(self.next_id, map_name, key, {"value": None, "timestamp": self.hlc.now()})


def set_limits(api, tenant, **limits):
    response = api.put(f"/v1/tenants/{tenant['id']}/quotas", {"limits": {**LIMITS, **limits}})
    assert response.status == 200, response


def test_operations_per_second_quota_refuses_without_acking_and_changes_live(plane):
    tenant, token = tenant_with_token(plane.api, {"max_operations_per_second": 5})
    conn, ops = connected(plane.ws_url, token), Ops()
    try:
        first = [ops.put("m", f"k{i}", i) for i in range(5)]
        assert conn.write(first)["payload"]["lastId"] == first[-1]["id"]
        refused = [ops.put("m", f"r{i}", i) for i in range(5)]
        conn.send(op_batch(refused))
        error = conn.wait_for("ERROR")["payload"]
        assert error["code"] == 429
        assert error["details"]["quota"] == "max_operations_per_second" and error["details"]["retryAfterMs"] > 0
        # A later batch must not be acknowledged past the refused ops (its lastId would drop them).
        later = [ops.put("m", "later", 1)]
        conn.send(op_batch(later))
        assert conn.wait_for("ERROR")["payload"]["code"] == 429
        conn.expect_none("OP_ACK", within=0.3)
        # Sending the refused ops again (as the client does), after the refill, succeeds.
        time.sleep(1.2)
        assert conn.write(refused + later)["payload"]["lastId"] == later[-1]["id"]
        # Raising the quota applies to the open session, without a reconnect.
        set_limits(plane.api, tenant, max_operations_per_second=100000)
        deadline = time.monotonic() + 5
        while True:
            batch = [ops.put("m", f"fast{i}", i) for i in range(200)]
            conn.send(op_batch(batch))
            reply = conn.wait_for(("OP_ACK", "ERROR"))
            if reply["type"] == "OP_ACK":
                break
            assert time.monotonic() < deadline, "the raised quota did not apply within 5 s"
            time.sleep(0.2)
    finally:
        conn.close()


def test_map_quota_refuses_a_new_map_for_good(plane):
    tenant, token = tenant_with_token(plane.api, {"max_maps": 2})
    conn, ops = connected(plane.ws_url, token), Ops()
    try:
        conn.write([ops.put("one", "k", 1), ops.put("two", "k", 2)])
        third, existing = ops.put("three", "k", 1), ops.put("one", "k2", 3)
        results = {r["opId"]: r for r in conn.write([third, existing])["payload"]["results"]}
        assert results[third["id"]]["success"] is False and "max_maps" in results[third["id"]]["error"]
        assert results[existing["id"]]["success"] is True  # existing maps stay writable
        rejected = conn.wait_for("OP_REJECTED", lambda m: m["payload"]["opId"] == third["id"])["payload"]
        assert rejected["code"] == 429
        # Raising the quota lets the new map in, without a reconnect.
        set_limits(plane.api, tenant, max_maps=3)
        deadline = time.monotonic() + 5
        while not conn.write([ops.put("three", "k", 1)])["payload"]["results"][0]["success"]:
            assert time.monotonic() < deadline, "the raised map quota did not apply within 5 s"
            time.sleep(0.1)
    finally:
        conn.close()


def test_live_subscription_quota(plane):
    tenant, token = tenant_with_token(plane.api, {"max_live_subscriptions": 2})
    conn = connected(plane.ws_url, token)
    other = connected(plane.ws_url, token)
    try:
        q1 = conn.query("m", {})["queryId"]
        conn.send({"type": "TOPIC_SUB", "payload": {"topic": "news"}})
        conn.ping()
        # The third, on another session of the same tenant, is refused.
        other.send({"type": "QUERY_SUB", "payload": {"queryId": "q3", "mapName": "m", "query": {}}})
        error = other.wait_for("ERROR")["payload"]
        assert error["code"] == 429 and error["details"]["quota"] == "max_live_subscriptions"
        conn.unsubscribe(q1)
        conn.ping()
        assert other.query("m", {}, query_id="q4")["queryId"] == "q4"
    finally:
        conn.close()
        other.close()


def test_connection_quota_closes_with_1013_naming_the_quota(plane):
    tenant, token = tenant_with_token(plane.api, {"max_connections": 1})
    first = connected(plane.ws_url, token)
    try:
        second = Connection(plane.ws_url)
        second.send({"type": "AUTH", "token": token})
        code, reason = second.wait_closed()
        assert code == 1013 and "max_connections" in reason
        first.ping()
    finally:
        first.close()
    # Once the first is gone, a new connection is admitted.
    deadline = time.monotonic() + 5
    while True:
        conn = Connection(plane.ws_url)
        reply = conn.auth(token)
        conn.close()
        if reply.get("type") == "AUTH_ACK":
            break
        assert time.monotonic() < deadline


def test_message_bytes_quota_rejects_the_ops_for_good(plane):
    tenant, token = tenant_with_token(plane.api, {"max_message_bytes": 2048})
    conn, ops = connected(plane.ws_url, token), Ops()
    try:
        big = [ops.put("m", "big", "x" * 4000)]
        ack = conn.write(big)["payload"]
        assert ack["results"][0]["success"] is False and "max_message_bytes" in ack["results"][0]["error"]
        rejected = conn.wait_for("OP_REJECTED")["payload"]
        assert rejected["code"] == 413
        assert conn.write([ops.put("m", "small", "ok")])["payload"]["results"][0]["success"] is True
    finally:
        conn.close()


def test_message_bytes_quota_applies_to_http_sync_bodies(plane):
    from topgun_client import http_sync, unpack
    tenant, token = tenant_with_token(plane.api, {"max_message_bytes": 2048})
    ops = Ops()
    big = http_sync(plane.http_url, token, {"clientId": "h", "clientHlc": ops.hlc.now(),
                                            "operations": [ops.put("m", "big", "x" * 4000)]})
    assert big.status == 413, big
    problem = big.decoded()
    assert problem["quota"] == "max_message_bytes" and problem["limit"] == "2048"
    small = http_sync(plane.http_url, token, {"clientId": "h", "clientHlc": ops.hlc.now(), "operations": [ops.put("m", "small", "ok")]})
    assert small.status == 200, small
    assert unpack(small.body)["ack"]["results"][0]["success"] is True


SCHEMA = {"type": "object", "required": ["customer"],
          "properties": {"customer": {"type": "string"}, "total": {"type": "number", "minimum": 0}}}


def test_strict_schema_rejects_violations_with_the_path_and_changes_live(plane):
    tenant, token = tenant_with_token(plane.api)
    put = plane.api.put(f"/v1/tenants/{tenant['id']}/schemas/orders", {"enforcement": "strict", "schema": SCHEMA})
    assert put.status == 201
    conn, ops = connected(plane.ws_url, token), Ops()
    try:
        good = ops.put("orders", "o1", {"customer": "ann", "total": 3})
        bad = ops.put("orders", "o2", {"customer": "bob", "total": -1})
        ack = conn.write([good, bad])["payload"]
        results = {r["opId"]: r for r in ack["results"]}
        assert results[good["id"]]["success"] is True
        assert results[bad["id"]]["success"] is False and "/total" in results[bad["id"]]["error"]
        rejected = conn.wait_for("OP_REJECTED", lambda m: m["payload"]["opId"] == bad["id"])["payload"]
        assert rejected["code"] == 422
        # Tombstones are never checked; other maps are not affected.
        assert conn.write([ops.remove("orders", "o1"), ops.put("notes", "n", 42)])["payload"]["results"][0]["success"]
        # Warn mode accepts the same violation; the change applies without reconnecting.
        plane.api.put(f"/v1/tenants/{tenant['id']}/schemas/orders", {"enforcement": "warn", "schema": SCHEMA})
        deadline = time.monotonic() + 5
        while True:
            again = ops.put("orders", "o3", {"total": -5})
            if conn.write([again])["payload"]["results"][0]["success"]:
                break
            assert time.monotonic() < deadline, "the schema change did not apply within 5 s"
            time.sleep(0.1)
        metrics = urllib.request.urlopen(plane.http_url + "/metrics", timeout=10).read().decode()
        assert 'topgun_schema_violations_total{mode="warn"}' in metrics
        # Deleting the schema stops enforcement.
        plane.api.put(f"/v1/tenants/{tenant['id']}/schemas/orders", {"enforcement": "strict", "schema": SCHEMA})
        plane.api.delete(f"/v1/tenants/{tenant['id']}/schemas/orders")
        deadline = time.monotonic() + 5
        while not conn.write([ops.put("orders", "o4", "not an object")])["payload"]["results"][0]["success"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        conn.close()


def test_usage_is_metered_and_reaches_the_control_plane(plane):
    tenant, token = tenant_with_token(plane.api)
    conn, ops = connected(plane.ws_url, token), Ops()
    try:
        for _ in range(3):
            conn.write([ops.put("m", f"k{i}", i) for i in range(10)])
    finally:
        conn.close()
    hour = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime())
    end = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 3600))
    deadline = time.monotonic() + 15
    while True:
        series = plane.api.get(f"/v1/tenants/{tenant['id']}/usage?from={hour}&to={end}").json["series"]
        point = series[0]
        if point["operations"] >= 30 and point["peak_connections"] >= 1 and point["bytes_in"] > 0 and point["bytes_out"] > 0:
            break
        assert time.monotonic() < deadline, f"usage not flushed within 15 s: {point}"
        time.sleep(0.5)
    assert point["operations"] == 30 and point["partial"] is True


def test_storage_quota_refuses_writes_for_good_but_not_deletes_and_storage_is_metered(plane):
    tenant, token = tenant_with_token(plane.api, {"max_storage_bytes": 2000})
    conn, ops = connected(plane.ws_url, token), Ops()
    try:
        conn.write([ops.put("m", f"k{i}", "x" * 600) for i in range(4)])
        deadline = time.monotonic() + 10
        while True:
            attempt = ops.put("m", "more", "y" * 10)
            result = conn.write([attempt])["payload"]["results"][0]
            if not result["success"]:
                break
            assert time.monotonic() < deadline, "the storage quota was not enforced within 10 s"
            time.sleep(0.3)
        assert "max_storage_bytes" in result["error"]
        assert conn.wait_for("OP_REJECTED", lambda m: m["payload"]["opId"] == attempt["id"])["payload"]["code"] == 429
        # Deletes always go through, so the tenant can make room.
        assert conn.write([ops.remove("m", "k0")])["payload"]["results"][0]["success"] is True
    finally:
        conn.close()
    hour = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime())
    end = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 3600))
    deadline = time.monotonic() + 15
    while plane.api.get(f"/v1/tenants/{tenant['id']}/usage?from={hour}&to={end}").json["series"][0]["storage_bytes"] < 2000:
        assert time.monotonic() < deadline, "storage bytes not metered within 15 s"
        time.sleep(0.5)


def test_strict_schema_applies_to_ormap_ops_and_http_sync(plane):
    from topgun_client import http_sync, or_add_op, unpack
    tenant, token = tenant_with_token(plane.api)
    for map_name in ("tags", "orders"):
        put = plane.api.put(f"/v1/tenants/{tenant['id']}/schemas/{map_name}", {"enforcement": "strict", "schema": SCHEMA})
        assert put.status == 201
    conn, ops = connected(plane.ws_url, token), Ops()
    try:
        bad = or_add_op(1000, "tags", "t1", {"value": {"total": -1}, "timestamp": ops.hlc.now(), "tag": f"tag-{uuid.uuid4()}"})
        good = or_add_op(1001, "tags", "t2", {"value": {"customer": "c"}, "timestamp": ops.hlc.now(), "tag": f"tag-{uuid.uuid4()}"})
        results = {r["opId"]: r for r in conn.write([bad, good])["payload"]["results"]}
        assert results["1000"]["success"] is False and "schema" in results["1000"]["error"]
        assert results["1001"]["success"] is True
    finally:
        conn.close()
    hlc = ops.hlc
    response = http_sync(plane.http_url, token, {"clientId": "h", "clientHlc": hlc.now(), "operations": [
        put_op("h1", "orders", "o1", {"value": {"customer": 7}, "timestamp": hlc.now()}),
        put_op("h2", "orders", "o2", {"value": {"customer": "ok"}, "timestamp": hlc.now()}),
    ]})
    assert response.status == 200, response
    ack = unpack(response.body)["ack"]
    outcome = {r["opId"]: r for r in ack["results"]}
    assert outcome["h1"]["success"] is False and "/customer" in outcome["h1"]["error"]
    assert outcome["h2"]["success"] is True
