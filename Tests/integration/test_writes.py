"""Scenarios 2-4: live fan-out of writes, idempotent re-sends, and reconnect with Merkle
catch-up after offline writes on both sides. Run against every kind of node."""
import time
import uuid

import pytest

from topgun_client import (HLC, Replica, connect, new_id, norm_ts, op_batch, or_add_op, put_op, remove_op,
                           ts_key, whole)


def subscribe_all(conn, map_name):
    """A live query on the whole map (what makes the server send SERVER_EVENTs)."""
    qid = new_id()
    resp = conn.query(map_name, {}, query_id=qid)
    return qid, resp


def test_write_reaches_subscriber_live_but_not_the_writer(server, map_name):
    a = connect(server.ws_url, server.token)
    b = connect(server.ws_url, server.token)
    try:
        qid, resp = subscribe_all(b, map_name)
        assert resp["results"] == []
        # A holds a live query too, so the absence of an echo is the server's choice, not a lack of interest.
        subscribe_all(a, map_name)

        hlc = HLC("writer-a")
        record = {"value": {"title": "milk", "done": False}, "timestamp": hlc.now()}
        ack = a.write([put_op(1, map_name, "t1", record)])["payload"]
        assert ack["lastId"] == "1"
        assert ack.get("achievedLevel") == "PERSISTED", ack
        assert [(r["opId"], r["success"]) for r in ack["results"]] == [("1", True)], ack
        assert ack["results"][0].get("achievedLevel") == "PERSISTED", ack

        event = b.wait_for("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name and m["payload"]["key"] == "t1")
        p = event["payload"]
        assert p["eventType"] == "PUT"
        assert p["record"]["value"] == {"title": "milk", "done": False}
        assert norm_ts(p["record"]["timestamp"]) == record["timestamp"], "the server must keep the client's timestamp"
        assert "ttlMs" not in p["record"] or p["record"]["ttlMs"] is not None, "never send ttlMs: nil"
        top = event.get("timestamp")
        assert isinstance(top, dict) and {"millis", "counter", "nodeId"} <= top.keys(), f"no top-level HLC timestamp: {event}"

        update = b.wait_for("QUERY_UPDATE", lambda m: m["payload"]["queryId"] == qid and m["payload"]["key"] == "t1")
        assert update["payload"]["changeType"] == "ENTER"
        assert update["payload"]["value"] == {"title": "milk", "done": False}

        a.expect_none("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name, within=1.0,
                      what="(the writer got its own write back)")

        # A delete is a tombstone: B sees the record with value null and the query's LEAVE.
        tomb = {"value": None, "timestamp": hlc.now()}
        ack = a.write([remove_op(2, map_name, "t1", tomb)])["payload"]
        assert ack["lastId"] == "2" and ack["results"][0]["success"] is True
        event = b.wait_for("SERVER_EVENT", lambda m: m["payload"]["key"] == "t1" and m["payload"]["record"]["value"] is None)
        assert event["payload"]["eventType"] in ("PUT", "REMOVE")
        assert norm_ts(event["payload"]["record"]["timestamp"]) == tomb["timestamp"]
        leave = b.wait_for("QUERY_UPDATE", lambda m: m["payload"]["queryId"] == qid and m["payload"]["changeType"] == "LEAVE")
        assert leave["payload"]["key"] == "t1" and leave["payload"].get("value") is None
    finally:
        a.close()
        b.close()


def test_no_server_event_without_a_live_query(server, map_name):
    a = connect(server.ws_url, server.token)
    b = connect(server.ws_url, server.token)
    try:
        b.ping()
        hlc = HLC("writer-a")
        a.write([put_op(1, map_name, "k", {"value": 1, "timestamp": hlc.now()})])
        b.expect_none("SERVER_EVENT", within=0.7, what="(B holds no QUERY_SUB on the map)")
    finally:
        a.close()
        b.close()


def test_resending_the_same_batch_is_acked_and_changes_nothing(server, map_name):
    a = Replica("idem-a", server.ws_url, server.token)
    a.connect()
    watcher = connect(server.ws_url, server.token)
    try:
        subscribe_all(watcher, map_name)
        a.set(map_name, "k1", "one")
        a.set(map_name, "k2", {"n": 2})
        batch = list(a.pending)
        ack = a.push()
        assert ack["lastId"] == "2"
        for key in ("k1", "k2"):
            watcher.wait_for("SERVER_EVENT", lambda m, key=key: m["payload"]["key"] == key)
            watcher.wait_for("QUERY_UPDATE", lambda m, key=key: m["payload"]["key"] == key)
        watcher.collect(0.3)

        before = Replica("idem-check-1", server.ws_url, server.token)
        before.connect()
        before.merkle_sync(map_name)

        # The client re-sends every unacked op; an op already applied must be acked again.
        again = a.conn.write(batch)["payload"]
        assert again["lastId"] == "2"
        assert all(r["success"] for r in again["results"]), again
        # An older write for k1 (what a lagging client could send) is acked but loses.
        old = {"value": "stale", "timestamp": {**batch[0]["record"]["timestamp"], "millis": batch[0]["record"]["timestamp"]["millis"] - 1000}}
        stale = a.conn.write([put_op(3, map_name, "k1", old)])["payload"]
        assert stale["lastId"] == "3"
        watcher.expect_none("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name, within=1.0,
                            what="(a re-sent or losing write must not be broadcast)")
        watcher.expect_none("QUERY_UPDATE", within=0.1)

        after = Replica("idem-check-2", server.ws_url, server.token)
        after.connect()
        stats = after.merkle_sync(map_name)
        assert after.lww(map_name).snapshot() == before.lww(map_name).snapshot()
        assert after.lww(map_name).snapshot() == a.lww(map_name).snapshot()
        assert stats["serverRoot"] == a.lww(map_name).root()
        before.disconnect()
        after.disconnect()
    finally:
        a.disconnect()
        watcher.close()


def test_reconnect_merkle_catch_up_after_offline_writes_on_both_sides(server, map_name):
    a = Replica("replica-a", server.ws_url, server.token)
    b = Replica("replica-b", server.ws_url, server.token)
    a.connect()
    b.connect()
    try:
        for i in range(1, 21):
            a.set(map_name, f"k{i}", {"i": i, "by": "a"})
        assert a.push()["lastId"] == "20"
        a.disconnect()

        # B, online, watches the map and writes while A is away.
        qid, resp = subscribe_all(b.conn, map_name)
        assert len(resp["results"]) == 20
        b.merkle_sync(map_name)
        assert b.lww(map_name).snapshot() == a.lww(map_name).snapshot()
        b.set(map_name, "k2", {"i": 2, "by": "b"})
        b.set(map_name, "k21", {"i": 21, "by": "b"})
        b.remove(map_name, "k3")
        b.set(map_name, "k1", {"i": 1, "by": "b-first"})
        assert b.push() is not None and not b.pending

        # A, offline, writes locally (later in time than B: its k1 wins). A's clock has not
        # seen B's writes, so it is later only by the wall clock: in the same millisecond the
        # timestamps could tie on counter too, and B's node id would win.
        time.sleep(0.01)
        a.set(map_name, "k4", {"i": 4, "by": "a-offline"})
        a.set(map_name, "k22", {"i": 22, "by": "a-offline"})
        a.remove(map_name, "k5")
        a.set(map_name, "k1", {"i": 1, "by": "a-offline"})
        assert len(a.pending) == 4

        # A comes back: pending ops first (as after AUTH_ACK), then the Merkle walk.
        a.connect()
        ack = a.push()
        assert ack["lastId"] == "24" and not a.pending
        assert all(r["success"] for r in ack["results"])
        stats = a.merkle_sync(map_name)
        assert stats["leaves"] >= 1, f"no leaf was fetched; walk: {a.sync_log}"

        mine = a.lww(map_name)
        assert mine.get("k2") == {"i": 2, "by": "b"}
        assert mine.get("k21") == {"i": 21, "by": "b"}
        assert mine.records["k3"]["value"] is None, "B's tombstone must reach A"
        assert mine.get("k4") == {"i": 4, "by": "a-offline"}
        assert mine.records["k5"]["value"] is None
        assert mine.get("k1") == {"i": 1, "by": "a-offline"}

        # Roots equal: A holds exactly the server's state.
        check = a.merkle_sync(map_name)
        assert check["serverRoot"] == mine.root(), "roots still differ after the walk"
        assert check["requests"] == 0

        # A fresh replica that pulls everything sees exactly A's records (values and timestamps).
        c = Replica("replica-c", server.ws_url, server.token)
        c.connect()
        c.merkle_sync(map_name)
        assert c.lww(map_name).snapshot() == mine.snapshot()
        c.disconnect()

        # B sees A's offline writes live.
        seen = {}
        for key in ("k4", "k22", "k5", "k1"):
            ev = b.conn.wait_for("SERVER_EVENT", lambda m, key=key: m["payload"]["mapName"] == map_name and m["payload"]["key"] == key
                                 and ts_key(m["payload"]["record"]["timestamp"]) == ts_key(mine.records[key]["timestamp"]))
            b.handle(ev)
            seen[key] = ev["payload"]["record"]["value"]
        assert seen == {"k4": {"i": 4, "by": "a-offline"}, "k22": {"i": 22, "by": "a-offline"}, "k5": None,
                        "k1": {"i": 1, "by": "a-offline"}}
        b.drain_events(0.3)
        assert b.lww(map_name).snapshot() == mine.snapshot()
    finally:
        a.disconnect()
        b.disconnect()


@pytest.mark.parametrize("level,acceptable", [
    ("FIRE_AND_FORGET", {"FIRE_AND_FORGET", "MEMORY", "APPLIED", "PERSISTED"}),
    ("MEMORY", {"MEMORY", "APPLIED", "PERSISTED"}),
    ("APPLIED", {"APPLIED", "PERSISTED"}),
    ("REPLICATED", {"APPLIED", "REPLICATED", "PERSISTED"}),
    ("PERSISTED", {"PERSISTED"}),
])
def test_write_concern_levels_are_acknowledged(dev_server, map_name, level, acceptable):
    conn = connect(dev_server.ws_url, dev_server.token)
    try:
        hlc = HLC("wc")
        ack = conn.write([put_op(7, map_name, "k", {"value": level, "timestamp": hlc.now()})], write_concern=level)["payload"]
        assert ack["lastId"] == "7"
        assert ack.get("achievedLevel") in acceptable, ack
        reader = connect(dev_server.ws_url, dev_server.token)
        resp = reader.query(map_name, {})
        reader.close()
        assert resp["results"] == [{"key": "k", "value": level}]
    finally:
        conn.close()


def test_client_op_is_acknowledged(dev_server, map_name):
    conn = connect(dev_server.ws_url, dev_server.token)
    try:
        op = put_op(41, map_name, "single", {"value": "x", "timestamp": HLC("co").now()})
        conn.send({"type": "CLIENT_OP", "payload": op})
        ack = conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == "41")
        assert ack["payload"].get("achievedLevel") in (None, "PERSISTED"), ack
    finally:
        conn.close()


def test_op_rejected_for_good_is_acked_with_failure_and_op_rejected(dev_server, map_name):
    conn = connect(dev_server.ws_url, dev_server.token)
    try:
        hlc = HLC("rej")
        t = hlc.now()
        conn.write([or_add_op(1, map_name, "k", {"value": "v", "timestamp": t, "tag": f"{t['millis']}:{t['counter']}:rej"})])
        # An LWW write to an OR map can never succeed.
        ack = conn.write([put_op(2, map_name, "k", {"value": "lww", "timestamp": hlc.now()})])["payload"]
        assert ack["lastId"] == "2"
        result = [r for r in ack["results"] if r["opId"] == "2"]
        assert result and result[0]["success"] is False and result[0].get("error"), ack
        rejected = conn.wait_for("OP_REJECTED", lambda m: m["payload"]["opId"] == "2")
        assert rejected["payload"].get("reason"), rejected
    finally:
        conn.close()


def test_empty_batch_and_client_extras_are_tolerated(dev_server, map_name):
    conn = connect(dev_server.ws_url, dev_server.token)
    try:
        conn.send(op_batch([]))
        conn.ping()
        # Unknown keys inside ops and payload are ignored.
        op = put_op(5, map_name, "x", {"value": 1, "timestamp": HLC("ex").now()})
        op["somethingNew"] = {"a": 1}
        conn.send({"type": "OP_BATCH", "payload": {"ops": [op], "extra": True}, "alsoExtra": 1})
        conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == "5")
    finally:
        conn.close()
