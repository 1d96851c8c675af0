"""Fixtures that run the control plane as a real process and talk to it over real sockets.

- `cp`: parameterized over the two stores: `topgun dev` (SQLite, control plane and data plane in
  one process) and `topgun control-plane` on a fresh PostgreSQL database (the server that
  `ops/postgres start` starts, unless TOPGUN_TEST_POSTGRES_URL names one).
- `API`: a small HTTP client (stdlib only) that returns status, headers and the decoded body.

TOPGUN_BIN names the executable; without it, .build/debug/topgun is used.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
import http.client

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(120))


@pytest.fixture(scope="session")
def topgun_bin() -> str:
    path = os.environ.get("TOPGUN_BIN") or str(ROOT / ".build" / "debug" / "topgun")
    assert os.access(path, os.X_OK), "TOPGUN_BIN must name the built topgun executable"
    return path


class Response:
    def __init__(self, status: int, headers: dict[str, str], raw: bytes):
        self.status = status
        self.headers = headers
        self.raw = raw

    @property
    def json(self):
        return json.loads(self.raw)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


class API:
    """HTTP/1.1 to one control plane; `token` is the default bearer."""

    def __init__(self, base_url: str, token: str | None):
        parsed = urllib.parse.urlparse(base_url)
        self.host = parsed.hostname
        self.port = parsed.port
        self.base_url = base_url
        self.token = token

    def with_token(self, token: str | None) -> "API":
        return API(self.base_url, token)

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None, headers: dict | None = None,
                token: str | None | bool = True, content_type: str | None = "application/json") -> Response:
        all_headers = {}
        if token is True:
            token = self.token
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        payload = raw
        if body is not None:
            payload = json.dumps(body).encode()
        if payload is not None and content_type:
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            connection.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # helpers
    def create_tenant(self, slug: str | None = None, plan: str = "free") -> dict:
        slug = slug or f"t-{uuid.uuid4().hex[:12]}"
        response = self.post("/v1/tenants", {"slug": slug, "display_name": f"Tenant {slug}", "plan": plan})
        assert response.status == 201, response
        return response.json

    def create_admin_token(self, scopes: list[str], name: str = "test token", **extra) -> dict:
        response = self.post("/v1/admin-tokens", {"name": name, "scopes": scopes, **extra})
        assert response.status == 201, response
        return response.json


def _pg_bin(name: str) -> str:
    found = sorted(pathlib.Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                   key=lambda p: [int(x) if x.isdigit() else x for x in p.parts[-3].split(".")])
    return str(found[-1]) if found else (shutil.which(name) or name)


@pytest.fixture(scope="session")
def postgres_base_url():
    url = os.environ.get("TOPGUN_TEST_POSTGRES_URL")
    started = False
    if not url:
        result = subprocess.run([str(ROOT / "ops" / "postgres"), "start"], capture_output=True, timeout=600)
        assert result.returncode == 0, f"ops/postgres start failed:\n{result.stderr.decode()}"
        url = result.stdout.decode().strip().splitlines()[-1]
        started = True
    yield url
    if started:
        subprocess.run([str(ROOT / "ops" / "postgres"), "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def new_database(postgres_base_url):
    made: list[str] = []

    def make() -> str:
        name = f"topgun_cp_{uuid.uuid4().hex[:12]}"
        result = subprocess.run([_pg_bin("psql"), postgres_base_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name}"],
                                capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        made.append(name)
        parsed = urllib.parse.urlparse(postgres_base_url)
        return urllib.parse.urlunparse(parsed._replace(path="/" + name))

    yield make
    for name in made:
        subprocess.run([_pg_bin("psql"), postgres_base_url, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)


class Process:
    """A `topgun` process that prints one JSON line when ready."""

    def __init__(self, args: list[str], workdir: pathlib.Path, env: dict | None = None):
        self.args = args
        self.workdir = workdir
        self.env = {**os.environ, **(env or {})}
        self.proc = None
        self.info: dict = {}
        self.stderr_path = workdir / "stderr.log"

    def start(self) -> "Process":
        stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                                     cwd=self.workdir, env=self.env)
        stderr.close()
        lines: list[bytes] = []
        proc = self.proc
        threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not lines:
            if proc.poll() is not None:
                raise AssertionError(f"{self.args[1]} exited with {proc.returncode}:\n{self.stderr_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.args[1]} printed nothing within {READY_TIMEOUT}s:\n{self.stderr_tail()}")
            time.sleep(0.02)
        self.info = json.loads(lines[0])
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no stderr)"


BOOTSTRAP_TOKEN = "bootstrap-" + uuid.uuid4().hex + uuid.uuid4().hex


class ControlPlane:
    """What tests need of a running control plane."""

    def __init__(self, kind: str, process: Process, url: str, admin_token: str, postgres_url: str | None, data_dir: pathlib.Path | None):
        self.kind = kind
        self.process = process
        self.url = url
        self.admin_token = admin_token
        self.postgres_url = postgres_url
        self.data_dir = data_dir
        self.api = API(url, admin_token)
        self.info = process.info


@pytest.fixture(scope="session")
def sqlite_cp(topgun_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cp-sqlite")
    data_dir = workdir / "data"
    process = Process([topgun_bin, "dev", "--json", "--port", "0", "--control-plane-port", "0", "--data-dir", str(data_dir),
                       "--storage", "memory"], workdir, env={"TOPGUN_ADMIN_RATE_LIMIT": "100000", "TOPGUN_STORAGE_METER_SECONDS": "1"}).start()
    for field in ("controlPlaneURL", "adminToken", "dataPlaneURL", "tenant", "keyId", "appToken"):
        assert field in process.info, f"the ready line lacks {field}: {process.info}"
    yield ControlPlane("sqlite", process, process.info["controlPlaneURL"], process.info["adminToken"], None, data_dir)
    process.stop()


@pytest.fixture(scope="session")
def postgres_cp(topgun_bin, tmp_path_factory, new_database):
    workdir = tmp_path_factory.mktemp("cp-postgres")
    database = new_database()
    key_file = workdir / "master.key"
    process = Process([topgun_bin, "control-plane", "--json", "--port", "0", "--postgres-url", database,
                       "--master-key-file", str(key_file), "--rate-limit", "100000"], workdir,
                      env={"TOPGUN_ADMIN_TOKEN": BOOTSTRAP_TOKEN}).start()
    yield ControlPlane("postgres", process, process.info["controlPlaneURL"], BOOTSTRAP_TOKEN, database, None)
    process.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def cp(request) -> ControlPlane:
    control_plane = request.getfixturevalue(f"{request.param}_cp")
    assert control_plane.process.alive(), f"the {request.param} control plane died:\n{control_plane.process.stderr_tail()}"
    return control_plane


@pytest.fixture
def api(cp) -> API:
    return cp.api


@pytest.fixture(scope="session")
def postgres_data_plane(topgun_bin, postgres_cp, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dp-postgres")
    key_file = pathlib.Path(postgres_cp.process.workdir) / "master.key"
    process = Process([topgun_bin, "data-plane", "--json", "--port", "0", "--postgres-url", postgres_cp.postgres_url,
                       "--master-key-file", str(key_file), "--node-id", "live-control"], workdir,
                      env={"TOPGUN_STORAGE_METER_SECONDS": "1"}).start()
    yield process
    process.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def planes(request):
    """(control-plane API, data-plane WebSocket URL) sharing one metadata store: `topgun dev` on
    SQLite (one process), or `topgun control-plane` and `topgun data-plane` on PostgreSQL."""
    if request.param == "sqlite":
        cp = request.getfixturevalue("sqlite_cp")
        return cp.api, cp.info["dataPlaneURL"]
    cp = request.getfixturevalue("postgres_cp")
    return cp.api, request.getfixturevalue("postgres_data_plane").info["dataPlaneURL"]


class Planes:
    def __init__(self, kind, api, ws_url, http_url):
        self.kind = kind
        self.api = api
        self.ws_url = ws_url
        self.http_url = http_url


@pytest.fixture(params=["sqlite", "postgres"])
def plane(request) -> Planes:
    """Like `planes`, with the data plane's HTTP URL too."""
    if request.param == "sqlite":
        cp = request.getfixturevalue("sqlite_cp")
        return Planes("sqlite", cp.api, cp.info["dataPlaneURL"], cp.info["httpURL"])
    cp = request.getfixturevalue("postgres_cp")
    dp = request.getfixturevalue("postgres_data_plane")
    return Planes("postgres", cp.api, dp.info["dataPlaneURL"], dp.info["httpURL"])
