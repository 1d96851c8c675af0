"""Revocation delay (issue 5, Deliver 7): how long after the control plane answers
`DELETE /v1/tenants/{id}/keys/{kid}` (or `POST /v1/tenants/{id}/suspend`) the WebSocket close
frame (1008) reaches a session that authenticated with that key (of that tenant).

Each trial: a fresh tenant and HS256 key (through the control plane), an app JWT, one data-plane
session that sends AUTH and gets AUTH_ACK, a pause (--settle) so the session is idle, then the
control-plane request. A reader thread, already blocked in recv() on the session's socket,
stamps time.monotonic() the moment the bytes holding the close frame return from the kernel;
the main thread stamps time.monotonic() just before sending the HTTP request and just after
reading the whole response. Figures:
  from_response_ms = close arrival - response read   (what the brief asks; may be negative when
                     the close overtakes the HTTP answer, as it can in one process)
  from_request_ms  = close arrival - request sent    (the whole delay seen by an operator)

The WebSocket client is a few lines over a raw socket (no library thread in between), so the
stamp is taken when the data is readable, not after a library has parsed it.

Prints one JSON line per trial kind: {"figure": "revocation_delay", "kind", "setup", "trials",
"median_ms", "max_ms", "median_from_request_ms", "max_from_request_ms", "close_codes", ...}.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import struct
import threading
import time
import urllib.parse
import uuid

import jwt
import msgpack


class API:
    def __init__(self, base_url: str, token: str):
        parsed = urllib.parse.urlparse(base_url)
        self.host, self.port, self.token = parsed.hostname, parsed.port, token

    def request(self, method: str, path: str, body=None):
        """(status, decoded body, monotonic time before sending, monotonic time after reading)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sent = time.monotonic()
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
            done = time.monotonic()
        finally:
            conn.close()
        return response.status, (json.loads(data) if data else None), sent, done


class Session:
    """One WebSocket session over a raw socket."""

    def __init__(self, url: str):
        parsed = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parsed.path or '/'} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("closed during the upgrade")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {head[:100]!r}")
        self.close_at: float | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = threading.Event()

    def send(self, message: dict):
        payload = msgpack.packb(message, use_bin_type=True)
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = bytes([0x82, 0x80 | n])
        elif n < 65536:
            header = bytes([0x82, 0x80 | 126]) + struct.pack(">H", n)
        else:
            header = bytes([0x82, 0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _frame(self):
        """(opcode, payload) of the next whole frame in the buffer, or None."""
        b = self.buffer
        if len(b) < 2:
            return None
        length, at = b[1] & 0x7F, 2
        if length == 126:
            if len(b) < 4:
                return None
            length, at = struct.unpack(">H", b[2:4])[0], 4
        elif length == 127:
            if len(b) < 10:
                return None
            length, at = struct.unpack(">Q", b[2:10])[0], 10
        if len(b) < at + length:
            return None
        self.buffer = b[at + length:]
        return b[0] & 0x0F, b[at:at + length]

    def recv_message(self, timeout: float = 10) -> dict:
        self.sock.settimeout(timeout)
        while True:
            frame = self._frame()
            if frame is None:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise RuntimeError("closed")
                self.buffer += chunk
                continue
            opcode, payload = frame
            if opcode in (1, 2):
                return msgpack.unpackb(payload, raw=False, strict_map_key=False)
            if opcode == 8:
                raise RuntimeError(f"closed: {payload[:2].hex()} {payload[2:]!r}")

    def authenticate(self, token: str):
        self.send({"type": "AUTH", "token": token})
        while True:
            message = self.recv_message()
            if message.get("type") == "AUTH_ACK":
                return
            if message.get("type") == "AUTH_FAIL":
                raise RuntimeError(f"AUTH_FAIL: {message}")

    def watch(self):
        """Starts the reader thread that stamps the close frame's arrival."""
        def run():
            self.sock.settimeout(None)
            now = time.monotonic()
            try:
                while True:
                    frame = self._frame()
                    if frame is None:
                        chunk = self.sock.recv(65536)
                        now = time.monotonic()
                        if not chunk:
                            if self.close_at is None:
                                self.close_at, self.close_code = now, -1
                            break
                        self.buffer += chunk
                        continue
                    opcode, payload = frame
                    if opcode == 8:
                        self.close_at = now
                        self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                        self.close_reason = payload[2:].decode(errors="replace")
                        break
            except OSError:
                pass
            finally:
                self.closed.set()
        threading.Thread(target=run, daemon=True).start()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def tenant_with_key(api: API):
    slug = f"rv-{uuid.uuid4().hex[:12]}"
    status, tenant, _, _ = api.request("POST", "/v1/tenants", {"slug": slug, "display_name": f"Revocation {slug}", "plan": "pro"})
    assert status == 201, (status, tenant)
    status, key, _, _ = api.request("POST", f"/v1/tenants/{tenant['id']}/keys", {"algorithm": "HS256"})
    assert status == 201, (status, key)
    secret = base64.urlsafe_b64decode(key["secret"] + "=" * (-len(key["secret"]) % 4))
    now = int(time.time())
    token = jwt.encode({"sub": "revocation-bench", "iat": now, "exp": now + 3600}, secret, algorithm="HS256", headers={"kid": key["kid"]})
    return tenant, key, token


def trial(api: API, ws_url: str, kind: str, settle: float) -> dict:
    tenant, key, token = tenant_with_key(api)
    session = Session(ws_url)
    try:
        session.authenticate(token)
        session.watch()
        time.sleep(settle)
        if kind == "revoke_key":
            status, _, sent, done = api.request("DELETE", f"/v1/tenants/{tenant['id']}/keys/{key['kid']}")
        else:
            status, _, sent, done = api.request("POST", f"/v1/tenants/{tenant['id']}/suspend", {"reason": "revocation benchmark"})
        assert 200 <= status < 300, status
        if not session.closed.wait(10):
            return {"closed": False, "http_ms": (done - sent) * 1e3}
        return {
            "closed": True, "code": session.close_code, "reason": session.close_reason,
            "from_response_ms": (session.close_at - done) * 1e3,
            "from_request_ms": (session.close_at - sent) * 1e3,
            "http_ms": (done - sent) * 1e3,
        }
    finally:
        session.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--control-plane", required=True)
    parser.add_argument("--admin-token", required=True)
    parser.add_argument("--ws", required=True, help="data-plane ws:// URL")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.3, help="seconds between AUTH_ACK and the request")
    parser.add_argument("--kinds", default="revoke_key,suspend")
    parser.add_argument("--setup", default="", help="label of the deployment in the output")
    args = parser.parse_args()
    api = API(args.control_plane, args.admin_token)
    # One unmeasured trial of each kind first (connection set-up, caches, JIT-free but cold paths).
    for kind in args.kinds.split(","):
        trial(api, args.ws, kind, args.settle)
    for kind in args.kinds.split(","):
        results = [trial(api, args.ws, kind, args.settle) for _ in range(args.trials)]
        closed = [r for r in results if r["closed"]]
        response = sorted(r["from_response_ms"] for r in closed)
        request = sorted(r["from_request_ms"] for r in closed)
        codes = sorted({r["code"] for r in closed})
        reasons = sorted({r["reason"] for r in closed})
        print(json.dumps({
            "figure": "revocation_delay", "kind": kind, "setup": args.setup, "trials": len(results),
            "closed": len(closed), "close_codes": codes, "close_reasons": reasons[:3],
            "median_ms": round(statistics.median(response), 2) if response else None,
            "max_ms": round(response[-1], 2) if response else None,
            "min_ms": round(response[0], 2) if response else None,
            "median_from_request_ms": round(statistics.median(request), 2) if request else None,
            "max_from_request_ms": round(request[-1], 2) if request else None,
            "median_http_ms": round(statistics.median(r["http_ms"] for r in results), 2),
            "goal_met": bool(closed) and len(closed) == len(results) and request[-1] < 1000,
        }), flush=True)


if __name__ == "__main__":
    main()
