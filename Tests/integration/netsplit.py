"""Network namespaces for cluster tests that split the network (issue 15, point 6): each node runs
in a namespace of its own, joined to a bridge in the root namespace; PostgreSQL (listening on the
root namespace's loopback) is reached through a TCP forwarder on the bridge. A split is made of
blackhole routes inside the namespaces, which drop a node's packets to the nodes (or the
database address) it is cut off from, in both directions, and healed by deleting them.

Needs root and iproute2 (`ip netns`, bridges, veth pairs), as CI has."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading


def available() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    return None


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


class Forwarder:
    """A TCP forwarder: connections to (host, port) are joined to `target`."""

    def __init__(self, host: str, target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server((host, 0), backlog=128)
        self.port = self.server.getsockname()[1]
        self.closing = False
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closing = True
        self.server.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


class Network:
    """A bridge and one namespace per node. `address(node)` is the node's address; the database
    is reached at `database_address` (forwarded to the root namespace's loopback)."""

    def __init__(self, nodes: list[str], postgres_port: int):
        self.index = os.getpid() % 200 + 20
        self.prefix = f"10.{self.index}.77"
        self.bridge = f"tgbr{self.index}"
        self.nodes = nodes
        self.namespaces = {node: f"tg{self.index}{node}" for node in nodes}
        self.routes: set[tuple[str, str]] = set()
        self.forwarder: Forwarder | None = None
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.prefix}.1/24", "dev", self.bridge)
            ip("addr", "add", f"{self.prefix}.2/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for number, node in enumerate(nodes):
                namespace = self.namespaces[node]
                outside, inside = f"tg{self.index}v{number}", f"tg{self.index}i{number}"
                ip("netns", "add", namespace)
                ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                ip("link", "set", inside, "netns", namespace)
                ip("link", "set", outside, "master", self.bridge)
                ip("link", "set", outside, "up")
                ip("-n", namespace, "link", "set", "lo", "up")
                ip("-n", namespace, "addr", "add", f"{self.address(node)}/24", "dev", inside)
                ip("-n", namespace, "link", "set", inside, "up")
            self.forwarder = Forwarder(self.database_address, ("127.0.0.1", postgres_port))
        except BaseException:
            self.close()
            raise

    def address(self, node: str) -> str:
        return f"{self.prefix}.{10 + self.nodes.index(node)}"

    @property
    def database_address(self) -> str:
        return f"{self.prefix}.2"

    @property
    def database_port(self) -> int:
        assert self.forwarder is not None
        return self.forwarder.port

    def run_in(self, node: str) -> list[str]:
        """The command prefix that runs a program in `node`'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[node]]

    def _blackhole(self, node: str, destination: str, add: bool) -> None:
        key = (node, destination)
        if add == (key in self.routes):
            return
        ip("-n", self.namespaces[node], "route", "add" if add else "del", "blackhole", f"{destination}/32")
        (self.routes.add if add else self.routes.discard)(key)

    def cut_from_peers(self, node: str) -> None:
        for other in self.nodes:
            if other != node:
                self._blackhole(node, self.address(other), True)
                self._blackhole(other, self.address(node), True)

    def cut_from_database(self, node: str) -> None:
        self._blackhole(node, self.database_address, True)

    def heal(self) -> None:
        for node, destination in list(self.routes):
            self._blackhole(node, destination, False)

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()
        for namespace in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)
