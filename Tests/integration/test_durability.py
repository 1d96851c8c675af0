"""Scenario 15: every acknowledged write survives SIGKILL right after its ack (SQLite and
PostgreSQL), and a graceful shutdown closes sockets and keeps everything."""
import time

import pytest

from topgun_client import HLC, Replica, connect, op_batch, or_add_op, put_op, remove_op, ts_str


@pytest.fixture(params=["dev-sqlite", "postgres"])
def durable_node(request, server_factory):
    url = request.getfixturevalue("postgres_database")() if request.param == "postgres" else None
    node = server_factory(request.param, postgres_url=url)
    yield node
    node.stop()


def read_back(node, lww_name, or_name):
    r = Replica("reader", node.ws_url, node.token)
    r.connect()
    try:
        r.merkle_sync(lww_name)
        r.ormap_sync(or_name)
        again = r.merkle_sync(lww_name)
        assert again["serverRoot"] == r.lww(lww_name).root()
        resp = r.conn.query(lww_name, {})
        return r, resp
    finally:
        r.disconnect()


def test_acknowledged_writes_survive_sigkill(durable_node, map_name):
    node = durable_node
    lww_name, or_name = map_name, map_name + "-or"
    writer = Replica("durable-writer", node.ws_url, node.token)
    conn = writer.connect()
    hlc = writer.hlc
    expected: dict[str, tuple] = {}
    or_expected: dict[str, set] = {}
    op_id = 0
    batches = []
    for b in range(5):
        ops = []
        for i in range(100):
            op_id += 1
            n = b * 100 + i
            key = f"rec-{n:04d}"
            if b == 4 and i % 10 == 0:
                # Deletes of records written earlier: tombstones must survive too.
                key = f"rec-{i:04d}"
                record = {"value": None, "timestamp": hlc.now()}
                ops.append(remove_op(op_id, lww_name, key, record))
            elif b == 3 and i % 10 == 1:
                key = f"rec-{i:04d}"  # an update of an earlier record
                record = {"value": {"n": n, "updated": True}, "timestamp": hlc.now()}
                ops.append(put_op(op_id, lww_name, key, record))
            else:
                record = {"value": {"n": n, "text": f"value {n}", "f": n / 4}, "timestamp": hlc.now()}
                ops.append(put_op(op_id, lww_name, key, record))
            expected[key] = (record["value"], (record["timestamp"]["millis"], record["timestamp"]["counter"], record["timestamp"]["nodeId"]))
        batches.append(ops)
    or_ops = []
    for i in range(20):
        op_id += 1
        t = hlc.now()
        rec = {"value": f"item-{i}", "timestamp": t, "tag": ts_str(t)}
        or_ops.append(or_add_op(op_id, or_name, f"set-{i % 4}", rec))
        or_expected.setdefault(f"set-{i % 4}", set()).add(rec["tag"])
    batches.append(or_ops)

    for ops in batches:
        conn.send(op_batch(ops))
    for ops in batches:
        last = ops[-1]["id"]
        ack = conn.wait_for("OP_ACK", lambda m, last=last: m["payload"]["lastId"] == last, timeout=30)["payload"]
        assert ack.get("achievedLevel") == "PERSISTED", ack
        assert all(r["success"] for r in ack["results"]), ack
    node.kill()  # right after the last ack: no chance to flush anything more
    writer.disconnect()

    node.start()
    reader, resp = read_back(node, lww_name, or_name)
    got = reader.lww(lww_name).snapshot()
    missing = sorted(set(expected) - set(got))
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    wrong = sorted(k for k in expected if got[k] != expected[k])
    assert not wrong, f"records differ after restart, e.g. {[(k, expected[k], got[k]) for k in wrong[:3]]}"
    assert set(got) == set(expected)
    live = {k for k, (v, _) in expected.items() if v is not None}
    assert sorted(r["key"] for r in resp["results"]) == sorted(live)
    orm = reader.ormap(or_name)
    assert {k: orm.tags(k) for k in or_expected} == or_expected


def test_graceful_shutdown_closes_sockets_and_keeps_data(durable_node, map_name):
    node = durable_node
    conn = connect(node.ws_url, node.token)
    hlc = HLC("graceful")
    records = {f"g{i}": {"value": i, "timestamp": hlc.now()} for i in range(50)}
    ops = [put_op(i + 1, map_name, k, r) for i, (k, r) in enumerate(records.items())]
    # Acknowledged at APPLIED (before the flush): only a drained write-behind keeps them.
    conn.send(op_batch(ops, "APPLIED"))
    conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == str(len(ops)))
    started = time.monotonic()
    status = node.stop(timeout=10)
    code, reason = conn.wait_closed(timeout=5)
    assert status == 0, f"exit status {status} after {time.monotonic() - started:.1f}s:\n{node.stderr_tail()}"
    node.start()
    reader = Replica("graceful-reader", node.ws_url, node.token)
    reader.connect()
    reader.merkle_sync(map_name)
    reader.disconnect()
    got = reader.lww(map_name).snapshot()
    assert {k: v for k, (v, _) in got.items()} == {k: r["value"] for k, r in records.items()}
    assert code == 1001 and reason, f"close code {code} {reason!r}; protocol.md §15: 1001 (with a reason) when the server shuts down"


def test_counter_state_survives_a_restart(durable_node):
    node = durable_node
    name = f"visits-{time.monotonic_ns()}"
    conn = connect(node.ws_url, node.token)
    conn.send({"type": "COUNTER_SYNC", "payload": {"name": name, "state": {"positive": {"n1": 5, "n2": 2}, "negative": {"n1": 1}}}})
    conn.wait_for("COUNTER_UPDATE", lambda m: m["payload"]["name"] == name)
    conn.close()
    assert node.stop(timeout=10) == 0  # a clean stop drains the write-behind
    node.start()
    conn = connect(node.ws_url, node.token)
    try:
        conn.send({"type": "COUNTER_REQUEST", "payload": {"name": name}})
        state = conn.wait_for("COUNTER_RESPONSE", lambda m: m["payload"]["name"] == name)["payload"]["state"]
        assert state.get("positive") == {"n1": 5, "n2": 2} and state.get("negative") == {"n1": 1}, f"after a restart: {state}"
    finally:
        conn.close()


def test_canonically_equivalent_keys_and_map_names_stay_apart(durable_node, map_name):
    # "\u00e9" and "e\u0301" are one string to Swift's `==` but two to the client (JavaScript
    # compares code units) and to the database (bytes): they are two keys, two map names,
    # and both rows survive a SIGKILL right after the ack.
    node = durable_node
    nfc, nfd = "\u00e9", "e\u0301"
    maps = {nfc: f"{map_name}-caf{nfc}", nfd: f"{map_name}-caf{nfd}"}
    or_name = map_name + "-or"
    hlc = HLC("canonical-writer")
    conn = connect(node.ws_url, node.token)
    ops, expected = [], {}
    for form, value in ((nfc, "composed"), (nfd, "decomposed")):
        for target in (map_name, maps[form]):
            record = {"value": value, "timestamp": hlc.now()}
            ops.append(put_op(len(ops) + 1, target, form, record))
            expected[(target, form)] = value
        t = hlc.now()
        ops.append(or_add_op(len(ops) + 1, or_name, form, {"value": value, "timestamp": t, "tag": ts_str(t)}))
    conn.send(op_batch(ops))
    ack = conn.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == str(len(ops)), timeout=30)["payload"]
    assert ack.get("achievedLevel") == "PERSISTED" and all(r["success"] for r in ack["results"]), ack
    node.kill()
    conn.close()

    node.start()
    reader = Replica("canonical-reader", node.ws_url, node.token)
    reader.connect()
    try:
        got = {}
        for target in {map_name, *maps.values()}:
            reader.merkle_sync(target)
            for key, (value, _) in reader.lww(target).snapshot().items():
                got[(target, key)] = value
        reader.ormap_sync(or_name)
        or_values = {form: reader.ormap(or_name).values(form) for form in (nfc, nfd)}
    finally:
        reader.disconnect()
    assert got == expected, f"after a restart: {got}"
    assert or_values == {nfc: ["composed"], nfd: ["decomposed"]}, or_values
