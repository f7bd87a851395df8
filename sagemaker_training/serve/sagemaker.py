"""The SageMaker operations (JSON 1.1, ``X-Amz-Target: SageMaker.<Operation>``).

CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob and
the tag calls the SDKs make on the way (``attach()`` lists a job's tags).
Every request is first checked against botocore's model of the operation
(protocol.py), and a CreateTrainingJob request also as local mode checks it
(local.request.validate) before it is answered: what local mode would refuse
is a ``ValidationException`` naming the field, never a job that fails. The answers and errors are the ones boto3 expects: a taken
name is ``ResourceInUse``, an unknown job is a ``ValidationException``
"Requested resource not found." (what DescribeTrainingJob says on AWS),
stopping an unknown job is ``ResourceNotFound``.
"""

from __future__ import annotations

import base64
import json
import threading

from ..core import guarded_json
from . import describe, metrics, protocol
from ..params import training_job_arn
from ..local.request import RequestError, validate as validate_request

NOT_FOUND = "Requested resource not found."
# The SageMaker Python SDK's fit() describes a job once right after creating it, then only every 30 s
# (sleeping 10 s between log reads): the first DescribeTrainingJob of a job the SDK made waits for the
# job's end, at most this long after the job's creation, so that a short job's fit() returns as it ends.
# The SDK is known by the hyperparameter its framework estimators add (v1 and v2), or by SDK v2's
# User-Agent (SDK v1 appends its name to a botocore setting that current botocore no longer sends)
FIRST_DESCRIBE_WAIT = 25.0
SDK_AGENT = "AWS-SageMaker-Python-SDK"
SDK_HYPERPARAMETER = "sagemaker_job_name"


def _arn(region: str, request: dict) -> str:
    return training_job_arn(region, request.get("RoleArn"), request["TrainingJobName"])


class SageMaker:
    def __init__(self, store, scheduler, tuning=None):
        self.store = store
        self.scheduler = scheduler
        self.tuning = tuning  # the tuning jobs' operations (tuning/operations.py)
        self._described: set[str] = set()  # jobs the SDK has described (FIRST_DESCRIBE_WAIT)
        self._described_lock = threading.Lock()

    def call(self, operation: str, params: dict, region: str, agent: str = "") -> dict:
        handler = getattr(self, f"op_{operation}", None) or getattr(self.tuning, f"op_{operation}", None)
        protocol.validate("sagemaker", operation, params)
        if handler is None:
            raise protocol.ApiError("UnknownOperationException",
                                    f"sagemaker-training serve does not implement SageMaker.{operation}: it "
                                    "serves training jobs (Create/Describe/List/StopTrainingJob, tags) and "
                                    "hyperparameter tuning jobs.")
        if operation == "DescribeTrainingJob":
            self._first_describe(params["TrainingJobName"], SDK_AGENT in agent)
        return handler(params, region)

    def _first_describe(self, name: str, sdk_agent: bool) -> None:
        """The first DescribeTrainingJob of a job the SDK made waits for its end (FIRST_DESCRIBE_WAIT)."""
        job = self.store.job(name)
        if job is None or not (sdk_agent or SDK_HYPERPARAMETER in (job.request.get("HyperParameters") or {})):
            return
        with self._described_lock:
            if name in self._described:
                return
            self._described.add(name)
        self.scheduler.wait_for_end(name, job.created + FIRST_DESCRIBE_WAIT)

    def _job(self, name: str, missing=None):
        job = self.store.job(name)
        if job is None:
            raise missing or protocol.validation_error(NOT_FOUND)
        return job

    # -- training jobs -------------------------------------------------------------
    def op_CreateTrainingJob(self, params: dict, region: str) -> dict:  # noqa: N802 - AWS's names
        try:
            validate_request(params)
        except RequestError as exc:
            raise protocol.validation_error(str(exc)) from None
        problem = metrics.check(params)
        if problem:
            raise protocol.validation_error(f"1 validation error detected: {problem}")
        name = params["TrainingJobName"]
        arn = _arn(region, params)
        if not self.store.add_job(name, arn, region, params, describe.initial_state(self.scheduler.queue_message()),
                                  params.get("Tags", [])):
            raise protocol.ApiError("ResourceInUse", f"Training job names must be unique within an AWS account "
                                                     f"and region, and a training job with this name already "
                                                     f"exists ({arn})")
        self.scheduler.wake()
        return {"TrainingJobArn": arn}

    def op_DescribeTrainingJob(self, params: dict, region: str) -> dict:  # noqa: N802
        job = self._job(params["TrainingJobName"])
        return describe.describe(job, self.store.metrics(job.name))

    def op_StopTrainingJob(self, params: dict, region: str) -> dict:  # noqa: N802
        name = params["TrainingJobName"]
        job = self._job(name, protocol.ApiError("ResourceNotFound", f"Could not find training job '{name}'."))
        if job.status != "InProgress":
            raise protocol.validation_error(f"The request was rejected because the training job is in status "
                                            f"{job.status}.")
        self.scheduler.stop(name)
        return {}

    def op_ListTrainingJobs(self, params: dict, region: str) -> dict:  # noqa: N802
        for name in ("CreationTimeAfter", "CreationTimeBefore", "LastModifiedTimeAfter", "LastModifiedTimeBefore"):
            protocol.epoch(params.get(name), name[:1].lower() + name[1:])  # a bad one is refused even with no jobs
        jobs = [j for j in self.store.jobs() if _matches(j, params)]
        key = {"Name": lambda j: j.name, "Status": lambda j: (j.status, j.created)}.get(
            params.get("SortBy"), lambda j: (j.created, j.seq))
        jobs.sort(key=key, reverse=params.get("SortOrder", "Descending") == "Descending")
        start = _offset(params.get("NextToken"))
        size = params.get("MaxResults", 10)
        answer = {"TrainingJobSummaries": [describe.summary(j) for j in jobs[start:start + size]]}
        if start + size < len(jobs):
            answer["NextToken"] = base64.urlsafe_b64encode(json.dumps({"offset": start + size}).encode()).decode()
        return answer

    # -- tags ---------------------------------------------------------------------
    def _resource(self, arn: str) -> str:
        """``arn``, when it is a resource of this server; else the API's error."""
        if not self.store.has_arn(arn):
            raise protocol.validation_error(f"Could not find resource {arn}: this server has no training or "
                                            "tuning job with this ARN.")
        return arn

    def op_ListTags(self, params: dict, region: str) -> dict:  # noqa: N802
        tags = self.store.tags(self._resource(params["ResourceArn"]))
        start = _offset(params.get("NextToken"))
        size = params.get("MaxResults", 50)
        answer = {"Tags": tags[start:start + size]}
        if start + size < len(tags):
            answer["NextToken"] = base64.urlsafe_b64encode(json.dumps({"offset": start + size}).encode()).decode()
        return answer

    def op_AddTags(self, params: dict, region: str) -> dict:  # noqa: N802
        self.store.add_tags(self._resource(params["ResourceArn"]), params["Tags"])
        return {"Tags": self.store.tags(params["ResourceArn"])}

    def op_DeleteTags(self, params: dict, region: str) -> dict:  # noqa: N802
        self.store.delete_tags(self._resource(params["ResourceArn"]), params["TagKeys"])
        return {}


def _offset(token) -> int:
    if not token:
        return 0
    try:
        offset = guarded_json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError, guarded_json.TooDeep):
        pass
    raise protocol.validation_error("Invalid pagination token: give back a NextToken exactly as it was returned.")


def _matches(job, params: dict) -> bool:
    return matches_filters(params, job.name, job.created, job.modified, lambda: describe.summary(job)["TrainingJobStatus"])


def matches_filters(params: dict, name: str, created: float, modified: float, status) -> bool:
    """Whether a job (training or tuning) passes a List request's filters: its times, its name,
    its status (``status()``, asked only when the request filters on it)."""
    checks = (
        ("CreationTimeAfter", lambda v: created > protocol.epoch(v, "creationTimeAfter")),
        ("CreationTimeBefore", lambda v: created < protocol.epoch(v, "creationTimeBefore")),
        ("LastModifiedTimeAfter", lambda v: modified > protocol.epoch(v, "lastModifiedTimeAfter")),
        ("LastModifiedTimeBefore", lambda v: modified < protocol.epoch(v, "lastModifiedTimeBefore")),
        ("NameContains", lambda v: v.lower() in name.lower()),
        ("StatusEquals", lambda v: status() == v),
    )
    return all(check(params[field]) for field, check in checks if params.get(field) is not None)
