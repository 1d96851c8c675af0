"""The HTTP edges of both planes, over raw sockets: what the HTTP/1 parser refuses is answered
with problem+json (431 for an oversized head, 501 for an unknown method, 400 otherwise) and the
connection closed; a client that made HTTP requests and then opens its WebSocket the way a
connection-pooling client does (reusing the connection unless the server closed it) gets a
working WebSocket at the first try, never a 307."""
import base64
import json
import os
import socket
import struct
import time
import urllib.parse
import weakref

import msgpack
import pytest

KB = 1024


def address(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlparse(url)
    return parsed.hostname, parsed.port


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


_unread: "weakref.WeakKeyDictionary[socket.socket, bytes]" = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket) -> RawResponse:
    """One HTTP/1.1 response (with Content-Length, or none for 1xx/3xx without a body); bytes
    read past it stay for the next call (pipelined responses arrive together)."""
    data = _unread.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without a complete response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection inside a response body"
        rest += chunk
    _unread[sock] = rest[length:]
    return RawResponse(status, headers, rest[:length])


def closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Whether the server ends the connection (end of stream or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def exchange(host_port: tuple[str, int], raw: bytes) -> tuple[RawResponse, bool]:
    """Sends `raw` on a fresh connection; returns the response and whether the server closed
    the connection after it."""
    with socket.create_connection(host_port, timeout=10) as sock:
        sock.sendall(raw)
        response = read_response(sock)
        return response, closed_by_server(sock)


# ---------------------------------------------------------------------------------------------
# Requests the parser refuses


def malformed_requests(host: str) -> list[tuple[str, bytes, int]]:
    """(name, raw request, expected status)."""
    h = f"Host: {host}\r\n".encode()
    return [
        ("unknown-method", b"FROB /health HTTP/1.1\r\n" + h + b"\r\n", 501),
        ("100KB-header", b"GET /health HTTP/1.1\r\n" + h + b"X-Big: " + b"a" * (100 * KB) + b"\r\n\r\n", 431),
        ("100KB-path", b"GET /" + b"p" * (100 * KB) + b" HTTP/1.1\r\n" + h + b"\r\n", 431),
        ("0xff-in-path", b"GET /he\xffalth HTTP/1.1\r\n" + h + b"\r\n", 400),
        ("bad-content-length", b"POST /sync HTTP/1.1\r\n" + h + b"Content-Length: 12abc\r\n\r\n", 400),
        ("duplicate-content-length", b"POST /sync HTTP/1.1\r\n" + h + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc", 400),
    ]


PLANES = ["data-plane", "control-plane"]


def plane_address(dev_server, plane: str) -> tuple[str, int]:
    return address(dev_server.http_url if plane == "data-plane" else dev_server.info["controlPlaneURL"])


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("case", [c[0] for c in malformed_requests("x")])
def test_a_request_the_parser_refuses_gets_a_problem_and_the_connection_closes(dev_server, plane, case):
    host, port = plane_address(dev_server, plane)
    raw, expected = {name: (raw, status) for name, raw, status in malformed_requests(f"{host}:{port}")}[case]
    response, closed = exchange((host, port), raw)
    assert response.status == expected, response
    assert response.headers.get("content-type") == "application/problem+json", response
    problem = response.json
    assert problem["status"] == expected, problem
    assert problem["type"].startswith("https://topgun.dev/problems/"), problem
    assert problem["title"] and problem["detail"], problem
    assert response.headers.get("connection") == "close", response
    assert closed, "the connection stays open after a refused request"
    # The server goes on serving.
    health, _ = exchange((host, port), f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert health.status == 200, health


def test_a_refused_request_is_not_logged_as_a_server_error(dev_server):
    before = dev_server.stderr_path.stat().st_size
    for plane in PLANES:
        host, port = plane_address(dev_server, plane)
        for _, raw, _ in malformed_requests(f"{host}:{port}"):
            with socket.create_connection((host, port), timeout=10) as sock:
                sock.sendall(raw)
                read_response(sock)
                closed_by_server(sock)  # the client closes after the server's end of stream
    time.sleep(0.5)
    with open(dev_server.stderr_path, "rb") as log:
        log.seek(before)
        errors = [line for line in log.read().decode(errors="replace").splitlines() if " error " in line]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("plane", PLANES)
def test_problem_types_of_parser_refusals(dev_server, plane):
    host, port = plane_address(dev_server, plane)
    kinds = {}
    for name, raw, _ in malformed_requests(f"{host}:{port}"):
        response, _ = exchange((host, port), raw)
        kinds[name] = response.json["type"].rsplit("/", 1)[1]
    assert kinds["unknown-method"] == "not-implemented"
    assert kinds["100KB-header"] == kinds["100KB-path"] == "request-header-fields-too-large"
    bad = "validation-failed" if plane == "control-plane" else "malformed-request"
    assert {kinds["0xff-in-path"], kinds["bad-content-length"], kinds["duplicate-content-length"]} == {bad}, kinds


@pytest.mark.parametrize("plane", PLANES)
def test_a_known_method_a_path_does_not_allow_is_still_405_or_404(dev_server, plane):
    host, port = plane_address(dev_server, plane)
    response, _ = exchange((host, port), f"PROPFIND /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert response.status in (404, 405), response
    assert response.headers.get("content-type") == "application/problem+json", response


def test_a_refusal_in_a_pipelined_request_waits_for_the_response_before_it(dev_server):
    host, port = plane_address(dev_server, "control-plane")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() + b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(sock)
        second = read_response(sock)
        assert first.status == 200, first
        assert second.status == 501, second
        assert closed_by_server(sock)


def test_an_oversized_chunked_control_plane_body_is_413(dev_server):
    host, port = plane_address(dev_server, "control-plane")
    token = dev_server.info["adminToken"]
    chunk = b"a" * (64 * KB)
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"  # 320 KiB > 256 KiB
    raw = (f"POST /v1/tenants HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode() + body
    response, _ = exchange((host, port), raw)
    assert response.status == 413, response
    assert response.headers.get("content-type") == "application/problem+json", response
    assert response.json["type"] == "https://topgun.dev/problems/payload-too-large", response.json
    assert response.json["limit_bytes"] == 262144, response.json


def test_a_broken_chunk_in_a_control_plane_body_is_400(dev_server):
    host, port = plane_address(dev_server, "control-plane")
    token = dev_server.info["adminToken"]
    raw = (f"POST /v1/tenants HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode() + b"2\r\n{}\r\nzz\r\n"
    response, closed = exchange((host, port), raw)
    assert response.status == 400, response
    assert response.json["type"] == "https://topgun.dev/problems/validation-failed", response.json
    assert closed


# ---------------------------------------------------------------------------------------------
# A WebSocket after HTTP requests, as a pooling client (the TypeScript client in Node) opens it


def ws_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """One masked client frame."""
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
    else:
        header += bytes([0x80 | 127]) + struct.pack(">Q", len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    def __init__(self, sock: socket.socket, buffered: bytes = b""):
        self.sock = sock
        self.buffer = buffered

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the WebSocket"
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send(self, message: dict) -> None:
        self.sock.sendall(ws_frame(msgpack.packb(message)))

    def receive(self) -> dict:
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 0x2:
                return msgpack.unpackb(payload, raw=False, strict_map_key=False)
            if opcode == 0x1:
                return json.loads(payload)
            assert opcode != 0x8, f"the server closed the WebSocket: {payload!r}"

    def wait_for(self, kind: str) -> dict:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = self.receive()
            if message.get("type") == kind:
                return message
        raise AssertionError(f"no {kind} within 10 s")


class PoolingClient:
    """One kept-alive connection to the data plane's port, reused for the next request unless
    the server ended it, as Node's HTTP agents and undici's pool do; its WebSocket goes out on
    that connection too."""

    def __init__(self, host_port: tuple[str, int]):
        self.host_port = host_port
        self.sock: socket.socket | None = None
        self.connections_opened = 0

    def _connection(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(self.host_port, timeout=10)
            self.connections_opened += 1
        return self.sock

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> RawResponse:
        sock = self._connection()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_port[0]}:{self.host_port[1]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        response = read_response(sock)
        if response.headers.get("connection", "").lower() == "close":
            # The server ends it: the pool drops the connection and opens a new one next time.
            closed_by_server(sock, timeout=5)
            sock.close()
            self.sock = None
        return response

    def websocket(self, path: str = "/ws") -> tuple[RawResponse, RawWebSocket | None]:
        key = base64.b64encode(os.urandom(16)).decode()
        response = self.request("GET", path, {"Upgrade": "websocket", "Connection": "Upgrade",
                                              "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"})
        if response.status != 101:
            return response, None
        return response, RawWebSocket(self.sock, _unread.pop(self.sock, b""))

    def close(self):
        if self.sock is not None:
            self.sock.close()


def sync_body(client_id: str) -> bytes:
    return json.dumps({"clientId": client_id,
                       "clientHlc": {"millis": int(time.time() * 1000), "counter": 0, "nodeId": client_id}}).encode()


def test_a_websocket_opened_after_http_requests_works_at_the_first_try(dev_server):
    client = PoolingClient(address(dev_server.http_url))
    try:
        health = client.request("GET", "/health", {})
        assert health.status == 200, health
        sync = client.request("POST", "/sync", {"Authorization": f"Bearer {dev_server.token}",
                                                "Content-Type": "application/json"}, sync_body("edge-client"))
        assert sync.status == 200, sync
        response, ws = client.websocket("/ws")
        assert response.status == 101, f"the WebSocket upgrade after HTTP requests was answered {response}"
        assert ws is not None
        ws.send({"type": "AUTH", "token": dev_server.token})
        assert ws.wait_for("AUTH_ACK")["type"] == "AUTH_ACK"
        stamp = float(int(time.time() * 1000))
        ws.send({"type": "PING", "timestamp": stamp})
        assert ws.wait_for("PONG")["timestamp"] == stamp
    finally:
        client.close()


def test_plain_http_responses_on_the_data_plane_end_their_connection(dev_server):
    host, port = address(dev_server.http_url)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        response = read_response(sock)
        assert response.status == 200, response
        assert response.headers.get("connection") == "close", response
        assert closed_by_server(sock), "a connection that served HTTP stays open for an upgrade the server cannot do"


def test_a_websocket_as_first_request_is_unaffected(dev_server):
    client = PoolingClient(address(dev_server.http_url))
    try:
        response, ws = client.websocket("/ws")
        assert response.status == 101, response
        assert "connection" not in response.headers or response.headers["connection"].lower() == "upgrade", response
        assert ws.wait_for("AUTH_REQUIRED")["type"] == "AUTH_REQUIRED"
        ws.send({"type": "AUTH", "token": dev_server.token})
        assert ws.wait_for("AUTH_ACK")["type"] == "AUTH_ACK"
        assert client.connections_opened == 1
    finally:
        client.close()
