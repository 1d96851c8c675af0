"""Fixtures that run the real `topgun` binary as a process on a loopback port.

- `dev_server`: `topgun dev --storage sqlite` on a temp data dir, shared by the session.
- `memory_server`: `topgun dev --storage memory`, shared by the session.
- `pg_server`: `topgun data-plane --dev-tenant` on PostgreSQL (a fresh database in the server
  started by `ops/postgres start` unless TOPGUN_TEST_POSTGRES_URL names one), shared by the session.
- `server`: parameterized over the three, for the core scenarios.
- `TopGunProcess`: start/kill/restart one yourself (durability tests).

TOPGUN_BIN names the executable (as for Tests/interop); without it, .build/debug/topgun is used.
"""
from __future__ import annotations

import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60


def pytest_collection_modifyitems(items):
    # A hung test must not hang the suite: every test gets a hard limit.
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(120))


@pytest.fixture(scope="session")
def topgun_bin() -> str:
    path = os.environ.get("TOPGUN_BIN") or str(ROOT / ".build" / "debug" / "topgun")
    assert os.access(path, os.X_OK), "TOPGUN_BIN must name the built topgun executable"
    return path


class TopGunProcess:
    """One `topgun dev` or `topgun data-plane` process. `start()` waits for its JSON line."""

    def __init__(self, binary: str, kind: str, workdir: pathlib.Path, *, postgres_url: str | None = None,
                 extra_args: tuple[str, ...] = ()):
        assert kind in ("dev-sqlite", "dev-memory", "postgres")
        self.extra_args = list(extra_args)
        self.binary = binary
        self.kind = kind
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.postgres_url = postgres_url
        self.master_key_file = workdir / "master.key"
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.starts = 0
        self.stderr_path = workdir / "stderr.log"
        self.should_run = False  # started and not deliberately stopped or killed
        self.soft_open_files: int | None = None  # the soft RLIMIT_NOFILE the process starts with

    # -- what tests use
    @property
    def ws_url(self) -> str:
        return self.info["dataPlaneURL"]

    @property
    def http_url(self) -> str:
        return self.info["httpURL"]

    @property
    def token(self) -> str:
        return self.info["appToken"]

    @property
    def tenant(self) -> str:
        return self.info["tenant"]

    @property
    def key_id(self) -> str:
        return self.info["keyId"]

    def url(self, path: str) -> str:
        """A WebSocket URL on this node with another path (`/`, `/t/<tenant>/ws`)."""
        parsed = urllib.parse.urlparse(self.ws_url)
        return f"{parsed.scheme}://{parsed.netloc}{path}"

    def command(self) -> list[str]:
        if self.kind == "postgres":
            return [self.binary, "data-plane", "--postgres-url", self.postgres_url, "--master-key-file",
                    str(self.master_key_file), "--port", "0", "--json", "--dev-tenant", "--node-id", "pg-node"] + self.extra_args
        storage = "sqlite" if self.kind == "dev-sqlite" else "memory"
        return [self.binary, "dev", "--json", "--port", "0", "--data-dir", str(self.data_dir), "--storage", storage] + self.extra_args

    def start(self) -> "TopGunProcess":
        self.starts += 1
        stderr = open(self.stderr_path, "ab")
        stderr.write(f"\n===== start {self.starts}: {' '.join(self.command())}\n".encode())
        stderr.flush()
        soft = self.soft_open_files

        def lower_open_files():
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                                     cwd=self.workdir, preexec_fn=lower_open_files if soft else None)
        stderr.close()
        lines: list[bytes] = []
        proc = self.proc

        def read_stdout():
            for line in proc.stdout:
                lines.append(line)

        threading.Thread(target=read_stdout, daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not lines:
            if proc.poll() is not None:
                raise AssertionError(f"{self.kind} server exited with {proc.returncode} before it was ready:\n{self.stderr_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{self.kind} server printed no JSON line within {READY_TIMEOUT}s:\n{self.stderr_tail()}")
            time.sleep(0.02)
        try:
            self.info = json.loads(lines[0])
        except ValueError:
            self.kill()
            raise AssertionError(f"{self.kind} server's first stdout line is not JSON: {lines[0]!r}") from None
        for field in ("dataPlaneURL", "httpURL", "tenant", "keyId", "appToken"):
            assert field in self.info, f"the ready line lacks {field}: {self.info}"
        self.should_run = True
        return self

    def kill(self) -> None:
        """SIGKILL, no goodbye."""
        self.should_run = False
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit status."""
        self.should_run = False
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no stderr)"
        return "\n".join(text[-lines:])

    def mint(self, sub: str, ttl: int | None = None, roles: str | None = None) -> str:
        """`topgun token` for this node's tenant and key."""
        args = [self.binary, "token", "--tenant", self.tenant, "--key", self.key_id, "--sub", sub]
        if self.kind == "postgres":
            args += ["--postgres-url", self.postgres_url, "--master-key-file", str(self.master_key_file)]
        else:
            args += ["--data-dir", str(self.data_dir)]
        if ttl is not None:
            args += ["--ttl", str(ttl)]
        if roles:
            args += ["--roles", roles]
        result = subprocess.run(args, capture_output=True, timeout=60, cwd=self.workdir)
        assert result.returncode == 0, f"topgun token failed: {result.stderr.decode()}"
        return result.stdout.decode().strip()


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _pg_bin(name: str) -> str:
    found = sorted(pathlib.Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: [int(x) if x.isdigit() else x for x in p.parts[-3].split(".")])
    return str(found[-1]) if found else (shutil.which(name) or name)


@pytest.fixture(scope="session")
def postgres_base_url():
    """The URL of a running PostgreSQL: TOPGUN_TEST_POSTGRES_URL, or one `ops/postgres start` starts
    (and that this session then stops)."""
    url = os.environ.get("TOPGUN_TEST_POSTGRES_URL")
    started = False
    if not url:
        port = os.environ.get("TOPGUN_PG_PORT", "55432")
        running = subprocess.run([_pg_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", port], capture_output=True).returncode == 0
        result = subprocess.run([str(ROOT / "ops" / "postgres"), "start"], capture_output=True, timeout=600)
        assert result.returncode == 0, f"ops/postgres start failed:\n{result.stderr.decode()}"
        url = result.stdout.decode().strip().splitlines()[-1]
        started = not running  # stop it at the end only if this session started it
    yield url
    if started:
        subprocess.run([str(ROOT / "ops" / "postgres"), "stop"], capture_output=True, timeout=120)


def with_database(url: str, name: str) -> str:
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.urlunparse(parsed._replace(path="/" + name))


@pytest.fixture(scope="session")
def postgres_database(postgres_base_url):
    """A factory of fresh databases in that server; they are dropped at the end."""
    made: list[str] = []

    def make() -> str:
        name = f"topgun_it_{uuid.uuid4().hex[:12]}"
        result = subprocess.run([_pg_bin("psql"), postgres_base_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name}"],
                                capture_output=True, timeout=60)
        assert result.returncode == 0, f"cannot create database {name}: {result.stderr.decode()}"
        made.append(name)
        return with_database(postgres_base_url, name)

    yield make
    for name in made:
        subprocess.run([_pg_bin("psql"), postgres_base_url, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)


# ---------------------------------------------------------------------------------------------
# Servers


_made: list[TopGunProcess] = []


@pytest.fixture(autouse=True)
def _servers_survive_each_test():
    """A node that dies during a test fails that test (with its stderr) and is started again
    on the same data, so one crash does not take the rest of the suite with it."""
    yield
    dead = [p for p in _made if p.should_run and not p.alive()]
    for p in dead:
        p.should_run = False
    if dead:
        report = "\n\n".join(
            f"the {p.kind} node died during this test (exit status {p.proc.returncode}); its stderr:\n{_crash_excerpt(p)}"
            for p in dead)
        for p in dead:
            try:
                p.start()
            except AssertionError as e:
                report += f"\n(and it did not come back: {e})"
        pytest.fail(report, pytrace=False)


def _crash_excerpt(p: "TopGunProcess") -> str:
    lines = p.stderr_path.read_text(errors="replace").splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("===== start"))
    lines = [line for line in lines[start:] if line.strip()]
    return "\n".join(lines[:40] + (["..."] if len(lines) > 40 else []))


@pytest.fixture(scope="session")
def server_factory(topgun_bin, tmp_path_factory):
    """Makes (and at the end stops) TopGunProcess objects: factory(kind, postgres_url=None,
    extra_args=()), the extra arguments going to the command line."""
    made = _made

    def make(kind: str, postgres_url: str | None = None, start: bool = True, extra_args: tuple[str, ...] = ()) -> TopGunProcess:
        workdir = tmp_path_factory.mktemp(kind)
        process = TopGunProcess(topgun_bin, kind, workdir, postgres_url=postgres_url, extra_args=extra_args)
        made.append(process)
        return process.start() if start else process

    yield make
    for process in made:
        process.stop()


@pytest.fixture(scope="session")
def dev_server(server_factory) -> TopGunProcess:
    return server_factory("dev-sqlite")


@pytest.fixture(scope="session")
def memory_server(server_factory) -> TopGunProcess:
    return server_factory("dev-memory")


@pytest.fixture(scope="session")
def pg_server(server_factory, postgres_database):
    process = server_factory("postgres", postgres_url=postgres_database())
    yield process
    process.stop()  # before its database is dropped


@pytest.fixture(params=["dev-sqlite", "dev-memory", "postgres"])
def server(request) -> TopGunProcess:
    name = {"dev-sqlite": "dev_server", "dev-memory": "memory_server", "postgres": "pg_server"}[request.param]
    process = request.getfixturevalue(name)
    assert process.alive(), f"the {request.param} server died:\n{process.stderr_tail()}"
    return process


@pytest.fixture
def map_name(request) -> str:
    """A map name no other test uses."""
    return f"{request.node.name.split('[')[0][:40]}-{uuid.uuid4().hex[:8]}"
