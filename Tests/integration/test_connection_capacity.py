"""Issue 16, point 4: a node holds as many client connections as its open-files limit allows
(raised to the hard limit at start) or `--max-connections`, says how many at start, and refuses
the next ones cleanly: `503` with a problem body at the upgrade (or any HTTP request), never a
failing `accept` loop. Real process, raw sockets."""
from __future__ import annotations

import base64
import json
import os
import re
import resource
import socket
import urllib.parse

from test_bounds import RawWebSocket, gauge, wait_until
from topgun_client import http

UNBOUNDED = 1 << 30


def upgrade(node, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """A WebSocket upgrade on a new socket, read to its end: status, headers, body."""
    parsed = urllib.parse.urlparse(node.ws_url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(b"HTTP/1.1 101") and b"\r\n\r\n" in data:
                return 101, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_connections_past_the_limit_are_refused_with_503_until_one_closes(server_factory):
    node = server_factory("dev-memory", extra_args=("--max-connections", "3"))
    assert node.info["maxConnections"] == 3
    held = [RawWebSocket(node.ws_url) for _ in range(3)]
    try:
        status, headers, body = upgrade(node)
        assert status == 503, (status, headers, body)
        assert headers["content-type"] == "application/problem+json"
        assert headers["retry-after"] == "1"
        problem = json.loads(body)
        assert problem["type"].endswith("/connection-capacity") and problem["status"] == 503
        assert "(3)" in problem["detail"], problem
        # Plain HTTP too: a load balancer's health check sees a full node.
        assert http("GET", node.http_url + "/health").status == 503
        # The connections held still work.
        held[0].auth(node.token)
        # A socket that never sends its request is closed all the same.
        parsed = urllib.parse.urlparse(node.ws_url)
        with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as silent:
            assert silent.recv(1) == b""
        # A place freed by a closed connection is taken by the next one.
        held.pop().close()
        wait_until(lambda: upgrade(node)[0] == 101, 10, "a connection admitted once another closed")
        held.pop().close()
        wait_until(lambda: gauge(node, "topgun_connections_refused_total") >= 3, 10, "the refusals counted")
        assert gauge(node, "topgun_connections_limit") == 3
        assert node.alive()
    finally:
        for connection in held:
            connection.close()


def test_the_node_raises_its_open_files_limit_and_says_how_many_connections_it_holds(server_factory):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = 256
    node = server_factory("dev-memory", start=False)
    node.soft_open_files = soft
    node.start()
    if hard == resource.RLIM_INFINITY or hard >= UNBOUNDED:
        expected = UNBOUNDED
    else:
        expected = hard - min(1024, max(64, hard // 16))
    assert node.info["maxConnections"] == expected
    log = node.stderr_path.read_text(errors="replace")
    line = next((l for l in log.splitlines() if "client connections" in l and "at most" in l), None)
    assert line and f"at most {expected} client connections" in line, log[-2000:]
    if expected != UNBOUNDED:
        assert f"raised from {soft}" in line and f"open files {hard}" in line, line
    # The node's own limit is the hard one now (/proc shows the process's limits).
    limits = open(f"/proc/{node.proc.pid}/limits").read()
    match = re.search(r"^Max open files\s+(\S+)\s+(\S+)", limits, re.MULTILINE)
    assert match and match.group(1) == match.group(2), limits
