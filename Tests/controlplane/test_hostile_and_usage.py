"""Hostile text in every free-text field, and usage aggregation over rows the data plane writes."""
import csv
import io
import json
import re
import subprocess
import urllib.parse
import uuid

import pytest

from conftest import _pg_bin

NASTY = [
    "Robert'); DROP TABLE tenants;--",
    "\" OR 1=1 --",
    "%_\\$1?:name",
    "/* comment */ ; SELECT pg_sleep(10)",
    "emoji 🦀 and RTL \u202e text",
]


@pytest.mark.parametrize("text", NASTY)
def test_sql_metacharacters_in_every_string_field_are_stored_verbatim(api, text):
    tenant = api.post("/v1/tenants", {"slug": f"h-{uuid.uuid4().hex[:10]}", "display_name": text}).json
    tid = tenant["id"]
    assert api.get(f"/v1/tenants/{tid}").json["display_name"] == text
    assert api.patch(f"/v1/tenants/{tid}", {"display_name": text + "!"}).json["display_name"] == text + "!"
    key = api.post(f"/v1/tenants/{tid}/keys", {"algorithm": "HS256", "label": text}).json
    assert api.get(f"/v1/tenants/{tid}/keys/{key['kid']}").json["label"] == text
    schema = {"type": "object", "title": text, "description": text, "properties": {text: {"type": "string", "enum": [text]}}}
    put = api.put(f"/v1/tenants/{tid}/schemas/orders", {"enforcement": "warn", "schema": schema})
    assert put.status == 201, put
    assert api.get(f"/v1/tenants/{tid}/schemas/orders").json["schema"] == schema
    token = api.post("/v1/admin-tokens", {"name": text, "scopes": ["tenants:read"]}).json
    assert api.get(f"/v1/admin-tokens/{token['id']}").json["name"] == text
    suspended = api.post(f"/v1/tenants/{tid}/suspend", {"reason": text})
    assert suspended.json["suspension_reason"] == text
    # Hostile text as header and query values: refused or used verbatim, never a 500.
    replay_key = text.encode("ascii", "ignore").decode().replace(" ", "_")[:200] or "k"
    assert api.post(f"/v1/tenants/{tid}/resume", headers={"Idempotency-Key": replay_key}).status in (200, 400)
    for query in [f"slug={urllib.parse.quote(text)}", f"cursor={urllib.parse.quote(text)}", f"plan={urllib.parse.quote(text)}"]:
        assert api.get(f"/v1/tenants?{query}").status == 400, query
    for query in [f"actor={urllib.parse.quote(text)}", f"action={urllib.parse.quote(text)}", f"from={urllib.parse.quote(text)}"]:
        assert api.get(f"/v1/audit?{query}").status == 400, query
    events = api.get(f"/v1/audit?tenant={tid}").json["items"]
    assert any(e.get("details", {}).get("reason") == text for e in events)


def test_deeply_nested_and_huge_json_is_refused_not_fatal(api):
    deep = "[" * 5000 + "]" * 5000
    assert api.post("/v1/tenants", raw=deep.encode()).status == 400
    many = json.dumps({"slug": "x", "display_name": "y", **{f"k{i}": i for i in range(10000)}}).encode()
    response = api.post("/v1/tenants", raw=many)
    assert response.status == 400
    assert len(response.json["errors"]) <= 100
    assert api.get("/health", token=None).status == 200


# ---- usage aggregation, on rows written the way the data plane's usage flush writes them

def insert_usage(cp, rows):
    values = ",".join(
        f"('{tenant}', TIMESTAMPTZ '{start}', {ops}, {bytes_in}, {bytes_out}, {conn_s}, {peak}, {storage})"
        for tenant, start, ops, bytes_in, bytes_out, conn_s, peak, storage in rows)
    sql = ("INSERT INTO usage_hours (tenant_id, period_start, operations, bytes_in, bytes_out, connection_seconds, "
           f"peak_connections, storage_bytes) VALUES {values}")
    result = subprocess.run([_pg_bin("psql"), cp.postgres_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()


def test_usage_series_and_export_aggregate_hours(postgres_cp):
    api = postgres_cp.api
    a, b = api.create_tenant()["id"], api.create_tenant()["id"]
    insert_usage(postgres_cp, [
        (a, "2025-06-01T10:00:00Z", 100, 1000, 2000, 3600, 5, 1_000),
        (a, "2025-06-01T11:00:00Z", 50, 500, 700, 1800, 9, 1_500),
        (a, "2025-06-02T03:00:00Z", 7, 70, 80, 60, 1, 1_200),
        (b, "2025-06-01T10:00:00Z", 1, 2, 3, 4, 2, 99),
        (b, "2025-06-01T12:00:00Z", 0, 0, 0, 0, 0, 0),
    ])
    hours = api.get(f"/v1/tenants/{a}/usage?from=2025-06-01T10:00:00Z&to=2025-06-01T13:00:00Z").json["series"]
    assert [(p["operations"], p["peak_connections"], p["storage_bytes"]) for p in hours] == [(100, 5, 1000), (50, 9, 1500), (0, 0, 0)]
    days = api.get(f"/v1/tenants/{a}/usage?from=2025-06-01T00:00:00Z&to=2025-06-03T00:00:00Z&granularity=day").json["series"]
    assert [(d["period_start"], d["operations"], d["bytes_in"], d["connection_seconds"], d["peak_connections"], d["storage_bytes"])
            for d in days] == [("2025-06-01T00:00:00Z", 150, 1500, 5400, 9, 1500), ("2025-06-02T00:00:00Z", 7, 70, 60, 1, 1200)]
    # CSV export, two rows per page: ordered by period, then tenant; all-zero rows left out.
    expected = sorted([("2025-06-01T10:00:00Z", a, "100"), ("2025-06-01T10:00:00Z", b, "1"), ("2025-06-01T11:00:00Z", a, "50"),
                       ("2025-06-02T03:00:00Z", a, "7")])
    path = "/v1/usage/export?from=2025-06-01T00:00:00Z&to=2025-06-03T00:00:00Z&limit=2"
    rows, pages = [], 0
    while path:
        page = api.get(path)
        assert page.status == 200, page
        lines = page.raw.decode().split("\r\n")
        assert lines[0] == "tenant_id,period_start,period_end,operations,bytes_in,bytes_out,connection_seconds,peak_connections,storage_bytes"
        for record in csv.DictReader(io.StringIO(page.raw.decode())):
            if record["tenant_id"] in (a, b):
                rows.append((record["period_start"], record["tenant_id"], record["operations"]))
        link = page.header("link")
        pages += 1
        path = re.match(r'^<([^>]+)>; rel="next"$', link).group(1) if link else None
        assert pages < 50
    assert rows == expected
    # NDJSON by day.
    ndjson = api.get("/v1/usage/export?from=2025-06-01T00:00:00Z&to=2025-06-03T00:00:00Z&granularity=day&format=ndjson").raw.decode()
    lines = [json.loads(line) for line in ndjson.splitlines()]
    mine = [(l["tenant_id"], l["period_start"], l["operations"]) for l in lines if l["tenant_id"] in (a, b)]
    assert sorted(mine) == sorted([(a, "2025-06-01T00:00:00Z", 150), (b, "2025-06-01T00:00:00Z", 1), (a, "2025-06-02T00:00:00Z", 7)])
    assert all(set(l) == {"tenant_id", "period_start", "period_end", "operations", "bytes_in", "bytes_out", "connection_seconds",
                          "peak_connections", "storage_bytes"} for l in lines)
