"""Topics, PN counters and locks across the nodes of a cluster (issue 15, point 3): three
`topgun data-plane` processes on one PostgreSQL database, clients connected to different nodes.
The tests that leave every node running share one module-scoped 3-node cluster; the tests that
kill a node (SIGKILL, as after a crash) start their own.

Topics (protocol.md §6.6.7): a `TOPIC_PUB` on any node reaches every subscriber of the topic on
every node exactly once, in the order one publisher sent them, with its data intact, and never
the publisher's own connection (nor a client that never subscribed); after `TOPIC_UNSUB` a
client hears nothing more; two publishers on different nodes are both heard (each one's
messages in its order). A subscription made on one node may take a moment to be known to the
others: before the measured messages, the publishers send probes until every subscriber heard
one from each (probes too must arrive at most once, and never at their publisher).

PN counters (§6.6.8): a counter lives on the owner of its name's partition
(`server_partition(name, tenant)`, owners from `GET /cluster`). For a name owned by each node in
turn, clients on all three nodes `COUNTER_REQUEST` it, three of them increment with
`COUNTER_SYNC` (each its own node-id entries, full states, as the TS client does), and every
client, those that only requested included, ends on a `COUNTER_UPDATE` with the total; a late
`COUNTER_REQUEST` on any node answers the total. Own cluster: the owner of a counter watched
from the two other nodes is killed; once the failover is over (the table names only the two
others on both; requests sent while a new owner still loads the partition are held), a `COUNTER_SYNC`
from one watcher is answered with the merged value, which includes every increment acknowledged
before the kill, and the other watcher gets that `COUNTER_UPDATE` without asking again.

Locks (§6.6.9): a lock lives on the owner of its name's partition. A holder on one node, waiters
on others: a waiter is not answered while the lock is held, and is granted (with a larger
fencing token) when the holder releases it, when the holder's connection closes, or when the
holder's TTL expires; waiters are served in the order they asked; a waiter whose connection
closed is skipped. Own clusters: the lock's owner is killed while a client holds the lock, and a
client on another node is granted it after the failover (as above) with a fencing token larger
than the old holder's, whose token no longer releases it; the node of a holder is killed, and a
waiter on another node is granted the lock once the dead node's lease expired (long before the
holder's TTL).

Every wait is bounded and generous (these run on a loaded 2-core machine); nothing sleeps to
make an assertion true: `wait_for` waits for what must come, `expect_none` for what must not."""
from __future__ import annotations

import collections
import itertools
import time
import uuid

import pytest

from cluster_support import Cluster, ClusterNode, kill_all, server_partition, start_cluster
from topgun_client import HLC, Connection, connect, new_id, put_op, summarize

NODES = ("n1", "n2", "n3")
WAIT = 20.0  # a cross-node answer on a loaded machine
FAILOVER = 30.0  # a killed node's lease (1.5 s) expiring and its partitions moving, with slack


# ---------------------------------------------------------------------------------------------
# Clusters and clients


@pytest.fixture(scope="module")
def cluster(topgun_bin, tmp_path_factory, postgres_database):
    made = start_cluster(topgun_bin, tmp_path_factory, postgres_database())
    yield made
    kill_all(made)


@pytest.fixture
def own_cluster(topgun_bin, tmp_path_factory, postgres_database):
    """A 3-node cluster for one test that kills a node."""
    made = start_cluster(topgun_bin, tmp_path_factory, postgres_database())
    yield made
    kill_all(made)


@pytest.fixture
def clients():
    """client(node) → an authenticated connection to that node, closed after the test."""
    made: list[Connection] = []

    def make(node: ClusterNode) -> Connection:
        conn = connect(node.ws_url, node.token, timeout=WAIT)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def name_owned_by(cluster_: Cluster, owner: str, prefix: str) -> str:
    """A fresh counter or lock name whose partition `owner` owns in the current table."""
    node = cluster_.running()[0]
    owner_of = {p["partitionId"]: p["owner"] for p in node.cluster()["partitions"]}
    base = unique(prefix)
    for i in itertools.count():
        name = f"{base}-{i}"
        if owner_of[server_partition(name, node.tenant)] == owner:
            return name
    raise AssertionError("unreachable")


def answer(conn: Connection, types, pred=None, timeout: float = WAIT, what: str = "") -> dict:
    """The first message of `types` that matches `pred`; an ERROR before it fails at once (the
    connections of these tests expect none)."""
    types = (types,) if isinstance(types, str) else tuple(types)
    message = conn.wait_for(types + ("ERROR",), lambda m: m["type"] == "ERROR" or pred is None or pred(m),
                            timeout=timeout, what=what)
    if message["type"] == "ERROR":
        raise AssertionError(f"ERROR instead of {'/'.join(types)} ({what}) on {conn.url}: {summarize(message)}")
    return message


def kill(cluster_: Cluster, node_id: str) -> float:
    """SIGKILLs a node; returns when it happened (time.monotonic())."""
    cluster_.nodes[node_id].kill()
    return time.monotonic()


def failed_over(cluster_: Cluster, members: set[str], killed: float) -> float:
    """Waits until every running node reports one table owned by `members` only; returns the
    seconds since `killed`. Requests sent then may reach a new owner still loading a partition
    it took over: the server holds them until it has (the TS client would not send a
    `COUNTER_SYNC` or `LOCK_REQUEST` again), so the tests do not wait for `/ready`."""
    cluster_.settled(members, timeout=FAILOVER)
    return time.monotonic() - killed


# ---------------------------------------------------------------------------------------------
# Topics


def topic_sub(conn: Connection, topic: str) -> None:
    conn.send({"type": "TOPIC_SUB", "payload": {"topic": topic}})
    conn.ping(timeout=WAIT)  # in place on its node once the PONG is back


def topic_pub(conn: Connection, topic: str, data) -> None:
    conn.send({"type": "TOPIC_PUB", "payload": {"topic": topic, "data": data}})


class Inbox:
    """Every TOPIC_MESSAGE of one topic a connection received, in arrival order. `name` is the
    publisher name of the connection when it publishes too (it must never hear itself)."""

    def __init__(self, name: str, conn: Connection, topic: str):
        self.name = name
        self.conn = conn
        self.topic = topic
        self.messages: list[dict] = []

    def poll(self, within: float) -> None:
        for m in self.conn.collect(within):
            if m.get("type") == "ERROR":
                raise AssertionError(f"{self.name} got {summarize(m)}")
            if m.get("type") == "TOPIC_MESSAGE" and m["payload"]["topic"] == self.topic:
                self.messages.append(m["payload"])

    def data(self) -> list:
        return [m["data"] for m in self.messages]

    def probes(self) -> list[tuple[str, int]]:
        return [(d["from"], d["probe"]) for d in self.data() if isinstance(d, dict) and "probe" in d]

    def real(self, sender: str | None = None) -> list:
        return [d for d in self.data() if isinstance(d, dict) and "seq" in d and (sender is None or d["from"] == sender)]


def poll_until(inboxes: list[Inbox], done, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            got = {i.name: len(i.messages) for i in inboxes}
            raise AssertionError(f"{what} within {timeout}s; messages per inbox: {got}")
        for inbox in inboxes:
            inbox.poll(0.05)


def warm_up(topic: str, publishers: dict[str, Connection], inboxes: list[Inbox]) -> None:
    """Probes from every publisher until every subscriber heard one from each publisher but
    itself: from then on the subscriptions are known to every publisher's node."""
    rounds = itertools.count()

    def heard_everyone() -> bool:
        return all({p for p in publishers if p != inbox.name} <= {sender for sender, _ in inbox.probes()} for inbox in inboxes)

    deadline = time.monotonic() + WAIT
    while not heard_everyone():
        if time.monotonic() > deadline:
            raise AssertionError(f"a subscriber on another node heard no probe within {WAIT}s: "
                                 f"{ {i.name: sorted({s for s, _ in i.probes()}) for i in inboxes} }")
        r = next(rounds)
        for name, conn in publishers.items():
            topic_pub(conn, topic, {"from": name, "probe": r})
        for inbox in inboxes:
            inbox.poll(0.1)


def quiet(inboxes: list[Inbox]) -> None:
    """Reads what else arrived: called after an `expect_none` of a second, it collects the
    duplicates, had there been any."""
    for inbox in inboxes:
        inbox.poll(0.05)


def payload(sender: str, seq: int) -> dict:
    """Data of every MessagePack kind the protocol carries in `data`, to be delivered unchanged."""
    return {"from": sender, "seq": seq, "text": f"message {seq} from {sender}: grüße ✓ 𝄞",
            "nested": {"list": [seq, -seq - 1, 2.5, None, True, False, "x" * (seq % 5)], "empty": {}, "none": [],
                       "big": 2 ** 40 + seq, "negative": -(2 ** 33) - seq}}


def assert_probes_once(inbox: Inbox) -> None:
    repeated = [p for p, n in collections.Counter(inbox.probes()).items() if n > 1]
    assert not repeated, f"{inbox.name} got probes more than once: {repeated}"


def test_a_topic_message_reaches_every_subscriber_on_every_node_once_and_in_order(cluster, clients):
    n1, n2, n3 = (cluster.nodes[n] for n in NODES)
    topic = "chat/" + unique("cluster-room")
    publisher = clients(n1)  # subscribed too: it must not hear its own messages
    subscribers = {"s1 on n1": clients(n1), "s2a on n2": clients(n2), "s2b on n2": clients(n2), "s3 on n3": clients(n3)}
    leaver = clients(n3)  # subscribed, then unsubscribed before the messages
    never = clients(n3)  # never subscribed
    for conn in (publisher, *subscribers.values(), leaver):
        topic_sub(conn, topic)
    sub_inboxes = [Inbox(name, conn, topic) for name, conn in subscribers.items()]
    warm_up(topic, {"p": publisher}, sub_inboxes + [Inbox("leaver on n3", leaver, topic)])

    leaver.send({"type": "TOPIC_UNSUB", "payload": {"topic": topic}})
    leaver.ping(timeout=WAIT)
    sent = [payload("p", i) for i in range(20)]
    for data in sent:
        topic_pub(publisher, topic, data)
    poll_until(sub_inboxes, lambda: all(len(i.real()) >= len(sent) for i in sub_inboxes), WAIT,
               "not every subscriber got the 20 messages")

    def on_topic(m: dict) -> bool:
        return m["payload"]["topic"] == topic

    publisher.expect_none("TOPIC_MESSAGE", on_topic, within=1.0, what="(the publisher heard its own message)")
    leaver.expect_none("TOPIC_MESSAGE", lambda m: on_topic(m) and "seq" in m["payload"]["data"], within=0.1,
                       what="(heard after TOPIC_UNSUB)")
    never.expect_none("TOPIC_MESSAGE", on_topic, within=0.1, what="(never subscribed)")
    quiet(sub_inboxes)  # duplicates, had there been any, had a second to arrive

    for inbox in sub_inboxes:
        assert inbox.real() == sent, f"{inbox.name}: each message once, in publish order, unchanged; got seqs {[d['seq'] for d in inbox.real()]}"
        assert_probes_once(inbox)
        for m in inbox.messages:
            assert isinstance(m["timestamp"], (int, float)), m


def test_topic_messages_of_publishers_on_two_nodes_both_arrive(cluster, clients):
    n1, n2, n3 = (cluster.nodes[n] for n in NODES)
    topic = "feed:" + unique("two-publishers")
    p1, p3 = clients(n1), clients(n3)  # p1 subscribed too, p3 not
    subscribers = {"s1 on n1": clients(n1), "s2 on n2": clients(n2), "s3 on n3": clients(n3)}
    for conn in (p1, *subscribers.values()):
        topic_sub(conn, topic)
    inboxes = [Inbox(name, conn, topic) for name, conn in subscribers.items()]
    p1_inbox = Inbox("p1", p1, topic)
    warm_up(topic, {"p1": p1, "p3": p3}, inboxes + [p1_inbox])

    sent = {"p1": [payload("p1", i) for i in range(10)], "p3": [payload("p3", i) for i in range(10)]}
    for i in range(10):
        topic_pub(p1, topic, sent["p1"][i])
        topic_pub(p3, topic, sent["p3"][i])
    everyone = inboxes + [p1_inbox]
    poll_until(everyone, lambda: all(len(i.real()) >= 20 for i in inboxes) and len(p1_inbox.real()) >= 10, WAIT,
               "not every subscriber got both publishers' messages")
    p3.expect_none("TOPIC_MESSAGE", lambda m: m["payload"]["topic"] == topic, within=1.0, what="(p3 never subscribed)")
    quiet(everyone)

    for inbox in inboxes:
        for sender in ("p1", "p3"):
            assert inbox.real(sender) == sent[sender], \
                f"{inbox.name} from {sender}: seqs {[d['seq'] for d in inbox.real(sender)]}"
        assert len(inbox.real()) == 20
        assert_probes_once(inbox)
    assert p1_inbox.real("p3") == sent["p3"], f"p1 from p3: seqs {[d['seq'] for d in p1_inbox.real('p3')]}"
    assert p1_inbox.real("p1") == [] and ("p1" not in {s for s, _ in p1_inbox.probes()}), "p1 heard itself"
    assert_probes_once(p1_inbox)


# ---------------------------------------------------------------------------------------------
# PN counters


def value_of(state: dict) -> float:
    p = state.get("positive", state.get("p", {}))
    n = state.get("negative", state.get("n", {}))
    return sum(p.values()) - sum(n.values())


def assert_both_spellings(state: dict) -> None:
    for key in ("p", "n", "positive", "negative"):
        assert key in state, f"counter state lacks {key!r}: {state}"
    assert state["p"] == state["positive"] and state["n"] == state["negative"], state


class CounterClient:
    """A client of one counter on one connection, keeping every state the server sent it
    (COUNTER_RESPONSE, COUNTER_UPDATE) in arrival order."""

    def __init__(self, who: str, conn: Connection, name: str):
        self.who = who
        self.conn = conn
        self.name = name
        self.states: list[dict] = []

    def request(self) -> dict:
        self.conn.send({"type": "COUNTER_REQUEST", "payload": {"name": self.name}})
        state = answer(self.conn, "COUNTER_RESPONSE", lambda m: m["payload"]["name"] == self.name,
                       what=f"{self.who}: the state of {self.name}")["payload"]["state"]
        assert_both_spellings(state)
        self.states.append(state)
        return state

    def sync(self, positive: dict, negative: dict) -> None:
        # The TS client's spelling: its whole state, its own node id's entries.
        self.conn.send({"type": "COUNTER_SYNC", "payload": {"name": self.name, "state": {"positive": positive, "negative": negative}}})

    def until(self, pred, what: str, timeout: float = WAIT) -> dict:
        """The first state received (already or within `timeout`) that satisfies `pred`."""
        for state in self.states:
            if pred(state):
                return state
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.who}: no COUNTER_UPDATE with {what} within {timeout}s; states received: "
                                     f"{[(s['positive'], s['negative']) for s in self.states[-8:]]}")
            state = answer(self.conn, "COUNTER_UPDATE", lambda m: m["payload"]["name"] == self.name, timeout=remaining,
                           what=f"{self.who}: {what}")["payload"]["state"]
            assert_both_spellings(state)
            self.states.append(state)
            if pred(state):
                return state

    def until_state(self, positive: dict, negative: dict, what: str, timeout: float = WAIT) -> dict:
        state = self.until(lambda s: s["positive"] == positive and s["negative"] == negative,
                           f"{what} (positive {positive}, negative {negative})", timeout)
        assert value_of(state) == sum(positive.values()) - sum(negative.values())
        return state


def includes(state: dict, positive: dict, negative: dict) -> bool:
    """Whether a merged state holds at least these entries (max-merge never goes back)."""
    p, n = state["positive"], state["negative"]
    return all(p.get(k, 0) >= v for k, v in positive.items()) and all(n.get(k, 0) >= v for k, v in negative.items())


@pytest.mark.parametrize("owner", NODES)
def test_a_counter_converges_on_every_node(cluster, clients, owner):
    nodes = [cluster.nodes[n] for n in NODES]
    name = name_owned_by(cluster, owner, f"likes-{owner}")
    syncers = {f"client-{i + 1}": CounterClient(f"client-{i + 1} on {node.node_id}", clients(node), name)
               for i, node in enumerate(nodes)}
    watchers = [CounterClient(f"watcher on {node.node_id}", clients(node), name) for node in nodes]  # never sync
    for client in (*syncers.values(), *watchers):
        assert value_of(client.request()) == 0

    # Increments, interleaved across the nodes: client-1 +5, client-2 +3 −1, client-3 +4.
    plans = {"client-1": [({"client-1": k}, {}) for k in range(1, 6)],
             "client-2": [({"client-2": k}, {}) for k in range(1, 4)] + [({"client-2": 3}, {"client-2": 1})],
             "client-3": [({"client-3": k}, {}) for k in range(1, 5)]}
    for step in range(5):
        for client_id, plan in plans.items():
            if step < len(plan):
                syncers[client_id].sync(*plan[step])
    for client_id, plan in plans.items():
        # Each sync is answered with the merged state; the last one's holds the sender's final entries.
        syncers[client_id].until(lambda s, last=plan[-1]: includes(s, *last), f"its own entries {plan[-1]}")

    positive, negative = {"client-1": 5, "client-2": 3, "client-3": 4}, {"client-2": 1}
    for client in (*syncers.values(), *watchers):
        client.until_state(positive, negative, "every increment (value 11)")

    # A late client on any node gets the merged state at once.
    for node in nodes:
        state = CounterClient(f"late client on {node.node_id}", clients(node), name).request()
        assert (state["positive"], state["negative"]) == (positive, negative), (node.node_id, state)


def test_counter_watchers_carry_on_after_the_owner_is_killed(own_cluster, clients):
    c = own_cluster
    n1, n2, n3 = (c.nodes[n] for n in NODES)
    name = name_owned_by(c, "n3", "failover-likes")
    a = CounterClient("a on n1", clients(n1), name)
    b = CounterClient("b on n2", clients(n2), name)
    z = CounterClient("z on n3, the owner", clients(n3), name)
    for client in (a, b, z):
        assert value_of(client.request()) == 0

    for k in (1, 2, 3):
        a.sync({"client-a": k}, {})
    b.sync({"client-b": 2}, {"client-b": 1})
    z.sync({"client-z": 4}, {})
    for client, mine in ((a, ({"client-a": 3}, {})), (b, ({"client-b": 2}, {"client-b": 1})), (z, ({"client-z": 4}, {}))):
        client.until(lambda s, mine=mine: includes(s, *mine), f"the acknowledgement of its syncs {mine}")
        # A connection's frames are handled in turn: once the PONG is back, the forwarded
        # syncs were answered by the owner too (an ERROR would be read by the next wait).
        client.conn.ping(timeout=WAIT)
    before = ({"client-a": 3, "client-b": 2, "client-z": 4}, {"client-b": 1})
    for client in (a, b):
        client.until_state(*before, "every increment before the kill (value 8)")

    failover = failed_over(c, {"n1", "n2"}, kill(c, "n3"))

    # A watcher's next increment is answered by the new owner, merged with everything
    # acknowledged before the kill; the other watcher hears it without asking again.
    a.sync({"client-a": 5}, {})
    after = ({"client-a": 5, "client-b": 2, "client-z": 4}, {"client-b": 1})
    for client in (a, b):
        client.until_state(*after, f"the merged state after the failover (done {failover:.1f} s after the kill; value 10)")
    state = CounterClient("late client on n2", clients(n2), name).request()
    assert (state["positive"], state["negative"]) == after, state


# ---------------------------------------------------------------------------------------------
# Locks


def lock_request(conn: Connection, name: str, ttl: int = 10_000) -> str:
    rid = new_id()
    conn.send({"type": "LOCK_REQUEST", "payload": {"requestId": rid, "name": name, "ttl": ttl}})
    return rid


def granted(conn: Connection, rid: str, timeout: float = WAIT, what: str = "") -> int:
    """The fencing token of the LOCK_GRANTED answering `rid` (a LOCK_RELEASED answering it, the
    Rust server's refusal, or an ERROR fails)."""
    m = answer(conn, ("LOCK_GRANTED", "LOCK_RELEASED"), lambda m: m["payload"]["requestId"] == rid, timeout=timeout, what=what)
    assert m["type"] == "LOCK_GRANTED", f"the lock request was refused: {summarize(m)}"
    token = m["payload"]["fencingToken"]
    assert isinstance(token, (int, float)), m
    return token


def still_waiting(conn: Connection, rid: str, within: float = 1.0, what: str = "") -> None:
    conn.expect_none(("LOCK_GRANTED", "LOCK_RELEASED", "ERROR"),
                     lambda m: m["type"] == "ERROR" or m["payload"]["requestId"] == rid, within=within,
                     what=f"(the lock is held: this request must wait, neither granted nor refused) {what}")


def lock_release(conn: Connection, name: str, token: int) -> bool:
    rid = new_id()
    conn.send({"type": "LOCK_RELEASE", "payload": {"requestId": rid, "name": name, "fencingToken": token}})
    m = conn.wait_for("LOCK_RELEASED", lambda m: m["payload"]["requestId"] == rid, timeout=WAIT, what=f"release of {name}")
    assert m["payload"]["name"] == name, m
    return m["payload"]["success"]


def test_a_lock_released_on_one_node_is_granted_to_waiters_on_others_in_turn(cluster, clients):
    n1, n2, n3 = (cluster.nodes[n] for n in NODES)
    name = name_owned_by(cluster, "n3", "lock-release")
    a, b, c = clients(n1), clients(n2), clients(n3)
    t1 = granted(a, lock_request(a, name, ttl=60_000), what="A on n1, the lock free")
    rb = lock_request(b, name)
    still_waiting(b, rb, what="B on n2")
    rc = lock_request(c, name)  # on the owner itself, after B
    still_waiting(c, rc, within=0.5, what="C on n3")

    assert lock_release(a, name, t1) is True
    t2 = granted(b, rb, what="B, first in the queue, once A released")
    assert t2 > t1
    still_waiting(c, rc, within=0.5, what="C, behind B")
    assert lock_release(b, name, t2) is True
    t3 = granted(c, rc, what="C once B released")
    assert t3 > t2
    assert lock_release(c, name, t3) is True


def test_a_holders_closed_connection_grants_the_waiter_on_another_node(cluster, clients):
    n1, n3 = cluster.nodes["n1"], cluster.nodes["n3"]
    name = name_owned_by(cluster, "n2", "lock-close")
    a, b = clients(n1), clients(n3)
    t1 = granted(a, lock_request(a, name, ttl=60_000), what="A on n1")
    rb = lock_request(b, name)
    still_waiting(b, rb, what="B on n3")
    a.close()
    assert granted(b, rb, what="B once A's connection closed (A's TTL is 60 s)") > t1


def test_a_waiter_whose_connection_closed_is_skipped(cluster, clients):
    n2, n3 = cluster.nodes["n2"], cluster.nodes["n3"]
    name = name_owned_by(cluster, "n1", "lock-skip")
    a, w, b = clients(n2), clients(n3), clients(n2)
    t1 = granted(a, lock_request(a, name, ttl=60_000), what="A on n2")
    rw = lock_request(w, name, ttl=60_000)  # were it granted to the closed W, B would wait a minute
    still_waiting(w, rw, what="W on n3")
    rb = lock_request(b, name)
    still_waiting(b, rb, within=0.5, what="B on n2, behind W")
    w.close()
    still_waiting(b, rb, what="B: W left, but A still holds the lock")
    assert lock_release(a, name, t1) is True
    assert granted(b, rb, what="B, W's turn skipped") > t1


def test_a_holders_ttl_expiry_grants_the_waiter_on_another_node(cluster, clients):
    n2, n3 = cluster.nodes["n2"], cluster.nodes["n3"]
    name = name_owned_by(cluster, "n1", "lock-ttl")
    a, b = clients(n2), clients(n3)
    t1 = granted(a, lock_request(a, name, ttl=1_000), what="A on n2, TTL 1 s")
    rb = lock_request(b, name)
    t2 = granted(b, rb, what="B on n3 once A's TTL expired (A stays connected)")
    assert t2 > t1
    assert a.is_open()
    # A's lease is over: its token no longer releases the lock, B's does.
    assert lock_release(a, name, t1) is False
    assert lock_release(b, name, t2) is True


def test_fencing_tokens_keep_increasing_when_a_locks_owner_is_killed(own_cluster, clients):
    c = own_cluster
    n1, n3 = c.nodes["n1"], c.nodes["n3"]
    name = name_owned_by(c, "n2", "lock-failover")
    a = clients(n1)
    tokens = []
    for _ in range(4):  # a few grants first, so that a new owner counting from scratch is caught
        tokens.append(granted(a, lock_request(a, name, ttl=5_000), what="A on n1"))
        assert lock_release(a, name, tokens[-1]) is True
    t1 = granted(a, lock_request(a, name, ttl=60_000), what="A on n1, held across the kill")
    a.ping(timeout=WAIT)  # the owner answered the forwarded request too
    tokens.append(t1)
    assert tokens == sorted(set(tokens)), f"fencing tokens go up with each grant: {tokens}"

    failover = failed_over(c, {"n1", "n3"}, kill(c, "n2"))
    client = clients(n3)
    # The new owner took A's lease over from its copy (A's TTL is long enough to outlast this):
    # C waits, A's token still releases it, and C is then granted a larger token.
    rid = lock_request(client, name)
    still_waiting(client, rid, within=1.0, what=f"C on n3 while A still holds ({failover:.1f} s after the kill)")
    assert lock_release(a, name, t1) is True, "the holder's lease survived its owner's death"
    t2 = granted(client, rid, what="C on n3 once A released")
    assert t2 > t1, f"a fencing token after the failover ({t2}) not above the one before ({t1})"
    assert lock_release(client, name, t2) is True


def test_a_lock_held_from_a_killed_node_goes_to_the_waiter(own_cluster, clients):
    c = own_cluster
    n2, n3 = c.nodes["n2"], c.nodes["n3"]
    name = name_owned_by(c, "n1", "lock-dead-holder")
    a, b = clients(n3), clients(n2)
    t1 = granted(a, lock_request(a, name, ttl=120_000), what="A on n3")  # its TTL outlasts the test
    rb = lock_request(b, name)
    still_waiting(b, rb, what="B on n2")
    killed = kill(c, "n3")
    t2 = granted(b, rb, timeout=WAIT, what="B once n3's lease expired")
    assert t2 > t1, f"granted {time.monotonic() - killed:.1f} s after the kill with token {t2}, not above {t1}"


# ---------------------------------------------------------------------------------------------
# Journal


def journal_events(conn: Connection, subscription: str, count: int, timeout: float = WAIT) -> list[dict]:
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{len(events)} of {count} journal events within {timeout}s"
        message = conn.wait_for("JOURNAL_EVENT", timeout=remaining, what=f"journal event {len(events) + 1} of {count}")
        events.append(message["event"])
    return events


def journal_write(node: ClusterNode, map_name: str, keys: list[str], hlc: HLC) -> None:
    conn = connect(node.ws_url, node.token, timeout=WAIT)
    try:
        ops = [put_op(new_id(), map_name, key, {"value": {"k": key}, "timestamp": hlc.now()}) for key in keys]
        ack = conn.write(ops, timeout=WAIT)["payload"]
        assert all(r["success"] for r in ack.get("results", [])), ack
    finally:
        conn.close()


def test_the_journal_sees_the_whole_clusters_events_in_one_order_on_every_node(cluster, clients):
    """Events of writes applied on every node reach subscribers on every node once each, numbered
    by the tenant's sequencer in one increasing order; a read on any node returns that order."""
    map_name = unique("journal")
    subscribers = {node_id: clients(cluster.nodes[node_id]) for node_id in NODES}
    for conn in subscribers.values():
        conn.send({"type": "JOURNAL_SUBSCRIBE", "requestId": "sub-" + map_name, "mapName": map_name})
        conn.ping(timeout=WAIT)
    hlc = HLC("journal-writer")
    keys = [f"j-{i}" for i in range(30)]
    for index, node_id in enumerate(NODES):
        journal_write(cluster.nodes[node_id], map_name, keys[index * 10:(index + 1) * 10], hlc)
    seen = {}
    for node_id, conn in subscribers.items():
        events = journal_events(conn, "sub-" + map_name, len(keys))
        sequences = [int(e["sequence"]) for e in events]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences), f"{node_id}: {sequences}"
        assert sorted(e["key"] for e in events) == sorted(keys), node_id
        conn.expect_none("JOURNAL_EVENT", lambda m: m["event"]["mapName"] == map_name, within=0.5, what="an event twice")
        seen[node_id] = [(e["sequence"], e["key"]) for e in events]
    assert seen["n1"] == seen["n2"] == seen["n3"], "one order on every node"
    for node_id in NODES:
        conn = subscribers[node_id]
        read_id = new_id()
        conn.send({"type": "JOURNAL_READ", "requestId": read_id, "fromSequence": "0", "limit": 10_000, "mapName": map_name})
        response = conn.wait_for("JOURNAL_READ_RESPONSE", lambda m: m["requestId"] == read_id, timeout=WAIT)
        assert [(e["sequence"], e["key"]) for e in response["events"]] == seen["n1"], node_id


def test_journal_subscriptions_carry_on_when_the_sequencer_is_killed(own_cluster, clients):
    tenant = own_cluster.nodes["n1"].tenant
    view = own_cluster.nodes["n1"].cluster()
    owner_of = {p["partitionId"]: p["owner"] for p in view["partitions"]}
    sequencer = owner_of[server_partition("\u0000journal", tenant)]
    survivors = [n for n in NODES if n != sequencer]
    map_name = unique("journal-failover")
    subscriber = clients(own_cluster.nodes[survivors[0]])
    subscriber.send({"type": "JOURNAL_SUBSCRIBE", "requestId": "s", "mapName": map_name})
    subscriber.ping(timeout=WAIT)
    hlc = HLC("journal-failover-writer")
    journal_write(own_cluster.nodes[survivors[1]], map_name, ["before-1", "before-2"], hlc)
    before = journal_events(subscriber, "s", 2)
    killed = kill(own_cluster, sequencer)
    failed_over(own_cluster, set(survivors), killed)
    # The subscription follows the new sequencer by itself; numbers keep increasing.
    deadline = time.monotonic() + WAIT
    after: list[dict] = []
    round_ = 0
    while not any(e["key"].startswith("after") for e in after):
        assert time.monotonic() < deadline, "no event after the failover"
        round_ += 1
        journal_write(own_cluster.nodes[survivors[1]], map_name, [f"after-{round_}"], hlc)
        after += [m["event"] for m in subscriber.collect(1.0) if m.get("type") == "JOURNAL_EVENT"]
    sequences = [int(e["sequence"]) for e in before + after]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences), sequences
