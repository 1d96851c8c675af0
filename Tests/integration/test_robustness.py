"""Scenario 14: malformed, oversized and unexpected input, and floods. Each case gets a typed
ERROR (protocol.md §15) or a close with a reason; afterwards a fresh client still works and a
bystander connected all along still gets PONGs. These run on their own node."""
import json
import socket
import time

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed

from topgun_client import HLC, Connection, connect, http, op_batch, pack, put_op

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def node(server_factory):
    return server_factory("dev-memory")


@pytest.fixture
def bystander(node):
    """A client connected (and idle) before the test's bad input arrives."""
    conn = connect(node.ws_url, node.token)
    conn.ping()
    yield conn
    conn.close()


@pytest.fixture
def healthy(node, bystander, map_name):
    """Checks, after the test, that the node is alive and serving everyone."""
    yield
    assert node.alive(), f"the node died:\n{node.stderr_tail()}"
    fresh = connect(node.ws_url, node.token)
    try:
        fresh.ping()
        ack = fresh.write([put_op(1, map_name + "-after", "k", {"value": 1, "timestamp": HLC("fresh").now()})])
        assert ack["payload"]["results"][0]["success"] is True
    finally:
        fresh.close()
    bystander.ping()
    bystander.collect(0)


def error_of(conn: Connection) -> dict:
    return conn.wait_for("ERROR")["payload"]


GARBAGE = [
    ("invalid-byte", b"\xc1"),
    ("truncated", b"\x82\xa4type\xa4PING\xa9timestamp"),
    ("not-a-map", msgpack.packb([1, 2, 3])),
    ("type-not-string", msgpack.packb({"type": 7})),
    ("no-type", msgpack.packb({"payload": {}})),
    ("huge-declared-string", b"\xdb\xff\xff\xff\xff"),
    ("deep-nesting", b"\x91" * 10000),
    ("ext-type", msgpack.packb({"type": "PING", "timestamp": msgpack.ExtType(42, b"xx")})),
    ("empty", b""),
]


@pytest.mark.parametrize("frame", [g[1] for g in GARBAGE], ids=[g[0] for g in GARBAGE])
def test_malformed_frame_gets_error_400_and_the_connection_stays_open(node, healthy, frame):
    conn = connect(node.ws_url, node.token)
    try:
        conn.send_raw(frame)
        error = error_of(conn)
        assert error["code"] == 400, error
        assert isinstance(error.get("message"), str) and error["message"]
        conn.ping()
    finally:
        conn.close()


def test_unknown_message_type_gets_error_400(node, healthy):
    conn = connect(node.ws_url, node.token)
    try:
        conn.send({"type": "NO_SUCH_MESSAGE_TYPE", "payload": {}})
        error = error_of(conn)
        assert error["code"] == 400, error
        conn.ping()
    finally:
        conn.close()


@pytest.mark.parametrize("message,field", [
    ({"type": "OP_BATCH", "payload": {"ops": {"not": "a list"}}}, "ops"),
    ({"type": "OP_BATCH", "payload": {"ops": [{"id": "1", "mapName": 5, "key": "k", "opType": "PUT",
                                               "record": {"value": 1, "timestamp": {"millis": 1, "counter": 0, "nodeId": "n"}}}]}}, "mapName"),
    ({"type": "QUERY_SUB", "payload": {"queryId": "q", "mapName": "m", "query": {"limit": "ten"}}}, "limit"),
    ({"type": "PING", "timestamp": "soon"}, "timestamp"),
], ids=["ops-is-a-map", "mapName-is-a-number", "limit-is-a-string", "ping-timestamp-string"])
def test_wrong_field_type_gets_error_400_naming_the_field(node, healthy, message, field):
    conn = connect(node.ws_url, node.token)
    try:
        conn.send(message)
        error = error_of(conn)
        assert error["code"] == 400, error
        details = error.get("details") or {}
        assert field in str(details.get("field", "")), f"details.field does not name {field!r}: {error}"
        conn.ping()
    finally:
        conn.close()


def test_frame_over_2_mib_is_refused_without_a_crash(node, healthy):
    conn = connect(node.ws_url, node.token)
    try:
        big = pack({"type": "PING", "timestamp": 1.0, "pad": "x" * (2 * MiB + 1024)})
        try:
            conn.send_raw(big)
        except (ConnectionClosed, OSError):
            pass
        deadline = time.monotonic() + 5
        outcome = None
        while time.monotonic() < deadline and outcome is None:
            for m in conn.collect(0.2):
                if m.get("type") == "ERROR" and m["payload"]["code"] == 413:
                    outcome = f"ERROR 413 {m['payload']}"
            if conn.closed is not None or not conn.is_open():
                outcome = outcome or f"close {conn.close_code()}"
        assert outcome is not None, f"no answer to an oversized frame; frames: {conn.recent()}"
        if outcome.startswith("close"):
            assert conn.close_code() == 1009, f"closed with {conn.close_code()} {conn.close_reason()!r}, expected 1009"
    finally:
        conn.close()


def test_frame_of_1_mib_is_fine(node, healthy):
    conn = connect(node.ws_url, node.token)
    try:
        conn.send({"type": "PING", "timestamp": 42.0, "pad": "y" * MiB})
        conn.wait_for("PONG", lambda m: m["timestamp"] == 42)
    finally:
        conn.close()


def test_json_text_frames_work(node, healthy, map_name):
    conn = Connection(node.ws_url)
    try:
        conn.send_raw(json.dumps({"type": "PING", "timestamp": 7}))
        conn.wait_for("PONG", lambda m: m["timestamp"] == 7)
        conn.send_raw(json.dumps({"type": "AUTH", "token": node.token}))
        conn.wait_for("AUTH_ACK")
        op = put_op(1, map_name, "k", {"value": {"from": "json"}, "timestamp": HLC("json").now()})
        conn.send_raw(json.dumps(op_batch([op])))
        ack = conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == "1")
        assert ack["payload"]["results"][0]["success"] is True
        resp = conn.query(map_name, {})
        assert resp["results"] == [{"key": "k", "value": {"from": "json"}}]
        conn.send_raw("{this is not json")
        assert error_of(conn)["code"] == 400
        conn.ping()
    finally:
        conn.close()


def test_flood_from_one_connection_is_rate_limited_and_others_are_unaffected(node, healthy, bystander, map_name):
    flooder = connect(node.ws_url, node.token)
    try:
        hlc = HLC("flood")
        frames = []
        op_id = 0
        for _ in range(200):
            ops = []
            for _ in range(400):
                op_id += 1
                ops.append(put_op(op_id, map_name, f"f{op_id % 50}", {"value": op_id, "timestamp": hlc.now()}))
            frames.append(pack(op_batch(ops)))
        started = time.monotonic()
        try:
            for frame in frames:
                flooder.send_raw(frame)
        except (ConnectionClosed, OSError):
            pass
        # Others are served while the flood is being handled.
        bystander.ping(timeout=5)
        limited, finished = None, None
        deadline = time.monotonic() + 30
        while limited is None and finished is None and time.monotonic() < deadline:
            for m in flooder.collect(0.2):
                if m.get("type") == "ERROR" and m["payload"]["code"] == 429:
                    limited = m["payload"]
                    break
                if m.get("type") == "OP_ACK" and m["payload"]["lastId"] == str(op_id):
                    finished = time.monotonic() - started
            if flooder.closed is not None:
                break
        assert limited is not None, (
            f"no ERROR 429 for {op_id} ops sent without waiting; "
            + (f"all were acknowledged after {finished:.1f}s ({op_id / finished:.0f} ops/s); " if finished else "")
            + f"closed: {flooder.close_code()} {flooder.close_reason()!r}; last frames: {flooder.recent(2)}")
        retry = (limited.get("details") or {}).get("retryAfterMs")
        assert isinstance(retry, (int, float)) and retry > 0, limited
    finally:
        flooder.close()
    bystander.ping()


def test_health_ready_metrics(node, healthy, bystander):
    bystander.ping()
    assert http("GET", node.http_url + "/health").status == 200
    assert http("GET", node.http_url + "/ready").status == 200
    metrics = http("GET", node.http_url + "/metrics")
    assert metrics.status == 200 and "topgun_messages_in_total" in metrics.body.decode()


def test_many_connections_opening_and_dropping_abruptly(node, healthy):
    conns = [connect(node.ws_url, node.token) for _ in range(30)]
    for c in conns:
        # Drop the TCP connection without a close frame.
        c.ws.socket.shutdown(socket.SHUT_RDWR)
    time.sleep(0.2)
