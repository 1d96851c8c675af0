"""Scenario 5: OR-Map convergence: OR_ADD/OR_REMOVE from two clients, the ORMAP_* Merkle walk,
and ORMAP_PUSH_DIFF reaching another client."""
from topgun_client import Replica, new_id


def watch(replica, map_name):
    replica.conn.query(map_name, {}, query_id=new_id())


def events_for(replica, map_name, count_pred, timeout=5.0):
    """Applies SERVER_EVENTs for the map until count_pred(replica) holds."""
    import time

    deadline = time.monotonic() + timeout
    while not count_pred(replica):
        assert time.monotonic() < deadline, f"{replica.node_id} did not converge; last frames:\n    {replica.conn.recent()}"
        ev = replica.conn.wait_for("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name,
                                   timeout=max(0.1, deadline - time.monotonic()))
        replica.handle(ev)


def test_ormap_concurrent_add_survives_remove_and_sync_converges(dev_server, map_name):
    url, token = dev_server.ws_url, dev_server.token
    a, b = Replica("or-a", url, token), Replica("or-b", url, token)
    a.connect()
    b.connect()
    a.ormap(map_name)
    b.ormap(map_name)
    watch(a, map_name)
    watch(b, map_name)
    try:
        first = a.or_add(map_name, "tags", "work")
        ack = a.push()
        assert ack["results"][0]["success"] is True, ack

        ev = b.conn.wait_for("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name)
        p = ev["payload"]
        assert p["eventType"] == "OR_ADD" and p["key"] == "tags", ev
        assert p["orRecord"]["tag"] == first["tag"], "the server must keep the writer's tag"
        assert p["orRecord"]["value"] == "work"
        b.handle(ev)
        assert b.ormap(map_name).values("tags") == ["work"]

        # Concurrently: A removes what it observed, B adds the same value again (a new tag).
        removed = a.or_remove(map_name, "tags", "work")
        assert removed == [first["tag"]]
        second = b.or_add(map_name, "tags", "work")
        assert a.push()["results"][0]["success"] is True
        assert b.push()["results"][0]["success"] is True

        ev = b.conn.wait_for("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name and m["payload"]["eventType"] == "OR_REMOVE")
        assert ev["payload"]["orTag"] == first["tag"]
        b.handle(ev)
        ev = a.conn.wait_for("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name and m["payload"]["eventType"] == "OR_ADD")
        assert ev["payload"]["orRecord"]["tag"] == second["tag"]
        a.handle(ev)
        for r in (a, b):
            assert r.ormap(map_name).values("tags") == ["work"], r.node_id
            assert r.ormap(map_name).tags("tags") == {second["tag"]}

        a.or_add(map_name, "colors", "red")
        a.or_add(map_name, "colors", {"hex": "#00f", "name": "blue"})
        b.or_add(map_name, "sizes", 42)
        a.push()
        b.push()
        events_for(a, map_name, lambda r: r.ormap(map_name).values("sizes") == [42])
        events_for(b, map_name, lambda r: len(r.ormap(map_name).values("colors")) == 2)
        assert a.ormap(map_name).root() == b.ormap(map_name).root()

        # A third client catches up from nothing through the bucket walk.
        c = Replica("or-c", url, token)
        c.connect()
        stats = c.ormap_sync(map_name)
        assert stats["leaves"] >= 1, c.sync_log
        tags_entry = [e for e in stats["entries"] if e["key"] == "tags"]
        assert tags_entry, f"no leaf entry for 'tags': {stats['entries']}"
        assert [r["tag"] for r in tags_entry[0]["records"]] == [second["tag"]]
        assert first["tag"] in tags_entry[0]["tombstones"], f"the removed tag is missing from the leaf's tombstones: {tags_entry[0]}"
        assert c.ormap(map_name).root() == a.ormap(map_name).root()
        again = c.ormap_sync(map_name)
        assert again["serverRoot"] == c.ormap(map_name).root() and again["requests"] == 0

        # D: caught up, then adds offline under an existing key; its sync pushes the extra record.
        d = Replica("or-d", url, token)
        d.connect()
        d.ormap_sync(map_name)
        d.disconnect()
        extra = d.ormap(map_name).add("tags", "offline-extra")  # local only: never sent as an op
        d.connect()
        stats = d.ormap_sync(map_name)
        assert stats["pushed"] >= 1, f"the walk never pushed a diff: {d.sync_log}"
        for r in (a, b):
            ev = r.conn.wait_for("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name
                                 and m["payload"]["eventType"] == "OR_ADD" and m["payload"]["orRecord"]["tag"] == extra["tag"])
            assert ev["payload"]["key"] == "tags" and ev["payload"]["orRecord"]["value"] == "offline-extra"
            r.handle(ev)
        d.conn.expect_none("SERVER_EVENT", lambda m: m["payload"]["mapName"] == map_name, within=0.5,
                           what="(the pusher got its own push back)")

        # Everyone, and the server, agree.
        for r in (a, b, d):
            assert sorted(map(str, r.ormap(map_name).values("tags"))) == ["offline-extra", "work"], r.node_id
            check = r.ormap_sync(map_name)
            assert check["serverRoot"] == r.ormap(map_name).root(), f"{r.node_id}: root differs from the server's; {r.sync_log[-6:]}"
        c.ormap_sync(map_name)
        assert c.ormap(map_name).root() == a.ormap(map_name).root()
        c.disconnect()
    finally:
        for r in (a, b):
            r.disconnect()


def test_ormap_push_diff_merges_tombstones(dev_server, map_name):
    """A pushed entry whose tombstones cover a record the server holds removes it there."""
    url, token = dev_server.ws_url, dev_server.token
    a, b = Replica("pd-a", url, token), Replica("pd-b", url, token)
    a.connect()
    b.connect()
    try:
        rec = a.or_add(map_name, "k", "v1")
        a.push()
        b.ormap_sync(map_name)
        assert b.ormap(map_name).values("k") == ["v1"]
        # B removes offline and pushes the entry (records: none, tombstones: the tag).
        b.ormap(map_name).remove("k", "v1")
        b.conn.send({"type": "ORMAP_PUSH_DIFF", "payload": {"mapName": map_name, "entries": [b.ormap(map_name).entry("k")]}})
        b.conn.ping()
        c = Replica("pd-c", url, token)
        c.connect()
        stats = c.ormap_sync(map_name)
        assert c.ormap(map_name).values("k") == [], stats
        assert stats["serverRoot"] == 0 or stats["serverRoot"] == c.ormap(map_name).root()
        assert rec["tag"] in c.ormap(map_name).tombstones or stats["serverRoot"] == 0
        c.disconnect()
    finally:
        a.disconnect()
        b.disconnect()
