"""Issue 6, point 4: no tenant can move another tenant's clock, timestamps too far ahead are
refused for good, and HTTP delta sync returns every record written after the previous poll
whatever timestamps clients put on them (the server's own order, carried in
`serverSyncTimestamp`), in pages of bounded size."""
from __future__ import annotations

import base64
import json
import time
import urllib.request

import jwt
import pytest

from topgun_client import HLC, connect, http_sync as raw_http_sync, new_id, put_op, ts

YEAR_MS = 365 * 24 * 3600 * 1000


class Sync:
    """A `POST /sync` answer: status, decoded body, size in bytes."""

    def __init__(self, result):
        self.status = result.status
        self.body = result.decoded() if result.status == 200 else result.body
        self.raw = result.body


def http_sync(base_url: str, token: str, request: dict) -> Sync:
    return Sync(raw_http_sync(base_url, token, request))


def now_ms() -> int:
    return int(time.time() * 1000)


def second_tenant_token(node) -> str:
    """A tenant of its own (through the control plane of `topgun dev`) and a token for it."""
    base, admin = node.info["controlPlaneURL"], node.info["adminToken"]

    def post(path: str, body: dict) -> dict:
        request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    tenant = post("/v1/tenants", {"slug": f"t-{new_id()[:12]}", "display_name": "Other", "plan": "enterprise"})
    key = post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"})
    secret = base64.urlsafe_b64decode(key["secret"] + "=" * (-len(key["secret"]) % 4))
    return jwt.encode({"sub": "other-user", "exp": int(time.time()) + 3600}, secret, algorithm="HS256", headers={"kid": key["kid"]})


@pytest.fixture(scope="module")
def lenient_node(server_factory):
    """Accepts timestamps up to two years ahead, so that one tenant can push its own clock a
    year forward: what must not move the other tenant's."""
    return server_factory("dev-sqlite", extra_args=("--max-clock-drift", str(2 * 365 * 24 * 3600)))


def test_one_tenants_future_writes_do_not_move_another_tenants_clock(lenient_node, map_name):
    node = lenient_node
    ahead = now_ms() + YEAR_MS
    conn = connect(node.ws_url, node.token)
    try:
        ack = conn.write([put_op(1, map_name, "k", {"value": 1, "timestamp": ts(ahead, 0, "far-future")})])
        assert ack["payload"]["results"][0]["success"] is True
    finally:
        conn.close()
    # The writing tenant's own clock moved (HLC semantics)...
    own = http_sync(node.http_url, node.token, {"clientId": "c", "clientHlc": ts(now_ms(), 0, "c"),
                                                  "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": ts(0, 0, "")}]})
    assert own.status == 200
    assert own.body["serverHlc"]["millis"] >= ahead
    # ...the other tenant's did not.
    other = http_sync(node.http_url, second_tenant_token(node), {
        "clientId": "o", "clientHlc": ts(now_ms(), 0, "o"), "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": ts(0, 0, "")}]})
    assert other.status == 200, other.body
    assert other.body["serverHlc"]["millis"] < now_ms() + 60_000, "another tenant's write moved this tenant's clock"
    assert other.body["deltas"][0]["records"] == [], "another tenant's record leaked"


def test_delta_sync_returns_a_write_stamped_before_the_previous_poll(lenient_node, map_name):
    """A device whose clock runs ahead writes first; the poll's position then lies past the
    next write's timestamp, stamped by an honest clock. The next poll still returns it."""
    node = lenient_node
    writer = connect(node.ws_url, node.token)
    try:
        writer.write([put_op(1, map_name, "fast-device", {"value": "a", "timestamp": ts(now_ms() + 4 * 60_000, 0, "fast")})])
        first = http_sync(node.http_url, node.token, {
            "clientId": "p", "clientHlc": ts(now_ms(), 0, "p"), "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": ts(0, 0, "")}]})
        delta = first.body["deltas"][0]
        assert [r["key"] for r in delta["records"]] == ["fast-device"]
        position = delta["serverSyncTimestamp"]
        writer.write([put_op(2, map_name, "honest-device", {"value": "b", "timestamp": ts(now_ms(), 0, "honest")})])
        second = http_sync(node.http_url, node.token, {
            "clientId": "p", "clientHlc": ts(now_ms(), 0, "p"), "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": position}]})
        keys = [r["key"] for r in second.body["deltas"][0]["records"]]
        assert keys == ["honest-device"], f"the poll after returned {keys}"
        # And nothing twice: a third poll from the new position is empty.
        third = http_sync(node.http_url, node.token, {
            "clientId": "p", "clientHlc": ts(now_ms(), 0, "p"),
            "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": second.body["deltas"][0]["serverSyncTimestamp"]}]})
        assert third.body["deltas"][0]["records"] == []
    finally:
        writer.close()


def test_a_position_survives_a_restart(server_factory, map_name):
    """The order is stored with each record: a position given before a restart still returns
    exactly the writes made after it."""
    node = server_factory("dev-sqlite")
    conn = connect(node.ws_url, node.token)
    conn.write([put_op(1, map_name, "before", {"value": 1, "timestamp": HLC("a").now()})])
    conn.close()
    poll = http_sync(node.http_url, node.token, {
        "clientId": "p", "clientHlc": ts(now_ms(), 0, "p"), "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": ts(0, 0, "")}]})
    position = poll.body["deltas"][0]["serverSyncTimestamp"]
    node.stop()
    node.start()
    conn = connect(node.ws_url, node.token)
    conn.write([put_op(2, map_name, "after", {"value": 2, "timestamp": ts(1000, 0, "old-clock")})])
    conn.close()
    later = http_sync(node.http_url, node.token, {
        "clientId": "p", "clientHlc": ts(now_ms(), 0, "p"), "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": position}]})
    assert [r["key"] for r in later.body["deltas"][0]["records"]] == ["after"]


@pytest.fixture(scope="module")
def strict_node(server_factory):
    """A one-second drift bound, and small pages (a 64 KiB outbound bound makes 64 KiB sync pages)."""
    return server_factory("dev-memory", extra_args=("--max-clock-drift", "1", "--outbound-queue-bytes", "65536"))


def test_a_timestamp_too_far_ahead_is_rejected_for_good(strict_node, map_name):
    node = strict_node
    conn = connect(node.ws_url, node.token)
    try:
        ops = [put_op("ok", map_name, "a", {"value": 1, "timestamp": ts(now_ms(), 0, "c")}),
               put_op("ahead", map_name, "b", {"value": 2, "timestamp": ts(now_ms() + 30_000, 0, "c")}),
               put_op("tag", map_name + "-or", "c", {"value": 3, "timestamp": ts(now_ms(), 0, "c")})]
        ops[2] = {"id": "tag", "mapName": map_name + "-or", "opType": "OR_REMOVE", "key": "c",
                  "orTag": f"{now_ms() + YEAR_MS}:0:c", "timestamp": ts(now_ms(), 0, "c")}
        ack = conn.write(ops)
        results = {r["opId"]: r for r in ack["payload"]["results"]}
        assert results["ok"]["success"] is True
        for op_id in ("ahead", "tag"):
            assert results[op_id]["success"] is False, results[op_id]
            rejected = conn.wait_for("OP_REJECTED", lambda m, i=op_id: m["payload"]["opId"] == i)["payload"]
            assert rejected["code"] == 400 and rejected["details"]["field"] == "timestamp", rejected
        rows = conn.query(map_name, {})["results"]
        assert [r["key"] for r in rows] == ["a"]
    finally:
        conn.close()
    # The same over HTTP: rejected in the ack's results, never applied.
    response = http_sync(node.http_url, node.token, {
        "clientId": "h", "clientHlc": ts(now_ms(), 0, "h"),
        "operations": [put_op("h1", map_name, "http-ahead", {"value": 1, "timestamp": ts(now_ms() + 60_000, 0, "h")})]})
    assert response.body["ack"]["results"][0]["success"] is False
    assert "ahead" in response.body["ack"]["results"][0]["error"]
    # A client clock far ahead does not move the tenant's clock either.
    moved = http_sync(node.http_url, node.token, {"clientId": "h", "clientHlc": ts(now_ms() + YEAR_MS, 0, "h")})
    assert moved.body["serverHlc"]["millis"] < now_ms() + 60_000


def test_delta_sync_pages_bring_every_record_once(strict_node, map_name):
    """300 records of 1 KiB do not fit one 64 KiB page: successive polls, each from the last
    position, bring all of them, each once, and then nothing."""
    node = strict_node
    conn = connect(node.ws_url, node.token)
    clock = HLC("bulk")
    conn.write([put_op(i, map_name, f"k{i:03d}", {"value": "v" * 1000, "timestamp": clock.now()}) for i in range(300)])
    conn.close()
    position = ts(0, 0, "")
    seen: list[str] = []
    polls = 0
    while polls < 50:
        response = http_sync(node.http_url, node.token, {
            "clientId": "p", "clientHlc": ts(now_ms(), 0, "p"), "syncMaps": [{"mapName": map_name, "lastSyncTimestamp": position}]})
        assert len(response.raw) <= 80 * 1024, f"a response of {len(response.raw)} bytes"
        delta = response.body["deltas"][0]
        polls += 1
        if not delta["records"]:
            break
        seen += [r["key"] for r in delta["records"]]
        position = delta["serverSyncTimestamp"]
    assert polls >= 5, "300 KiB should take several 64 KiB pages"
    assert sorted(seen) == [f"k{i:03d}" for i in range(300)], "records missing or repeated"
