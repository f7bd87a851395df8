"""``CheckpointConfig`` in local mode, as the platform honours it.

On the platform every instance's ``LocalPath`` (default
``/opt/ml/checkpoints``) is filled from ``S3Uri`` before the training
starts, and whatever appears there is uploaded to ``S3Uri`` while the job
runs and once more at its end, whatever the end (a stopped job included),
so a job run again with the same ``S3Uri`` resumes from there.

Here each host's ``/opt/ml`` is its base dir (``<work dir>/algo-N``), so
``LocalPath`` maps into it: ``/opt/ml/checkpoints`` is
``<base>/checkpoints`` (CONTRACT.md's checkpoint dir), ``/opt/ml/X/Y`` is
``<base>/X/Y``. A path outside ``/opt/ml`` would be one directory that
every host and every job on this machine shares, so it is refused, and so
are ``/opt/ml`` itself and anything under ``/opt/ml/input`` (the config
files and channels the platform writes).

Each host's directory is kept in step with ``S3Uri`` by its own
:class:`~.dir_mirror.DirectoryMirror` (the logic the TensorFlow checkpoint
mirror uses), every ``SAGEMAKER_CHECKPOINT_SYNC_SECONDS`` (10) seconds.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass

from .. import params
from ..core import settings
from ..storage.uri import is_s3
from ..storage import transfer
from ..storage.mirror import DirectoryMirror
from ..errors import ClientError, TrainingError

SYNC_ENV = "SAGEMAKER_CHECKPOINT_SYNC_SECONDS"
DEFAULT_SYNC_SECONDS = 10.0
DEFAULT_LOCAL_PATH = params.CHECKPOINTS_DIR
_ROOT = params.BASE_DIR
_FIELD = "CheckpointConfig"


@dataclass(frozen=True)
class CheckpointConfig:
    s3_uri: str
    local_path: str  # as given (or the default), e.g. /opt/ml/checkpoints
    relative: str  # the same below a host's base dir, e.g. checkpoints

    def host_dir(self, base_dir: str) -> str:
        return os.path.join(base_dir, *self.relative.split("/"))


def read(body: dict, fail) -> CheckpointConfig | None:
    """The request's CheckpointConfig, or None; ``fail(message)`` raises for a bad one."""
    config = body.get(_FIELD)
    if config is None:
        return None
    if not isinstance(config, dict):
        fail(f"{_FIELD} must be an object with S3Uri and, optionally, LocalPath.")
    unknown = sorted(set(config) - {"S3Uri", "LocalPath"})
    if unknown:
        fail(f"{_FIELD}.{unknown[0]} is not a field of CheckpointConfig (S3Uri, LocalPath).")
    uri = config.get("S3Uri")
    if not is_s3(uri):
        fail(f"{_FIELD}.S3Uri is required and must be an s3:// URI (where the checkpoints are kept), "
             f"got {uri!r}.")
    try:
        transfer.parse_s3_uri(uri, f"{_FIELD}.S3Uri")
    except ClientError as exc:
        fail(exc.message)
    local_path = config.get("LocalPath") or DEFAULT_LOCAL_PATH
    if not isinstance(local_path, str) or not local_path.startswith("/"):
        fail(f"{_FIELD}.LocalPath must be an absolute path in the container, got {local_path!r}.")
    normal = posixpath.normpath(local_path)
    relative = posixpath.relpath(normal, _ROOT)
    if relative.startswith("..") or relative == ".":
        fail(f"{_FIELD}.LocalPath {local_path} is outside {_ROOT}: local mode gives each host its own {_ROOT} "
             f"(its base dir), and a path outside it would be shared by every host and job on this machine; "
             f"use {DEFAULT_LOCAL_PATH} (the default) or another directory below {_ROOT}.")
    if relative == "input" or relative.startswith("input/"):
        fail(f"{_FIELD}.LocalPath {local_path} is under {_ROOT}/input, where the platform writes the job's "
             f"config files and channels; use {DEFAULT_LOCAL_PATH} (the default).")
    return CheckpointConfig(s3_uri=uri, local_path=local_path, relative=relative)


def sync_seconds(environ=None) -> float:
    return settings.number(SYNC_ENV, DEFAULT_SYNC_SECONDS, minimum=0.01, environ=environ)


class HostCheckpoints:
    """Every host's checkpoint dir mirrored to ``S3Uri``: ``restore()`` before the
    hosts start, ``start()`` while they run, ``stop()`` at the end (the last sync)."""

    def __init__(self, config: CheckpointConfig, base_dirs: list[str], client, log):
        interval = sync_seconds()
        self.config = config
        self.log = log
        self.mirrors = [DirectoryMirror(config.s3_uri, config.host_dir(base), interval=interval,
                                        what=f"{_FIELD}.S3Uri", client=client, thread_name="checkpoint-sync")
                        for base in base_dirs]

    def restore(self) -> int:
        """``S3Uri`` into the first host's dir, copied to the others; how many files."""
        first, *others = self.mirrors
        count = first.restore()
        for mirror in others:
            shutil.copytree(first.local_dir, mirror.local_dir, dirs_exist_ok=True, copy_function=shutil.copy2)
            mirror.synced = dict(_states(mirror.local_dir, first.synced))
        self.log(f"checkpoints {self.config.s3_uri} -> {self.config.local_path}: {count} file(s) restored")
        return count

    def start(self) -> None:
        for mirror in self.mirrors:
            mirror.start()

    def stop(self) -> int:
        """The last sync of every host; the first error propagates after all were tried."""
        changes, error = 0, None
        for mirror in self.mirrors:
            try:
                changes += mirror.stop()
            except Exception as exc:  # noqa: BLE001 - the other hosts' checkpoints still go up
                error = error or exc
        if error is not None:
            raise error
        self.log(f"checkpoints {self.config.local_path} -> {self.config.s3_uri}: in step ({changes} change(s))")
        return changes

    def finish(self, job_succeeded: bool) -> None:
        """The last sync; when the job failed, it keeps its own reason (the upload's error is logged)."""
        try:
            self.stop()
        except TrainingError as exc:
            if job_succeeded:
                raise
            self.log(f"could not upload the checkpoints: {exc.message}")


def _states(local_dir: str, relatives) -> dict:
    """relative path -> (size, mtime_ns) of the copied files, as the bucket holds them."""
    found = {}
    for relative in relatives:
        path = os.path.join(local_dir, *relative.split("/"))
        if os.path.isfile(path):
            state = os.stat(path)
            found[relative] = (state.st_size, state.st_mtime_ns)
    return found
