"""The job queue: at most ``--max-running`` jobs at once, in order; their processes; stopping.

A created job waits as InProgress / Starting until a slot is free, then runs
as its own process (job_process.py, under the exec guard (supervision/guard.py) so that it dies with the
server) in ``<state dir>/jobs/<name>/``: no two running jobs share a
directory, and each job's cluster reserves its block of ports on this
machine while its hosts run (local.ports.reserve_port_block: a lock file per
port), so two jobs started at once never share a port. For each
running job the scheduler

* stores every state the job's process reports (the terminal one only once
  all of the job's log lines are stored, so a client that sees the end and
  reads the logs once more reads them all);
* stores every log line in its host's stream ``<job>/algo-N-<epoch>``, in
  batches, with ascending integer-millisecond timestamps, split into events
  of at most 256 KiB as CloudWatch does; the job's own process matches its
  ``MetricDefinitions`` (worker.MetricMatcher: a user's regex never runs in
  the server) and reports the values, whose last ones become
  FinalMetricDataList;
* stops it on StopTrainingJob: SIGTERM to the job's process, which passes it
  to every host, waits the grace period and SIGKILLs what is left, then
  reports Stopped with the artifacts that exist.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from ..supervision import guard, streams
from . import cloudwatch, describe, leftovers, statedir
from .store import ORPHANED_REASON, TERMINAL

_HOST_LINE = re.compile(r"^\[(algo-\d+)\] ?(.*)$", re.DOTALL)
FLUSH_SECONDS = 0.2
EXPIRE_SECONDS = 600
# a job process's report of its state is one JSON line on its stdout: DescribeTrainingJob's answer,
# whose HyperParameters alone may reach 100 * (256 + 2500) characters
EVENT_LINE_CHARS = 4 * 1024 * 1024


class _LogSink:
    """One job's log lines on their way into the store."""

    def __init__(self, store, job, pending: list, lock: threading.Lock):
        self.store, self.job = store, job.name
        self.pending, self.lock = pending, lock
        self.epoch = int(time.time())
        self.streams: dict[str, str] = {}
        self.last_ms: dict[str, int] = {}

    def line(self, text: str) -> None:
        match = _HOST_LINE.match(text)
        host, message = (match.group(1), match.group(2)) if match else ("algo-1", text)
        stream = self.streams.get(host)
        if stream is None:
            stream = self.streams[host] = cloudwatch.stream_name(self.job, host, self.epoch)
            self.store.add_stream(stream, self.job, host)
        ms = max(int(time.time() * 1000), self.last_ms.get(stream, 0))
        self.last_ms[stream] = ms
        with self.lock:
            self.pending.extend(((stream, ms, part), ()) for part in cloudwatch.split_message(message))

    def metrics(self, values: list) -> None:
        """``[name, value, epoch seconds]`` triples the job's process matched (worker.MetricMatcher)."""
        rows = [(self.job, str(name), float(value), float(when)) for name, value, when in values]
        with self.lock:
            self.pending.append((None, rows))


class Scheduler:
    def __init__(self, store, state_dir: str, max_running: int, grace: float, s3_environ: dict, log):
        self.store = store
        self.jobs_dir = os.path.join(state_dir, "jobs")
        self.max_running = max_running
        self.grace = grace
        self.s3_environ = s3_environ
        self.log = log
        self.cond = threading.Condition()
        self.running: dict[str, subprocess.Popen] = {}
        self.monitors: list[threading.Thread] = []
        self.pending: list = []
        self.pending_lock = threading.Lock()
        self.closing = False
        self.threads = [threading.Thread(target=self._schedule, name="serve-scheduler", daemon=True),
                        threading.Thread(target=self._flush_loop, name="serve-logs", daemon=True)]

    # -- the server's side ----------------------------------------------------------
    def recover(self) -> list[str]:
        """The jobs a dead server left: what their processes left running ends (leftovers.sweep),
        and those that were running become Failed (their names)."""
        ended = leftovers.sweep(self.jobs_dir)
        if ended:
            self.log(f"ended {len(ended)} process(es) that the previous server's jobs left running")
        return self.store.recover(lambda job: describe.finished_state(
            job.state, "Failed", "Failed", ORPHANED_REASON.split(". ")[0], ORPHANED_REASON))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait_for_end(self, name: str, until: float) -> None:
        """Until the job has ended (its process reaped and its last state stored) or the
        wall-clock time ``until``, whichever comes first."""
        with self.cond:
            while time.time() < until:
                job = self.store.job(name)
                if job is None or job.status in TERMINAL:
                    return
                self.cond.wait(timeout=min(1.0, max(0.0, until - time.time())))

    def queue_message(self) -> str:
        with self.cond:
            waiting = len(self.store.queued())
            if len(self.running) + waiting < self.max_running:
                return "Preparing the instances for training"
        return f"Waiting for one of {self.max_running} job slots ({waiting} job(s) ahead)"

    def stop(self, name: str) -> None:
        with self.cond:
            self.store.request_stop(name)
            process = self.running.get(name)
            if process is not None:
                _signal(process, signal.SIGTERM)
                timer = threading.Timer(self.grace + 30, _signal, (process, signal.SIGKILL))
                timer.daemon = True
                timer.start()
                return
            job = self.store.job(name)
            if job and not job.started and job.status not in TERMINAL:
                self.store.set_state(name, describe.finished_state(
                    job.state, "Stopped", "Stopped", "Training job stopped before it started."))

    def shutdown(self, timeout: float) -> None:
        """Stop every running job (they end Stopped) and wait for their records."""
        with self.cond:
            self.closing = True
            for name, process in self.running.items():
                self.store.request_stop(name)
                _signal(process, signal.SIGTERM)
            self.cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in list(self.monitors):
            thread.join(max(0.0, deadline - time.monotonic()))
        with self.cond:
            for process in self.running.values():
                _signal(process, signal.SIGKILL)
        self._flush()

    # -- scheduling -----------------------------------------------------------------
    def _schedule(self) -> None:
        while True:
            with self.cond:
                while not self.closing and (len(self.running) >= self.max_running or not self.store.queued()):
                    self.cond.wait(timeout=5)
                if self.closing:
                    # the jobs' processes die with the thread that started them (PR_SET_PDEATHSIG
                    # is per thread): this one stays until they have ended
                    while self.running:
                        self.cond.wait(timeout=1)
                    return
                job = self.store.queued()[0]
                try:
                    self._launch(job)
                except OSError as exc:  # cannot even start a process: the job fails, saying why
                    self.store.set_state(job.name, describe.finished_state(
                        job.state, "Failed", "Failed", "Could not start the job",
                        f"PlatformError: sagemaker-training serve could not start the job: {exc}"), started=True)

    def _launch(self, job) -> None:
        job_dir = statedir.private_dir(os.path.join(statedir.private_dir(self.jobs_dir), job.name))
        statedir.write_private(os.path.join(job_dir, "request.json"), json.dumps(job.request))
        environ = leftovers.tag(job_dir, dict(os.environ))
        argv = [sys.executable, "-m", "sagemaker_training.serve.job_process", job_dir, job.region, str(self.grace),
                json.dumps(self.s3_environ)]
        process = subprocess.Popen(guard.argv(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd=job_dir, start_new_session=True, env=environ)
        self.running[job.name] = process
        self.store.set_state(job.name, job.state, started=True)
        monitor = threading.Thread(target=self._monitor, args=(job, process), name=f"serve-{job.name}", daemon=True)
        self.monitors.append(monitor)
        monitor.start()

    def _monitor(self, job, process: subprocess.Popen) -> None:
        sink = _LogSink(self.store, job, self.pending, self.pending_lock)
        reader = threading.Thread(target=_read_lines, args=(process.stderr, sink.line), daemon=True)
        reader.start()
        final = {}
        queued_since = job.state["SecondaryStatusTransitions"][0]["StartTime"]

        def event(text: str) -> None:
            try:
                message = json.loads(text)
            except ValueError:
                sink.line(text)
                return
            if "metrics" in message:
                sink.metrics(message["metrics"])
                return
            if "state" in message:  # Starting began when the job was queued, not when its process started
                transitions = message["state"].get("SecondaryStatusTransitions") or [{}]
                if transitions[0].get("Status") == "Starting":
                    transitions[0]["StartTime"] = queued_since
            if "failed" in message:
                final["state"] = describe.finished_state(self.store.job(job.name).state, "Failed", "Failed",
                                                         message["failed"].splitlines()[0][:200], message["failed"])
            elif message["state"]["TrainingJobStatus"] in TERMINAL:
                final["state"] = message["state"]
            else:
                self.store.set_state(job.name, message["state"])

        _read_lines(process.stdout, event, EVENT_LINE_CHARS)
        code = process.wait()
        reader.join(timeout=10)
        self._flush()
        state = final.get("state")
        if state is None and code in (-signal.SIGTERM, -signal.SIGKILL) and self.store.job(job.name).stop_requested:
            # stopped before its process had put its own handler in place (still Starting): what was asked
            state = describe.finished_state(self.store.job(job.name).state, "Stopped", "Stopped",
                                            "Training job stopped before it started.")
        if state is None:  # the job's process died without a word
            reason = (f"PlatformError: the job's process ended with {_how(code)} without reporting an end; "
                      "see the job's log.")
            state = describe.finished_state(self.store.job(job.name).state, "Failed", "Failed", reason, reason)
        self.store.set_state(job.name, state)
        with self.cond:
            self.running.pop(job.name, None)
            self.cond.notify_all()

    # -- log lines --------------------------------------------------------------------
    def _flush(self) -> None:
        with self.pending_lock:
            batch, self.pending[:] = list(self.pending), []
        if batch:
            self.store.add_events([event for event, _ in batch if event is not None],
                                  [m for _, values in batch for m in values])

    def _flush_loop(self) -> None:
        expired = 0.0
        while not self.closing:
            time.sleep(FLUSH_SECONDS)
            try:
                self._flush()
                if time.monotonic() - expired > EXPIRE_SECONDS:  # the log retention
                    expired = time.monotonic()
                    self.store.expire_events()
            except Exception as exc:  # noqa: BLE001 - keep flushing; say what went wrong
                self.log(f"could not store log lines: {type(exc).__name__}: {exc}")


def _read_lines(pipe, each, width: int = streams.PIECE_CHARS) -> None:
    """Each line of a job process's pipe to ``each``; a longer line comes as several (streams.lines)."""
    for line in streams.lines(pipe, width):
        each(line)


def _signal(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass


def _how(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"
