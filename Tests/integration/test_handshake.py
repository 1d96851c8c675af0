"""Scenario 1: the connection handshake of protocol.md §6.3 and issue 3, Deliver 3."""
import time
import uuid

import jwt
import pytest

from topgun_client import Connection, connect, new_id


def forged(kid: str, sub: str = "mallory", secret: str | None = None, **claims) -> str:
    now = int(time.time())
    body = {"sub": sub, "iat": now, "exp": now + 3600, **claims}
    return jwt.encode(body, secret or uuid.uuid4().hex * 2, algorithm="HS256", headers={"kid": kid})


def test_server_sends_auth_required_first(dev_server):
    conn = Connection(dev_server.ws_url)
    try:
        first = conn.recv()
        assert first["type"] == "AUTH_REQUIRED", first
    finally:
        conn.close()


def test_auth_ack_names_the_token_subject(dev_server):
    token = dev_server.mint("alice")
    conn = Connection(dev_server.ws_url)
    try:
        reply = conn.auth(token)
        assert reply["type"] == "AUTH_ACK", reply
        assert reply["userId"] == "alice"
        assert isinstance(reply.get("protocolVersion"), int), reply
    finally:
        conn.close()


def test_the_dev_app_token_authenticates_as_dev_user(dev_server):
    conn = connect(dev_server.ws_url, dev_server.token)
    conn.close()


def test_duplicate_auth_is_ignored_silently(dev_server):
    conn = Connection(dev_server.ws_url)
    try:
        # What the real client does: AUTH on open, and again in answer to AUTH_REQUIRED.
        conn.send({"type": "AUTH", "token": dev_server.token})
        conn.wait_for("AUTH_REQUIRED")
        conn.send({"type": "AUTH", "token": dev_server.token})
        conn.wait_for("AUTH_ACK")
        conn.expect_none(("AUTH_ACK", "AUTH_FAIL", "ERROR"), within=1.0, what="after a duplicate AUTH")
        conn.ping()
        assert conn.is_open()
    finally:
        conn.close()


def test_duplicate_auth_with_a_bad_token_after_success_is_ignored(dev_server):
    conn = connect(dev_server.ws_url, dev_server.token)
    try:
        conn.send({"type": "AUTH", "token": "garbage"})
        conn.expect_none(("AUTH_ACK", "AUTH_FAIL", "ERROR"), within=1.0, what="after a second AUTH")
        conn.ping()
    finally:
        conn.close()


def test_ping_before_auth_gets_pong_with_server_time(dev_server):
    conn = Connection(dev_server.ws_url)
    try:
        conn.send({"type": "PING", "timestamp": 1700000000000.0})
        pong = conn.wait_for("PONG")
        assert pong["timestamp"] == 1700000000000
        assert abs(pong["serverTime"] - time.time() * 1000) < 60_000, pong
    finally:
        conn.close()


def test_device_hello_is_ignored_in_auth_mode(dev_server):
    conn = Connection(dev_server.ws_url)
    try:
        conn.send({"type": "DEVICE_HELLO"})
        conn.expect_none(("DEVICE_ACK", "ERROR", "AUTH_FAIL"), within=0.7)
        assert conn.auth(dev_server.token)["type"] == "AUTH_ACK"
    finally:
        conn.close()


def test_data_message_before_auth_gets_error_401_and_auth_still_works(dev_server):
    conn = Connection(dev_server.ws_url)
    try:
        conn.send({"type": "QUERY_SUB", "payload": {"queryId": new_id(), "mapName": "m", "query": {}}})
        error = conn.wait_for("ERROR")
        assert error["payload"]["code"] == 401, error
        assert conn.auth(dev_server.token)["type"] == "AUTH_ACK"
    finally:
        conn.close()


def _expect_auth_fail(url: str, token: str):
    conn = Connection(url)
    try:
        reply = conn.auth(token)
        assert reply["type"] == "AUTH_FAIL", reply
        assert isinstance(reply.get("error"), str) and reply["error"], f"AUTH_FAIL without a reason: {reply}"
        code, reason = conn.wait_closed()
        assert code == 4001, f"close code {code} ({reason!r})"
        return reply
    finally:
        conn.close()


def test_bad_signature_fails_and_closes_4001(dev_server):
    _expect_auth_fail(dev_server.ws_url, forged(dev_server.key_id))


def test_unknown_kid_fails_and_closes_4001(dev_server):
    _expect_auth_fail(dev_server.ws_url, forged("no-such-key-" + uuid.uuid4().hex[:6]))


@pytest.mark.parametrize("token", ["garbage", "", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_garbage_token_fails_and_closes_4001(dev_server, token):
    _expect_auth_fail(dev_server.ws_url, token)


def test_token_without_kid_fails(dev_server):
    now = int(time.time())
    token = jwt.encode({"sub": "x", "exp": now + 60}, "s" * 40, algorithm="HS256")
    _expect_auth_fail(dev_server.ws_url, token)


def test_tenant_path_with_matching_token_works(dev_server):
    conn = connect(dev_server.url(f"/t/{dev_server.tenant}/ws"), dev_server.token)
    try:
        conn.ping()
    finally:
        conn.close()


def test_tenant_path_naming_another_tenant_fails(dev_server):
    _expect_auth_fail(dev_server.url(f"/t/{uuid.uuid4()}/ws"), dev_server.token)


def test_root_path_works(dev_server):
    conn = connect(dev_server.url("/"), dev_server.token)
    try:
        conn.ping()
    finally:
        conn.close()


def test_unauthenticated_connection_is_closed_after_the_auth_deadline(dev_server):
    conn = Connection(dev_server.ws_url)
    try:
        conn.wait_for("AUTH_REQUIRED")
        conn.ping()  # PINGs do not count as authentication
        started = time.monotonic()
        code, reason = conn.wait_closed(timeout=16)
        assert code == 4001, f"close code {code} ({reason!r})"
        assert time.monotonic() - started > 5, "closed long before the 10 s deadline"
    finally:
        conn.close()
