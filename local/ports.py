"""Loopback ports for the local API: probe one, or hand out free ones so that two local APIs (or a
test beside a running ``make serve``) never collide."""

from __future__ import annotations

import socket
import threading

LOOPBACK = "127.0.0.1"


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((LOOPBACK, port)) == 0


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice). Another process could take it before we
    bind it; callers that start a server on it retry with a new one if it fails to listen."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class PortAllocator:
    """Ports for emulated environments: free ones chosen by the kernel, or, from an explicit ``base``,
    ``base``, ``base + 1``, … skipping any that are in use."""

    def __init__(self, base: int | None = None) -> None:
        self._next = base
        self._lock = threading.Lock()

    def take(self) -> int:
        if self._next is None:
            return free_port()
        with self._lock:
            while port_is_open(self._next):
                self._next += 1
            port, self._next = self._next, self._next + 1
            return port
