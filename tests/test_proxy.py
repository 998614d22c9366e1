"""The data reachability probe goes the way Keras' download will: through HTTP(S)_PROXY, except for NO_PROXY hosts.

A real proxy on 127.0.0.1 (threads, plain sockets) records every request line it receives. For an http:// URL it
answers the forwarded request itself (200, so a host that resolves nowhere is still "reachable" through it); for
https:// it answers the CONNECT with 403, which is what a proxy that forbids the host does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from models import sources
from runner import datafetch


class RecordingProxy:
    def __init__(self, connect_status: int = 403):
        self.requests: list[str] = []
        self.connect_status = connect_status
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode()
            self.requests.append(line)
            if line.startswith("CONNECT "):
                conn.sendall(f"HTTP/1.1 {self.connect_status} Forbidden by test proxy\r\n\r\n".encode())
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def proxy(monkeypatch) -> Iterator[RecordingProxy]:
    for var in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    server = RecordingProxy()
    yield server
    server.close()


def test_an_https_probe_goes_through_https_proxy(proxy, monkeypatch, tmp_path):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    missing = datafetch.missing_datasets({"cifar10"}, None)
    assert [r.rsplit(" ", 1)[0] for r in proxy.requests] == ["CONNECT www.cs.toronto.edu:443"]
    assert "through the proxy" in missing["cifar10"] and "403" in missing["cifar10"]


def test_a_host_the_proxy_can_reach_counts_as_reachable(proxy, monkeypatch, tmp_path):
    """The host resolves nowhere from here; only the proxy can know it. The probe asks the proxy and believes it."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setitem(sources.URLS, "babi_qa2", "http://datasets.example.invalid/babi_tasks_1-20_v1-2.tar.gz")
    assert datafetch.missing_datasets({"babi_qa2"}, None) == {}
    assert proxy.requests == ["HEAD http://datasets.example.invalid/babi_tasks_1-20_v1-2.tar.gz HTTP/1.1"]


def test_no_proxy_hosts_are_probed_directly(proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,.example.invalid")
    why = datafetch.reachable("http://datasets.example.invalid/x.tar.gz", timeout=3)
    assert proxy.requests == []  # NO_PROXY: straight to the host, which does not resolve
    assert why is not None and "datasets.example.invalid unreachable" in why and "proxy" not in why
