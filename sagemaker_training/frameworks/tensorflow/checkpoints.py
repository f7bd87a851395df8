"""Where a legacy TensorFlow job keeps its checkpoints, and the S3 mirror.

``checkpoint_path`` (a hyperparameter) is the Estimator's ``model_dir``:

* absent: the model dir (``/opt/ml/model``), as the 2017 containers did, so
  the checkpoints travel in ``model.tar.gz``;
* a local path: used as it is;
* ``s3://bucket/prefix``: the Estimator trains against the local directory
  ``/opt/ml/checkpoints`` (the contract's local checkpoint dir) and
  :class:`S3Mirror` keeps the bucket in step with it, through boto3 rather
  than TensorFlow's own S3 filesystem: before training every object under
  the prefix is downloaded (so a second job with a higher
  ``training_steps`` resumes where the first stopped), new and changed files
  are uploaded every ``SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS`` (10) while it
  trains, deleted ones are deleted, and a last sync runs at the end.

In a tuning job (``_tuning_objective_metric`` among the hyperparameters) a
given ``checkpoint_path`` gets ``<job name>/checkpoints`` appended unless it
already ends so, so that the jobs of one tuning run do not share checkpoints.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import logging
import os
import threading

SYNC_ENV = "SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS"
DEFAULT_SYNC_SECONDS = 10.0
INDEX_FILE = "checkpoint"  # tf.train.CheckpointState, rewritten after each save

log = logging.getLogger("sagemaker_training.tensorflow.checkpoints")


def is_s3(path) -> bool:
    return isinstance(path, str) and path.startswith("s3://")


def _join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/"), *parts])
    return os.path.join(base, *parts)


def checkpoint_path(hyperparameters: dict, job_name: str | None, model_dir: str) -> str:
    """The checkpoint location the contract asks for (local path or S3 URI)."""
    given = hyperparameters.get("checkpoint_path")
    if given in (None, ""):
        return model_dir
    given = str(given)
    if "_tuning_objective_metric" not in hyperparameters or not job_name:
        return given
    if given.rstrip("/").endswith(f"{job_name}/checkpoints"):
        return given
    return _join(given, job_name, "checkpoints")


def local_dir_for(path: str, local_checkpoint_dir: str) -> str:
    """The directory the Estimator writes to for ``path``."""
    return local_checkpoint_dir if is_s3(path) else path


def sync_seconds(environ=None) -> float:
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get(SYNC_ENV, DEFAULT_SYNC_SECONDS))
    except ValueError:
        return DEFAULT_SYNC_SECONDS
    return value if value > 0 else DEFAULT_SYNC_SECONDS


def _skipped(relative: str) -> bool:
    """Files TensorFlow is still writing: the saver's ``*_temp`` directories
    and the ``.tempstate`` files of atomic writes."""
    parts = relative.split("/")
    return any(p.endswith("_temp") or ".tempstate" in p or p.endswith(".tmp") for p in parts)


def local_files(local_dir: str) -> dict:
    """relative path (``/``-separated) -> (size, mtime_ns) of every finished file."""
    found = {}
    for root, _dirs, files in os.walk(local_dir):
        for name in files:
            full = os.path.join(root, name)
            relative = os.path.relpath(full, local_dir).replace(os.sep, "/")
            if _skipped(relative):
                continue
            try:
                stat = os.stat(full)
            except FileNotFoundError:  # deleted by the saver while we walked
                continue
            found[relative] = (stat.st_size, stat.st_mtime_ns)
    return found


def _client(region):
    """An S3 client (boto3 only in jobs that use S3; the endpoint from the
    standard AWS variables such as AWS_ENDPOINT_URL_S3)."""
    try:
        from ... import storage  # noqa: PLC0415
    except ImportError:
        storage = None
    if storage is not None and hasattr(storage, "s3_client"):
        return storage.s3_client(region)
    import boto3  # noqa: PLC0415

    return boto3.client("s3", region_name=region)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of ``s3://bucket/prefix``."""
    from ...errors import ClientError  # noqa: PLC0415

    bucket, _, prefix = uri[len("s3://"):].partition("/") if is_s3(uri) else ("", "", "")
    if not bucket:
        raise ClientError(f"checkpoint_path {uri!r} is not an S3 URI of the form s3://bucket/prefix.")
    return bucket, prefix


class S3Mirror:
    """Keeps ``uri`` (an S3 prefix) a copy of ``local_dir``.

    Only the chief of a job writes checkpoints, so only the chief mirrors.
    """

    def __init__(self, uri: str, local_dir: str, region: str | None = None, interval: float | None = None,
                 client=None):
        self.uri = uri
        self.local_dir = local_dir
        self.region = region
        self.interval = sync_seconds() if interval is None else interval
        self.bucket, prefix = parse_s3_uri(uri)
        self.prefix = prefix.strip("/")
        self._client = client
        self.synced: dict = {}  # relative path -> (size, mtime_ns) the bucket holds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    @property
    def client(self):
        if self._client is None:
            self._client = _client(self.region)
        return self._client

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    # -- restore ---------------------------------------------------------
    def restore(self) -> int:
        """Download every object under the prefix; return how many."""
        os.makedirs(self.local_dir, exist_ok=True)
        listing_prefix = f"{self.prefix}/" if self.prefix else ""
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=listing_prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(listing_prefix):]
                if not relative or relative.endswith("/") or _skipped(relative):
                    continue
                target = os.path.join(self.local_dir, *relative.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self.client.download_file(self.bucket, item["Key"], target)
                stat = os.stat(target)
                self.synced[relative] = (stat.st_size, stat.st_mtime_ns)
                count += 1
        if count:
            log.info("restored %d checkpoint files from %s into %s", count, self.uri, self.local_dir)
        return count

    # -- sync ------------------------------------------------------------
    def sync(self) -> int:
        """Upload new and changed files, delete vanished ones; return the number of changes.

        The index file (``checkpoint``) is read *before* the directory is
        scanned and uploaded last, so the bucket's index never names a
        checkpoint whose files are not there yet.
        """
        with self._lock:
            index_path = os.path.join(self.local_dir, INDEX_FILE)
            try:
                with open(index_path, "rb") as f:
                    index = f.read()
                index_stat = os.stat(index_path)
            except FileNotFoundError:
                index, index_stat = None, None
            current = local_files(self.local_dir)
            current.pop(INDEX_FILE, None)
            changes = 0
            for relative, state in sorted(current.items()):
                if self.synced.get(relative) == state:
                    continue
                full = os.path.join(self.local_dir, *relative.split("/"))
                try:
                    self.client.upload_file(full, self.bucket, self.key(relative))
                except FileNotFoundError:  # deleted (an old checkpoint) since the scan
                    continue
                self.synced[relative] = state
                changes += 1
            if index is not None:
                state = (index_stat.st_size, index_stat.st_mtime_ns)
                if self.synced.get(INDEX_FILE) != state:
                    self.client.put_object(Bucket=self.bucket, Key=self.key(INDEX_FILE), Body=index)
                    self.synced[INDEX_FILE] = state
                    changes += 1
            gone = [r for r in self.synced if r != INDEX_FILE and r not in current
                    and not os.path.exists(os.path.join(self.local_dir, *r.split("/")))]
            for start in range(0, len(gone), 1000):
                batch = gone[start:start + 1000]
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": self.key(r)} for r in batch], "Quiet": True})
                for relative in batch:
                    self.synced.pop(relative, None)
                changes += len(batch)
            return changes

    # -- background ------------------------------------------------------
    def start(self) -> None:
        """Sync every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="s3-checkpoint-mirror", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - retried at the next tick, and the final sync raises
                self.error = exc
                log.warning("uploading checkpoints to %s failed (will retry): %s", self.uri, exc)

    def stop(self) -> int:
        """Stop the thread and run the final sync (its errors propagate)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        changes = self.sync()
        log.info("checkpoints in %s are in step with %s", self.uri, self.local_dir)
        return changes
