"""A training job's state, and the DescribeTrainingJob answer as a function of it.

:class:`JobState` is the state machine the platform shows: TrainingJobStatus
(InProgress, then Completed, Failed or Stopped) and SecondaryStatus with
its transitions (Starting, Downloading, Training, Uploading, then the end).
It holds nothing else than what a description needs, so whoever runs a job
(local mode's command line; a server answering DescribeTrainingJob while
the job runs) renders the same answer with :func:`describe`, at any moment.
"""

from __future__ import annotations

import datetime
import threading

from .. import params
from ..errors import REDACTED, is_secret_name, without_url_passwords
from ..storage.uri import as_uri  # noqa: F401 - local mode's callers take it from here
from .request import DEFAULT_MAX_RUN, TrainingRequest

FAILURE_REASON_LIMIT = params.FAILURE_REASON_LIMIT
ENDED = ("Completed", "Failed", "Stopped")
_REQUEST_FIELDS = ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig")
_ECHOED = ("Environment", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
           "EnableManagedSpotTraining", "DebugHookConfig", "ProfilerConfig", "ExperimentConfig",
           "TensorBoardOutputConfig", "RetryStrategy")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None


class JobState:
    """Where a job is; every change is one method call, under a lock.

    ``on_change(state)``, when given, is called after every change (a server
    records or streams them), once per change: an end is one change.
    """

    def __init__(self, created: datetime.datetime | None = None, on_change=None):
        self.on_change = on_change
        self._finishing = False
        self.lock = threading.Lock()
        self.created = created or now()
        self.started: datetime.datetime | None = None
        self.ended: datetime.datetime | None = None
        self.status = "InProgress"
        self.secondary = ""
        self.transitions: list[dict] = []
        self.failure_reason: str | None = None
        self.model_location: str | None = None
        self.enter("Starting", "Preparing the instances for training")

    @property
    def done(self) -> bool:
        return self.status in ENDED

    def enter(self, secondary: str, message: str) -> None:
        """A new SecondaryStatus; the previous transition ends now."""
        with self.lock:
            moment = now()
            if self.transitions:
                self.transitions[-1]["EndTime"] = moment
            self.transitions.append({"Status": secondary, "StartTime": moment, "StatusMessage": message})
            self.secondary = secondary
            if secondary == "Downloading" and self.started is None:
                self.started = moment
        if self.on_change is not None and not self._finishing:
            self.on_change(self)

    def finish(self, status: str, secondary: str, message: str) -> None:
        """The job ends: Completed, Failed or Stopped."""
        if status not in ENDED:
            raise ValueError(f"{status} is not an end state")
        self._finishing = True
        try:
            self.enter(secondary, message)
        finally:
            self._finishing = False
        with self.lock:
            self.status = status
            self.ended = now()
            self.transitions[-1]["EndTime"] = self.transitions[-1]["StartTime"]
        if self.on_change is not None:
            self.on_change(self)

    def completed(self, model_location: str) -> None:
        self.model_location = model_location
        self.finish("Completed", "Completed", "Training job completed")

    def failed(self, reason: str) -> None:
        self.failure_reason = params.failure_reason(reason)
        self.model_location = None
        self.finish("Failed", "Failed", reason.splitlines()[0][:200] if reason else "Training job failed")

    def stopped(self, model_location: str | None = None, max_run: int | None = None) -> None:
        """Stopped by a signal, or (``max_run``) by MaxRuntimeInSeconds."""
        self.model_location = model_location
        if max_run is None:
            self.finish("Stopped", "Stopped", "Training job stopped by the user (a signal).")
        else:
            self.finish("Stopped", "MaxRuntimeExceeded",
                        f"Training job stopped: it ran past MaxRuntimeInSeconds ({max_run}s).")


def shown(values: dict) -> dict:
    """A name -> value map of the request (HyperParameters, Environment) as a
    description shows it: the value of every secret-named entry (the
    Redactor's rule, errors.is_secret_name) is ``****``, and a URL's password in any other is too."""
    return {name: REDACTED if is_secret_name(name) else
            (without_url_passwords(value) if isinstance(value, str) else value) for name, value in values.items()}


def arn(request: TrainingRequest, region: str) -> str:
    return params.training_job_arn(region, request.body.get("RoleArn"), request.job_name)


def _state_part(state: JobState, timestamp) -> dict:
    """What ``state`` decides of a description (the caller holds ``state.lock``)."""
    part = {"TrainingJobStatus": state.status, "SecondaryStatus": state.secondary}
    if state.failure_reason:
        part["FailureReason"] = state.failure_reason
    if state.started:
        part["TrainingStartTime"] = timestamp(state.started)
    if state.ended:
        part["TrainingEndTime"] = timestamp(state.ended)
    part["SecondaryStatusTransitions"] = [
        {k: timestamp(v) if isinstance(v, datetime.datetime) else v for k, v in t.items()}
        for t in state.transitions]
    return part


def state_part(state: JobState, timestamp=iso) -> dict:
    """The part of DescribeTrainingJob that the job's state decides (status, secondary status and
    its transitions, failure reason, training times): what serve stores for a running job."""
    with state.lock:
        return _state_part(state, timestamp)


def render(body: dict, job_name: str, job_arn: str, part: dict, *, created, modified,
           model_artifacts: str | None, elapsed: float | None, echoed=_ECHOED) -> dict:
    """DescribeTrainingJob, the one renderer: the request ``body``'s fields named in ``echoed``
    as they were sent (secret-named values of HyperParameters and Environment as ``****``), the
    state ``part`` (:func:`state_part`'s shape, timestamps rendered), ``created`` and ``modified``
    (rendered), and ``elapsed`` training seconds once the job has started and ended. Local mode
    describes a job with it; serve adapts this answer (botocore's members, its defaults)."""
    answer = {"TrainingJobName": job_name, "TrainingJobArn": job_arn}
    if model_artifacts:
        answer["ModelArtifacts"] = {"S3ModelArtifacts": model_artifacts}
    for name in ("TrainingJobStatus", "SecondaryStatus", "FailureReason"):
        if name in part:
            answer[name] = part[name]
    answer["HyperParameters"] = shown(body.get("HyperParameters", {}))
    for name in echoed:
        if name in body and name not in answer:
            answer[name] = shown(body[name]) if name == "Environment" else body[name]
    answer["StoppingCondition"] = {"MaxRuntimeInSeconds": DEFAULT_MAX_RUN, **body.get("StoppingCondition", {})}
    answer["CreationTime"] = created
    for name in ("TrainingStartTime", "TrainingEndTime"):
        if name in part:
            answer[name] = part[name]
    answer["LastModifiedTime"] = modified
    answer["SecondaryStatusTransitions"] = part.get("SecondaryStatusTransitions", [])
    if elapsed is not None:
        answer["TrainingTimeInSeconds"] = answer["BillableTimeInSeconds"] = max(1, int(round(elapsed)))
    return answer


def describe(request: TrainingRequest, state: JobState, region: str, timestamp=iso) -> dict:
    """The DescribeTrainingJob response of the job in ``state``.
    ``timestamp`` renders a datetime (ISO 8601 by default)."""
    with state.lock:
        elapsed = (state.ended - state.started).total_seconds() if state.started and state.ended else None
        return render(request.body, request.job_name, arn(request, region), _state_part(state, timestamp),
                      created=timestamp(state.created), modified=timestamp(state.ended or now()),
                      model_artifacts=as_uri(state.model_location) if state.model_location else None,
                      elapsed=elapsed, echoed=(*_REQUEST_FIELDS, *_ECHOED))
