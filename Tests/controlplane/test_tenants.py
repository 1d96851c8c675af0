"""Tenants: create, list, get, update, suspend, resume, delete; conventions on the way."""
import concurrent.futures
import re
import uuid

TENANT_ID = re.compile(r"^tn_[a-z2-7]{20}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def slug():
    return f"t-{uuid.uuid4().hex[:12]}"


def test_create_get_and_location(api):
    s = slug()
    response = api.post("/v1/tenants", {"slug": s, "display_name": "Acme Corp", "plan": "pro"})
    assert response.status == 201, response
    tenant = response.json
    assert TENANT_ID.match(tenant["id"])
    assert tenant["slug"] == s and tenant["display_name"] == "Acme Corp" and tenant["plan"] == "pro"
    assert tenant["status"] == "active"
    assert RFC3339.match(tenant["created_at"]) and tenant["created_at"] == tenant["updated_at"]
    assert set(tenant) == {"id", "slug", "display_name", "plan", "status", "created_at", "updated_at"}
    assert response.header("location") == f"/v1/tenants/{tenant['id']}"
    assert response.header("content-type").startswith("application/json")
    again = api.get(f"/v1/tenants/{tenant['id']}")
    assert again.status == 200 and again.json == tenant


def test_plan_defaults_to_free(api):
    response = api.post("/v1/tenants", {"slug": slug(), "display_name": "No plan"})
    assert response.status == 201 and response.json["plan"] == "free"


def test_duplicate_slug_is_a_conflict_naming_the_field(api):
    s = slug()
    api.create_tenant(s)
    response = api.post("/v1/tenants", {"slug": s, "display_name": "Second"})
    assert response.status == 409
    problem = response.json
    assert problem["type"] == "https://topgun.dev/problems/conflict"
    assert problem["conflicting_field"] == "slug"
    assert response.header("content-type") == "application/problem+json"


def test_concurrent_creates_of_one_slug_have_exactly_one_winner(api):
    s = slug()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: api.post("/v1/tenants", {"slug": s, "display_name": "Race"}).status, range(8)))
    assert sorted(statuses) == [201] + [409] * 7, statuses


def test_unknown_and_malformed_ids_are_not_found(api):
    for path in ["/v1/tenants/tn_aaaaaaaaaaaaaaaaaaaa", "/v1/tenants/not-an-id", "/v1/tenants/tn_AAAAAAAAAAAAAAAAAAAA",
                 "/v1/tenants/%27%3B%20DROP%20TABLE%20tenants%3B--"]:
        response = api.get(path)
        assert response.status == 404, (path, response)
        assert response.json["type"] == "https://topgun.dev/problems/not-found"


def test_validation_lists_every_problem_with_pointers(api):
    response = api.post("/v1/tenants", {"slug": "Bad Slug!", "display_name": 42, "plan": "gold", "colour": "red"})
    assert response.status == 400
    problem = response.json
    assert problem["type"] == "https://topgun.dev/problems/validation-failed"
    pointers = {e["pointer"] for e in problem["errors"]}
    assert pointers == {"/slug", "/display_name", "/plan", "/colour"}, problem
    assert problem["request_id"] == response.header("x-request-id")


def test_wrong_json_types_and_shapes(api):
    for body in [[], "text", 42, None, {"slug": ["a"], "display_name": "x"}, {"slug": True, "display_name": "x"},
                 {"slug": "ok-slug", "display_name": ""}, {"slug": "ok-slug", "display_name": "   "},
                 {"slug": "ok-slug", "display_name": "tab\there"}, {"slug": "x" * 64, "display_name": "x"},
                 {"slug": "-lead", "display_name": "x"}, {"slug": "ok", "display_name": "x" * 201}]:
        response = api.post("/v1/tenants", body)
        assert response.status == 400, (body, response)


def test_invalid_json_and_invalid_utf8_are_400(api):
    for raw in [b"{", b"{\"slug\": }", b"\xff\xfe{}", b"{\"slug\": \"\xc3\x28\", \"display_name\": \"x\"}"]:
        response = api.post("/v1/tenants", raw=raw)
        assert response.status == 400, (raw, response)
        assert response.json["type"].endswith("/validation-failed")


def test_oversized_body_is_413_with_the_limit(api):
    response = api.post("/v1/tenants", raw=b"{\"slug\": \"" + b"a" * 300_000 + b"\"}")
    assert response.status == 413
    assert response.json["limit_bytes"] == 262144


def test_non_json_media_type_is_415(api):
    response = api.post("/v1/tenants", raw=b"slug=a", content_type="application/x-www-form-urlencoded")
    assert response.status == 415
    assert response.json["type"].endswith("/unsupported-media-type")


def test_sql_metacharacters_are_stored_verbatim(api):
    name = "Robert'); DROP TABLE tenants;-- \" \\ % _ $1 ?"
    tenant = api.post("/v1/tenants", {"slug": slug(), "display_name": name}).json
    assert api.get(f"/v1/tenants/{tenant['id']}").json["display_name"] == name
    listed = api.get(f"/v1/tenants?slug={tenant['slug']}").json["items"]
    assert [t["display_name"] for t in listed] == [name]


def test_unicode_display_names_count_code_points(api):
    name = "é" * 200  # 400 bytes, 200 code points
    assert api.post("/v1/tenants", {"slug": slug(), "display_name": name}).status == 201
    assert api.post("/v1/tenants", {"slug": slug(), "display_name": name + "é"}).status == 400
    assert api.post("/v1/tenants", {"slug": slug(), "display_name": "nul\u0000byte"}).status == 400


def test_list_pages_in_creation_order_and_filters(api):
    plan = "enterprise"
    made = [api.create_tenant(plan=plan)["id"] for _ in range(5)]
    seen = []
    cursor = None
    pages = 0
    while True:
        path = f"/v1/tenants?plan={plan}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(path)
        assert page.status == 200, page
        body = page.json
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 2
        seen += [t["id"] for t in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages >= 3
    assert [t for t in seen if t in made] == made  # oldest first, none skipped or repeated
    assert len(seen) == len(set(seen))


def test_a_cursor_for_other_filters_or_garbage_is_refused(api):
    for _ in range(3):
        api.create_tenant(plan="pro")
    cursor = api.get("/v1/tenants?plan=pro&limit=1").json["next_cursor"]
    assert cursor
    assert api.get(f"/v1/tenants?plan=free&limit=1&cursor={cursor}").status == 400
    assert api.get("/v1/tenants?cursor=bm90LWEtY3Vyc29y").status == 400
    assert api.get("/v1/tenants?limit=0").status == 400
    assert api.get("/v1/tenants?limit=201").status == 400
    assert api.get("/v1/tenants?limit=abc").status == 400
    assert api.get("/v1/tenants?status=gone").status == 400
    assert api.get("/v1/tenants?colour=red").status == 400


def test_update_changes_members_and_moves_plan_quotas(api):
    tenant = api.create_tenant(plan="free")
    quotas_before = api.get(f"/v1/tenants/{tenant['id']}/quotas")
    response = api.patch(f"/v1/tenants/{tenant['id']}", {"plan": "pro", "display_name": "Renamed"})
    assert response.status == 200, response
    assert response.json["plan"] == "pro" and response.json["display_name"] == "Renamed"
    quotas = api.get(f"/v1/tenants/{tenant['id']}/quotas")
    assert quotas.json["limits"]["max_connections"] == 10000
    assert quotas.header("etag") != quotas_before.header("etag")
    assert api.patch(f"/v1/tenants/{tenant['id']}", {}).status == 400
    assert api.patch(f"/v1/tenants/{tenant['id']}", {"slug": "new-slug"}).status == 400


def test_suspend_resume_and_delete_life_cycle(api):
    tenant = api.create_tenant()
    path = f"/v1/tenants/{tenant['id']}"
    suspended = api.post(path + "/suspend", {"reason": "unpaid invoice"})
    assert suspended.status == 200
    assert suspended.json["status"] == "suspended" and suspended.json["suspension_reason"] == "unpaid invoice"
    assert RFC3339.match(suspended.json["suspended_at"])
    # Suspending again changes nothing; the first reason stays.
    again = api.post(path + "/suspend", {"reason": "other"})
    assert again.json["suspension_reason"] == "unpaid invoice"
    resumed = api.post(path + "/resume")
    assert resumed.status == 200 and resumed.json["status"] == "active"
    assert "suspended_at" not in resumed.json and "suspension_reason" not in resumed.json
    assert api.post(path + "/suspend").status == 200  # body optional
    deleted = api.delete(path)
    assert deleted.status == 200 and deleted.json["status"] == "deleted" and "deleted_at" in deleted.json
    assert api.delete(path).json == deleted.json  # deleting again returns it unchanged
    assert api.get(path).json["status"] == "deleted"
    for response in [api.post(path + "/resume"), api.post(path + "/suspend"), api.patch(path, {"plan": "pro"}),
                     api.post(path + "/keys", {"algorithm": "HS256"}),
                     api.put(path + "/quotas", {"limits": {"max_connections": 1, "max_operations_per_second": 1,
                                                           "max_storage_bytes": 1, "max_maps": 1, "max_message_bytes": 1024,
                                                           "max_live_subscriptions": 1}})]:
        assert response.status == 409, response
    # Deleted tenants are listed only when asked for; their slug stays taken.
    ids = [t["id"] for t in api.get(f"/v1/tenants?slug={tenant['slug']}").json["items"]]
    assert ids == []
    ids = [t["id"] for t in api.get(f"/v1/tenants?slug={tenant['slug']}&status=deleted").json["items"]]
    assert ids == [tenant["id"]]
    assert api.post("/v1/tenants", {"slug": tenant["slug"], "display_name": "reuse"}).status == 409


def test_method_not_allowed_names_the_allowed_ones(api):
    response = api.put("/v1/tenants", {"a": 1})
    assert response.status == 405
    assert set(response.header("allow").replace(" ", "").split(",")) == {"GET", "POST"}
    assert response.json["type"].endswith("/method-not-allowed")


def test_unknown_path_is_problem_json(api):
    response = api.get("/v1/nothing-here")
    assert response.status == 404
    assert response.header("content-type") == "application/problem+json"
    assert response.header("x-request-id")


def test_duplicate_members_and_lone_surrogates_are_refused(api):
    for raw in [b'{"slug": "dup-a", "slug": "dup-b", "display_name": "x"}',
                b'{"slug": "ok-slug", "display_name": "\\ud800"}',
                b'\xef\xbb\xbf{"slug": "bom", "display_name": "x"}']:
        response = api.post("/v1/tenants", raw=raw)
        assert response.status == 400, (raw, response)
