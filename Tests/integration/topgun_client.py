"""An independent TopGun protocol client in Python, for driving the real server in tests.

Written from ../shared/protocol.md, not from the server's code: MessagePack frames over a
WebSocket (the `websockets` package's synchronous client), the HLC (§2), LWW and OR-Map
replicas (§3), the client's Merkle tree (§4: FNV-1a over UTF-16 code units, depth 3, HEAD
combine = sum of fmix32), the write pipeline of the TS client's SyncEngine (§6.6.1), and its
Merkle catch-up walks (MerkleSyncHandler §6.6.3, ORMapSyncHandler §6.6.4). HTTP helpers for
`POST /sync` (§7.1) and the plain endpoints use only the standard library.
"""
from __future__ import annotations

import itertools
import json
import math
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Iterable

import msgpack
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as _ws_connect

DEFAULT_TIMEOUT = 5.0

# ---------------------------------------------------------------------------------------------
# MessagePack


def pack(message: Any) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def whole(number: Any) -> Any:
    """A whole float (the TS encoder's float64 millis) as an int; anything else unchanged."""
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


# ---------------------------------------------------------------------------------------------
# Hashes (protocol.md §4.1)

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
MASK32 = 0xFFFFFFFF


def fnv1a(text: str) -> int:
    """FNV-1a 32-bit over the UTF-16 code units of `text` (JS charCodeAt)."""
    h = FNV_OFFSET
    data = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = (h * FNV_PRIME) & MASK32
    return h


def mix(h: int) -> int:
    """MurmurHash3 fmix32."""
    h &= MASK32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    h ^= h >> 16
    return h


def combine(hashes: Iterable[int]) -> int:
    """HEAD client combine: sum of fmix32-mixed hashes mod 2^32."""
    return sum(mix(h) for h in hashes) & MASK32


def partition_of(key: str) -> int:
    return fnv1a(key) % 271


# ---------------------------------------------------------------------------------------------
# HLC (protocol.md §2)


def ts(millis: int, counter: int, node_id: str) -> dict:
    return {"millis": millis, "counter": counter, "nodeId": node_id}


def norm_ts(t: dict) -> dict:
    return {"millis": whole(t["millis"]), "counter": whole(t["counter"]), "nodeId": t["nodeId"]}


def ts_key(t: dict) -> tuple:
    return (whole(t["millis"]), whole(t["counter"]), t["nodeId"])


def ts_str(t: dict) -> str:
    return f"{js_number(t['millis'])}:{js_number(t['counter'])}:{t['nodeId']}"


class HLC:
    def __init__(self, node_id: str, clock: Callable[[], int] | None = None):
        assert ":" not in node_id
        self.node_id = node_id
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.last_millis = 0
        self.last_counter = 0

    def now(self) -> dict:
        t = self.clock()
        if t > self.last_millis:
            self.last_millis, self.last_counter = t, 0
        else:
            self.last_counter += 1
        return ts(self.last_millis, self.last_counter, self.node_id)

    def update(self, remote: dict) -> None:
        try:
            r_millis, r_counter = whole(remote["millis"]), whole(remote["counter"])
        except (KeyError, TypeError):
            return
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (r_millis, r_counter)):
            return
        t = self.clock()
        m = max(self.last_millis, t, r_millis)
        if m == self.last_millis and m == r_millis:
            self.last_counter = max(self.last_counter, r_counter) + 1
        elif m == self.last_millis:
            self.last_counter += 1
        elif m == r_millis:
            self.last_counter = r_counter + 1
        else:
            self.last_counter = 0
        self.last_millis = m


# ---------------------------------------------------------------------------------------------
# JS value printing (for the OR entry hash, protocol.md §4.3)


def js_number(n: Any) -> str:
    if isinstance(n, bool):
        return "true" if n else "false"
    if isinstance(n, int):
        return str(n)
    if isinstance(n, float):
        if math.isnan(n):
            return "NaN"
        if math.isinf(n):
            return "Infinity" if n > 0 else "-Infinity"
        if n.is_integer() and abs(n) < 1e21:
            return str(int(n))
        return repr(n)
    raise TypeError(n)


def js_string(value: Any) -> str:
    """JS String(value) for primitives."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, str):
        return value
    raise TypeError(value)


def js_json(value: Any, allow: list[str] | None) -> str:
    """JSON.stringify(value, allow) where `allow` is an array replacer (property allow-list,
    which also fixes the key order of every object)."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "null"
        return js_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(js_json(v, allow) for v in value) + "]"
    if isinstance(value, dict):
        keys = allow if allow is not None else list(value.keys())
        parts = [f"{json.dumps(k, ensure_ascii=False)}:{js_json(value[k], allow)}" for k in keys if k in value]
        return "{" + ",".join(parts) + "}"
    raise TypeError(value)


def or_value_string(value: Any) -> str:
    if isinstance(value, dict):
        return js_json(value, sorted(value.keys()))
    if isinstance(value, (list, tuple)):
        return js_json(value, sorted(str(i) for i in range(len(value))))
    return js_string(value)


def lww_entry_hash(key: str, record: dict) -> int:
    return fnv1a(f"{key}:{ts_str(record['timestamp'])}")


def or_entry_hash(key: str, records: dict[str, dict]) -> int:
    parts = [f"key:{key}"]
    for tag in sorted(records):
        r = records[tag]
        s = f"{tag}:{or_value_string(r.get('value'))}:{ts_str(r['timestamp'])}"
        if "ttlMs" in r and r["ttlMs"] is not None:
            s += f":ttl={js_number(r['ttlMs'])}"
        parts.append(s)
    return fnv1a("|".join(parts))


# ---------------------------------------------------------------------------------------------
# Merkle tree (protocol.md §4.2)


class MerkleTree:
    DEPTH = 3

    def __init__(self) -> None:
        self.entries: dict[str, int] = {}

    @staticmethod
    def path_of(key: str) -> str:
        return f"{fnv1a(key):08x}"

    def update(self, key: str, entry_hash: int) -> None:
        self.entries[key] = entry_hash

    def remove(self, key: str) -> None:
        self.entries.pop(key, None)

    def _items(self, prefix: str) -> list[tuple[str, int]]:
        out = []
        for key, h in self.entries.items():
            p = self.path_of(key)
            if p.startswith(prefix):
                out.append((p, h))
        return out

    def _hash(self, path: str, items: list[tuple[str, int]]) -> int:
        if len(path) >= self.DEPTH:
            return combine(h for _, h in items)
        groups: dict[str, list] = {}
        for p, h in items:
            groups.setdefault(p[len(path)], []).append((p, h))
        return combine(self._hash(path + c, g) for c, g in groups.items())

    def root(self) -> int:
        return self._hash("", self._items(""))

    def node_hash(self, path: str) -> int:
        return self._hash(path, self._items(path))

    def buckets(self, path: str) -> dict[str, int]:
        """Child hashes of the node at `path` keyed by one hex char ({} for a leaf)."""
        if len(path) >= self.DEPTH:
            return {}
        groups: dict[str, list] = {}
        for p, h in self._items(path):
            groups.setdefault(p[len(path)], []).append((p, h))
        return {c: self._hash(path + c, g) for c, g in groups.items()}

    def keys_in_bucket(self, path: str) -> list[str]:
        if len(path) != self.DEPTH:
            return []
        return sorted(k for k in self.entries if self.path_of(k).startswith(path))


# ---------------------------------------------------------------------------------------------
# CRDT replicas (protocol.md §3)


class LWWMap:
    def __init__(self, name: str, hlc: HLC):
        self.name = name
        self.hlc = hlc
        self.records: dict[str, dict] = {}
        self.merkle = MerkleTree()

    def _store(self, key: str, record: dict) -> None:
        self.records[key] = record
        self.merkle.update(key, lww_entry_hash(key, record))

    def set(self, key: str, value: Any) -> dict:
        record = {"value": value, "timestamp": self.hlc.now()}
        self._store(key, record)
        return record

    def remove(self, key: str) -> dict:
        record = {"value": None, "timestamp": self.hlc.now()}
        self._store(key, record)
        return record

    def merge(self, key: str, record: dict) -> bool:
        record = dict(record)
        record["timestamp"] = norm_ts(record["timestamp"])
        if record.get("ttlMs") is None:
            record.pop("ttlMs", None)
        self.hlc.update(record["timestamp"])
        local = self.records.get(key)
        if local is not None and ts_key(record["timestamp"]) <= ts_key(local["timestamp"]):
            return False
        self._store(key, record)
        return True

    def get(self, key: str) -> Any:
        r = self.records.get(key)
        return None if r is None else r["value"]

    def live(self) -> dict[str, Any]:
        return {k: r["value"] for k, r in self.records.items() if r["value"] is not None}

    def snapshot(self) -> dict[str, tuple]:
        """key -> (value, timestamp tuple), tombstones included."""
        return {k: (r["value"], ts_key(r["timestamp"])) for k, r in self.records.items()}

    def root(self) -> int:
        return self.merkle.root()


class ORMap:
    def __init__(self, name: str, hlc: HLC):
        self.name = name
        self.hlc = hlc
        self.items: dict[str, dict[str, dict]] = {}
        self.tombstones: set[str] = set()
        self.merkle = MerkleTree()

    def _refresh(self, key: str) -> None:
        records = self.items.get(key)
        if not records:
            self.items.pop(key, None)
            self.merkle.remove(key)
        else:
            self.merkle.update(key, or_entry_hash(key, records))

    def add(self, key: str, value: Any) -> dict:
        t = self.hlc.now()
        record = {"value": value, "timestamp": t, "tag": ts_str(t)}
        self.items.setdefault(key, {})[record["tag"]] = record
        self._refresh(key)
        return record

    def remove(self, key: str, value: Any) -> list[str]:
        tags = [tag for tag, r in self.items.get(key, {}).items() if r["value"] == value]
        for tag in tags:
            self.tombstones.add(tag)
            del self.items[key][tag]
        self._refresh(key)
        return tags

    def apply(self, key: str, record: dict) -> bool:
        record = self._norm(record)
        self.hlc.update(record["timestamp"])
        if record["tag"] in self.tombstones:
            return False
        self.items.setdefault(key, {})[record["tag"]] = record
        self._refresh(key)
        return True

    def apply_tombstone(self, tag: str) -> None:
        self.tombstones.add(tag)
        for key, records in list(self.items.items()):
            if tag in records:
                del records[tag]
                self._refresh(key)
                break

    def merge_key(self, key: str, records: list[dict], tombstones: list[str]) -> tuple[int, int]:
        added = updated = 0
        self.tombstones.update(tombstones)
        local = self.items.setdefault(key, {})
        for tag in [t for t in local if t in self.tombstones]:
            del local[tag]
        for record in records:
            record = self._norm(record)
            self.hlc.update(record["timestamp"])
            if record["tag"] in self.tombstones:
                continue
            mine = local.get(record["tag"])
            if mine is None:
                local[record["tag"]] = record
                added += 1
            elif ts_key(record["timestamp"]) > ts_key(mine["timestamp"]):
                local[record["tag"]] = record
                updated += 1
        self._refresh(key)
        return added, updated

    @staticmethod
    def _norm(record: dict) -> dict:
        record = dict(record)
        record["timestamp"] = norm_ts(record["timestamp"])
        if record.get("ttlMs") is None:
            record.pop("ttlMs", None)
        return record

    def values(self, key: str) -> list:
        return [r["value"] for _, r in sorted(self.items.get(key, {}).items())]

    def tags(self, key: str) -> set[str]:
        return set(self.items.get(key, {}))

    def entry(self, key: str) -> dict:
        """An ORMapEntry as the client pushes it: its records and all its tombstones."""
        return {"key": key, "records": list(self.items.get(key, {}).values()), "tombstones": sorted(self.tombstones)}

    def root(self) -> int:
        return self.merkle.root()


# ---------------------------------------------------------------------------------------------
# Op builders (protocol.md §6.5.2, as the [H] client's op log entries)


def put_op(op_id: int | str, map_name: str, key: str, record: dict) -> dict:
    return {"id": str(op_id), "mapName": map_name, "opType": "PUT", "key": key, "record": record,
            "timestamp": record["timestamp"], "synced": False}


def remove_op(op_id: int | str, map_name: str, key: str, record: dict) -> dict:
    return {"id": str(op_id), "mapName": map_name, "opType": "REMOVE", "key": key, "record": record,
            "timestamp": record["timestamp"], "synced": False}


def or_add_op(op_id: int | str, map_name: str, key: str, or_record: dict) -> dict:
    return {"id": str(op_id), "mapName": map_name, "opType": "OR_ADD", "key": key, "orRecord": or_record,
            "timestamp": or_record["timestamp"], "synced": False}


def or_remove_op(op_id: int | str, map_name: str, key: str, tag: str, timestamp: dict) -> dict:
    return {"id": str(op_id), "mapName": map_name, "opType": "OR_REMOVE", "key": key, "orTag": tag,
            "timestamp": timestamp, "synced": False}


def op_batch(ops: list[dict], write_concern: str | None = None) -> dict:
    payload: dict = {"ops": ops}
    if write_concern:
        payload["writeConcern"] = write_concern
    return {"type": "OP_BATCH", "payload": payload}


def new_id() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------------------------
# WebSocket connection


def summarize(message: Any, limit: int = 300) -> str:
    text = json.dumps(message, default=repr, ensure_ascii=False) if not isinstance(message, str) else message
    return text if len(text) <= limit else text[:limit] + "…"


_ping_sequence = itertools.count(1)


class Connection:
    """One WebSocket to the server. Received messages not yet consumed are buffered, so
    `wait_for` can pick the one it wants out of order."""

    def __init__(self, url: str, *, open_timeout: float = 10):
        self.url = url
        self.ws = _ws_connect(
            url, compression=None, proxy=None, max_size=None, max_queue=None,
            ping_interval=None, open_timeout=open_timeout, close_timeout=5)
        self.buffer: list[dict] = []
        self.history: list[str] = []  # summaries of every frame received, for failure messages
        self.closed: ConnectionClosed | None = None

    # -- sending
    def send(self, message: dict) -> None:
        self.ws.send(pack(message))

    def send_raw(self, data: bytes | str) -> None:
        self.ws.send(data)

    # -- receiving
    def _recv_one(self, timeout: float) -> dict:
        data = self.ws.recv(timeout=max(timeout, 0))
        if isinstance(data, str):
            message = json.loads(data)
            self.history.append("text:" + summarize(message))
        else:
            message = unpack(data)
            self.history.append(summarize(message))
        return message

    def recent(self, n: int = 12) -> str:
        return "\n    ".join(self.history[-n:]) or "(nothing)"

    def recv(self, timeout: float = DEFAULT_TIMEOUT) -> dict:
        if self.buffer:
            return self.buffer.pop(0)
        try:
            return self._recv_one(timeout)
        except TimeoutError:
            raise AssertionError(f"no message within {timeout}s on {self.url}") from None

    @staticmethod
    def _matches(message: Any, types: tuple, pred: Callable | None) -> bool:
        if not isinstance(message, dict) or message.get("type") not in types:
            return False
        if pred is None:
            return True
        try:
            return bool(pred(message))
        except (KeyError, TypeError, AttributeError, IndexError):
            return False

    def wait_for(self, types: str | Iterable[str], pred: Callable | None = None,
                 timeout: float = DEFAULT_TIMEOUT, what: str = "") -> dict:
        types = (types,) if isinstance(types, str) else tuple(types)
        for i, m in enumerate(self.buffer):
            if self._matches(m, types, pred):
                return self.buffer.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no {'/'.join(types)}{' (' + what + ')' if what else ''} within {timeout}s on {self.url}; "
                    f"last frames received:\n    {self.recent()}")
            try:
                m = self._recv_one(remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as e:
                self.closed = e
                raise AssertionError(
                    f"connection closed (code {self.close_code()}, reason {self.close_reason()!r}) while waiting for "
                    f"{'/'.join(types)}{' (' + what + ')' if what else ''}; last frames:\n    {self.recent()}") from None
            if self._matches(m, types, pred):
                return m
            self.buffer.append(m)

    def collect(self, within: float) -> list[dict]:
        """Everything received within `within` seconds (plus the buffer); buffers nothing."""
        out, self.buffer = self.buffer, []
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                out.append(self._recv_one(remaining))
            except TimeoutError:
                return out
            except ConnectionClosed as e:
                self.closed = e
                return out

    def expect_none(self, types: str | Iterable[str], pred: Callable | None = None, within: float = 1.0,
                    what: str = "") -> None:
        """Fails if a matching message arrives within `within` seconds; others stay buffered."""
        types = (types,) if isinstance(types, str) else tuple(types)
        for m in self.buffer:
            assert not self._matches(m, types, pred), f"unexpected {summarize(m)} {what}"
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                m = self._recv_one(remaining)
            except TimeoutError:
                return
            except ConnectionClosed as e:
                self.closed = e
                return
            assert not self._matches(m, types, pred), f"unexpected {summarize(m)} {what}"
            self.buffer.append(m)

    def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[int | None, str | None]:
        """Reads (buffering) until the server closes; returns (close code, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the server did not close {self.url} within {timeout}s; last frames:\n    {self.recent()}")
            try:
                self.buffer.append(self._recv_one(remaining))
            except TimeoutError:
                continue
            except ConnectionClosed as e:
                self.closed = e
                return self.close_code(), self.close_reason()

    def close_code(self) -> int | None:
        if self.closed is not None and self.closed.rcvd is not None:
            return self.closed.rcvd.code
        return self.ws.close_code

    def close_reason(self) -> str | None:
        if self.closed is not None and self.closed.rcvd is not None:
            return self.closed.rcvd.reason
        return self.ws.close_reason

    def is_open(self) -> bool:
        return self.closed is None and self.ws.protocol.state.name == "OPEN"

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass

    # -- protocol helpers
    def auth(self, token: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
        self.send({"type": "AUTH", "token": token})
        return self.wait_for(("AUTH_ACK", "AUTH_FAIL"), timeout=timeout)

    def ping(self, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """PING with a unique timestamp; returns its PONG. Also a barrier: the server handles a
        connection's frames in order, so everything sent before was processed."""
        stamp = float(int(time.time() * 1000) + next(_ping_sequence))  # unique, and a float64 like Date.now()
        self.send({"type": "PING", "timestamp": stamp})
        return self.wait_for("PONG", lambda m: m["timestamp"] == stamp, timeout=timeout, what="answer to our PING")

    barrier = ping

    def write(self, ops: list[dict], write_concern: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Sends one OP_BATCH and returns the OP_ACK covering its last op."""
        self.send(op_batch(ops, write_concern))
        last = ops[-1]["id"]
        return self.wait_for("OP_ACK", lambda m: m["payload"]["lastId"] == last, timeout=timeout,
                             what=f"ack of op {last}")

    def query(self, map_name: str, query: dict, fields: list[str] | None = None,
              query_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """QUERY_SUB; returns the QUERY_RESP payload (with its queryId)."""
        qid = query_id or new_id()
        payload: dict = {"queryId": qid, "mapName": map_name, "query": query}
        if fields is not None:
            payload["fields"] = fields
        self.send({"type": "QUERY_SUB", "payload": payload})
        resp = self.wait_for("QUERY_RESP", lambda m: m["payload"]["queryId"] == qid, timeout=timeout,
                             what=f"query {summarize(query, 120)}")
        return resp["payload"]

    def unsubscribe(self, query_id: str) -> None:
        self.send({"type": "QUERY_UNSUB", "payload": {"queryId": query_id}})


def connect(url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Connection:
    """Opens a connection and, given a token, authenticates it like the TS client does (AUTH on
    open, without waiting for AUTH_REQUIRED)."""
    conn = Connection(url)
    if token is not None:
        reply = conn.auth(token, timeout=timeout)
        assert reply["type"] == "AUTH_ACK", f"authentication failed: {summarize(reply)}"
    return conn


# ---------------------------------------------------------------------------------------------
# A replica that behaves like the TS client's SyncEngine


class Replica:
    """Local LWW and OR maps, an op log of unacknowledged ops, and the client's sync flows."""

    def __init__(self, node_id: str, url: str, token: str):
        self.node_id = node_id
        self.url = url
        self.token = token
        self.hlc = HLC(node_id)
        self.lww_maps: dict[str, LWWMap] = {}
        self.or_maps: dict[str, ORMap] = {}
        self.pending: list[dict] = []
        self.next_op = 1
        self.conn: Connection | None = None
        self.sync_log: list[str] = []  # frames sent and received during sync walks

    # -- maps
    def lww(self, name: str) -> LWWMap:
        return self.lww_maps.setdefault(name, LWWMap(name, self.hlc))

    def ormap(self, name: str) -> ORMap:
        return self.or_maps.setdefault(name, ORMap(name, self.hlc))

    def _op_id(self) -> int:
        n = self.next_op
        self.next_op += 1
        return n

    def set(self, map_name: str, key: str, value: Any) -> dict:
        record = self.lww(map_name).set(key, value)
        self.pending.append(put_op(self._op_id(), map_name, key, record))
        return record

    def remove(self, map_name: str, key: str) -> dict:
        record = self.lww(map_name).remove(key)
        self.pending.append(remove_op(self._op_id(), map_name, key, record))
        return record

    def or_add(self, map_name: str, key: str, value: Any) -> dict:
        record = self.ormap(map_name).add(key, value)
        self.pending.append(or_add_op(self._op_id(), map_name, key, record))
        return record

    def or_remove(self, map_name: str, key: str, value: Any) -> list[str]:
        tags = self.ormap(map_name).remove(key, value)
        stamp = self.hlc.now()
        for tag in tags:
            self.pending.append(or_remove_op(self._op_id(), map_name, key, tag, stamp))
        return tags

    # -- connection
    def connect(self) -> Connection:
        self.conn = connect(self.url, self.token)
        return self.conn

    def disconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def push(self, timeout: float = DEFAULT_TIMEOUT) -> dict | None:
        """Sends every pending op as one OP_BATCH (as syncPendingOperations does) and drops the
        ops the OP_ACK covers. Returns the OP_ACK payload."""
        if not self.pending:
            return None
        assert self.conn is not None
        ack = self.conn.write(list(self.pending), timeout=timeout)["payload"]
        last = int(ack["lastId"])
        self.pending = [op for op in self.pending if int(op["id"]) > last]
        return ack

    def handle(self, message: dict) -> None:
        """Applies a server message the way SyncEngine does."""
        top = message.get("timestamp")
        if isinstance(top, dict) and {"millis", "counter", "nodeId"} <= top.keys():
            self.hlc.update(top)
        if message.get("type") == "SERVER_EVENT":
            self._apply_event(message["payload"])
        elif message.get("type") == "SERVER_BATCH_EVENT":
            for event in message["payload"]["events"]:
                self._apply_event(event)

    def _apply_event(self, event: dict) -> None:
        name = event["mapName"]
        if name in self.lww_maps and event.get("record") is not None:
            self.lww_maps[name].merge(event["key"], event["record"])
        elif name in self.or_maps:
            if event.get("eventType") == "OR_ADD" and event.get("orRecord"):
                self.or_maps[name].apply(event["key"], event["orRecord"])
            elif event.get("eventType") == "OR_REMOVE" and event.get("orTag"):
                self.or_maps[name].apply_tombstone(event["orTag"])

    def drain_events(self, within: float = 0.3) -> list[dict]:
        assert self.conn is not None
        messages = self.conn.collect(within)
        for m in messages:
            self.handle(m)
        return messages

    # -- LWW Merkle catch-up (MerkleSyncHandler)
    def merkle_sync(self, map_name: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """SYNC_INIT, then the bucket walk down to leaves, merging leaf records. Returns
        {serverRoot, requests, leaves, merged}."""
        conn = self.conn
        assert conn is not None
        local = self.lww(map_name)
        conn.send({"type": "SYNC_INIT", "mapName": map_name, "lastSyncTimestamp": 0})
        self.sync_log.append(f"-> SYNC_INIT {map_name}")
        root = conn.wait_for("SYNC_RESP_ROOT", lambda m: m["payload"]["mapName"] == map_name, timeout=timeout)["payload"]
        self.sync_log.append(f"<- SYNC_RESP_ROOT {root['rootHash']}")
        self.hlc.update(root["timestamp"])
        stats = {"serverRoot": whole(root["rootHash"]), "requests": 0, "leaves": 0, "merged": 0}
        if whole(root["rootHash"]) == local.root():
            return stats
        outstanding = {""}
        self._request_bucket("MERKLE_REQ_BUCKET", map_name, "")
        stats["requests"] += 1
        while outstanding:
            m = conn.wait_for(("SYNC_RESP_BUCKETS", "SYNC_RESP_LEAF"),
                              lambda m: m["payload"]["mapName"] == map_name and m["payload"]["path"] in outstanding,
                              timeout=timeout, what=f"answers for paths {sorted(outstanding)[:5]}")
            p = m["payload"]
            outstanding.discard(p["path"])
            if m["type"] == "SYNC_RESP_BUCKETS":
                self.sync_log.append(f"<- SYNC_RESP_BUCKETS {p['path']!r} {len(p['buckets'])}")
                mine = local.merkle.buckets(p["path"])
                for char, h in sorted(p["buckets"].items()):
                    if whole(h) != mine.get(char, 0):
                        child = p["path"] + char
                        outstanding.add(child)
                        self._request_bucket("MERKLE_REQ_BUCKET", map_name, child)
                        stats["requests"] += 1
            else:
                self.sync_log.append(f"<- SYNC_RESP_LEAF {p['path']!r} {len(p['records'])}")
                stats["leaves"] += 1
                for item in p["records"]:
                    if local.merge(item["key"], item["record"]):
                        stats["merged"] += 1
        return stats

    def _request_bucket(self, kind: str, map_name: str, path: str) -> None:
        assert self.conn is not None
        self.conn.send({"type": kind, "payload": {"mapName": map_name, "path": path}})
        self.sync_log.append(f"-> {kind} {path!r}")

    # -- OR-Map Merkle catch-up (ORMapSyncHandler)
    def ormap_sync(self, map_name: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
        conn = self.conn
        assert conn is not None
        local = self.ormap(map_name)
        conn.send({"type": "ORMAP_SYNC_INIT", "mapName": map_name, "rootHash": local.root(),
                   "bucketHashes": local.merkle.buckets(""), "lastSyncTimestamp": 0})
        self.sync_log.append(f"-> ORMAP_SYNC_INIT {map_name}")
        root = conn.wait_for("ORMAP_SYNC_RESP_ROOT", lambda m: m["payload"]["mapName"] == map_name, timeout=timeout)["payload"]
        self.sync_log.append(f"<- ORMAP_SYNC_RESP_ROOT {root['rootHash']}")
        self.hlc.update(root["timestamp"])
        stats = {"serverRoot": whole(root["rootHash"]), "requests": 0, "leaves": 0, "added": 0, "updated": 0,
                 "pushed": 0, "entries": []}
        if whole(root["rootHash"]) == local.root():
            return stats
        outstanding = {""}
        self._request_bucket("ORMAP_MERKLE_REQ_BUCKET", map_name, "")
        stats["requests"] += 1
        while outstanding:
            m = conn.wait_for(("ORMAP_SYNC_RESP_BUCKETS", "ORMAP_SYNC_RESP_LEAF"),
                              lambda m: m["payload"]["mapName"] == map_name and m["payload"]["path"] in outstanding,
                              timeout=timeout, what=f"answers for paths {sorted(outstanding)[:5]}")
            p = m["payload"]
            outstanding.discard(p["path"])
            if m["type"] == "ORMAP_SYNC_RESP_BUCKETS":
                self.sync_log.append(f"<- ORMAP_SYNC_RESP_BUCKETS {p['path']!r} {len(p['buckets'])}")
                remote = {c: whole(h) for c, h in p["buckets"].items()}
                mine = local.merkle.buckets(p["path"])
                for char, h in sorted(remote.items()):
                    if h != mine.get(char, 0):
                        outstanding.add(p["path"] + char)
                        self._request_bucket("ORMAP_MERKLE_REQ_BUCKET", map_name, p["path"] + char)
                        stats["requests"] += 1
                for char, h in sorted(mine.items()):
                    if h != 0 and remote.get(char, 0) == 0:
                        keys = local.merkle.keys_in_bucket(p["path"] + char)
                        if keys:
                            self._push_diff(map_name, keys)
                            stats["pushed"] += len(keys)
            else:
                self.sync_log.append(f"<- ORMAP_SYNC_RESP_LEAF {p['path']!r} {len(p['entries'])}")
                stats["leaves"] += 1
                keys = []
                for entry in p["entries"]:
                    stats["entries"].append(entry)
                    a, u = local.merge_key(entry["key"], entry.get("records") or [], entry.get("tombstones") or [])
                    stats["added"] += a
                    stats["updated"] += u
                    keys.append(entry["key"])
                if keys:
                    self._push_diff(map_name, keys)
                    stats["pushed"] += len(keys)
        return stats

    def _push_diff(self, map_name: str, keys: list[str]) -> None:
        assert self.conn is not None
        local = self.ormap(map_name)
        self.conn.send({"type": "ORMAP_PUSH_DIFF", "payload": {"mapName": map_name, "entries": [local.entry(k) for k in keys]}})
        self.sync_log.append(f"-> ORMAP_PUSH_DIFF {keys}")


# ---------------------------------------------------------------------------------------------
# HTTP


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HTTPResult:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def decoded(self) -> Any:
        if "json" in self.content_type:
            return json.loads(self.body)
        return unpack(self.body)

    def __repr__(self) -> str:
        return f"HTTP {self.status} {self.content_type} {self.body[:300]!r}"


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 10) -> HTTPResult:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _opener.open(request, timeout=timeout) as response:
            return HTTPResult(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as e:
        return HTTPResult(e.code, dict(e.headers), e.read())


def http_sync(base_url: str, token: str | None, request: dict, *, as_json: bool = False,
              timeout: float = 10) -> HTTPResult:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if as_json:
        headers["Content-Type"] = "application/json"
        body = json.dumps(request).encode()
    else:
        headers["Content-Type"] = "application/x-msgpack"
        body = pack(request)
    return http("POST", base_url + "/sync", body, headers, timeout=timeout)
