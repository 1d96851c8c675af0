"""Scenarios 6 and 7: live queries with every predicate operator and `where` form, sort in
both forms, limit, projection, and cursor paging."""
import uuid

import pytest

from topgun_client import HLC, connect, new_id, put_op

PEOPLE = {
    "u1": {"name": "Alice", "age": 30, "city": "Berlin", "tags": ["admin", "dev"], "email": "alice@example.com", "score": 9.5},
    "u2": {"name": "Bob", "age": 25, "city": "Paris", "tags": ["dev"], "email": None, "score": 7.0},
    "u3": {"name": "Carol", "age": 35, "city": "Berlin", "tags": ["ops", "dev"], "score": 8.25},
    "u4": {"name": "Dave", "age": 40, "city": "London", "tags": [], "email": "dave@test.org", "score": 5.5},
    "u5": {"name": "alina", "age": 22, "city": "Paris", "tags": ["admin"], "email": "alina@example.com", "score": 6.0},
    "u6": {"name": "Eve", "age": 28, "city": "Rome", "tags": ["sec", "ops"], "email": "eve@example.com", "score": 9.0},
}


@pytest.fixture(scope="module")
def people(dev_server):
    """A map of six people, written once; and a connection to query it."""
    name = f"people-{uuid.uuid4().hex[:8]}"
    conn = connect(dev_server.ws_url, dev_server.token)
    hlc = HLC("seed")
    ops = [put_op(i + 1, name, key, {"value": value, "timestamp": hlc.now()}) for i, (key, value) in enumerate(PEOPLE.items())]
    conn.write(ops)
    yield name, conn
    conn.close()


def leaf(op, attribute, value=None):
    node = {"op": op, "attribute": attribute}
    if value is not None:
        node["value"] = value
    return node


PREDICATES = [
    ("eq", leaf("eq", "city", "Berlin"), {"u1", "u3"}),
    ("eq-number", leaf("eq", "age", 25), {"u2"}),
    ("neq", leaf("neq", "city", "Berlin"), {"u2", "u4", "u5", "u6"}),
    ("gt", leaf("gt", "age", 30), {"u3", "u4"}),
    ("gte", leaf("gte", "age", 30), {"u1", "u3", "u4"}),
    ("lt", leaf("lt", "age", 25), {"u5"}),
    ("lte", leaf("lte", "age", 25), {"u2", "u5"}),
    ("gt-float", leaf("gt", "score", 8.5), {"u1", "u6"}),
    ("like", leaf("like", "name", "al%"), {"u1", "u5"}),
    ("like-underscore", leaf("like", "name", "_ob"), {"u2"}),
    ("regex", leaf("regex", "name", "^[A-C]"), {"u1", "u2", "u3"}),
    ("regex-unanchored", leaf("regex", "email", "example"), {"u1", "u5", "u6"}),
    ("in", leaf("in", "city", ["Paris", "Rome"]), {"u2", "u5", "u6"}),
    ("between", leaf("between", "age", [25, 30]), {"u1", "u2", "u6"}),
    ("isNull", leaf("isNull", "email"), {"u2", "u3"}),
    ("isNotNull", leaf("isNotNull", "email"), {"u1", "u4", "u5", "u6"}),
    ("contains", leaf("contains", "email", "example"), {"u1", "u5", "u6"}),
    ("containsAll", leaf("containsAll", "tags", ["dev", "admin"]), {"u1"}),
    ("containsAny", leaf("containsAny", "tags", ["ops", "sec"]), {"u3", "u6"}),
    ("startsWith", leaf("startsWith", "name", "Ca"), {"u3"}),
    ("endsWith", leaf("endsWith", "email", ".org"), {"u4"}),
    ("and", {"op": "and", "children": [leaf("eq", "city", "Paris"), leaf("gt", "age", 23)]}, {"u2"}),
    ("or", {"op": "or", "children": [leaf("eq", "city", "Rome"), leaf("lt", "age", 23)]}, {"u5", "u6"}),
    ("not", {"op": "not", "children": [leaf("eq", "city", "Berlin")]}, {"u2", "u4", "u5", "u6"}),
    ("nested", {"op": "and", "children": [
        {"op": "or", "children": [leaf("eq", "city", "Berlin"), leaf("eq", "city", "Paris")]},
        {"op": "not", "children": [leaf("containsAny", "tags", ["admin"])]}]}, {"u2", "u3"}),
]


@pytest.mark.parametrize("predicate,expected", [p[1:] for p in PREDICATES], ids=[p[0] for p in PREDICATES])
def test_predicate_operator(people, predicate, expected):
    name, conn = people
    resp = conn.query(name, {"predicate": predicate})
    keys = [r["key"] for r in resp["results"]]
    assert sorted(keys) == sorted(expected), f"predicate {predicate}: got {sorted(keys)}"
    for r in resp["results"]:
        assert r["value"] == PEOPLE[r["key"]]


WHERES = [
    ("plain", {"city": "Berlin"}, {"u1", "u3"}),
    ("plain-two-fields", {"city": "Berlin", "age": 30}, {"u1"}),
    ("$eq", {"city": {"$eq": "Paris"}}, {"u2", "u5"}),
    ("$ne", {"city": {"$ne": "Berlin"}}, {"u2", "u4", "u5", "u6"}),
    ("$gt", {"age": {"$gt": 30}}, {"u3", "u4"}),
    ("$gte", {"age": {"$gte": 30}}, {"u1", "u3", "u4"}),
    ("$lt", {"age": {"$lt": 25}}, {"u5"}),
    ("$lte", {"age": {"$lte": 25}}, {"u2", "u5"}),
    ("$in", {"city": {"$in": ["Rome", "London"]}}, {"u4", "u6"}),
    ("range", {"age": {"$gte": 25, "$lt": 35}}, {"u1", "u2", "u6"}),
]


@pytest.mark.parametrize("where,expected", [w[1:] for w in WHERES], ids=[w[0] for w in WHERES])
def test_where_clause(people, where, expected):
    name, conn = people
    resp = conn.query(name, {"where": where})
    assert sorted(r["key"] for r in resp["results"]) == sorted(expected)


def test_empty_query_returns_everything(people):
    name, conn = people
    resp = conn.query(name, {})
    assert sorted(r["key"] for r in resp["results"]) == sorted(PEOPLE)


def test_sort_array_form_with_limit(people):
    name, conn = people
    resp = conn.query(name, {"sort": [{"field": "age", "direction": "desc"}], "limit": 3})
    assert [r["key"] for r in resp["results"]] == ["u4", "u3", "u1"]


def test_sort_object_form_with_limit(people):
    name, conn = people
    resp = conn.query(name, {"sort": {"age": "asc"}, "limit": 2})
    assert [r["key"] for r in resp["results"]] == ["u5", "u2"]


def test_multi_field_sort(people):
    name, conn = people
    resp = conn.query(name, {"sort": [{"field": "city", "direction": "asc"}, {"field": "age", "direction": "desc"}]})
    assert [r["key"] for r in resp["results"]] == ["u3", "u1", "u4", "u2", "u5", "u6"]


def test_filter_sort_and_limit_together(people):
    name, conn = people
    resp = conn.query(name, {"where": {"age": {"$gte": 25}}, "sort": [{"field": "score", "direction": "desc"}], "limit": 2})
    assert [r["key"] for r in resp["results"]] == ["u1", "u6"]


def test_field_projection(people):
    name, conn = people
    resp = conn.query(name, {"where": {"city": "Berlin"}}, fields=["name", "age"])
    assert sorted(r["key"] for r in resp["results"]) == ["u1", "u3"]
    for r in resp["results"]:
        assert r["value"] == {"name": PEOPLE[r["key"]]["name"], "age": PEOPLE[r["key"]]["age"]}, r


def test_live_updates_enter_update_leave_respect_the_filter(dev_server, map_name):
    writer = connect(dev_server.ws_url, dev_server.token)
    watcher = connect(dev_server.ws_url, dev_server.token)
    try:
        hlc = HLC("live")
        qid = new_id()
        resp = watcher.query(map_name, {"where": {"done": False}}, query_id=qid)
        assert resp["results"] == []
        writer.write([put_op(1, map_name, "t1", {"value": {"done": False, "n": 1}, "timestamp": hlc.now()})])
        writer.write([put_op(2, map_name, "t2", {"value": {"done": True, "n": 2}, "timestamp": hlc.now()})])
        writer.write([put_op(3, map_name, "t1", {"value": {"done": False, "n": 3}, "timestamp": hlc.now()})])
        writer.write([put_op(4, map_name, "t1", {"value": {"done": True, "n": 4}, "timestamp": hlc.now()})])
        changes = []
        for _ in range(3):
            m = watcher.wait_for("QUERY_UPDATE", lambda m: m["payload"]["queryId"] == qid)
            changes.append((m["payload"]["key"], m["payload"]["changeType"], m["payload"].get("value")))
        assert changes == [("t1", "ENTER", {"done": False, "n": 1}), ("t1", "UPDATE", {"done": False, "n": 3}),
                           ("t1", "LEAVE", None)]
        watcher.expect_none("QUERY_UPDATE", lambda m: m["payload"]["key"] == "t2", within=0.5, what="(t2 never matched)")

        # After QUERY_UNSUB, no more updates for that query.
        watcher.unsubscribe(qid)
        watcher.ping()
        writer.write([put_op(5, map_name, "t3", {"value": {"done": False}, "timestamp": hlc.now()})])
        watcher.expect_none("QUERY_UPDATE", lambda m: m["payload"]["queryId"] == qid, within=0.7)
    finally:
        writer.close()
        watcher.close()


@pytest.fixture(scope="module")
def ranked(dev_server):
    name = f"ranked-{uuid.uuid4().hex[:8]}"
    conn = connect(dev_server.ws_url, dev_server.token)
    hlc = HLC("rank")
    # Insertion order differs from rank order; two rows share a score to exercise the tiebreak.
    ranks = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4, 10]
    ops = [put_op(i + 1, name, f"r{r:02d}", {"value": {"rank": r, "score": r // 2}, "timestamp": hlc.now()}) for i, r in enumerate(ranks)]
    conn.write(ops)
    yield name, conn
    conn.close()


@pytest.mark.parametrize("sort", [[{"field": "rank", "direction": "asc"}], {"rank": "asc"}], ids=["array", "object"])
def test_cursor_paging_returns_every_row_once_in_order(ranked, sort):
    name, conn = ranked
    seen, cursor, pages = [], None, 0
    while True:
        query = {"sort": sort, "limit": 3}
        if cursor:
            query["cursor"] = cursor
        resp = conn.query(name, query)
        pages += 1
        seen += [r["key"] for r in resp["results"]]
        if cursor:
            assert resp.get("cursorStatus") == "valid", resp
        if not resp.get("hasMore"):
            assert not resp.get("nextCursor"), resp
            break
        assert isinstance(resp.get("nextCursor"), str) and resp["nextCursor"], resp
        cursor = resp["nextCursor"]
        assert pages < 10, "paging does not end"
    assert pages == 4
    assert seen == [f"r{r:02d}" for r in range(11)]


def test_cursor_paging_descending_with_ties(ranked):
    name, conn = ranked
    seen, cursor = [], None
    for _ in range(10):
        query = {"sort": [{"field": "score", "direction": "desc"}], "limit": 4}
        if cursor:
            query["cursor"] = cursor
        resp = conn.query(name, query)
        seen += [r["key"] for r in resp["results"]]
        if not resp.get("hasMore"):
            break
        cursor = resp["nextCursor"]
    assert sorted(seen) == [f"r{r:02d}" for r in range(11)], f"rows lost or repeated: {seen}"
    scores = [int(k[1:]) // 2 for k in seen]
    assert scores == sorted(scores, reverse=True)


def test_first_page_reports_more_and_a_cursor(ranked):
    name, conn = ranked
    resp = conn.query(name, {"sort": [{"field": "rank", "direction": "desc"}], "limit": 5})
    assert [r["key"] for r in resp["results"]] == ["r10", "r09", "r08", "r07", "r06"]
    assert resp.get("hasMore") is True and resp.get("nextCursor")
    assert resp.get("cursorStatus") in (None, "none")


def test_garbage_cursor_is_reported_invalid(ranked):
    name, conn = ranked
    resp = conn.query(name, {"sort": [{"field": "rank", "direction": "asc"}], "limit": 3, "cursor": "not-a-cursor!!"})
    assert resp.get("cursorStatus") == "invalid", resp


def test_cursor_of_another_query_is_invalid(ranked):
    name, conn = ranked
    first = conn.query(name, {"sort": [{"field": "rank", "direction": "asc"}], "limit": 3})
    resp = conn.query(name, {"sort": [{"field": "score", "direction": "desc"}], "limit": 3, "cursor": first["nextCursor"]})
    assert resp.get("cursorStatus") == "invalid", resp
