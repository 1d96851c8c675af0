"""Issue 5, live control: deleting a tenant purges its records from the data plane's memory and
storage. Tenants A and B write the same map names and keys; A is deleted through the control
plane; within 5 s A's rows are gone from the records table (A's tokens are refused, so storage
is where to look), B still reads its own values, and a restart of the data plane brings none of
A's rows back. A tenant deleted while the data plane is down is purged when it starts.

Two set-ups with real processes: `topgun control-plane` + `topgun data-plane` on PostgreSQL
(the records table is queried with psql), and `topgun dev --storage sqlite` (one process; the
records table is read with Python's sqlite3)."""
import base64
import pathlib
import sqlite3
import subprocess
import sys
import time
import uuid

import jwt
import pytest

from conftest import Process, _pg_bin

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from topgun_client import HLC, Connection, or_add_op, put_op, ts_str  # noqa: E402

DEADLINE = 5.0
MAP = "shared-map"
OR_MAP = "shared-set"
KEY = "k"


class PostgresPlane:
    """A data plane of its own on the PostgreSQL control plane's database (restartable)."""

    def __init__(self, topgun_bin, cp, workdir):
        self.cp = cp
        key_file = pathlib.Path(cp.process.workdir) / "master.key"
        self.args = [topgun_bin, "data-plane", "--json", "--port", "0", "--postgres-url", cp.postgres_url,
                     "--master-key-file", str(key_file), "--node-id", "purge-" + uuid.uuid4().hex[:8]]
        self.workdir = workdir
        self.process = Process(self.args, workdir).start()

    @property
    def api(self):
        return self.cp.api

    @property
    def url(self):
        return self.process.info["dataPlaneURL"]

    def restart(self):
        self.process.stop()
        self.process = Process(self.args, self.workdir).start()

    def stop(self):
        self.process.stop()

    def rows(self, tenant_id: str) -> int:
        result = subprocess.run(
            [_pg_bin("psql"), self.cp.postgres_url, "-v", "ON_ERROR_STOP=1", "-qtA", "-c",
             f"SELECT count(*) FROM records WHERE tenant_id = '{tenant_id}'"],
            capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr.decode()
        return int(result.stdout.decode().strip())

    def delete_while_down(self, tenant_id: str):
        """Stops the data plane, deletes the tenant through the control plane, starts it again."""
        self.process.stop()
        assert self.api.delete(f"/v1/tenants/{tenant_id}").status == 200
        self.process = Process(self.args, self.workdir).start()


class SQLitePlane:
    """`topgun dev --storage sqlite` on a data directory of its own (control plane inside)."""

    def __init__(self, topgun_bin, workdir):
        from conftest import API
        self.api_class = API
        self.data_dir = workdir / "data"
        self.args = [topgun_bin, "dev", "--json", "--port", "0", "--control-plane-port", "0",
                     "--data-dir", str(self.data_dir), "--storage", "sqlite"]
        self.workdir = workdir
        self.start()

    def start(self):
        self.process = Process(self.args, self.workdir, env={"TOPGUN_ADMIN_RATE_LIMIT": "100000"}).start()
        self.api = self.api_class(self.process.info["controlPlaneURL"], self.process.info["adminToken"])

    @property
    def url(self):
        return self.process.info["dataPlaneURL"]

    def restart(self):
        self.process.stop()
        self.start()

    def stop(self):
        self.process.stop()

    def _db(self):
        return sqlite3.connect(str(self.data_dir / "dev.sqlite"), timeout=10)

    def rows(self, tenant_id: str) -> int:
        with self._db() as db:
            return db.execute("SELECT count(*) FROM records WHERE tenant_id = ?", (tenant_id,)).fetchone()[0]

    def delete_while_down(self, tenant_id: str):
        """The control plane lives in the same process, so the deletion is made in the metadata
        tables directly while it is down, as a control plane elsewhere would have made it."""
        self.process.stop()
        now = int(time.time() * 1_000_000)
        with self._db() as db:
            db.execute("UPDATE tenants SET status = 'deleted', deleted_at = ?, updated_at = ? WHERE id = ?",
                       (now, now, tenant_id))
        self.start()


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def plane(request, topgun_bin, tmp_path_factory):
    if request.param == "postgres":
        cp = request.getfixturevalue("postgres_cp")
        made = PostgresPlane(topgun_bin, cp, tmp_path_factory.mktemp("purge-dp-postgres"))
    else:
        made = SQLitePlane(topgun_bin, tmp_path_factory.mktemp("purge-dev-sqlite"))
    yield made
    made.stop()


def tenant_with_token(api):
    tenant = api.create_tenant()
    key = api.post(f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"}).json
    secret = base64.urlsafe_b64decode(key["secret"] + "=")
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "iat": now, "exp": now + 600}, secret, algorithm="HS256", headers={"kid": key["kid"]})
    return tenant["id"], token


def connected(url, token):
    conn = Connection(url)
    reply = conn.auth(token)
    assert reply["type"] == "AUTH_ACK", reply
    return conn


def write_shared(url, token, value):
    """The same map names and key in every tenant: an LWW record and an OR-Map entry, persisted."""
    conn = connected(url, token)
    try:
        hlc = HLC("writer-" + uuid.uuid4().hex[:6])
        t = hlc.now()
        ops = [put_op(1, MAP, KEY, {"value": value, "timestamp": hlc.now()}),
               or_add_op(2, OR_MAP, KEY, {"value": value, "timestamp": t, "tag": ts_str(t)})]
        ack = conn.write(ops, write_concern="PERSISTED")["payload"]
        assert ack.get("achievedLevel") == "PERSISTED", ack
        assert all(r["success"] for r in ack["results"]), ack
    finally:
        conn.close()


def read_value(url, token):
    conn = connected(url, token)
    try:
        results = conn.query(MAP, {})["results"]
        return {r["key"]: r["value"] for r in results}.get(KEY)
    finally:
        conn.close()


def rows_gone_within(plane, tenant_id, seconds=DEADLINE):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if plane.rows(tenant_id) == 0:
            return True
        time.sleep(0.05)
    return plane.rows(tenant_id) == 0


def test_deleting_a_tenant_purges_its_rows_and_leaves_the_other_tenant(plane):
    a, a_token = tenant_with_token(plane.api)
    b, b_token = tenant_with_token(plane.api)
    write_shared(plane.url, a_token, "A's secret")
    write_shared(plane.url, b_token, "B's value")
    assert plane.rows(a) == 2 and plane.rows(b) == 2
    session = connected(plane.url, a_token)
    try:
        assert plane.api.delete(f"/v1/tenants/{a}").status == 200
        code, reason = session.wait_closed(timeout=DEADLINE)
        assert code == 1008 and "deleted" in (reason or "")
    finally:
        session.close()
    assert rows_gone_within(plane, a), f"tenant A still has {plane.rows(a)} rows {DEADLINE}s after its deletion"
    assert plane.rows(b) == 2
    assert read_value(plane.url, b_token) == "B's value"

    # A restart loads what storage holds: nothing of A, all of B.
    plane.restart()
    assert plane.rows(a) == 0
    assert read_value(plane.url, b_token) == "B's value"
    assert Connection(plane.url).auth(a_token)["type"] == "AUTH_FAIL"


def test_a_tenant_deleted_while_the_data_plane_is_down_is_purged_at_start(plane):
    c, c_token = tenant_with_token(plane.api)
    b, b_token = tenant_with_token(plane.api)
    write_shared(plane.url, c_token, "C's secret")
    write_shared(plane.url, b_token, "B's value")
    assert plane.rows(c) == 2
    plane.delete_while_down(c)
    # The rows were left out of memory at load and deleted from storage before serving.
    assert plane.rows(c) == 0
    assert plane.rows(b) == 2
    assert read_value(plane.url, b_token) == "B's value"
