"""One training job on this machine, as the platform runs it (CONTRACT.md section 6).

:class:`LocalJob` (once preflight.py's ``check`` and ``claim`` have passed) drives a :class:`~sagemaker_training.local.state.JobState`
through the platform's steps:

1. a base dir per host (``algo-1`` ... ``algo-N``) with the three config
   files, written once;
2. every channel (an S3 prefix or a local path) downloaded into every host's
   ``input/data/<channel>`` (``ShardedByS3Key``: each host its share); a
   Pipe-mode channel instead gets its FIFOs ``input/data/<channel>_<epoch>``,
   fed while the hosts run (pipes.py);
3. every host's ``train`` as a real process tree (cluster.py), one failing
   stops the others, MaxRuntimeInSeconds stops them all;
4. ``CheckpointConfig``: every host's checkpoint dir restored from its
   ``S3Uri`` before the hosts start, and uploaded while they run and at the
   end (checkpoints.py);
5. the first host's ``model/`` packed into
   ``<S3OutputPath>/<job>/output/model.tar.gz``, ``output/data/`` into
   ``output.tar.gz`` beside it.

All S3 and file copies go through transfer.py, with one client per job made
from the S3 variables the job was given (``s3_environ``: the embedded
endpoint's, or none for this process's own); the hosts get the same
variables. Nothing here reads or changes this process's os.environ for S3.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile

from ..archives import tarball
from . import channels
from ..storage import transfer
from ..supervision import signals
from ..host import submit_dir
from .cluster import LocalCluster
from .. import params
from ..errors import TrainingError
from ..frameworks.tensorflow import api as tf_api
from ..storage.uri import is_prefix
from .checkpoints import HostCheckpoints
from .pipes import PipeFeeds
from .progress import Log, Transfer
from .preflight import S3Clients
from .request import SCRIPT, TrainingRequest
from .state import JobState, arn, describe, now

# ---------------------------------------------------------------------------
# The job


class _Cluster(LocalCluster):
    """The hosts of a local-mode job: every line prefixed with its host, one host too."""

    def specs(self):
        specs = super().specs()
        for spec in specs:
            spec.label = spec.name
        return specs


class _Stop(Exception):
    """SIGTERM or SIGINT outside the hosts' run (while downloading or uploading)."""


def _raise_stop(signum, frame):  # noqa: ARG001
    raise _Stop(signum)


def _stop_on_signals():
    return signals.handling(_raise_stop)


class LocalJob:
    """One training job: prepare the hosts, run them, pack, upload; ``describe()`` at any time."""

    def __init__(self, request: TrainingRequest, work_dir: str, region: str, log: Log, *,
                 s3_environ: dict | None = None, listings: dict | None = None, grace: float = 10.0,
                 created=None, state: JobState | None = None):
        self.request = request
        self.work_dir = os.path.abspath(work_dir)
        self.region = region
        self.log = log
        self.grace = grace
        self.s3_environ = dict(s3_environ or {})
        self.state = state or JobState(created)  # a server passes one that reports its changes
        self.listings = dict(listings or {})
        self.cluster: _Cluster | None = None
        self.checkpoints: HostCheckpoints | None = None
        self.pipes = PipeFeeds([])
        self.undelivered: list[str] = []  # artifacts that did not reach their destination
        self.client = S3Clients(region, self.s3_environ)

    def describe(self) -> dict:
        return describe(self.request, self.state, self.region)

    def host_env(self) -> dict:
        env = {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "TRAINING_JOB_NAME": self.request.job_name,
            "TRAINING_JOB_ARN": arn(self.request, self.region),
        }
        env.update(self.s3_environ)
        # TensorFlow 1.x or 2 from the TrainingImage's tag, unless the request or the caller says
        env.update(tf_api.host_env(self.request.image, self.request.environment, os.environ))
        env.update(self.request.environment)
        return env

    # -- the hosts' disks ----------------------------------------------------------
    def _clean_work_dir(self) -> None:
        """Remove what an earlier job left in the work dir (only our own folders)."""
        os.makedirs(self.work_dir, exist_ok=True)
        for name in os.listdir(self.work_dir):
            path = os.path.join(self.work_dir, name)
            ours = name == "artifacts" or (
                name.startswith("algo-") and os.path.isdir(os.path.join(path, "input", "config")))
            if ours:
                shutil.rmtree(path)

    def prepare(self, localize_code: bool = False) -> _Cluster:
        """Work dir, config files and channel data of every host.

        ``localize_code`` (--prepare-only): code that a container could not
        fetch itself (a local path, or the embedded S3 that stops with this
        command) goes into every host's ``code/`` now, and hyperparameters.json
        is written without sagemaker_submit_directory, so that ``train`` uses
        ``code/`` as it is."""
        request = self.request
        self._clean_work_dir()
        cluster = _Cluster(self.work_dir, host_count=request.instance_count,
                           framework=None if request.framework == SCRIPT else request.framework,
                           env=self.host_env(), grace=self.grace,
                           # --prepare-only's dirs are for containers, where the platform's interface is eth0
                           network_interface_name="eth0" if localize_code else "lo")
        hyperparameters = dict(request.hyperparameters)
        submit = request.decoded.get(params.SUBMIT_DIRECTORY)
        # a container fetches code from a real S3 itself; a local path or the embedded S3 it could not
        localize_code = localize_code and isinstance(submit, str) and bool(submit) and (
            not transfer.is_s3(submit) or bool(self.s3_environ))
        if localize_code:
            del hyperparameters[params.SUBMIT_DIRECTORY]
        cluster.write_config(hyperparameters, {c.name: c.data_config() for c in request.channels}, encode=False)
        if localize_code:
            self._localize_code(cluster, submit)
        self.state.enter("Downloading", "Downloading input data")
        feeds = []
        for channel in request.channels:
            entries = self.listings.get(channel.name)
            if entries is None:
                entries = self.listings[channel.name] = transfer.list_files(
                    channel.uri, self.region, what=channel.field, client=self.client() if channel.is_s3 else None)
            client = self.client() if channel.is_s3 else None
            if channel.input_mode == "Pipe":
                feeds.extend(channels.pipe_feeds(cluster, channel, entries, self.region, client, self.log))
            else:  # File, and FastFile (run as File)
                channels.download(cluster, channel, entries, self.region, client, self.log)
        self.pipes = PipeFeeds(feeds)
        self.pipes.prepare()
        if request.checkpoint is not None:  # CheckpointConfig: S3Uri into every host's LocalPath
            self.checkpoints = HostCheckpoints(request.checkpoint, [cluster.base_dir(h) for h in cluster.hosts],
                                               self.client(), self.log)
            self.checkpoints.restore()
        self.cluster = cluster
        return cluster

    def _localize_code(self, cluster: _Cluster, submit: str) -> None:
        with tempfile.TemporaryDirectory(prefix="code-", dir=self.work_dir) as scratch:
            source = submit
            if transfer.is_s3(submit):
                what = params.SUBMIT_DIRECTORY
                if is_prefix(submit):
                    source = os.path.join(scratch, "code")
                    transfer.download_prefix(submit, source, self.region, what=what, client=self.client())
                else:
                    source = transfer.download_file(submit, os.path.join(scratch, os.path.basename(submit)),
                                                   self.region, what=what, client=self.client())
            for host in cluster.hosts:
                submit_dir.fetch_submit_dir(source, os.path.join(cluster.base_dir(host), "code"), self.region)

    # -- running ----------------------------------------------------------------
    def run(self) -> dict:
        """The whole job; returns the DescribeTrainingJob response."""
        state = self.state
        try:
            with _stop_on_signals():
                cluster = self.prepare()
            remaining = self.request.max_run - (now() - state.started).total_seconds()
            if remaining <= 0:
                state.stopped(max_run=self.request.max_run)
                return self.describe()
            state.enter("Training", "Training image download completed. Training in progress.")
            hosts = ", ".join(cluster.hosts)
            self.log(f"starting {len(cluster.hosts)} host{'s' if len(cluster.hosts) > 1 else ''} ({hosts}) "
                     f"in {self.work_dir}, framework {self.request.framework}")
            if self.checkpoints is not None:
                self.checkpoints.start()
            self.pipes.start()
            try:
                result = cluster.run(max_run=remaining, out=sys.stderr, err=sys.stderr)
            finally:  # the hosts have ended: no reader is left, whatever a feeder waits for
                self.pipes.stop()
            outcome = result.outcome
            with _stop_on_signals():
                if self.pipes.error is not None:  # the hosts were stopped for it
                    state.failed(self.pipes.error)
                    return self.describe()
                if self.checkpoints is not None:  # up once more, whatever the end
                    self.checkpoints.finish(job_succeeded=outcome.failure is None)
                if outcome.failure is not None:
                    try:  # what the job wrote to output/data helps to debug it; the reason stays the job's
                        self._upload_output_data()
                    except Exception as exc:  # noqa: BLE001 - logged; the work dir keeps output/data
                        detail = exc.message if isinstance(exc, TrainingError) else f"{type(exc).__name__}: {exc}"
                        self.log(f"could not upload output.tar.gz: {detail}")
                    state.failed(result.failure_reason or "the training failed")
                    return self.describe()
                model = self._upload_artifacts()
                if outcome.timed_out:
                    state.stopped(model, max_run=self.request.max_run)
                elif outcome.stopped_by is not None:
                    state.stopped(model)
                else:
                    state.completed(model)
        except _Stop:
            state.stopped()
        except TrainingError as exc:  # S3 and disks: the job fails with the reason
            state.failed(self._kept(exc.reason()))
        except Exception as exc:  # noqa: BLE001 - a bug of ours still ends the job with a reason
            state.failed(self._kept(f"PlatformError: {state.secondary.lower()} failed: "
                                    f"{type(exc).__name__}: {exc}"))
        return self.describe()

    def _kept(self, reason: str) -> str:
        if not self.undelivered:
            return reason
        head, _, rest = reason.partition("\n")
        return f"{head.rstrip()} The artifacts are kept in {', '.join(self.undelivered)}.\n{rest}"

    def _deliver(self, directory: str, name: str) -> str:
        """Pack ``directory`` into ``name`` and store it at its artifact location."""
        location = self.request.artifact_location(name)
        try:
            os.makedirs(directory, exist_ok=True)
            # what the job wrote is packed as it is: its links are never followed out of the directory
            archive = tarball.pack_directory(directory, os.path.join(self.work_dir, "artifacts", name),
                                              follow_outside_files=False)
            with Transfer(self.log, f"{name} -> {location}", os.path.getsize(archive), 1) as progress:
                transfer.store(archive, location, self.region, what="OutputDataConfig.S3OutputPath",
                              client=self.client() if transfer.is_s3(location) else None, progress=progress)
        except BaseException:
            self.undelivered.append(directory)
            raise
        return location

    def _upload_output_data(self) -> None:
        base = self.cluster.base_dir(self.cluster.hosts[0])
        self._deliver(os.path.join(base, "output", "data"), "output.tar.gz")

    def _upload_artifacts(self) -> str:
        """model.tar.gz and output.tar.gz of the first host, as the platform uploads them."""
        self.state.enter("Uploading", "Uploading generated training model")
        base = self.cluster.base_dir(self.cluster.hosts[0])
        model = self._deliver(os.path.join(base, "model"), "model.tar.gz")
        self._upload_output_data()
        return model
