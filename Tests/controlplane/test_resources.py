"""Signing keys, quotas, map schemas, usage and the audit log, through the real API."""
import base64
import csv
import io
import json
import pathlib
import re
import sys
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from topgun_client import Connection  # noqa: E402

LIMITS = {"max_connections": 20000, "max_operations_per_second": 8000, "max_storage_bytes": 21474836480,
          "max_maps": 500, "max_message_bytes": 1048576, "max_live_subscriptions": 20000}


def pem(public_key) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---- signing keys

def test_hs256_keys_are_generated_and_shown_once(api):
    tenant = api.create_tenant()
    created = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256", "label": "web app"})
    assert created.status == 201, created
    key = created.json
    assert re.match(r"^key_[a-z2-7]{24}$", key["kid"])
    assert re.match(r"^[A-Za-z0-9_-]{43}$", key["secret"]) and len(base64.urlsafe_b64decode(key["secret"] + "=")) == 32
    assert key["label"] == "web app" and key["status"] == "active" and key["tenant_id"] == tenant["id"]
    assert created.header("cache-control") == "no-store"
    fetched = api.get(f"/v1/tenants/{tenant['id']}/keys/{key['kid']}").json
    assert "secret" not in fetched and fetched["kid"] == key["kid"]
    listed = api.get(f"/v1/tenants/{tenant['id']}/keys").json["items"]
    assert [k["kid"] for k in listed] == [key["kid"]] and all("secret" not in k for k in listed)
    longer = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256", "secret_bytes": 64}).json
    assert len(longer["secret"]) == 86
    for bad in [{"algorithm": "HS256", "secret_bytes": 16}, {"algorithm": "HS256", "secret_bytes": "32"},
                {"algorithm": "HS512"}, {}, {"algorithm": "HS256", "public_key_pem": "x"}]:
        assert api.post(f"/v1/tenants/{tenant['id']}/keys", bad).status == 400, bad


def test_public_keys_register_as_pem_and_jwk(api):
    tenant = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}/keys"
    es = ec.generate_private_key(ec.SECP256R1())
    r = api.post(path, {"algorithm": "ES256", "public_key_pem": pem(es.public_key())})
    assert r.status == 201, r
    assert r.json["public_key_pem"] == pem(es.public_key()) and "secret" not in r.json
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert api.post(path, {"algorithm": "RS256", "public_key_pem": pem(rsa_key.public_key())}).status == 201
    ed = ed25519.Ed25519PrivateKey.generate()
    raw = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": "ignored", "use": "sig"}
    r = api.post(path, {"algorithm": "EdDSA", "public_key_jwk": jwk})
    assert r.status == 201, r
    assert r.json["public_key_jwk"] == {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "use": "sig"}
    # Private keys, mismatched algorithms and malformed keys are refused.
    private_pem = es.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for bad in [{"algorithm": "ES256", "public_key_pem": private_pem},
                {"algorithm": "EdDSA", "public_key_jwk": {**jwk, "d": b64url(b"x" * 32)}},
                {"algorithm": "RS256", "public_key_pem": pem(es.public_key())},
                {"algorithm": "ES256", "public_key_jwk": jwk},
                {"algorithm": "EdDSA", "public_key_jwk": {"kty": "OKP", "crv": "Ed25519", "x": "short"}},
                {"algorithm": "ES256", "public_key_pem": "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n"},
                {"algorithm": "EdDSA", "public_key_jwk": {**jwk, "alg": "ES256"}}]:
        response = api.post(path, bad)
        assert response.status == 400, (bad, response)


def test_at_most_ten_active_keys_and_revocation(api):
    tenant = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}/keys"
    kids = [api.post(path, {"algorithm": "HS256"}).json["kid"] for _ in range(10)]
    eleventh = api.post(path, {"algorithm": "HS256"})
    assert eleventh.status == 409, eleventh
    revoked = api.delete(f"{path}/{kids[0]}")
    assert revoked.status == 200 and revoked.json["status"] == "revoked" and "revoked_at" in revoked.json
    assert api.delete(f"{path}/{kids[0]}").json == revoked.json
    assert api.post(path, {"algorithm": "HS256"}).status == 201
    assert [k["kid"] for k in api.get(path + "?status=revoked").json["items"]] == [kids[0]]
    # Paging the eleven keys two at a time gives each once, oldest first.
    seen, cursor = [], None
    while True:
        page = api.get(path + "?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        seen += [k["kid"] for k in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen[:10] == kids and len(seen) == 11


def test_a_kid_of_another_tenant_is_not_found(api):
    a, b = api.create_tenant(), api.create_tenant()
    kid = api.post(f"/v1/tenants/{a['id']}/keys", {"algorithm": "HS256"}).json["kid"]
    assert api.get(f"/v1/tenants/{b['id']}/keys/{kid}").status == 404
    assert api.delete(f"/v1/tenants/{b['id']}/keys/{kid}").status == 404
    assert api.get(f"/v1/tenants/{a['id']}/keys/{kid}").status == 200


# ---- quotas

def test_quotas_follow_the_plan_until_replaced(api):
    tenant = api.create_tenant(plan="free")
    path = f"/v1/tenants/{tenant['id']}/quotas"
    got = api.get(path)
    assert got.status == 200
    assert got.json["source"] == "plan" and got.json["limits"]["max_connections"] == 100 and got.json["version"] >= 1
    etag = got.header("etag")
    assert re.match(r'^"[^"]+"$', etag)
    replaced = api.put(path, {"limits": LIMITS}, headers={"If-Match": etag})
    assert replaced.status == 200, replaced
    assert replaced.json["source"] == "custom" and replaced.json["limits"] == LIMITS
    assert replaced.header("etag") != etag
    stale = api.put(path, {"limits": LIMITS}, headers={"If-Match": etag})
    assert stale.status == 412 and stale.json["type"].endswith("/precondition-failed")
    assert stale.header("etag") == replaced.header("etag")
    # Custom limits stay across plan changes.
    api.patch(f"/v1/tenants/{tenant['id']}", {"plan": "enterprise"})
    assert api.get(path).json["limits"] == LIMITS
    reset = api.delete(path, headers={"If-Match": "*"})
    assert reset.status == 200 and reset.json["source"] == "plan" and reset.json["limits"]["max_connections"] == 100000
    for bad in [{"limits": {**LIMITS, "max_message_bytes": 10}}, {"limits": {**LIMITS, "max_maps": -1}},
                {"limits": {k: v for k, v in LIMITS.items() if k != "max_maps"}}, {"limits": {**LIMITS, "extra": 1}},
                {"limits": {**LIMITS, "max_connections": "100"}}, {"limits": {**LIMITS, "max_connections": 1.5}}, {}]:
        assert api.put(path, bad).status == 400, bad
    assert api.put(path, {"limits": LIMITS}, headers={"If-Match": 'W/"1"'}).status == 412


# ---- map schemas

SCHEMA = {"type": "object", "required": ["customer"], "properties": {"customer": {"type": "string", "maxLength": 200},
                                                                      "total": {"type": "number", "minimum": 0}}}


def test_schemas_are_versioned(api):
    tenant = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}/schemas/orders"
    first = api.put(path, {"enforcement": "warn", "schema": SCHEMA})
    assert first.status == 201, first
    assert first.json["version"] == 1 and first.json["enforcement"] == "warn" and first.json["schema"] == SCHEMA
    assert first.header("etag") == '"1"'
    same = api.put(path, {"enforcement": "warn", "schema": json.loads(json.dumps(SCHEMA))})
    assert same.status == 200 and same.json["version"] == 1
    second = api.put(path, {"enforcement": "strict", "schema": SCHEMA}, headers={"If-Match": '"1"'})
    assert second.status == 200 and second.json["version"] == 2
    assert api.put(path, {"enforcement": "off", "schema": SCHEMA}, headers={"If-Match": '"1"'}).status == 412
    assert api.put(path, {"enforcement": "off", "schema": SCHEMA}, headers={"If-None-Match": "*"}).status == 412
    assert api.get(path).json["version"] == 2
    assert api.delete(path, headers={"If-Match": '"1"'}).status == 412
    assert api.delete(path).status == 204
    assert api.get(path).status == 404
    assert api.delete(path).status == 404
    third = api.put(path, {"enforcement": "strict", "schema": {"type": "object"}})
    assert third.status == 201 and third.json["version"] == 3  # numbering continues
    versions = api.get(path + "/versions").json["items"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert api.get(path + "/versions/1").json["enforcement"] == "warn"
    assert api.get(path + "/versions/9").status == 404
    assert api.get(path + "/versions/abc").status == 404
    assert [s["map"] for s in api.get(f"/v1/tenants/{tenant['id']}/schemas").json["items"]] == ["orders"]
    assert api.get(f"/v1/tenants/{tenant['id']}/schemas/never/versions").status == 404


def test_invalid_schemas_name_the_json_pointer(api):
    tenant = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}/schemas/orders"
    response = api.put(path, {"enforcement": "strict", "schema": {
        "type": "object", "properties": {"total": {"type": "number", "minimum": 10, "maximum": 5},
                                         "customer": {"type": "string", "format": "email"}}}})
    assert response.status == 400
    pointers = {e["pointer"] for e in response.json["errors"]}
    assert "/schema/properties/customer/format" in pointers, response.json
    assert any(p.startswith("/schema/properties/total") for p in pointers), response.json
    assert api.put(path, {"enforcement": "loud", "schema": {}}).status == 400
    assert api.put(path, {"enforcement": "off", "schema": {"pattern": "(?<=a)b", "type": "string"}}).status == 400
    assert api.put(f"/v1/tenants/{tenant['id']}/schemas/-bad%20name", {"enforcement": "off", "schema": {}}).status in (400, 404)


# ---- usage

def test_usage_series_is_dense_and_export_has_a_header(api):
    tenant = api.create_tenant()
    response = api.get(f"/v1/tenants/{tenant['id']}/usage?from=2025-06-01T10:30:00Z&to=2025-06-01T13:00:00Z")
    assert response.status == 200, response
    body = response.json
    assert body["from"] == "2025-06-01T10:00:00Z" and body["to"] == "2025-06-01T13:00:00Z" and body["granularity"] == "hour"
    assert [p["period_start"] for p in body["series"]] == ["2025-06-01T10:00:00Z", "2025-06-01T11:00:00Z", "2025-06-01T12:00:00Z"]
    assert all(p["operations"] == 0 and p["partial"] is False for p in body["series"])
    days = api.get(f"/v1/tenants/{tenant['id']}/usage?from=2025-06-01T00:00:00%2B02:00&to=2025-06-03T00:00:00Z&granularity=day").json
    assert [p["period_start"] for p in days["series"]] == ["2025-05-31T00:00:00Z", "2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z"]
    for bad in ["from=2025-06-02T00:00:00Z&to=2025-06-01T00:00:00Z", "from=yesterday&to=2025-06-01T00:00:00Z",
                "to=2025-06-01T00:00:00Z", "from=2025-01-01T00:00:00Z&to=2025-03-01T00:00:00Z",
                "from=2025-06-01T00:00:00Z&to=2025-06-02T00:00:00Z&granularity=week"]:
        assert api.get(f"/v1/tenants/{tenant['id']}/usage?{bad}").status == 400, bad
    assert api.get("/v1/tenants/tn_aaaaaaaaaaaaaaaaaaaa/usage?from=2025-06-01T00:00:00Z&to=2025-06-02T00:00:00Z").status == 404
    export = api.get("/v1/usage/export?from=2025-06-01T00:00:00Z&to=2025-06-02T00:00:00Z")
    assert export.status == 200 and export.header("content-type").startswith("text/csv")
    assert export.raw.decode().split("\r\n")[0] == \
        "tenant_id,period_start,period_end,operations,bytes_in,bytes_out,connection_seconds,peak_connections,storage_bytes"
    ndjson = api.get("/v1/usage/export?from=2025-06-01T00:00:00Z&to=2025-06-02T00:00:00Z&format=ndjson")
    assert ndjson.status == 200 and ndjson.header("content-type") == "application/x-ndjson"


# ---- audit

def test_every_change_is_audited_without_secrets(api):
    tenant = api.create_tenant(plan="pro")
    tid = tenant["id"]
    key = api.post(f"/v1/tenants/{tid}/keys", {"algorithm": "HS256"}, headers={"X-Request-Id": "audit-req-1", "Idempotency-Key": "audit-key-1"}).json
    api.put(f"/v1/tenants/{tid}/quotas", {"limits": LIMITS})
    api.put(f"/v1/tenants/{tid}/schemas/orders", {"enforcement": "warn", "schema": SCHEMA})
    api.post(f"/v1/tenants/{tid}/suspend", {"reason": "testing"})
    api.delete(f"/v1/tenants/{tid}/keys/{key['kid']}")
    events = api.get(f"/v1/audit?tenant={tid}&limit=200").json["items"]
    actions = [e["action"] for e in events]
    assert actions == ["signing_key.revoke", "tenant.suspend", "schema.put", "quota.replace", "signing_key.create", "tenant.create"]
    created_key = events[4]
    assert created_key["request_id"] == "audit-req-1" and created_key["idempotency_key"] == "audit-key-1"
    assert created_key["target"] == {"type": "signing_key", "id": key["kid"]}
    assert created_key["actor"] == "bootstrap" or created_key["actor"].startswith("adm_")
    assert events[2]["target"] == {"type": "schema", "id": "orders", "version": 1}
    assert key["secret"] not in json.dumps(events)
    only = api.get(f"/v1/audit?tenant={tid}&action=tenant.create").json["items"]
    assert [e["action"] for e in only] == ["tenant.create"]
    # Paging one at a time gives the same events in the same order.
    seen, cursor = [], None
    while True:
        page = api.get(f"/v1/audit?tenant={tid}&limit=1" + (f"&cursor={cursor}" if cursor else "")).json
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [e["id"] for e in events]
    future = api.get(f"/v1/audit?tenant={tid}&from=2999-01-01T00:00:00Z").json["items"]
    assert future == []
    assert api.get("/v1/audit?tenant=nope").status == 400
    assert api.get("/v1/audit?action=tenant.explode").status == 400


# ---- the operator's walk-through: a key from the API signs tokens the data plane accepts

def test_a_generated_key_signs_tokens_the_data_plane_accepts_until_revoked(sqlite_cp):
    api = sqlite_cp.api
    tenant = api.create_tenant()
    key = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"}).json
    secret = base64.urlsafe_b64decode(key["secret"] + "=")
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "iat": now, "exp": now + 600}, secret, algorithm="HS256", headers={"kid": key["kid"]})
    conn = Connection(sqlite_cp.info["dataPlaneURL"])
    try:
        assert conn.auth(token)["type"] == "AUTH_ACK"
    finally:
        conn.close()
    api.delete(f"/v1/tenants/{tenant['id']}/keys/{key['kid']}")
    deadline = time.monotonic() + 5
    while True:
        conn = Connection(sqlite_cp.info["dataPlaneURL"])
        try:
            reply = conn.auth(token)
        finally:
            conn.close()
        if reply["type"] == "AUTH_FAIL":
            break
        assert time.monotonic() < deadline, "a revoked key still verifies tokens after 5 s"
        time.sleep(0.1)
