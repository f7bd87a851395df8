"""Pipe mode: every host's FIFOs fed from its channel's objects, as the platform feeds them.

For a channel whose input mode is Pipe, each host gets the FIFO
``input/data/<channel>_0`` before it starts. A thread of local mode's own
process (never ``train``) feeds it: it waits for a reader to open the FIFO,
writes the host's objects in key order (all of them, or its
``ShardedByS3Key`` share), each as it is (or as one RecordIO record with
``RecordWrapperType: RecordIO``, core/recordio.py), then makes the next
epoch's FIFO ``<channel>_1``, closes and removes ``<channel>_0``. A reader
that closes early ends its epoch there (the rest is not sent); the next
FIFO is made all the same. Every object is streamed from S3 or its local
path (storage's ``read_chunks``), so memory holds a chunk, never an object.

Nothing here can hold the job: the hosts' processes decide when it ends.
:meth:`PipeFeeds.stop` (at the job's end, however it ends) releases a
feeder waiting for a reader (it opens the FIFO itself) or for room in the
FIFO (a wake-up pipe its ``poll()`` also watches), and removes the FIFOs.
An error reading an object (it was deleted, S3 failed) stops the hosts and
fails the job with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading

from ..core import recordio
from ..errors import TrainingError

JOIN_SECONDS = 10.0  # how long stop() waits for a feeder that was released


class _Released(Exception):
    """The job is ending: the feeder stops."""


def fifo_name(channel: str, epoch: int) -> str:
    return f"{channel}_{epoch}"


class Feed:
    """One host's FIFOs of one channel, fed by one thread from :meth:`start` to :meth:`stop`.

    ``read(entry)`` streams an object's content in chunks; ``on_error(reason)``
    is called once if the feeding fails."""

    def __init__(self, data_dir: str, channel: str, entries: list, read, *, recordio_wrap: bool = False,
                 host: str = "algo-1", log=None, on_error=None):
        self.data_dir = data_dir
        self.channel = channel
        self.entries = list(entries)
        self.read = read
        self.recordio_wrap = recordio_wrap
        self.host = host
        self.label = f"{host} {channel}"
        self.log = log or (lambda text: None)
        self.on_error = on_error or (lambda reason: None)
        self.epoch = 0
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._opening: str | None = None  # the FIFO the thread waits on (or last waited on)
        self._wake_r = self._wake_w = -1  # the wake-up pipe, from start() to stop()
        self._thread: threading.Thread | None = None

    def path(self, epoch: int) -> str:
        return os.path.join(self.data_dir, fifo_name(self.channel, epoch))

    def prepare(self) -> None:
        """Epoch 0's FIFO, there before the host starts."""
        os.makedirs(self.data_dir, exist_ok=True)
        os.mkfifo(self.path(0), 0o600)

    def start(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"pipe {self.label}", daemon=True)
        self._thread.start()

    # -- the feeder thread ----------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                path = self.path(self.epoch)
                fd = self._open(path)
                try:
                    sent, complete = self._feed(fd)
                except _Released:
                    raise
                except Exception as exc:  # noqa: BLE001 - the hosts stop before the reader sees this end
                    self._failed(exc)
                    raise _Released from None
                finally:
                    try:
                        with self._lock:  # the next FIFO exists before a reader can see this one's end
                            if not self._stopping:
                                os.mkfifo(self.path(self.epoch + 1), 0o600)
                    finally:  # the write end is closed however the next FIFO fared
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(path)
                        os.close(fd)
                if not complete:
                    self.log(f"pipe {self.label}: the reader closed {fifo_name(self.channel, self.epoch)} after "
                             f"{sent} bytes; {fifo_name(self.channel, self.epoch + 1)} is next")
                self.epoch += 1
        except _Released:
            pass
        except Exception as exc:  # noqa: BLE001 - the job fails with the reason
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        detail = exc.reason() if isinstance(exc, TrainingError) else f"PlatformError: {type(exc).__name__}: {exc}"
        self.error = (f"{detail.splitlines()[0].rstrip('.')} (feeding Pipe-mode channel {self.channel!r}, "
                      f"{fifo_name(self.channel, self.epoch)} of {self.host})")
        self.log(f"pipe {self.label}: {self.error}")
        self.on_error(self.error)

    def _open(self, path: str) -> int:
        """The FIFO's write end, once a reader has opened it; :meth:`stop` releases the wait."""
        with self._lock:
            if self._stopping:
                raise _Released
            self._opening = path
        fd = os.open(path, os.O_WRONLY)
        if self._stopping:
            os.close(fd)
            raise _Released
        os.set_blocking(fd, False)
        return fd

    def _feed(self, fd: int) -> tuple[int, bool]:
        """Every object into ``fd``: (bytes sent, whether all were sent before the reader closed)."""
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        poller.register(self._wake_r, select.POLLIN)
        sent = 0
        for entry in self.entries:
            pieces = recordio.frame(lambda e=entry: self.read(e)) if self.recordio_wrap else self.read(entry)
            try:
                for piece in pieces:
                    sent += self._write(fd, poller, piece)
            except BrokenPipeError:
                return sent, False
            finally:
                pieces.close()
        return sent, True

    def _write(self, fd: int, poller, data: bytes) -> int:
        view = memoryview(data)
        while view:
            events = dict(poller.poll())
            if self._wake_r in events:
                raise _Released
            if events.get(fd, 0) & (select.POLLERR | select.POLLHUP):
                raise BrokenPipeError(errno.EPIPE, "the reader closed the FIFO")
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
        return len(data)

    # -- the job's end ------------------------------------------------------------
    def stop(self) -> None:
        """Release the feeder wherever it waits, wait for it, remove this feed's FIFOs."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            waiting_on = self._opening
        if self._thread is not None:
            os.write(self._wake_w, b"x")
        release = None
        if waiting_on is not None:
            with contextlib.suppress(FileNotFoundError):  # our own reader ends a writer's open()
                release = os.open(waiting_on, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if self._thread is not None:
                self._thread.join(JOIN_SECONDS)
                if self._thread.is_alive():
                    self.log(f"pipe {self.label}: the feeder did not end within {JOIN_SECONDS:g}s "
                             "(an S3 read still waiting); leaving it")
        finally:
            if release is not None:
                os.close(release)
        for epoch in (self.epoch, self.epoch + 1):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(epoch))
        if self._thread is not None and not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)


class PipeFeeds:
    """Every Pipe-mode channel of every host of one job."""

    def __init__(self, feeds: list):
        self.feeds = feeds

    @property
    def error(self) -> str | None:
        return next((f.error for f in self.feeds if f.error), None)

    def prepare(self) -> None:
        for feed in self.feeds:
            feed.prepare()

    def start(self) -> None:
        for feed in self.feeds:
            feed.start()

    def stop(self) -> None:
        for feed in self.feeds:
            feed.stop()
