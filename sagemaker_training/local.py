"""Local mode: a whole training job on this machine, as the platform runs it.

``sagemaker-training local --request request.json`` takes a CreateTrainingJob
request body (local_request.py checks it) and does what the platform does
(CONTRACT.md section 6):

1. a work dir with a base dir per host (``algo-1`` ... ``algo-N``) holding
   the three config files;
2. every channel (an S3 prefix, or a local path) downloaded into every host's
   ``input/data/<channel>`` (``ShardedByS3Key``: each host gets its share);
3. every host's ``train`` started as a real process tree by
   :class:`~sagemaker_training.cluster.LocalCluster`, output prefixed with
   ``[algo-N]``; one host failing stops the others, MaxRuntimeInSeconds stops
   them all;
4. the first host's ``model/`` packed into
   ``<S3OutputPath>/<job>/output/model.tar.gz`` and ``output/data/`` into
   ``output.tar.gz`` beside it;
5. the DescribeTrainingJob response printed as JSON on stdout (logs go to
   stderr); exit code 0 only when the job Completed, 2 for a bad request.

The flags form (``--framework --entry-point --source-dir ...``) builds the
request the way the SageMaker Python SDK's ``fit()`` does: it packs the code
into ``sourcedir.tar.gz``, uploads it, JSON-encodes the hyperparameters.

S3 is whatever the standard AWS variables point at (``AWS_ENDPOINT_URL_S3``
...); ``--embedded-s3`` runs moto's S3 server on loopback for the job's
lifetime instead, so ``s3://`` URIs work with no account.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from .cluster import LocalCluster
from .local_request import (
    ACCOUNT,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_MAX_RUN,
    DEFAULT_VOLUME_GB,
    FRAMEWORKS,
    SCRIPT,
    RequestError,
    TrainingRequest,
    decode_hyperparameter,
    join_location,
    load_request,
    request_from_flags,
    split_s3,
    validate,
)

PROG = "sagemaker-training local"
FAILURE_REASON_LIMIT = 1024
EXIT_COMPLETED, EXIT_NOT_COMPLETED, EXIT_BAD_REQUEST = 0, 1, 2


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def as_uri(location: str) -> str:
    """An s3:// URI as it is; a local path as a file:// URI (as the SDK's local mode shows them)."""
    return location if location.startswith("s3://") else f"file://{location}"


class Log:
    """The job's own lines on stderr (the hosts' lines come from the cluster)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self.lock:
            self.stream.write(f"{PROG}: {message}\n")
            self.stream.flush()

    @property
    def is_terminal(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False


class Progress:
    """A progress bar on a terminal (boto3 calls it from its transfer threads);
    elsewhere one line when the transfer is done."""

    WIDTH = 28

    def __init__(self, log: Log, label: str, total: int, count: int):
        self.log, self.label, self.total, self.count = log, label, max(total, 0), count
        self.done = 0
        self.started = time.monotonic()
        self.shown_at = 0.0
        self.lock = threading.Lock()

    def __call__(self, nbytes: int) -> None:
        with self.lock:
            self.done += nbytes
            if self.log.is_terminal and time.monotonic() - self.shown_at > 0.1:
                self.shown_at = time.monotonic()
                self._draw()

    def _draw(self, end: str = "") -> None:
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        tail = f" [{bar}] {fraction * 100:5.1f}% {_size(self.done)}/{_size(self.total)}{end.rstrip()}"
        room = shutil.get_terminal_size((120, 24)).columns - len(PROG) - 3 - len(tail)
        label = self.label if len(self.label) <= room else "..." + self.label[-max(room - 3, 10):]
        with self.log.lock:
            self.log.stream.write(f"\r{PROG}: {label}{tail}\x1b[K{chr(10) if end else ''}")
            self.log.stream.flush()

    def close(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.log.is_terminal:
            self._draw(end=f" {elapsed:.1f}s\n")
        else:
            files = f"{self.count} file{'s' if self.count != 1 else ''}"
            self.log(f"{self.label}: {files}, {_size(self.total)} in {elapsed:.1f}s")


# ---------------------------------------------------------------------------
# Storage: S3 objects and local files behind one small interface


@dataclass
class Item:
    """One file of a channel or a staged directory: where it is, where it goes."""

    source: str  # s3://bucket/key or a local path
    relative: str  # path below the channel dir
    size: int


def _storage():
    from . import storage  # noqa: PLC0415 - boto3 only when S3 is touched

    return storage


@functools.lru_cache(maxsize=None)
def _client(region: str):
    """One S3 client per region for the whole command (boto3 clients are thread-safe)."""
    return _storage().s3_client(region)


def list_location(uri: str, region: str) -> list[Item]:
    """Every file under an S3 prefix or a local path (a file or a directory).

    An S3 object's path below the channel is its key less the prefix (and a
    leading slash), as SageMaker lays out an ``S3Prefix`` channel.
    """
    if uri.startswith("s3://"):
        bucket, prefix = _storage().parse_s3_uri(uri)
        client = _client(region)
        items = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                relative = key[len(prefix):].lstrip("/") or os.path.basename(key)
                items.append(Item(f"s3://{bucket}/{key}", relative, int(obj.get("Size", 0))))
        return items
    if os.path.isfile(uri):
        return [Item(uri, os.path.basename(uri), os.path.getsize(uri))]
    items = []
    for root, dirs, files in os.walk(uri):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            items.append(Item(path, os.path.relpath(path, uri), os.path.getsize(path)))
    return items


def fetch(item: Item, target: str, region: str, progress: Progress | None = None) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if item.source.startswith("s3://"):
        bucket, key = _storage().parse_s3_uri(item.source)
        _client(region).download_file(bucket, key, target, Callback=progress)
    else:
        shutil.copy2(item.source, target)
        if progress:
            progress(item.size)


def put(path: str, location: str, region: str, progress: Progress | None = None) -> None:
    """Copy a local file to an s3:// URI or a local path."""
    if location.startswith("s3://"):
        bucket, key = _storage().parse_s3_uri(location)
        _client(region).upload_file(path, bucket, key, Callback=progress)
    else:
        os.makedirs(os.path.dirname(location), exist_ok=True)
        shutil.copyfile(path, location)
        if progress:
            progress(os.path.getsize(path))


def transfer(log: Log, label: str, pairs: list[tuple[Item, str]], action) -> None:
    """Run ``action(item, target, progress)`` for every pair, with one progress bar."""
    progress = Progress(log, label, sum(item.size for item, _ in pairs), len(pairs))
    for item, target in pairs:
        action(item, target, progress)
    progress.close()


def make_bucket(bucket: str, region: str) -> None:
    client = _client(region)
    try:
        if region == "us-east-1":
            client.create_bucket(Bucket=bucket)
        else:
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass


def _s3_error(exc: Exception) -> str:
    """What an S3 call's exception means, in a few words."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message') or ''}".strip().rstrip(":")
    return f"{type(exc).__name__}: {exc}"


def bucket_missing(bucket: str, region: str) -> bool:
    from botocore.exceptions import ClientError as BotoClientError  # noqa: PLC0415

    try:
        _client(region).head_bucket(Bucket=bucket)
    except BotoClientError as exc:
        return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket")
    return False


# ---------------------------------------------------------------------------
# The embedded S3 endpoint


class EmbeddedS3:
    """moto's S3 server on 127.0.0.1 (a free port) while the job lives.

    It sets ``AWS_ENDPOINT_URL_S3`` and fake credentials in this process's
    environment (so the hosts, which inherit it, use it too) and puts the
    previous values back when it stops. Its objects live in memory: copy out
    what you want to keep (``--download-artifacts``) before it stops.
    """

    def __init__(self, region: str, log: Log):
        self.region = region
        self.log = log
        self.server = None
        self.endpoint = None
        self._saved: dict = {}

    def __enter__(self):
        try:
            from moto.server import ThreadedMotoServer  # noqa: PLC0415
        except ImportError:
            raise RequestError("--embedded-s3 needs moto's server: pip install 'sagemaker_training[local]' "
                               "(or 'moto[server]').")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        settings = {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": "local-mode",
            "AWS_SECRET_ACCESS_KEY": "local-mode-secret",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            # anything that would point boto3 elsewhere
            "AWS_SESSION_TOKEN": None, "AWS_SECURITY_TOKEN": None, "AWS_PROFILE": None,
            "AWS_ENDPOINT_URL": None, "S3_ENDPOINT_URL": None,
        }
        for name, value in settings.items():
            self._saved[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.log(f"embedded S3 endpoint on {self.endpoint} (in memory, for this job only)")
        return self

    def __exit__(self, *exc):
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self.server is not None:
            self.server.stop()
        return False


# ---------------------------------------------------------------------------
# The job


def check(request: TrainingRequest, region: str) -> dict[str, list[Item]]:
    """Before anything starts: every channel has data and the output bucket exists,
    else a RequestError naming the field. Returns the channels' listings."""
    listings = {}
    for channel in request.channels:
        what = "objects under" if channel.is_s3 else "files in"
        if not channel.is_s3 and not os.path.exists(channel.uri):
            raise RequestError(f"{channel.field}: local path {channel.uri} does not exist.")
        try:
            items = list_location(channel.uri, region)
        except Exception as exc:  # noqa: BLE001 - S3 says why: no bucket, no access, no endpoint
            raise RequestError(f"{channel.field}: cannot list {channel.uri} ({_s3_error(exc)}).")
        if not items:
            raise RequestError(f"{channel.field}: there are no {what} {channel.uri} "
                               f"(channel {channel.name!r} would be empty).")
        if channel.distribution == "ShardedByS3Key" and len(items) < request.instance_count:
            raise RequestError(f"{channel.field}: ShardedByS3Key over {request.instance_count} instances "
                               f"needs at least as many objects; {channel.uri} has {len(items)}.")
        listings[channel.name] = items
    output = request.output_path
    if output.startswith("s3://"):
        bucket, _ = split_s3(output, "OutputDataConfig.S3OutputPath")
        try:
            missing = bucket_missing(bucket, region)
        except Exception as exc:  # noqa: BLE001 - no endpoint, no credentials
            raise RequestError(f"OutputDataConfig.S3OutputPath: cannot reach bucket {bucket!r} "
                               f"({_s3_error(exc)}).")
        if missing:
            raise RequestError(f"OutputDataConfig.S3OutputPath: bucket {bucket!r} does not exist.")
    return listings


class _Cluster(LocalCluster):
    """The hosts of a local-mode job: every line prefixed with its host, one host too."""

    def specs(self):
        specs = super().specs()
        for spec in specs:
            spec.label = spec.name
        return specs


class _Stop(Exception):
    """SIGTERM or SIGINT outside the hosts' run (while downloading or uploading)."""


@contextlib.contextmanager
def _stop_on_signals():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Stop(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class LocalJob:
    """One training job: prepare the hosts, run them, pack, describe."""

    def __init__(self, request: TrainingRequest, work_dir: str, region: str, log: Log,
                 listings: dict | None = None, grace: float = 10.0, created: datetime.datetime | None = None):
        self.request = request
        self.work_dir = os.path.abspath(work_dir)
        self.region = region
        self.log = log
        self.grace = grace
        self.created = created or _now()
        self.started = self.ended = None
        self.status = "InProgress"
        self.secondary = "Starting"
        self.transitions: list[dict] = []
        self.failure_reason: str | None = None
        self.model_location: str | None = None
        self.listings: dict[str, list[Item]] = dict(listings or {})
        self.cluster: _Cluster | None = None
        self._enter("Starting", "Preparing the instances for training")

    # -- status ---------------------------------------------------------------
    def _enter(self, status: str, message: str) -> None:
        moment = _now()
        if self.transitions:
            self.transitions[-1]["EndTime"] = _iso(moment)
        self.transitions.append({"Status": status, "StartTime": _iso(moment), "StatusMessage": message})
        self.secondary = status

    def _finish(self, status: str, secondary: str, message: str) -> None:
        self.status = status
        self.ended = _now()
        self._enter(secondary, message)
        self.transitions[-1]["EndTime"] = self.transitions[-1]["StartTime"]

    @property
    def arn(self) -> str:
        role = self.request.body.get("RoleArn") or ""
        account = role.split(":")[4] if role.count(":") >= 5 else ACCOUNT
        return f"arn:aws:sagemaker:{self.region}:{account}:training-job/{self.request.job_name.lower()}"

    # -- the hosts' disks -----------------------------------------------------------
    def _clean_work_dir(self) -> None:
        """Remove what an earlier job left in the work dir (only our own folders)."""
        os.makedirs(self.work_dir, exist_ok=True)
        for name in os.listdir(self.work_dir):
            path = os.path.join(self.work_dir, name)
            ours = name == "artifacts" or (
                name.startswith("algo-") and os.path.isdir(os.path.join(path, "input", "config")))
            if ours:
                shutil.rmtree(path)

    def prepare(self) -> _Cluster:
        """Work dir, config files and channel data of every host."""
        request = self.request
        self._clean_work_dir()
        cluster = _Cluster(
            self.work_dir, host_count=request.instance_count,
            framework=None if request.framework == SCRIPT else request.framework,
            env=self.host_env(), grace=self.grace,
        )
        cluster.write_config(request.hyperparameters, {c.name: c.data_config() for c in request.channels},
                             encode=False)
        self.started = _now()
        self._enter("Downloading", "Downloading input data")
        for channel in request.channels:
            items = self.listings.get(channel.name)
            if items is None:
                items = self.listings[channel.name] = list_location(channel.uri, self.region)
            self._download_channel(cluster, channel, items)
        self.cluster = cluster
        return cluster

    def _download_channel(self, cluster: _Cluster, channel, items: list[Item]) -> None:
        hosts = cluster.hosts
        dirs = {h: os.path.join(cluster.base_dir(h), "input", "data", channel.name) for h in hosts}
        for path in dirs.values():
            os.makedirs(path, exist_ok=True)
        sharded = channel.distribution == "ShardedByS3Key" and len(hosts) > 1
        if sharded:  # each host its share, objects dealt in key order
            pairs = [(item, os.path.join(dirs[hosts[i % len(hosts)]], item.relative))
                     for i, item in enumerate(items)]
        else:  # once into the first host, then copied to the others
            pairs = [(item, os.path.join(dirs[hosts[0]], item.relative)) for item in items]
        where = "" if channel.is_s3 else " (local path)"
        transfer(self.log, f"channel {channel.name} <- {channel.uri}{where}", pairs,
                 lambda item, target, progress: fetch(item, target, self.region, progress))
        if not sharded:
            for host in hosts[1:]:
                shutil.copytree(dirs[hosts[0]], dirs[host], dirs_exist_ok=True)

    def host_env(self) -> dict:
        env = {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "TRAINING_JOB_NAME": self.request.job_name,
            "TRAINING_JOB_ARN": self.arn,
        }
        env.update(self.request.environment)
        return env

    # -- running ----------------------------------------------------------------
    def run(self) -> dict:
        """The whole job; returns the DescribeTrainingJob response."""
        try:
            with _stop_on_signals():
                cluster = self.prepare()
            remaining = self.request.max_run - (_now() - self.started).total_seconds()
            if remaining <= 0:
                return self._stopped_by_deadline()
            self._enter("Training", "Training image download completed. Training in progress.")
            hosts = ", ".join(cluster.hosts)
            self.log(f"starting {len(cluster.hosts)} host{'s' if len(cluster.hosts) > 1 else ''} ({hosts}) "
                     f"in {self.work_dir}, framework {self.request.framework}")
            result = cluster.run(max_run=remaining, out=sys.stderr, err=sys.stderr)
            outcome = result.outcome
            with _stop_on_signals():
                if outcome.failure is not None:
                    reason = result.failure_reason or "the training failed"
                    try:  # what the job wrote to output/data helps to debug it; the reason stays the job's
                        self._upload_output_data()
                    except Exception as exc:  # noqa: BLE001
                        self.log(f"could not upload output.tar.gz: {type(exc).__name__}: {exc}")
                    self._fail(reason)
                elif outcome.timed_out:
                    self._upload_artifacts()
                    return self._stopped_by_deadline()
                elif outcome.stopped_by is not None:
                    self._upload_artifacts()
                    self._finish("Stopped", "Stopped", "Training job stopped by the user (a signal).")
                else:
                    self._upload_artifacts()
                    self._finish("Completed", "Completed", "Training job completed")
        except _Stop:
            self._finish("Stopped", "Stopped", "Training job stopped by the user (a signal).")
        except Exception as exc:  # noqa: BLE001 - S3 and disks: the job fails with the reason
            self._fail(f"PlatformError: {self.secondary.lower()} failed: {type(exc).__name__}: {exc}")
        return self.describe()

    def _fail(self, reason: str) -> None:
        self.failure_reason = reason[:FAILURE_REASON_LIMIT]
        self.model_location = None
        self._finish("Failed", "Failed", reason.splitlines()[0][:200] if reason else "Training job failed")

    def _stopped_by_deadline(self) -> dict:
        self._finish("Stopped", "MaxRuntimeExceeded",
                     f"Training job stopped: it ran past MaxRuntimeInSeconds ({self.request.max_run}s).")
        return self.describe()

    def _pack(self, directory: str, name: str) -> str:
        from . import archives  # noqa: PLC0415

        os.makedirs(directory, exist_ok=True)
        staging = os.path.join(self.work_dir, "artifacts")
        os.makedirs(staging, exist_ok=True)
        archive = os.path.join(staging, name)
        archives.pack_directory(directory, archive)
        return archive

    def _upload(self, archive: str) -> str:
        location = self.request.artifact_location(os.path.basename(archive))
        item = Item(archive, os.path.basename(archive), os.path.getsize(archive))
        transfer(self.log, f"{item.relative} -> {location}", [(item, location)],
                 lambda item, target, progress: put(item.source, target, self.region, progress))
        return location

    def _upload_output_data(self) -> None:
        base = self.cluster.base_dir(self.cluster.hosts[0])
        self._upload(self._pack(os.path.join(base, "output", "data"), "output.tar.gz"))

    def _upload_artifacts(self) -> None:
        """model.tar.gz and output.tar.gz of the first host, as the platform uploads them."""
        self._enter("Uploading", "Uploading generated training model")
        base = self.cluster.base_dir(self.cluster.hosts[0])
        self.model_location = self._upload(self._pack(os.path.join(base, "model"), "model.tar.gz"))
        self._upload_output_data()

    # -- the answer -------------------------------------------------------------
    def describe(self) -> dict:
        body = self.request.body
        answer = {
            "TrainingJobName": self.request.job_name,
            "TrainingJobArn": self.arn,
        }
        if self.model_location:
            answer["ModelArtifacts"] = {"S3ModelArtifacts": as_uri(self.model_location)}
        answer["TrainingJobStatus"] = self.status
        answer["SecondaryStatus"] = self.secondary
        if self.failure_reason:
            answer["FailureReason"] = self.failure_reason
        answer["HyperParameters"] = body.get("HyperParameters", {})
        answer["AlgorithmSpecification"] = body["AlgorithmSpecification"]
        if body.get("RoleArn"):
            answer["RoleArn"] = body["RoleArn"]
        if body.get("InputDataConfig"):
            answer["InputDataConfig"] = body["InputDataConfig"]
        answer["OutputDataConfig"] = body["OutputDataConfig"]
        answer["ResourceConfig"] = body["ResourceConfig"]
        answer["StoppingCondition"] = {**body["StoppingCondition"], "MaxRuntimeInSeconds": self.request.max_run}
        answer["CreationTime"] = _iso(self.created)
        if self.started:
            answer["TrainingStartTime"] = _iso(self.started)
        if self.ended:
            answer["TrainingEndTime"] = _iso(self.ended)
        answer["LastModifiedTime"] = _iso(self.ended or _now())
        answer["SecondaryStatusTransitions"] = self.transitions
        for name in ("Environment", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                     "EnableManagedSpotTraining", "DebugHookConfig", "ProfilerConfig", "ExperimentConfig",
                     "TensorBoardOutputConfig", "RetryStrategy"):
            if name in body:
                answer[name] = body[name]
        if self.started and self.ended:
            seconds = max(1, int(round((self.ended - self.started).total_seconds())))
            answer["TrainingTimeInSeconds"] = seconds
            answer["BillableTimeInSeconds"] = seconds
        return answer

    # -- --prepare-only -----------------------------------------------------------
    def localize_code(self, embedded: bool) -> None:
        """For --prepare-only: put the code into every host's ``code/`` when the
        container could not fetch it itself (a local path, or the embedded S3
        that stops with this command), and drop sagemaker_submit_directory so
        that ``train`` uses ``code/`` as it is."""
        raw = self.request.hyperparameters.get("sagemaker_submit_directory")
        submit = decode_hyperparameter(raw)
        if not isinstance(submit, str) or (submit.startswith("s3://") and not embedded):
            return
        storage = _storage()
        for host in self.cluster.hosts:
            base = self.cluster.base_dir(host)
            storage.fetch_submit_dir(submit, os.path.join(base, "code"), self.region)
            path = os.path.join(base, "input", "config", "hyperparameters.json")
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
            values.pop("sagemaker_submit_directory", None)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(values, f, indent=1)


# ---------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a whole training job on this machine, as the platform would: the hosts as process "
                    "trees, channels from S3 or local paths, artifacts packed to the output path. Give a "
                    "CreateTrainingJob request (--request) or the SDK-like flags (--entry-point ...). stdout ends "
                    "with the DescribeTrainingJob JSON; exit code 0 only when the job Completed, 2 for a bad "
                    "request.",
    )
    form = parser.add_argument_group("the job as a CreateTrainingJob request")
    form.add_argument("--request", metavar="FILE", help="request body in the API's JSON shape ('-' reads stdin)")

    flags = parser.add_argument_group("the job as the SDK's estimator and fit() arguments")
    flags.add_argument("--framework", choices=(*FRAMEWORKS, SCRIPT),
                       help="framework runner (default: the one TrainingImage names); 'script': no framework")
    flags.add_argument("--entry-point", metavar="FILE", help="the training script (relative to --source-dir)")
    flags.add_argument("--source-dir", metavar="DIR", help="directory packed into sourcedir.tar.gz")
    flags.add_argument("--hyperparameter", action="append", metavar="NAME=VALUE",
                       help="repeatable; VALUE is JSON when it parses (0.1, [1,2]) else a string")
    flags.add_argument("--training-steps", type=int, metavar="N")
    flags.add_argument("--evaluation-steps", type=int, metavar="N")
    flags.add_argument("--checkpoint-path", metavar="URI", help="s3:// URI or local path")
    flags.add_argument("--instance-count", type=int, default=1, metavar="N")
    flags.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    flags.add_argument("--volume-size", type=int, default=DEFAULT_VOLUME_GB, metavar="GB")
    flags.add_argument("--channel", action="append", metavar="NAME=URI",
                       help="repeatable; an s3:// prefix or a local path (a bare URI is the 'training' channel)")
    flags.add_argument("--output-path", metavar="URI",
                       help="s3:// prefix or local directory for the artifacts (default with --embedded-s3: "
                            f"s3://sagemaker-REGION-{ACCOUNT})")
    flags.add_argument("--code-location", metavar="URI",
                       help="where sourcedir.tar.gz goes: <URI>/<job>/source/ (default: the output path)")
    flags.add_argument("--max-run", type=int, default=DEFAULT_MAX_RUN, metavar="SECONDS")
    flags.add_argument("--job-name")
    flags.add_argument("--role", metavar="ARN", help="RoleArn (recorded; nothing is assumed)")

    run = parser.add_argument_group("how it runs")
    run.add_argument("--region", help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)")
    run.add_argument("--embedded-s3", action="store_true",
                     help="run an in-memory S3 endpoint (moto) on loopback for the job's lifetime")
    run.add_argument("--upload-data", action="append", metavar="PATH=S3URI",
                     help="repeatable; copy a local file or directory to S3 first (like the SDK's upload_data), "
                          "e.g. to fill the embedded S3 with a channel's data")
    run.add_argument("--work-dir", metavar="DIR", help="the job's work dir (default: a temporary one)")
    run.add_argument("--keep", action="store_true", help="keep the temporary work dir")
    run.add_argument("--download-artifacts", metavar="DIR",
                     help="copy model.tar.gz and output.tar.gz to DIR/<job>/ at the end")
    run.add_argument("--prepare-only", action="store_true",
                     help="write the hosts' base dirs (config, channel data, code) into the work dir, print "
                          "their paths, run nothing (for docker/run-local.sh)")
    run.add_argument("--stop-grace", type=float, default=10.0, metavar="SECONDS",
                     help="after SIGTERM, how long the hosts get before SIGKILL (default 10)")
    return parser


_FLAG_NAMES = ("entry_point", "source_dir", "hyperparameter", "training_steps", "evaluation_steps",
               "checkpoint_path", "channel", "output_path", "code_location", "job_name", "role")


def _region(args) -> str:
    return args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _upload_tree(log: Log, path: str, uri: str, region: str) -> None:
    items = list_location(path, region)
    if not items:
        raise RequestError(f"--upload-data {path}: nothing to upload.")
    if os.path.isfile(path):
        pairs = [(items[0], uri if not uri.endswith("/") else uri + items[0].relative)]
    else:
        pairs = [(item, join_location(uri.rstrip("/"), *item.relative.split(os.sep))) for item in items]
    transfer(log, f"upload {path} -> {uri}", pairs,
             lambda item, target, progress: put(item.source, target, region, progress))


def _pack_source(source, work_dir: str) -> str:
    """sourcedir.tar.gz of the source dir (or of the entry point alone), as the SDK packs it."""
    from . import archives  # noqa: PLC0415

    archive = os.path.join(work_dir, "sourcedir.tar.gz")
    if source.source_dir:
        archives.pack_directory(source.source_dir, archive)
    else:
        single = os.path.join(work_dir, "single-file-source")
        os.makedirs(single, exist_ok=True)
        shutil.copy2(source.entry_path, os.path.join(single, source.entry_point))
        archives.pack_directory(single, archive)
        shutil.rmtree(single)
    return archive


def run_command(args, log: Log) -> int:
    using_flags = [name for name in _FLAG_NAMES if getattr(args, name) not in (None, [], False)]
    if args.request and using_flags:
        raise RequestError(f"--request and --{using_flags[0].replace('_', '-')} do not go together: "
                           "give the job either as a request file or as flags.")
    if not args.request and not args.entry_point:
        raise RequestError("give the job as --request FILE, or as flags starting with --entry-point "
                           "(see --help).")
    if args.keep and args.work_dir:
        log("--work-dir is always kept; --keep changes nothing")
    region = _region(args)
    uploads = []
    for item in args.upload_data or []:
        path, sep, uri = item.partition("=s3://")
        if not sep or not path:
            raise RequestError(f"--upload-data {item!r} must be PATH=s3://bucket/prefix.")
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(path):
            raise RequestError(f"--upload-data {path}: no such file or directory.")
        uri = "s3://" + uri
        split_s3(uri, f"--upload-data {item}")
        uploads.append((path, uri))

    created = _now()
    source = None
    if args.request:
        body = load_request(args.request)
    else:
        default_output = f"s3://sagemaker-{region}-{ACCOUNT}" if args.embedded_s3 else None
        body, source = request_from_flags(args, region, default_output)
    request = validate(body, framework=args.framework)

    with contextlib.ExitStack() as stack:
        embedded = stack.enter_context(EmbeddedS3(region, log)) if args.embedded_s3 else None
        if embedded:
            written = request.written_s3_uris() + [uri for _, uri in uploads]
            for bucket in sorted({split_s3(uri, "an S3 URI")[0] for uri in written}):
                make_bucket(bucket, region)
        for path, uri in uploads:
            _upload_tree(log, path, uri, region)

        listings = check(request, region)
        work_dir = args.work_dir or tempfile.mkdtemp(prefix=f"sagemaker-local-{request.job_name}-")
        if not args.work_dir and not args.keep and not args.prepare_only:
            stack.callback(shutil.rmtree, work_dir, True)
        job = LocalJob(request, work_dir, region, log, listings=listings, grace=args.stop_grace, created=created)
        if source is not None:  # the flags form: the code goes where the request says it is
            os.makedirs(work_dir, exist_ok=True)
            archive = _pack_source(source, work_dir)
            item = Item(archive, "sourcedir.tar.gz", os.path.getsize(archive))
            transfer(log, f"sourcedir.tar.gz -> {source.upload_to}", [(item, source.upload_to)],
                     lambda item, target, progress: put(item.source, target, region, progress))
            os.remove(archive)

        if args.prepare_only:
            job.prepare()
            job.localize_code(embedded=embedded is not None)
            hosts = {h: job.cluster.base_dir(h) for h in job.cluster.hosts}
            print(json.dumps({"TrainingJobName": request.job_name, "WorkDir": job.work_dir,
                              "Framework": request.framework, "Hosts": hosts}, indent=2))
            log(f"prepared {len(hosts)} host dir(s) in {job.work_dir}; run them with docker/run-local.sh IMAGE "
                f"{job.work_dir}, or without Docker: SAGEMAKER_BASE_DIR={hosts['algo-1']} train")
            return EXIT_COMPLETED

        description = job.run()
        if args.download_artifacts:
            _download_artifacts(log, request, args.download_artifacts, region)
        elif embedded and job.model_location:
            log("the embedded S3 stops now and its objects with it: use --download-artifacts DIR to keep them")
        if args.work_dir or args.keep:
            log(f"work dir kept: {work_dir}")
        if job.model_location:
            log(f"model artifacts: {as_uri(job.model_location)}")
        ending = description["SecondaryStatusTransitions"][-1]["StatusMessage"]
        log(f"{request.job_name}: {description['TrainingJobStatus']} ({description['SecondaryStatus']}): {ending}")
        print(json.dumps(description, indent=2))
        sys.stdout.flush()
        return EXIT_COMPLETED if description["TrainingJobStatus"] == "Completed" else EXIT_NOT_COMPLETED


def _download_artifacts(log: Log, request: TrainingRequest, directory: str, region: str) -> None:
    target_dir = os.path.join(os.path.abspath(directory), request.job_name)
    for name in ("model.tar.gz", "output.tar.gz"):
        location = request.artifact_location(name)
        target = os.path.join(target_dir, name)
        try:
            if location.startswith("s3://"):
                items = [i for i in list_location(location, region) if i.source == location]
            else:
                items = [Item(location, name, os.path.getsize(location))] if os.path.isfile(location) else []
        except Exception as exc:  # noqa: BLE001 - a copy for convenience; the job's result stands
            log(f"could not list {location}: {exc}")
            continue
        if not items:
            continue
        transfer(log, f"{name} -> {target}", [(items[0], target)],
                 lambda item, target, progress: fetch(item, target, region, progress))
        log(f"{name} copied to {target}")


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    log = Log()
    try:
        return run_command(args, log)
    except RequestError as exc:
        sys.stderr.write(f"{PROG}: bad request: {exc}\n")
        return EXIT_BAD_REQUEST
