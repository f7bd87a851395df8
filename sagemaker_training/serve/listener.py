"""The server's socket: a listen backlog, a cap on open connections, a read timeout.

* The backlog (:data:`LISTEN_BACKLOG`) holds the connections that arrive
  together (100 at once are all answered; socketserver's default of 5 reset
  a third of them).
* At most ``max_connections`` connections are served at once, each by its own
  thread. One more is answered at once with a 503 ``ThrottlingException``
  (which botocore retries) and closed, so idle sockets cannot take the
  server's file descriptors or threads.
* A connection that sends nothing for ``read_timeout`` seconds, between
  requests or inside one (its request line, headers or body), is closed.
* An ``accept`` that fails for want of file descriptors waits a moment
  instead of spinning.
"""

from __future__ import annotations

import errno
import http.server
import json
import socket
import sys
import threading
import time

LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn (4096 on current kernels)
MAX_CONNECTIONS = 256
READ_TIMEOUT = 60.0
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _busy_answer(limit: int) -> bytes:
    body = json.dumps({"__type": "ThrottlingException",
                       "message": f"sagemaker-training serve already has {limit} open connections (its "
                                  f"--max-connections); try again"}).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"Retry-After: 1\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class BoundedServer(http.server.ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def __init__(self, address, handler, max_connections: int = MAX_CONNECTIONS):
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def get_request(self):
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in _OUT_OF_FDS:  # the listening socket stays readable: do not spin on it
                time.sleep(0.05)
            raise

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(_busy_answer(self.max_connections))
                request.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A connection's own failure ends that connection only: one line, no traceback."""
        kind, exc, _ = sys.exc_info()
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            sys.stderr.write(f"sagemaker-training serve: a connection failed: {kind.__name__}: {exc}\n")
