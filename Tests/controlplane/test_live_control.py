"""Changes made through the control plane reach the data plane's open sessions (issue 4's change
propagation, issue 5's live control): suspension, deletion and key revocation close sessions
with 1008 and a reason. On SQLite the data plane is in the same process (`topgun dev`); on
PostgreSQL it is another process (`topgun data-plane`) told through LISTEN/NOTIFY."""
import base64
import pathlib
import sys
import time

import jwt
import pytest

from conftest import Process

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from topgun_client import Connection  # noqa: E402

DEADLINE = 5.0


def tenant_with_token(api, sub="alice"):
    tenant = api.create_tenant()
    key = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"}).json
    secret = base64.urlsafe_b64decode(key["secret"] + "=")
    now = int(time.time())
    token = jwt.encode({"sub": sub, "iat": now, "exp": now + 600}, secret, algorithm="HS256", headers={"kid": key["kid"]})
    return tenant, key, token


def connected(url, token):
    conn = Connection(url)
    reply = conn.auth(token)
    assert reply["type"] == "AUTH_ACK", reply
    return conn


def closed_within(conn, seconds=DEADLINE):
    start = time.monotonic()
    code, reason = conn.wait_closed(timeout=seconds)
    return code, reason, time.monotonic() - start


def test_suspending_a_tenant_closes_its_sessions_and_refuses_new_ones(planes):
    api, url = planes
    tenant, _, token = tenant_with_token(api)
    bystander_tenant, _, bystander_token = tenant_with_token(api)
    conn, bystander = connected(url, token), connected(url, bystander_token)
    try:
        assert api.post(f"/v1/tenants/{tenant['id']}/suspend", {"reason": "unpaid"}).status == 200
        code, reason, _ = closed_within(conn)
        assert code == 1008 and "suspended" in reason
        assert Connection(url).auth(token)["type"] == "AUTH_FAIL"
        # The other tenant's session is untouched.
        bystander.send({"type": "PING", "timestamp": 1})
        assert bystander.wait_for("PONG")["type"] == "PONG"
        api.post(f"/v1/tenants/{tenant['id']}/resume")
        connected(url, token).close()
    finally:
        conn.close()
        bystander.close()


def test_deleting_a_tenant_closes_its_sessions(planes):
    api, url = planes
    tenant, _, token = tenant_with_token(api)
    conn = connected(url, token)
    try:
        api.delete(f"/v1/tenants/{tenant['id']}")
        code, reason, _ = closed_within(conn)
        assert code == 1008 and "deleted" in reason
        assert Connection(url).auth(token)["type"] == "AUTH_FAIL"
    finally:
        conn.close()


def test_revoking_a_key_closes_only_the_sessions_it_authenticated(planes):
    api, url = planes
    tenant, key, token = tenant_with_token(api)
    other_key = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"}).json
    now = int(time.time())
    other_token = jwt.encode({"sub": "bob", "iat": now, "exp": now + 600}, base64.urlsafe_b64decode(other_key["secret"] + "="),
                             algorithm="HS256", headers={"kid": other_key["kid"]})
    revoked_session, kept_session = connected(url, token), connected(url, other_token)
    try:
        api.delete(f"/v1/tenants/{tenant['id']}/keys/{key['kid']}")
        code, reason, _ = closed_within(revoked_session)
        assert code == 1008 and "revoked" in reason
        kept_session.send({"type": "PING", "timestamp": 1})
        assert kept_session.wait_for("PONG")["type"] == "PONG"
        assert Connection(url).auth(token)["type"] == "AUTH_FAIL"
    finally:
        revoked_session.close()
        kept_session.close()
