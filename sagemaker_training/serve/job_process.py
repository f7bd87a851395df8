"""One training job's process: local mode's job, run for the server.

``python -m sagemaker_training.serve.job_process JOB_DIR REGION GRACE S3_ENV_JSON``
runs the request in ``JOB_DIR/request.json`` exactly as ``sagemaker-training
local --request`` runs it (local.request.validate, local.preflight.check and claim,
then LocalJob: the hosts as process trees, MaxRuntimeInSeconds, the artifacts
to ``<S3OutputPath>/<job>/output/``) with its work dir in ``JOB_DIR/work``.

It talks to the server through two streams:

* stdout carries its events, one JSON object a line: ``{"state": {...}}``
  at every transition of the job's state (the state part of
  DescribeTrainingJob, timestamps in epoch seconds);
* stderr carries the job's log: the hosts' lines, prefixed ``[algo-N] `` by
  the cluster, and local mode's own lines;
* with MetricDefinitions, every line of the log also goes to the job's own
  matching process (metrics.py), and the values it finds come as
  ``{"metrics": [[name, value, time], ...]}`` on stdout.

A job in its own process keeps what local mode does to a process (signal
handlers, children reaped, environment) away from the server and from the
other jobs. SIGTERM (StopTrainingJob) reaches the hosts through local
mode's own handling: SIGTERM to every host, the grace period, SIGKILL,
then Stopped with the artifacts that exist.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback

from ..local.job import LocalJob
from ..local.preflight import S3Clients, check, claim
from ..local.progress import Log
from ..local.request import RequestError, validate
from ..local.state import JobState, state_part
from . import metrics


def _epoch(moment) -> float:
    return moment.timestamp()


class Reporter:
    """Writes the job's state to the events stream whenever it changes (JobState's ``on_change``)."""

    def __init__(self, stream):
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, state: JobState) -> None:
        event = {"state": state_part(state, timestamp=_epoch)}
        with self.lock:
            self.stream.write(json.dumps(event) + "\n")
            self.stream.flush()

    def metrics(self, values: list) -> None:
        """MetricDefinitions values the job's matcher found (metrics.Matcher)."""
        with self.lock:
            self.stream.write(json.dumps({"metrics": values}) + "\n")
            self.stream.flush()

    def failed(self, reason: str) -> None:
        """The job ends before local mode's job could start (a bad request, S3)."""
        with self.lock:
            self.stream.write(json.dumps({"failed": reason}) + "\n")
            self.stream.flush()


def run(job_dir: str, region: str, grace: float, s3_environ: dict, events) -> int:
    reporter = Reporter(events)
    with open(os.path.join(job_dir, "request.json"), encoding="utf-8") as f:
        body = json.load(f)
    matcher = metrics.Matcher(body, reporter.metrics) if metrics.definitions(body) else None
    if matcher:  # every line of the log passes by the job's own metrics matcher
        sys.stderr = sys.stdout = metrics.Tee(sys.stderr, matcher.line)
    try:
        return _run(job_dir, region, grace, s3_environ, body, reporter)
    finally:
        if matcher:
            sys.stderr.flush()
            matcher.close()


def _run(job_dir: str, region: str, grace: float, s3_environ: dict, body: dict, reporter: Reporter) -> int:
    log = Log(sys.stderr)
    client = S3Clients(region, s3_environ)
    try:
        request = validate(body)
        listings = check(request, region, client)
        work_dir = os.path.join(job_dir, "work")
        with claim(request, work_dir, region, s3_environ, client):
            job = LocalJob(request, work_dir, region, log, s3_environ=s3_environ, listings=listings, grace=grace,
                           state=JobState(on_change=reporter))
            description = job.run()
    except RequestError as exc:
        reporter.failed(f"ClientError: {exc}")
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug of ours: the job still ends with a reason, the log has more
        traceback.print_exc()
        reporter.failed(f"ToolkitError: the job could not run: {type(exc).__name__}: {exc}. This is a problem in "
                        "sagemaker_training; report it with the job's log.")
        return 1
    return 0 if description["TrainingJobStatus"] == "Completed" else 1


def main(argv: list[str]) -> int:
    job_dir, region, grace, s3_environ = argv[0], argv[1], float(argv[2]), json.loads(argv[3])
    events = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else printed goes to the log, not into the events
    sys.stdout = sys.stderr
    return run(job_dir, region, grace, s3_environ, events)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
