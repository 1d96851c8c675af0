"""The HTTP edges of both planes, over raw sockets: what the HTTP/1 parser refuses is answered
with problem+json (431 for an oversized head, 501 for an unknown method, 400 otherwise) and the
connection closed."""
import json
import socket
import urllib.parse
import weakref

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
