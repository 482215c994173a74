"""A threaded TCP relay for tests: accepts on 127.0.0.1, and a subclass decides what to do with each
connection (forward it, wrap it in TLS, refuse it...). ``stop()`` wakes and joins every thread."""

from __future__ import annotations

import socket
import threading
from typing import Any


class TcpRelay:
    """Base class: override :meth:`serve`; use :meth:`track`, :meth:`spawn` and :meth:`pipe`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self.spawn(self._accept)

    def serve(self, conn: socket.socket) -> None:
        """Handle one accepted connection (on its own thread)."""
        raise NotImplementedError

    def spawn(self, target: Any, *args: Any) -> None:
        """Run ``target(*args)`` on a tracked thread."""
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def track(self, sock: socket.socket) -> socket.socket:
        """Remember a socket so that :meth:`stop` closes it."""
        with self._lock:
            self._sockets.append(sock)
        return sock

    def connect_upstream(self) -> socket.socket:
        """A tracked connection to the upstream port."""
        return self.track(socket.create_connection(("127.0.0.1", self.upstream_port)))

    def pipe_both_ways(self, a: socket.socket, b: socket.socket) -> None:
        """Forward ``a`` ↔ ``b`` until either side ends (this thread does ``a`` → ``b``)."""
        self.spawn(self.pipe, b, a)
        self.pipe(a, b)

    @staticmethod
    def pipe(source: socket.socket, target: socket.socket) -> None:
        """Copy ``source`` to ``target`` until EOF or an error, then shut both down."""
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.spawn(self.serve, self.track(conn))

    def stop(self) -> None:
        """Close the listener and every socket, then join every thread."""
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in threads:
            thread.join(5)
