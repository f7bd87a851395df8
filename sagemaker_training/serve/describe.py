"""DescribeTrainingJob and ListTrainingJobs' summaries: functions of a stored job.

A job's *state* is what its process last reported (the status, the secondary
status and its transitions, the failure reason, the training times) or what
the server decided (queued, stopping, orphaned). The answer is local mode's
(local.state.render) of the request as it was sent and that state, adapted:
every request member that DescribeTrainingJob's own output shape has
(botocore's model decides) is echoed back, with the defaults the SDKs rely on
(``OutputDataConfig.KmsKeyId``, an ``S3ModelArtifacts`` that is always
there). Timestamps are epoch seconds.
"""

from __future__ import annotations

import time

from .. import params
from ..local.state import render
from ..storage.uri import artifact_location
from . import protocol

FAILURE_REASON_LIMIT = params.FAILURE_REASON_LIMIT


def transition(status: str, message: str, start: float | None = None) -> dict:
    return {"Status": status, "StartTime": start or time.time(), "StatusMessage": message}


def initial_state(message: str) -> dict:
    return {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting",
            "SecondaryStatusTransitions": [transition("Starting", message)]}


def finished_state(state: dict, status: str, secondary: str, message: str, reason: str | None = None) -> dict:
    """``state`` ended now as ``status`` / ``secondary``."""
    now = time.time()
    transitions = [dict(t) for t in state.get("SecondaryStatusTransitions", [])]
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    transitions.append({**transition(secondary, message, now), "EndTime": now})
    answer = {**state, "TrainingJobStatus": status, "SecondaryStatus": secondary,
              "SecondaryStatusTransitions": transitions, "TrainingEndTime": now}
    if reason:
        answer["FailureReason"] = params.failure_reason(reason)
    return answer


def model_artifacts(request: dict, name: str) -> str:
    return artifact_location(request["OutputDataConfig"]["S3OutputPath"], name, "model.tar.gz")


def _shown_state(job) -> dict:
    """The stored state, with a stop that is under way shown as AWS shows it:
    InProgress / Stopping until the job's process has ended."""
    state = job.state
    if not job.stop_requested:
        return state
    transitions = [dict(t) for t in state.get("SecondaryStatusTransitions", [])]
    stopping = {**transition("Stopping", "Stopping the training job", job.stop_requested)}
    if state["TrainingJobStatus"] == "InProgress":
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = job.stop_requested
        return {**state, "SecondaryStatus": "Stopping", "SecondaryStatusTransitions": [*transitions, stopping]}
    if state["TrainingJobStatus"] == "Stopped" and not any(t["Status"] == "Stopping" for t in transitions):
        stopping["EndTime"] = transitions[-1]["StartTime"] if transitions else job.stop_requested
        transitions.insert(max(len(transitions) - 1, 0), stopping)
        return {**state, "SecondaryStatusTransitions": transitions}
    return state


def describe(job, metrics=()) -> dict:
    """Local mode's DescribeTrainingJob (local.state.render) of the stored request and state,
    adapted: every request member DescribeTrainingJob's output has, the defaults the SDKs rely on,
    the final metrics, a stop under way."""
    request = job.request
    state = _shown_state(job)
    start, end = state.get("TrainingStartTime"), state.get("TrainingEndTime")
    answer = render(request, job.name, job.arn, state, created=job.created, modified=job.modified,
                    model_artifacts=model_artifacts(request, job.name), elapsed=end - start if start and end else None,
                    echoed=protocol.operation("sagemaker", "DescribeTrainingJob").output_shape.members)
    answer["OutputDataConfig"] = {"KmsKeyId": "", **request["OutputDataConfig"]}
    if metrics:
        answer["FinalMetricDataList"] = [{"MetricName": m["name"], "Value": m["value"], "Timestamp": m["timestamp"]}
                                         for m in metrics]
    return answer


def summary(job) -> dict:
    state = _shown_state(job)
    answer = {"TrainingJobName": job.name, "TrainingJobArn": job.arn, "CreationTime": job.created,
              "LastModifiedTime": job.modified, "TrainingJobStatus": state["TrainingJobStatus"],
              "SecondaryStatus": state["SecondaryStatus"]}
    if state.get("TrainingEndTime"):
        answer["TrainingEndTime"] = state["TrainingEndTime"]
    return answer
