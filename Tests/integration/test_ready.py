"""Issue 6, point 5: `/ready` tells the truth about the database. A PostgreSQL server of this
test's own is stopped while nothing is pending and started again: the node reports not ready
within its readiness deadline (1 s here, checked with twice that as slack) and ready again
after the recovery, and a write acknowledged after the recovery is stored."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import TopGunProcess, _pg_bin
from topgun_client import HLC, connect, http, put_op

PORT = int(os.environ.get("TOPGUN_READY_PG_PORT", "55461"))


class OwnPostgres:
    """A throw-away PostgreSQL cluster that can be stopped and started without losing its data
    (`ops/postgres start` would make a fresh one)."""

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="topgun-ready-pg-"))
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.run(_pg_bin("initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self.start()
        subprocess.run([_pg_bin("psql"), "-q", "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", "-c", "CREATE DATABASE ready"],
                       check=True, capture_output=True, timeout=60)
        self.url = f"postgres://postgres@127.0.0.1:{PORT}/ready"

    def run(self, *args: str) -> None:
        result = subprocess.run([*self.as_pg, *args], capture_output=True, timeout=120, cwd="/")
        assert result.returncode == 0, f"{args[0]} failed: {result.stderr.decode()}"

    def start(self) -> None:
        self.run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start",
                 "-o", f"-h 127.0.0.1 -p {PORT} -k {self.dir} -c fsync=off")

    def stop(self) -> None:
        # Immediate: connections drop at once, as when the server crashes.
        self.run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        subprocess.run([*self.as_pg, _pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"],
                       capture_output=True, cwd="/")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_postgres():
    server = OwnPostgres()
    yield server
    server.remove()


def ready_status(node) -> int:
    return http("GET", node.http_url + "/ready", timeout=5).status


def seconds_until(node, status: int, limit: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if ready_status(node) == status:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"/ready did not answer {status} within {limit}s")


def test_ready_reports_a_database_outage_within_its_deadline_and_the_recovery(topgun_bin, tmp_path, own_postgres):
    deadline = 1.0
    node = TopGunProcess(topgun_bin, "postgres", tmp_path, postgres_url=own_postgres.url,
                         extra_args=("--readiness-deadline", str(deadline)))
    node.start()
    try:
        assert ready_status(node) == 200
        own_postgres.stop()
        took = seconds_until(node, 503, 2 * deadline)
        assert took <= 2 * deadline
        body = http("GET", node.http_url + "/ready").body.decode()
        assert "application/problem+json" in http("GET", node.http_url + "/ready").headers.get("content-type", ""), body
        own_postgres.start()
        # Recovery: the pool reconnects on the next probe.
        seconds_until(node, 200, 2 * deadline + 3)
        conn = connect(node.ws_url, node.token)
        try:
            ack = conn.write([put_op(1, "after-outage", "k", {"value": 1, "timestamp": HLC("r").now()})])
            assert ack["payload"]["results"][0]["success"] is True
        finally:
            conn.close()
    finally:
        node.stop()
