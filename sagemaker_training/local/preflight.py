"""Before a local job starts: everything it will read or write checked, and its claim taken.

:func:`check` looks at every channel and the artifact destination before
anything starts (a RequestError names what is wrong); :func:`claim` makes
the job the only one using its artifact destination (by name) and its work
dir, for as long as it runs (:mod:`.locks`). :class:`S3Clients` makes one
job's S3 client on first use, from the S3 variables the job was given.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile

from ..errors import TrainingError
from ..storage import transfer
from . import locks
from .embedded_s3 import overlay
from .request import RequestError, TrainingRequest

_LOCK_DIR = f"sagemaker-training-local-{os.getuid()}"  # under the temp dir: who holds which destination


def s3_client(region: str, s3_environ: dict | None):
    """A client for this job: the variables it was given over this process's environment."""
    return transfer.s3_client(region, environ=overlay(s3_environ) if s3_environ else None)


class S3Clients:
    """``client = S3Clients(region, s3_environ)``: ``client()`` is one job's S3
    client, made on first use (a job with no S3 never imports boto3)."""

    def __init__(self, region: str, s3_environ: dict | None):
        self.region, self.s3_environ = region, s3_environ
        self._client = None

    def __call__(self):
        if self._client is None:
            self._client = s3_client(self.region, self.s3_environ)
        return self._client


# ---------------------------------------------------------------------------
# Before anything starts


def _check_local_output(path: str, field: str) -> None:
    """A local S3OutputPath must be a directory that can be made and written."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise RequestError(f"{field}: {path} exists and is not a directory: give a directory for the artifacts.")
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise RequestError(f"{field}: {path} cannot be created: {existing} is not a directory.")
    try:  # the one reliable test: make a folder there (and remove it)
        os.rmdir(tempfile.mkdtemp(prefix=".sagemaker-local-probe-", dir=existing))
    except OSError as exc:
        raise RequestError(f"{field}: nothing can be written under {existing} ({exc.strerror}): "
                           "give a writable directory for the artifacts.") from None


def _bad(field: str, exc: TrainingError) -> RequestError:
    """storage's error about ``field`` as a bad request (its message names the field once)."""
    return RequestError(exc.message if field in exc.message else f"{field}: {exc.message}")


def check(request: TrainingRequest, region: str, client_factory) -> dict:
    """Every channel has data, every key lands inside its channel, and the
    output location can take the artifacts; else a RequestError naming the
    field. Returns the channels' listings (channel name -> transfer.Entry list)."""
    listings = {}
    for channel in request.channels:
        if not channel.is_s3 and not os.path.exists(channel.uri):
            raise RequestError(f"{channel.field}: local path {channel.uri} does not exist.")
        try:
            entries = transfer.list_files(channel.uri, region, what=channel.field,
                                         client=client_factory() if channel.is_s3 else None,
                                         destination=f"the channel directory input/data/{channel.name}")
        except TrainingError as exc:
            raise _bad(channel.field, exc) from None
        if not entries:
            what = "objects under" if channel.is_s3 else "files in"
            raise RequestError(f"{channel.field}: there are no {what} {channel.uri} "
                               f"(channel {channel.name!r} would be empty).")
        if channel.distribution == "ShardedByS3Key" and len(entries) < request.instance_count:
            raise RequestError(f"{channel.field}: ShardedByS3Key over {request.instance_count} instances "
                               f"needs at least as many objects; {channel.uri} has {len(entries)}.")
        listings[channel.name] = entries
    field = "OutputDataConfig.S3OutputPath"
    buckets = [(field, request.output_path)] if transfer.is_s3(request.output_path) else []
    if not buckets:
        _check_local_output(request.output_path, field)
    if request.checkpoint is not None:
        buckets.append(("CheckpointConfig.S3Uri", request.checkpoint.s3_uri))
    for field, uri in buckets:
        try:
            transfer.check_bucket(uri, region, what=field, client=client_factory())
        except TrainingError as exc:
            raise _bad(field, exc) from None
    return listings


def _existing_artifacts(request: TrainingRequest, region: str, client_factory) -> list[str]:
    destination = request.artifact_location("")
    if transfer.is_s3(destination):
        return transfer.list_prefix(destination, region, what="OutputDataConfig.S3OutputPath",
                                   client=client_factory())
    return sorted(os.listdir(destination)) if os.path.isdir(destination) else []


def _lock(path: str, busy: str):
    """``path``'s lock, or a RequestError saying ``busy``."""
    try:
        return locks.acquire(path, busy)
    except locks.Busy as exc:
        raise RequestError(str(exc)) from None


@contextlib.contextmanager
def claim(request: TrainingRequest, work_dir: str, region: str, s3_environ: dict | None, client_factory):
    """Hold the job's artifact destination and work dir, as the API holds a
    job name: a second job with the same name and output path, while the first
    runs or once it left artifacts there, is refused (ResourceInUse), and so is
    a second job in a work dir in use. The locks are flock()s, so they end with
    the process that held them, however it ends."""
    destination = request.artifact_location("")
    endpoint = transfer.endpoint_url(overlay(s3_environ)) if transfer.is_s3(destination) else ""
    digest = hashlib.sha256(f"{endpoint}|{destination}".encode()).hexdigest()[:24]
    in_use = (f"ResourceInUse: training job {request.job_name!r} already writes to {destination}: "
              "give this job another TrainingJobName")
    with contextlib.ExitStack() as held:
        path = os.path.join(tempfile.gettempdir(), _LOCK_DIR, f"{digest}.lock")
        held.callback(locks.release, _lock(path, f"{in_use} (it is running)."), path)
        try:
            existing = _existing_artifacts(request, region, client_factory)
        except TrainingError as exc:
            raise _bad("OutputDataConfig.S3OutputPath", exc) from None
        if existing:
            raise RequestError(f"{in_use} (its artifacts are there: {', '.join(existing[:3])}), or remove them.")
        os.makedirs(work_dir, exist_ok=True)
        path = os.path.join(work_dir, ".sagemaker-local.lock")
        busy = f"ResourceInUse: the work dir {work_dir} is in use by another local job: give another --work-dir."
        held.callback(locks.release, _lock(path, busy), path)
        yield
