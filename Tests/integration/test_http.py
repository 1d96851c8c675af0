"""Scenario 13: HTTP sync (POST /sync, protocol.md §7.1) and the plain HTTP endpoints."""
import json
import time

import pytest

from topgun_client import HLC, connect, http, http_sync, norm_ts, pack, put_op, remove_op, ts


def sync_request(hlc: HLC, **parts) -> dict:
    return {"clientId": hlc.node_id, "clientHlc": hlc.now(), **parts}


def test_http_sync_acks_operations_that_websocket_clients_then_see(dev_server, map_name):
    hlc = HLC("http-client")
    watcher = connect(dev_server.ws_url, dev_server.token)
    try:
        watcher.query(map_name, {})
        rec = {"value": {"via": "http"}, "timestamp": hlc.now()}
        result = http_sync(dev_server.http_url, dev_server.token,
                           sync_request(hlc, operations=[put_op("h-1", map_name, "h1", rec)]))
        assert result.status == 200, result
        assert "msgpack" in result.content_type, result
        body = result.decoded()
        assert {"millis", "counter", "nodeId"} <= body["serverHlc"].keys()
        assert body["ack"]["lastId"] == "h-1", body
        assert all(r["success"] for r in body["ack"].get("results", [])), body
        ev = watcher.wait_for("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name and m["payload"]["key"] == "h1")
        assert ev["payload"]["record"]["value"] == {"via": "http"}
        assert norm_ts(ev["payload"]["record"]["timestamp"]) == rec["timestamp"]
    finally:
        watcher.close()


def test_http_sync_deltas_hold_websocket_writes(dev_server, map_name):
    writer = connect(dev_server.ws_url, dev_server.token)
    hlc = HLC("ws-writer")
    try:
        r1 = {"value": {"n": 1}, "timestamp": hlc.now()}
        r2_put = {"value": 0, "timestamp": hlc.now()}
        r2 = {"value": None, "timestamp": hlc.now()}  # deletes w2: newer than its put
        r3 = {"value": "three", "timestamp": hlc.now()}
        writer.write([put_op(1, map_name, "w1", r1), put_op(2, map_name, "w2", r2_put),
                      remove_op(3, map_name, "w2", r2), put_op(4, map_name, "w3", r3)])
    finally:
        writer.close()
    client = HLC("http-reader")
    result = http_sync(dev_server.http_url, dev_server.token,
                       sync_request(client, syncMaps=[{"mapName": map_name, "lastSyncTimestamp": ts(0, 0, "")}]))
    assert result.status == 200, result
    body = result.decoded()
    deltas = [d for d in body.get("deltas", []) if d["mapName"] == map_name]
    assert len(deltas) == 1, body
    records = {r["key"]: r for r in deltas[0]["records"]}
    assert set(records) == {"w1", "w2", "w3"}, records
    assert records["w1"]["record"]["value"] == {"n": 1} and norm_ts(records["w1"]["record"]["timestamp"]) == r1["timestamp"]
    assert records["w1"]["eventType"] == "PUT"
    assert records["w2"]["record"]["value"] is None and records["w2"]["eventType"] == "REMOVE"
    assert norm_ts(records["w2"]["record"]["timestamp"]) == r2["timestamp"]
    assert norm_ts(records["w3"]["record"]["timestamp"]) == r3["timestamp"]
    since = deltas[0]["serverSyncTimestamp"]
    assert {"millis", "counter", "nodeId"} <= since.keys()

    # Polling again from serverSyncTimestamp returns nothing new.
    result = http_sync(dev_server.http_url, dev_server.token,
                       sync_request(client, syncMaps=[{"mapName": map_name, "lastSyncTimestamp": since}]))
    again = [d for d in result.decoded().get("deltas", []) if d["mapName"] == map_name]
    assert all(not d["records"] for d in again), again


def test_http_sync_queries_return_results(dev_server, map_name):
    hlc = HLC("http-q")
    ops = [put_op(i, map_name, f"q{i}", {"value": {"color": "red" if i % 2 else "blue", "i": i}, "timestamp": hlc.now()})
           for i in range(1, 7)]
    result = http_sync(dev_server.http_url, dev_server.token, sync_request(hlc, operations=ops))
    assert result.status == 200, result
    result = http_sync(dev_server.http_url, dev_server.token,
                       sync_request(hlc, queries=[{"queryId": "Q1", "mapName": map_name, "filter": {"color": "red"}}]))
    assert result.status == 200, result
    body = result.decoded()
    answers = [q for q in body.get("queryResults", []) if q["queryId"] == "Q1"]
    assert len(answers) == 1, body
    rows = answers[0]["results"]
    keys = sorted(r["key"] if isinstance(r, dict) and "key" in r else json.dumps(r) for r in rows)
    assert keys == ["q1", "q3", "q5"], rows


def test_http_sync_accepts_json(dev_server, map_name):
    hlc = HLC("http-json")
    rec = {"value": {"json": True}, "timestamp": hlc.now()}
    result = http_sync(dev_server.http_url, dev_server.token,
                       sync_request(hlc, operations=[put_op("j-1", map_name, "j1", rec)],
                                    syncMaps=[{"mapName": map_name, "lastSyncTimestamp": ts(0, 0, "")}]),
                       as_json=True)
    assert result.status == 200, result
    body = result.decoded()
    assert body["ack"]["lastId"] == "j-1", body
    records = {r["key"]: r for d in body.get("deltas", []) if d["mapName"] == map_name for r in d["records"]}
    assert records["j1"]["record"]["value"] == {"json": True}


@pytest.mark.parametrize("auth", [None, "Bearer ", "Bearer garbage", "Basic dXNlcjpwYXNz"], ids=["missing", "empty", "garbage", "basic"])
def test_http_sync_without_a_valid_token_is_401_problem_json(dev_server, auth):
    headers = {"Content-Type": "application/x-msgpack"}
    if auth is not None:
        headers["Authorization"] = auth
    hlc = HLC("anon")
    result = http("POST", dev_server.http_url + "/sync", pack(sync_request(hlc)), headers)
    assert result.status == 401, result
    assert result.content_type.startswith("application/problem+json"), result
    problem = json.loads(result.body)
    assert problem.get("status") == 401 and (problem.get("title") or problem.get("type")), problem


@pytest.mark.parametrize("body,content_type", [
    (b"\xc1\xc1\xc1", "application/x-msgpack"),
    (pack([1, 2, 3]), "application/x-msgpack"),
    (pack({"clientId": 5, "clientHlc": "x"}), "application/x-msgpack"),
    (b"{not json", "application/json"),
], ids=["not-msgpack", "not-a-map", "wrong-types", "bad-json"])
def test_http_sync_garbage_body_is_400_problem_json(dev_server, body, content_type):
    result = http("POST", dev_server.http_url + "/sync", body,
                  {"Content-Type": content_type, "Authorization": f"Bearer {dev_server.token}"})
    assert result.status == 400, result
    assert result.content_type.startswith("application/problem+json"), result
    assert json.loads(result.body).get("status") == 400


def test_health_ready_and_metrics(dev_server):
    assert http("GET", dev_server.http_url + "/health").status == 200
    ready = http("GET", dev_server.http_url + "/ready")
    assert ready.status == 200, ready
    conn = connect(dev_server.ws_url, dev_server.token)
    conn.ping()
    conn.close()
    metrics = http("GET", dev_server.http_url + "/metrics")
    assert metrics.status == 200
    text = metrics.body.decode()
    assert "topgun_messages_in_total" in text, text[:2000]


def test_unknown_http_path_is_404_problem_json(dev_server):
    result = http("GET", dev_server.http_url + "/no-such-thing")
    assert result.status == 404, result
    assert result.content_type.startswith("application/problem+json"), result
