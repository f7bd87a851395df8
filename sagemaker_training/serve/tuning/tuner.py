"""The tuning loop: one thread that moves every InProgress tuning job forward.

Each turn, for each tuning job:

1. a running training job's intermediate objective values (every value the
   job's own matcher process read from its log with the objective's
   MetricDefinitions regex: serve/metrics.py; no user regex runs here) go to the early-stopping rule
   (``TrainingJobEarlyStoppingType: Auto``: the median rule) or to
   Hyperband's pruner; a job either of them stops is stopped (Stopped, its
   artifacts kept, marked early-stopped);
2. each training job that ended is told to the optimiser: its final
   objective (FinalMetricDataList), or a failure when it has none;
3. the tuning job ends when it was stopped (its running jobs are stopped
   first), when a Completed job reaches ``TargetObjectiveMetricValue``, when
   ``MaxRuntimeInSeconds`` has passed, or when its budget of jobs has run;
4. otherwise it starts training jobs while fewer than
   ``MaxParallelTrainingJobs`` of its jobs are unfinished and fewer than
   ``MaxNumberOfTrainingJobs`` have been made. They are ordinary jobs of
   serve's queue, so ``--max-running`` bounds them as well.

A training job that serve itself ended (the server stopped or was killed while
it ran) is a RetryableError: it does not count against the budget, and a
new job takes its place (at most as many retries as the budget).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time

from ...params import account_of, training_job_arn
from ..store import ORPHANED_REASON, TERMINAL
from .. import describe
from . import records, space, strategy

TURN_SECONDS = 0.5
INTERRUPTED = 2  # tuning_trials.early_stopped: the server stopped while the job ran
COPIED = ("InputDataConfig", "VpcConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition",
          "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining",
          "CheckpointConfig", "RetryStrategy", "Environment")


def tuning_job_arn(region: str, role_arn: str | None, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account_of(role_arn)}:hyper-parameter-tuning-job/{name.lower()}"


def training_job_name(tuning: str, number: int, tuned: dict) -> str:
    """``<tuning job>-NNN-<8 hex>``, as the platform names a tuning job's training jobs."""
    digest = hashlib.sha256(json.dumps([tuning, number, tuned], sort_keys=True).encode()).hexdigest()[:8]
    return f"{tuning}-{number:03d}-{digest}"


def training_request(request: dict, name: str, tuned: dict) -> dict:
    """The CreateTrainingJob body of one training job of the tuning job ``request``."""
    definition = request["TrainingJobDefinition"]
    metric = request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    algorithm = definition["AlgorithmSpecification"]
    body = {"TrainingJobName": name, "RoleArn": definition["RoleArn"],
            "AlgorithmSpecification": {k: algorithm[k] for k in ("TrainingImage", "AlgorithmName",
                                                                 "TrainingInputMode", "MetricDefinitions")
                                       if k in algorithm},
            "HyperParameters": {**(definition.get("StaticHyperParameters") or {}), **tuned,
                                "_tuning_objective_metric": metric}}
    body.update({k: definition[k] for k in COPIED if k in definition})
    if "ResourceConfig" not in body and definition.get("HyperParameterTuningResourceConfig"):
        resources = definition["HyperParameterTuningResourceConfig"]
        first = (resources.get("InstanceConfigs") or [{}])[0]
        body["ResourceConfig"] = {k: resources.get(k, first.get(k)) for k in ("InstanceType", "InstanceCount",
                                                                               "VolumeSizeInGB")
                                  if resources.get(k, first.get(k)) is not None}
    return body


def objective_metric(request: dict) -> str:
    return request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]


def objective_value(store, request: dict, job) -> float | None:
    metric = objective_metric(request)
    for row in store.metrics(job.name):
        if row["name"] == metric:
            return row["value"]
    return None


def retryable(job, trial) -> bool:
    """The job ended because serve stopped, not because of the job."""
    if trial.early_stopped == INTERRUPTED:
        return job.status in ("Stopped", "Failed")
    return job.status == "Failed" and (job.state.get("FailureReason") or "").startswith(ORPHANED_REASON[:60])


def outcome(store, request: dict, job, trial) -> tuple[float | None, str]:
    """(objective, Optuna state) of an ended job: COMPLETE, PRUNED (early-stopped) or FAIL."""
    value = objective_value(store, request, job)
    if job.status == "Completed":
        return value, "COMPLETE" if value is not None else "FAIL"
    if job.status == "Stopped" and trial.early_stopped == 1:
        return value, "PRUNED"
    return value, "FAIL"


class _Run:
    """A tuning job's optimiser and what the loop remembers about its jobs."""

    def __init__(self, study, metric: str):
        self.study, self.metric = study, metric
        self.curves: dict[str, tuple[list, int]] = {}
        self.told: set[str] = set()


class Tuner:
    def __init__(self, store, scheduler, log):
        self.store, self.scheduler, self.log = store, scheduler, log
        self.cond = threading.Condition()
        self.closing = False
        self.runs: dict[str, _Run] = {}
        self.thread = threading.Thread(target=self._loop, name="serve-tuner", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def shutdown(self) -> None:
        """Before the scheduler stops the running jobs: they will be retried, not counted."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join(timeout=30)
        for tuning in records.tuning_jobs(self.store, active_only=True):
            for trial in records.trials(self.store, tuning.name):
                job = self.store.job(trial.training_job)
                if job and job.status not in TERMINAL and job.started:
                    records.mark(self.store, trial.training_job, INTERRUPTED)

    def _loop(self) -> None:
        while True:
            with self.cond:
                if self.closing:
                    return
            for tuning in records.tuning_jobs(self.store, active_only=True):
                try:
                    self._turn(tuning)
                except Exception as exc:  # noqa: BLE001 - one tuning job's bug must not stop the others
                    self.log(f"tuning job {tuning.name}: {type(exc).__name__}: {exc}")
                    records.set_status(self.store, tuning.name, "Failed",
                                       f"sagemaker-training serve failed to run the tuning job: "
                                       f"{type(exc).__name__}: {exc}")
            with self.cond:
                if not self.closing:
                    self.cond.wait(timeout=TURN_SECONDS)

    # -- the optimiser ----------------------------------------------------------------
    def _finished(self, tuning) -> list:
        """(params, value, state, curve) of the tuning job's ended jobs that count."""
        answer = []
        metric = objective_metric(tuning.request)
        for trial in records.trials(self.store, tuning.name):
            job = self.store.job(trial.training_job)
            if job is None or job.status not in TERMINAL or retryable(job, trial):
                continue
            value, state = outcome(self.store, tuning.request, job, trial)
            curve = records.curve(self.store, job.name, metric)[0]
            answer.append((trial.params, value, state, curve))
        return answer

    def _run(self, tuning) -> _Run:
        run = self.runs.get(tuning.name)
        if run is not None:
            return run
        finished = []
        for parent in (tuning.request.get("WarmStartConfig") or {}).get("ParentHyperParameterTuningJobs") or []:
            parent_job = records.tuning_job(self.store, parent["HyperParameterTuningJobName"])
            if parent_job is not None:
                finished.extend(self._finished(parent_job))
        own = self._finished(tuning)
        trials = records.trials(self.store, tuning.name)
        study = strategy.Study(tuning.config, finished + own, offset=len(trials), name=tuning.name)
        run = self.runs[tuning.name] = _Run(study, objective_metric(tuning.request))
        for trial in trials:  # the jobs that have not ended get their Optuna trial again
            job = self.store.job(trial.training_job)
            if job is None or job.status in TERMINAL:
                run.told.add(trial.training_job)
            else:
                study.resume(trial.training_job, trial.params)
        return run

    def _curve(self, run: _Run, name: str) -> list:
        values, last = run.curves.get(name, ([], 0))
        more, last = records.curve(self.store, name, run.metric, last)
        values = values + more
        run.curves[name] = (values, last)
        return values

    # -- one turn ---------------------------------------------------------------------
    def _turn(self, tuning) -> None:
        run = self._run(tuning)
        config = tuning.config
        maximize = strategy.direction(config) == "maximize"
        trials = records.trials(self.store, tuning.name)
        jobs = {t.training_job: self.store.job(t.training_job) for t in trials}
        running = [t for t in trials if jobs[t.training_job].status not in TERMINAL]

        # 1. early stopping of the running jobs
        early = config.get("TrainingJobEarlyStoppingType", "Off") == "Auto"
        hyperband = config["Strategy"] == "Hyperband"
        if (early or hyperband) and tuning.status == "InProgress":
            completed = [self._curve(run, t.training_job) for t in trials
                         if jobs[t.training_job].status == "Completed" and not t.early_stopped]
            for t in running:
                job = jobs[t.training_job]
                if not job.started or job.stop_requested:
                    continue
                curve = self._curve(run, t.training_job)
                trial = run.study.running.get(t.training_job)
                stop = (strategy.median_stops(curve, completed, maximize) if early
                        else trial is not None and run.study.report(trial, curve))
                if stop:
                    self.log(f"tuning job {tuning.name}: early-stopping {t.training_job}")
                    records.mark(self.store, t.training_job)
                    self.scheduler.stop(t.training_job)

        # 2. the jobs that ended, told to the optimiser
        for t in trials:
            job = jobs[t.training_job]
            if job.status in TERMINAL and t.training_job not in run.told:
                run.told.add(t.training_job)
                trial = run.study.running.pop(t.training_job, None)
                if trial is not None:
                    value, state = outcome(self.store, tuning.request, job, t)
                    if retryable(job, t):
                        state = "FAIL"
                    run.study.tell(trial, value, state)

        # 3. the end
        limits = config["ResourceLimits"]
        counted = [t for t in trials if not (jobs[t.training_job].status in TERMINAL
                                             and retryable(jobs[t.training_job], t))]
        target = (config.get("TuningJobCompletionCriteria") or {}).get("TargetObjectiveMetricValue")
        reached = target is not None and any(
            (v := objective_value(self.store, tuning.request, jobs[t.training_job])) is not None
            and jobs[t.training_job].status == "Completed" and (v >= target if maximize else v <= target)
            for t in trials)
        timed_out = limits.get("MaxRuntimeInSeconds") and time.time() - tuning.created > limits["MaxRuntimeInSeconds"]
        ending = {"Stopping": "Stopped"}.get(tuning.status) or ("Completed" if reached else
                                                                "Stopped" if timed_out else None)
        if ending:
            for t in running:
                if not jobs[t.training_job].stop_requested:
                    self.scheduler.stop(t.training_job)
            if not running:
                self._end(tuning, ending, jobs, trials)
            return
        budget = space.max_jobs(config)
        if len(counted) >= budget:
            if not running:
                self._end(tuning, "Completed", jobs, trials)
            return

        # 4. more jobs
        unfinished = len(running)
        made = len(trials)
        while unfinished < limits["MaxParallelTrainingJobs"] and len(counted) < budget and made < 2 * budget:
            self._launch(tuning, run, made + 1)
            unfinished += 1
            made += 1
            counted.append(None)

    def _launch(self, tuning, run: _Run, number: int) -> None:
        params, trial = run.study.ask()
        tuned = space.encoded(tuning.config, params)
        for attempt in range(4):  # a training job of that name made by someone else: another hash
            name = training_job_name(tuning.name, number, {**tuned, "": attempt} if attempt else tuned)
            request = training_request(tuning.request, name, tuned)
            arn = training_job_arn(tuning.region, request["RoleArn"], name)
            try:
                records.add_trial(self.store, tuning.name, number, params, tuned, (
                    name, arn, tuning.region, request, describe.initial_state(self.scheduler.queue_message())))
                break
            except sqlite3.IntegrityError:
                if attempt == 3:
                    raise
        run.study.running[name] = trial
        self.scheduler.wake()

    def _end(self, tuning, status: str, jobs: dict, trials: list) -> None:
        failure = None
        if status == "Completed" and trials and not any(jobs[t.training_job].status == "Completed" for t in trials):
            status = "Failed"
            first = next((jobs[t.training_job].state.get("FailureReason") for t in trials
                          if jobs[t.training_job].state.get("FailureReason")), None)
            failure = (f"All {len(trials)} training jobs failed" + (f"; the first: {first}" if first else ".")
                       )[:1024]
        records.set_status(self.store, tuning.name, status, failure)
        self.runs.pop(tuning.name, None)
        self.log(f"tuning job {tuning.name}: {status}")
