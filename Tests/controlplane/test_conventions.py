"""Authentication, scopes, request ids, idempotency, rate limits, the served contract."""
import base64
import concurrent.futures
import hashlib
import hmac
import json
import re
import subprocess
import time
import uuid

import pytest

from conftest import API, Process


def test_every_v1_request_needs_a_token(cp, api):
    for method, path in [("GET", "/v1/tenants"), ("POST", "/v1/tenants"), ("GET", "/v1/audit"), ("GET", "/v1/admin-tokens")]:
        response = api.request(method, path, token=None)
        assert response.status == 401, (method, path, response)
        assert response.header("www-authenticate").startswith('Bearer realm="topgun-control-plane"')
        assert response.json["type"] == "https://topgun.dev/problems/unauthorized"


def test_unknown_malformed_and_basic_credentials_are_401(api):
    for header in ["Bearer tgadm_" + "A" * 43, "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer", "bearer  "]:
        response = api.get("/v1/tenants", token=None, headers={"Authorization": header})
        assert response.status == 401, (header, response)


def test_app_jwts_are_never_accepted(cp, api):
    # A well-formed HS256 JWT, as apps send to the data plane.
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "key_x"}).encode()).rstrip(b"=")
    claims = base64.urlsafe_b64encode(json.dumps({"sub": "u", "exp": int(time.time()) + 3600}).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(b"k" * 32, header + b"." + claims, hashlib.sha256).digest()).rstrip(b"=")
    token = (header + b"." + claims + b"." + signature).decode()
    response = api.get("/v1/tenants", token=token)
    assert response.status == 401
    assert "JWT" in response.json["detail"]
    if cp.kind == "sqlite":
        # The dev tenant's real app token too.
        assert api.get("/v1/tenants", token=cp.info["appToken"]).status == 401


def test_scopes_are_enforced_and_named(api):
    reader = api.create_admin_token(["tenants:read"])
    as_reader = api.with_token(reader["token"])
    assert as_reader.get("/v1/tenants").status == 200
    refused = as_reader.post("/v1/tenants", {"slug": f"s-{uuid.uuid4().hex[:8]}", "display_name": "x"})
    assert refused.status == 403
    assert refused.json["missing_scopes"] == ["tenants:write"]
    # Scopes do not imply one another.
    writer = api.with_token(api.create_admin_token(["tenants:write"])["token"])
    assert writer.get("/v1/tenants").status == 403
    # A token cannot grant scopes it lacks.
    minter = api.with_token(api.create_admin_token(["admin-tokens:write", "usage:read"])["token"])
    assert minter.post("/v1/admin-tokens", {"name": "x", "scopes": ["usage:read"]}).status == 201
    escalation = minter.post("/v1/admin-tokens", {"name": "x", "scopes": ["usage:read", "keys:write"]})
    assert escalation.status == 403 and escalation.json["missing_scopes"] == ["keys:write"]


def test_admin_tokens_life_cycle(api):
    created = api.post("/v1/admin-tokens", {"name": "billing exporter", "scopes": ["usage:read", "tenants:read"]})
    assert created.status == 201
    body = created.json
    assert re.match(r"^tgadm_[A-Za-z0-9_-]{43}$", body["token"])
    assert body["prefix"] == body["token"][:10]
    assert body["scopes"] == ["tenants:read", "usage:read"]  # the contract's order
    assert created.header("cache-control") == "no-store"
    assert created.header("location") == f"/v1/admin-tokens/{body['id']}"
    fetched = api.get(f"/v1/admin-tokens/{body['id']}").json
    assert "token" not in fetched and fetched["status"] == "active"
    as_token = api.with_token(body["token"])
    assert as_token.get("/v1/tenants").status == 200
    revoked = api.delete(f"/v1/admin-tokens/{body['id']}")
    assert revoked.status == 200 and revoked.json["status"] == "revoked"
    assert as_token.get("/v1/tenants").status == 401  # from the next request on
    assert api.delete(f"/v1/admin-tokens/{body['id']}").json == revoked.json
    assert api.get("/v1/admin-tokens/adm_aaaaaaaaaaaaaaaaaaaa").status == 404
    listed = api.get("/v1/admin-tokens?status=revoked&limit=200").json["items"]
    assert body["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)


def test_expired_admin_tokens_are_refused(api):
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    token = api.create_admin_token(["tenants:read"], expires_at=soon)
    as_token = api.with_token(token["token"])
    assert as_token.get("/v1/tenants").status == 200
    time.sleep(3)
    response = as_token.get("/v1/tenants")
    assert response.status == 401 and "expired" in response.json["detail"]
    past = api.post("/v1/admin-tokens", {"name": "x", "scopes": ["tenants:read"], "expires_at": "2001-01-01T00:00:00Z"})
    assert past.status == 400


def test_request_ids_are_echoed_or_generated(api):
    assert api.get("/v1/tenants", headers={"X-Request-Id": "deploy-2025.05:01"}).header("x-request-id") == "deploy-2025.05:01"
    generated = api.get("/v1/tenants", headers={"X-Request-Id": "bad id with spaces"}).header("x-request-id")
    assert generated and generated != "bad id with spaces" and re.match(r"^[A-Za-z0-9._:-]{1,128}$", generated)
    problem = api.get("/v1/tenants/tn_aaaaaaaaaaaaaaaaaaaa", headers={"X-Request-Id": "abc-123"})
    assert problem.json["request_id"] == "abc-123"


def test_authenticated_responses_carry_rate_limit_headers(api):
    response = api.get("/v1/tenants")
    assert re.match(r'^"admin-token";q=\d+;w=\d+$', response.header("ratelimit-policy"))
    assert re.match(r'^"admin-token";r=\d+;t=\d+$', response.header("ratelimit"))


def test_idempotent_replay_returns_the_first_result(api):
    key = str(uuid.uuid4())
    body = {"slug": f"idem-{uuid.uuid4().hex[:8]}", "display_name": "Once", "plan": "pro"}
    first = api.post("/v1/tenants", body, headers={"Idempotency-Key": key})
    assert first.status == 201 and first.header("idempotent-replayed") is None
    # Same key, same body in another member order and spacing: the same bytes again.
    reordered = json.dumps({"plan": "pro", "display_name": "Once", "slug": body["slug"]}, indent=2).encode()
    second = api.post("/v1/tenants", raw=reordered, headers={"Idempotency-Key": key})
    assert second.status == 201 and second.raw == first.raw
    assert second.header("idempotent-replayed") == "true"
    assert second.header("location") == first.header("location")
    assert second.header("x-request-id") != first.header("x-request-id")
    listed = api.get(f"/v1/tenants?slug={body['slug']}").json["items"]
    assert len(listed) == 1
    # Same key, another body: 422.
    other = api.post("/v1/tenants", {**body, "plan": "free"}, headers={"Idempotency-Key": key})
    assert other.status == 422 and other.json["type"].endswith("/idempotency-key-reused")
    # Same key, another path: 422.
    assert api.post(f"/v1/tenants/{first.json['id']}/suspend", headers={"Idempotency-Key": key}).status == 422


def test_idempotent_replay_of_a_conflict_and_of_a_secret(api):
    tenant = api.create_tenant()
    key = str(uuid.uuid4())
    created = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"}, headers={"Idempotency-Key": key})
    assert created.status == 201 and "secret" in created.json
    replay = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"}, headers={"Idempotency-Key": key})
    assert replay.raw == created.raw  # the one-time secret, once more, for a client that lost it
    assert len(api.get(f"/v1/tenants/{tenant['id']}/keys").json["items"]) == 1
    # A 409 is stored too: the retry gets the same answer even after the conflict is gone.
    slug = f"taken-{uuid.uuid4().hex[:8]}"
    api.create_tenant(slug)
    key2 = str(uuid.uuid4())
    conflict = api.post("/v1/tenants", {"slug": slug, "display_name": "x"}, headers={"Idempotency-Key": key2})
    assert conflict.status == 409
    assert api.post("/v1/tenants", {"slug": slug, "display_name": "x"}, headers={"Idempotency-Key": key2}).raw == conflict.raw


def test_idempotency_keys_are_scoped_per_admin_token(api):
    key = str(uuid.uuid4())
    other = api.with_token(api.create_admin_token(["tenants:write", "tenants:read"])["token"])
    a = api.post("/v1/tenants", {"slug": f"a-{uuid.uuid4().hex[:8]}", "display_name": "a"}, headers={"Idempotency-Key": key})
    b = other.post("/v1/tenants", {"slug": f"b-{uuid.uuid4().hex[:8]}", "display_name": "b"}, headers={"Idempotency-Key": key})
    assert a.status == 201 and b.status == 201 and a.json["id"] != b.json["id"]


def test_concurrent_uses_of_one_idempotency_key_create_once(api):
    key = str(uuid.uuid4())
    body = {"slug": f"race-{uuid.uuid4().hex[:8]}", "display_name": "race"}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: api.post("/v1/tenants", body, headers={"Idempotency-Key": key}), range(6)))
    statuses = sorted(r.status for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json["id"] for r in responses if r.status == 201}
    assert len(created) == 1, responses
    for r in responses:
        if r.status == 409:
            assert r.json["type"].endswith("/idempotency-key-in-use") and r.header("retry-after")


def test_malformed_idempotency_keys_are_400(api):
    for key in ["", "x" * 256, "with space"]:
        response = api.post("/v1/tenants", {"slug": f"k-{uuid.uuid4().hex[:8]}", "display_name": "k"}, headers={"Idempotency-Key": key})
        assert response.status == 400, (repr(key), response)


def test_health_spec_and_docs_need_no_token(cp, api):
    health = api.get("/health", token=None)
    assert health.status == 200 and health.json == {"status": "ok", "metadata_store": "ok"}
    spec = api.get("/openapi.yaml", token=None)
    assert spec.status == 200 and spec.header("content-type") == "application/yaml"
    with open(__import__("pathlib").Path(__file__).resolve().parents[2] / "ControlPlane" / "openapi.yaml", "rb") as f:
        assert spec.raw == f.read()  # byte for byte
    docs = api.get("/docs", token=None)
    assert docs.status == 200 and docs.header("content-type").startswith("text/html")
    assert "default-src 'none'" in docs.header("content-security-policy")
    html = docs.raw.decode()
    assert "createTenant" in html and "/v1/tenants/{tenant_id}/keys" in html
    # Self-contained: nothing loaded from elsewhere.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html


def test_rate_limit_refuses_with_headers(topgun_bin, tmp_path):
    process = Process([topgun_bin, "dev", "--json", "--port", "0", "--control-plane-port", "0", "--data-dir", str(tmp_path / "d"),
                       "--storage", "memory"], tmp_path, env={"TOPGUN_ADMIN_RATE_LIMIT": "5"}).start()
    try:
        api = API(process.info["controlPlaneURL"], process.info["adminToken"])
        statuses = [api.get("/v1/tenants") for _ in range(7)]
        assert [r.status for r in statuses[:5]] == [200] * 5
        limited = statuses[5]
        assert limited.status == 429
        assert limited.json["type"].endswith("/rate-limited")
        assert int(limited.header("retry-after")) >= 1
        assert limited.header("ratelimit") .startswith('"admin-token";r=0;')
        assert limited.header("ratelimit-policy") == '"admin-token";q=5;w=60'
        # Health is not limited.
        assert api.get("/health", token=None).status == 200
    finally:
        process.stop()


def test_a_port_in_use_is_a_clear_error_not_a_crash(topgun_bin, tmp_path):
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        result = subprocess.run([topgun_bin, "dev", "--json", "--port", "0", "--control-plane-port", str(port),
                                 "--data-dir", str(tmp_path / "d"), "--storage", "memory"],
                                capture_output=True, timeout=60, cwd=tmp_path)
        assert result.returncode == 1, result.stderr.decode()[-2000:]
        assert f"127.0.0.1:{port}" in result.stderr.decode() and "already in use" in result.stderr.decode()
    finally:
        taken.close()
