"""GET, change one field, PUT: every resource with a PUT accepts the representation its GET
returns. Read-only members (`readOnly: true` in openapi.yaml) are ignored when they equal the
current value and refused, naming the member, when they differ."""
import copy

SCHEMA = {"type": "object", "required": ["customer"], "properties": {"customer": {"type": "string"}}}


def get_then_put(api, path: str, change) -> tuple[dict, dict]:
    """GET `path`, apply `change` to the body, PUT it back with the ETag in If-Match; returns
    (the body GET returned, the body PUT returned)."""
    got = api.get(path)
    assert got.status == 200, got
    body = copy.deepcopy(got.json)
    change(body)
    put = api.put(path, body, headers={"If-Match": got.header("etag")})
    assert put.status == 200, put
    return got.json, put.json


def test_quotas_get_change_one_limit_put(api):
    tenant = api.create_tenant(plan="pro")
    path = f"/v1/tenants/{tenant['id']}/quotas"
    before, after = get_then_put(api, path, lambda body: body["limits"].update(max_maps=7))
    assert after["limits"] == {**before["limits"], "max_maps": 7}
    assert after["source"] == "custom" and after["version"] == before["version"] + 1
    assert api.get(path).json["limits"]["max_maps"] == 7

    # Again from the new representation (source is custom now): another limit.
    _, again = get_then_put(api, path, lambda body: body["limits"].update(max_connections=3))
    assert again["limits"]["max_connections"] == 3 and again["limits"]["max_maps"] == 7
    assert api.get(path).json["limits"]["max_connections"] == 3


def test_quotas_refuse_a_read_only_member_that_differs(api):
    tenant = api.create_tenant()
    other = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}/quotas"
    current = api.get(path).json
    for member, value in [("tenant_id", other["id"]), ("plan", "enterprise"), ("version", current["version"] + 5),
                          ("updated_at", "2001-01-01T00:00:00Z"), ("source", "custom")]:
        body = {**copy.deepcopy(current), member: value}
        body["limits"]["max_maps"] = 1
        response = api.put(path, body)
        assert response.status == 400, (member, response)
        problem = response.json
        assert problem["type"].endswith("/validation-failed")
        assert [e["pointer"] for e in problem["errors"]] == [f"/{member}"], problem
        assert "read-only" in problem["errors"][0]["detail"]
    assert api.get(path).json == current  # nothing was applied


def test_quotas_compare_instants_not_spellings(api):
    tenant = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}/quotas"
    current = api.get(path).json
    body = copy.deepcopy(current)
    body["updated_at"] = current["updated_at"].replace("Z", "+00:00")
    body["limits"]["max_maps"] = 2
    response = api.put(path, body)
    assert response.status == 200, response
    assert response.json["limits"]["max_maps"] == 2


def test_map_schemas_get_change_one_field_put(api):
    tenant = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}/schemas/orders"
    created = api.put(path, {"enforcement": "warn", "schema": SCHEMA})
    assert created.status == 201, created

    before, after = get_then_put(api, path, lambda body: body.update(enforcement="strict"))
    assert after["enforcement"] == "strict" and after["version"] == before["version"] + 1
    assert after["schema"] == before["schema"]
    assert api.get(path).json["enforcement"] == "strict"

    def add_property(body):
        body["schema"]["properties"]["total"] = {"type": "number", "minimum": 0}
    _, changed = get_then_put(api, path, add_property)
    assert changed["schema"]["properties"]["total"] == {"type": "number", "minimum": 0}
    assert api.get(path).json["version"] == changed["version"]


def test_map_schemas_refuse_a_read_only_member_that_differs(api):
    tenant = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}/schemas/orders"
    assert api.put(path, {"enforcement": "warn", "schema": SCHEMA}).status == 201
    current = api.get(path).json
    for member, value in [("map", "invoices"), ("version", 9), ("created_at", "2001-01-01T00:00:00Z")]:
        body = {**current, member: value, "enforcement": "strict"}
        response = api.put(path, body)
        assert response.status == 400, (member, response)
        assert [e["pointer"] for e in response.json["errors"]] == [f"/{member}"], response.json
    assert api.get(path).json == current

    # Before a map's first version only the path's tenant and map can match.
    fresh = f"/v1/tenants/{tenant['id']}/schemas/fresh"
    response = api.put(fresh, {**current, "map": "fresh"})
    assert response.status == 400, response
    assert sorted(e["pointer"] for e in response.json["errors"]) == ["/created_at", "/version"], response.json
    response = api.put(fresh, {"tenant_id": tenant["id"], "map": "fresh", "enforcement": "off", "schema": SCHEMA})
    assert response.status == 201, response
