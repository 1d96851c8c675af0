"""Robustness point 8: strict token and frame parsing, over real sockets.

- A JWT whose header or claims name a member twice is refused: AUTH_FAIL and close 4001 on the
  WebSocket, 401 on POST /sync.
- Every string of a frame must be valid UTF-8. Bad bytes inside one op of an OP_BATCH (or the
  op of a CLIENT_OP, or an op of an HTTP sync body) reject that op for good (OP_ACK result with
  success false, OP_REJECTED 400) and the rest is applied; bad bytes anywhere else get ERROR 400
  for the frame; a text frame that is not UTF-8 fails the connection (1007, RFC 6455 §8.1).
"""
import base64
import hashlib
import hmac
import json
import time

import pytest

from topgun_client import HLC, Connection, connect, http, http_sync, op_batch, pack, put_op

MARKER = b"@BAD@"
INVALID = b"x\xc3\x28\xffx"  # as long as the marker: a lead byte without its continuation, 0xff


def corrupted(frame: bytes) -> bytes:
    """The frame with its one marker replaced by invalid UTF-8 (same length, so every length
    prefix stays right)."""
    assert frame.count(MARKER) == 1, "the marker must appear exactly once"
    return frame.replace(MARKER, INVALID)


@pytest.fixture(scope="module")
def node(server_factory):
    return server_factory("dev-memory")


# ---------------------------------------------------------------------------------------------
# Tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def signing_key(node):
    """A new HS256 key of the node's dev tenant, made through the control plane (which shows its
    secret once): (kid, secret)."""
    url = f"{node.info['controlPlaneURL']}/v1/tenants/{node.tenant}/keys"
    result = http("POST", url, json.dumps({"algorithm": "HS256"}).encode(),
                  {"Authorization": f"Bearer {node.info['adminToken']}", "Content-Type": "application/json"})
    assert result.status == 201, result
    key = json.loads(result.body)
    secret = base64.urlsafe_b64decode(key["secret"] + "=" * (-len(key["secret"]) % 4))
    return key["kid"], secret


def handmade_token(header: str, claims: str, secret: bytes) -> str:
    """An HS256 JWT of exactly this header and claims text, correctly signed."""
    signing_input = f"{b64url(header.encode())}.{b64url(claims.encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def claims_text(extra: str = "") -> str:
    now = int(time.time())
    return f'{{"sub":"mallory","iat":{now},"exp":{now + 600}{extra}}}'


def auth_reply(node, token: str) -> tuple[dict, Connection]:
    conn = Connection(node.ws_url)
    return conn.auth(token), conn


def test_the_handmade_token_without_repeats_is_accepted(node, signing_key):
    kid, secret = signing_key
    token = handmade_token(f'{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}', claims_text(), secret)
    reply, conn = auth_reply(node, token)
    conn.close()
    assert reply["type"] == "AUTH_ACK", reply
    assert http_sync(node.http_url, token, {"clientId": "c", "clientHlc": HLC("c").now()}).status == 200


REPEATS = [
    ("kid-twice", '{{"alg":"HS256","kid":"{kid}","kid":"{kid}"}}', ""),
    ("alg-twice", '{{"alg":"HS256","alg":"HS256","kid":"{kid}"}}', ""),
    ("sub-twice", '{{"alg":"HS256","kid":"{kid}"}}', ',"sub":"alice"'),
    ("exp-twice", '{{"alg":"HS256","kid":"{kid}"}}', ',"exp":1'),
]


@pytest.mark.parametrize("header,extra", [r[1:] for r in REPEATS], ids=[r[0] for r in REPEATS])
def test_a_token_naming_a_member_twice_gets_auth_fail_and_close_4001(node, signing_key, header, extra):
    kid, secret = signing_key
    token = handmade_token(header.format(kid=kid), claims_text(extra), secret)
    reply, conn = auth_reply(node, token)
    try:
        assert reply["type"] == "AUTH_FAIL", reply
        reason = reply.get("error")
        assert isinstance(reason, str) and "repeat" in reason, reply
        assert kid not in reason and "mallory" not in reason, f"the reason echoes the token: {reason!r}"
        code, close_reason = conn.wait_closed()
        assert code == 4001, f"close code {code} ({close_reason!r})"
    finally:
        conn.close()


@pytest.mark.parametrize("header,extra", [r[1:] for r in REPEATS], ids=[r[0] for r in REPEATS])
def test_a_token_naming_a_member_twice_is_401_on_http_sync(node, signing_key, header, extra):
    kid, secret = signing_key
    token = handmade_token(header.format(kid=kid), claims_text(extra), secret)
    result = http_sync(node.http_url, token, {"clientId": "c", "clientHlc": HLC("c").now()})
    assert result.status == 401, result
    problem = json.loads(result.body)
    assert "repeat" in problem.get("detail", ""), problem
    assert kid not in result.body.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# Invalid UTF-8 in binary frames


def op_with(op_id: str, map_name: str, key: str, hlc: HLC, **extra) -> dict:
    op = put_op(op_id, map_name, key, {"value": {"title": key}, "timestamp": hlc.now()})
    op.update(extra)
    return op


# Where the marker goes in the bad op (each keeps the op's key readable, so we can look for it).
PLACES_IN_AN_OP = {
    "member-name": lambda op: op.update({"@BAD@": 1}),
    "ignored-value": lambda op: op.update({"extra": "@BAD@"}),
    "nested-in-ignored-value": lambda op: op.update({"extra": {"a": [1, {"b": "@BAD@"}]}}),
    "record-value": lambda op: op["record"].update({"value": {"title": "@BAD@"}}),
    "record-value-key": lambda op: op["record"].update({"value": {"@BAD@": 1}}),
}


def stored_keys(conn: Connection, map_name: str) -> list[str]:
    return sorted(r["key"] for r in conn.query(map_name, {})["results"])


@pytest.mark.parametrize("place", list(PLACES_IN_AN_OP))
def test_an_op_batch_with_one_bad_op_applies_the_others_and_rejects_that_one(node, map_name, place):
    hlc = HLC("strict-client")
    bad = op_with("2", map_name, "k2", hlc)
    PLACES_IN_AN_OP[place](bad)
    ops = [op_with("1", map_name, "k1", hlc), bad, op_with("3", map_name, "k3", hlc)]
    conn = connect(node.ws_url, node.token)
    try:
        conn.send_raw(corrupted(pack(op_batch(ops))))
        ack = conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == "3")["payload"]
        results = {r["opId"]: r for r in ack["results"]}
        assert results["1"]["success"] is True and results["3"]["success"] is True, ack
        assert results["2"]["success"] is False, ack
        assert "UTF-8" in results["2"].get("error", ""), ack
        rejected = conn.wait_for("OP_REJECTED", lambda m: m["payload"]["opId"] == "2")["payload"]
        assert rejected.get("code") == 400, rejected
        assert "payload.ops[1]" in rejected.get("reason", "") and "UTF-8" in rejected["reason"], rejected
        conn.expect_none("ERROR", within=0.3)
        assert stored_keys(conn, map_name) == ["k1", "k3"]
    finally:
        conn.close()


def test_an_op_whose_id_is_unreadable_is_rejected_under_its_index(node, map_name):
    hlc = HLC("strict-client")
    ops = [op_with("first", map_name, "k1", hlc), op_with("@BAD@", map_name, "k2", hlc), op_with("third", map_name, "k3", hlc)]
    conn = connect(node.ws_url, node.token)
    try:
        conn.send_raw(corrupted(pack(op_batch(ops))))
        ack = conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == "third")["payload"]
        assert [(r["opId"], r["success"]) for r in ack["results"]] == [("first", True), ("1", False), ("third", True)], ack
        conn.wait_for("OP_REJECTED", lambda m: m["payload"]["opId"] == "1" and m["payload"].get("code") == 400)
        assert stored_keys(conn, map_name) == ["k1", "k3"]
    finally:
        conn.close()


def test_a_ping_with_the_same_bytes_gets_error_400(node):
    conn = connect(node.ws_url, node.token)
    try:
        conn.send_raw(corrupted(pack({"type": "PING", "timestamp": 1, "extra": "@BAD@"})))
        error = conn.wait_for("ERROR")["payload"]
        assert error["code"] == 400 and "UTF-8" in error["message"], error
        conn.send_raw(corrupted(pack({"type": "PING", "timestamp": 1, "@BAD@": 1})))
        assert conn.wait_for("ERROR")["payload"]["code"] == 400
        conn.ping()  # the connection goes on
    finally:
        conn.close()


@pytest.mark.parametrize("where", ["message", "payload"])
def test_bad_bytes_in_an_op_batch_envelope_get_error_400_and_nothing_is_applied(node, map_name, where):
    hlc = HLC("strict-client")
    frame = op_batch([op_with("1", map_name, "k1", hlc)])
    (frame if where == "message" else frame["payload"])["@BAD@"] = 1
    conn = connect(node.ws_url, node.token)
    try:
        conn.send_raw(corrupted(pack(frame)))
        error = conn.wait_for("ERROR")["payload"]
        assert error["code"] == 400 and "UTF-8" in error["message"], error
        conn.expect_none("OP_ACK", within=0.3)
        assert stored_keys(conn, map_name) == []
    finally:
        conn.close()


def test_a_client_op_with_bad_bytes_is_rejected_for_good(node, map_name):
    hlc = HLC("strict-client")
    conn = connect(node.ws_url, node.token)
    try:
        conn.send_raw(corrupted(pack({"type": "CLIENT_OP", "payload": op_with("9", map_name, "k9", hlc, extra=["@BAD@"])})))
        ack = conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == "9")["payload"]
        assert [(r["opId"], r["success"]) for r in ack["results"]] == [("9", False)], ack
        rejected = conn.wait_for("OP_REJECTED", lambda m: m["payload"]["opId"] == "9")["payload"]
        assert rejected.get("code") == 400 and "UTF-8" in rejected.get("reason", ""), rejected
        assert stored_keys(conn, map_name) == []
    finally:
        conn.close()


def test_http_sync_rejects_the_bad_op_in_ack_results_and_applies_the_others(node, map_name):
    hlc = HLC("http-strict")
    ops = [op_with("h1", map_name, "k1", hlc), op_with("h2", map_name, "k2", hlc, extra="@BAD@")]
    body = corrupted(pack({"clientId": "http-strict", "clientHlc": hlc.now(), "operations": ops}))
    result = http("POST", node.http_url + "/sync", body,
                  {"Content-Type": "application/x-msgpack", "Authorization": f"Bearer {node.token}"})
    assert result.status == 200, result
    ack = result.decoded()["ack"]
    results = {r["opId"]: r for r in ack["results"]}
    assert results["h1"]["success"] is True, ack
    assert results["h2"]["success"] is False and "operations[1]" in results["h2"].get("error", ""), ack
    conn = connect(node.ws_url, node.token)
    try:
        assert stored_keys(conn, map_name) == ["k1"]
    finally:
        conn.close()


def test_http_sync_with_bad_bytes_outside_the_ops_is_400(node, map_name):
    hlc = HLC("http-strict")
    body = corrupted(pack({"clientId": "@BAD@", "clientHlc": hlc.now(), "operations": [op_with("h1", map_name, "k1", hlc)]}))
    result = http("POST", node.http_url + "/sync", body,
                  {"Content-Type": "application/x-msgpack", "Authorization": f"Bearer {node.token}"})
    assert result.status == 400, result


# ---------------------------------------------------------------------------------------------
# Text frames


def test_a_text_frame_that_is_not_utf8_fails_the_connection_with_1007(node):
    conn = connect(node.ws_url, node.token)
    try:
        conn.ws.send(b'{"type":"PING","timestamp":1,"x":"' + INVALID + b'"}', text=True)
        code, reason = conn.wait_closed()
        assert code == 1007, f"close code {code} ({reason!r}); frames: {conn.recent()}"
    finally:
        conn.close()
    fresh = connect(node.ws_url, node.token)  # the node goes on
    try:
        fresh.ping()
    finally:
        fresh.close()
