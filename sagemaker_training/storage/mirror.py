"""A local directory kept in step with an S3 prefix: restore, periodic sync, last sync.

Two users, one logic: the legacy TensorFlow runner's ``checkpoint_path``
mirror (frameworks/tensorflow/checkpoints.py) and the platform's
``CheckpointConfig`` in local mode (local/checkpoints.py). Everything goes
through transfer.py (its URI parser, its errors, its refusal of keys that
would land outside the directory); boto3 is imported only when the mirror
first talks to S3.

:meth:`DirectoryMirror.restore` downloads every object under the prefix;
:meth:`~DirectoryMirror.start` syncs every ``interval`` seconds in a daemon
thread (new and changed files uploaded, deleted ones deleted, files that
``skip`` names left alone, the files in ``last`` uploaded after the rest);
:meth:`~DirectoryMirror.stop` ends the thread and runs the last sync, whose
errors propagate.
"""

from __future__ import annotations

import logging
import os
import threading

from . import transfer


class DirectoryMirror:
    def __init__(self, uri: str, local_dir: str, *, interval: float, what: str, region: str | None = None,
                 client=None, skip=None, last: tuple = (), log: logging.Logger | None = None,
                 thread_name: str = "s3-mirror"):
        transfer.parse_s3_uri(uri, what)
        self.uri = uri
        self.local_dir = local_dir
        self.region = region
        self.interval = interval
        self.what = what
        self.skip = skip
        self.last = tuple(last)
        self.log = log or logging.getLogger("sagemaker_training.mirror")
        self.thread_name = thread_name
        self._client = client
        self.synced: dict = {}  # relative path -> (size, mtime_ns) the bucket holds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    @property
    def client(self):
        if self._client is None:
            self._client = transfer.s3_client(self.region)
        return self._client

    def restore(self) -> int:
        """Download every object under the prefix; return how many."""
        os.makedirs(self.local_dir, exist_ok=True)
        written = transfer.download_prefix(self.uri, self.local_dir, what=self.what, client=self.client,
                                          skip=self.skip)
        for path in written:
            relative = os.path.relpath(path, os.path.abspath(self.local_dir)).replace(os.sep, "/")
            state = os.stat(path)
            self.synced[relative] = (state.st_size, state.st_mtime_ns)
        if written:
            self.log.info("restored %d checkpoint files from %s into %s", len(written), self.uri, self.local_dir)
        return len(written)

    def sync(self) -> int:
        """Upload new and changed files, delete vanished ones; return the number of changes."""
        with self._lock:
            if not os.path.isdir(self.local_dir):
                return 0
            return transfer.sync_directory(self.local_dir, self.uri, self.synced, what=self.what,
                                          client=self.client, skip=self.skip, last=self.last)

    def start(self) -> None:
        """Sync every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - retried at the next tick, and the last sync raises
                self.error = exc
                self.log.warning("uploading checkpoints to %s failed (will retry): %s", self.uri, exc)

    def stop(self) -> int:
        """Stop the thread and run the last sync (its errors propagate)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        changes = self.sync()
        self.log.info("checkpoints in %s are in step with %s", self.uri, self.local_dir)
        return changes
