"""The tuning operations of SageMaker (JSON 1.1), answered as the SDKs expect.

CreateHyperParameterTuningJob (botocore's model first, then space.check,
then local mode's check of the training job request the definition makes:
what would make every training job fail is a ``ValidationException`` now),
DescribeHyperParameterTuningJob, ListHyperParameterTuningJobs,
ListTrainingJobsForHyperParameterTuningJob (StatusEquals, SortBy including
FinalObjectiveMetricValue, paging) and StopHyperParameterTuningJob. Tags go
through the SageMaker tag calls like a training job's.
"""

from __future__ import annotations

import base64
import json

from ...local.request import RequestError, validate as validate_request
from .. import protocol
from ..sagemaker import _offset, matches_filters
from ..store import TERMINAL
from . import records, space, tuner as tuner_module


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _page(items: list, params: dict, key: str) -> dict:
    start = _offset(params.get("NextToken"))
    size = params.get("MaxResults", 10)
    answer = {key: items[start:start + size]}
    if start + size < len(items):
        answer["NextToken"] = _token(start + size)
    return answer


class TuningOperations:
    def __init__(self, store, tuner):
        self.store, self.tuner = store, tuner

    def _tuning(self, name: str):
        """The stored tuning job, or AWS's answer for an unknown one."""
        tuning = records.tuning_job(self.store, name)
        if tuning is None:
            raise protocol.ApiError("ResourceNotFound", f"Amazon SageMaker can't find a tuning job named {name}.")
        return tuning

    # -- summaries --------------------------------------------------------------------
    def _training_summary(self, tuning, trial, job) -> dict:
        objective = tuning.config["HyperParameterTuningJobObjective"]
        state = job.state
        answer = {"TrainingJobName": job.name, "TrainingJobArn": job.arn, "TuningJobName": tuning.name,
                  "CreationTime": job.created, "TrainingJobStatus": job.status,
                  "TunedHyperParameters": dict(trial.tuned)}
        for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
            if state.get(key):
                answer[key] = state[key]
        value = tuner_module.objective_value(self.store, tuning.request, job)
        if job.status not in TERMINAL:
            answer["ObjectiveStatus"] = "Pending"
        elif value is not None and (job.status == "Completed" or trial.early_stopped == 1):
            answer["ObjectiveStatus"] = "Succeeded"
        else:
            answer["ObjectiveStatus"] = "Failed"
        if value is not None:
            answer["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective["Type"], "MetricName": objective["MetricName"], "Value": value}
        return answer

    def _summaries(self, tuning) -> list[tuple]:
        answer = []
        for trial in records.trials(self.store, tuning.name):
            job = self.store.job(trial.training_job)
            if job is not None:
                answer.append((trial, job, self._training_summary(tuning, trial, job)))
        return answer

    def _counters(self, summaries) -> tuple[dict, dict]:
        jobs = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
        objectives = {"Succeeded": 0, "Pending": 0, "Failed": 0}
        for trial, job, summary in summaries:
            if job.status == "Failed":
                jobs["RetryableError" if tuner_module.retryable(job, trial) else "NonRetryableError"] += 1
            else:
                jobs[job.status] += 1
            objectives[summary["ObjectiveStatus"]] += 1
        return jobs, objectives

    @staticmethod
    def _best(tuning, summaries) -> dict | None:
        maximize = tuning.config["HyperParameterTuningJobObjective"]["Type"] == "Maximize"
        done = [s for _, job, s in summaries if job.status == "Completed" and s["ObjectiveStatus"] == "Succeeded"]
        if not done:
            return None
        pick = max if maximize else min
        return pick(done, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])

    # -- operations -------------------------------------------------------------------
    def op_CreateHyperParameterTuningJob(self, params: dict, region: str) -> dict:  # noqa: N802 - AWS's names
        try:
            space.check(params)
            sample = {r["Name"]: r["MinValue"] for kind in ("IntegerParameterRanges", "ContinuousParameterRanges")
                      for r in space.ranges_of(params["HyperParameterTuningJobConfig"])[kind]}
            sample.update({r["Name"]: r["Values"][0] for r in space.ranges_of(
                params["HyperParameterTuningJobConfig"])["CategoricalParameterRanges"]})
            name = params["HyperParameterTuningJobName"]
            validate_request(tuner_module.training_request(params, tuner_module.training_job_name(name, 1, sample),
                                                           sample))
        except (space.SpaceError, RequestError) as exc:
            raise protocol.validation_error(str(exc)) from None
        for parent in (params.get("WarmStartConfig") or {}).get("ParentHyperParameterTuningJobs") or []:
            parent_job = records.tuning_job(self.store, parent.get("HyperParameterTuningJobName", ""))
            if parent_job is None:
                raise protocol.validation_error(f"WarmStartConfig: parent tuning job "
                                                f"{parent.get('HyperParameterTuningJobName')!r} does not exist.")
            if parent_job.status not in TERMINAL:
                raise protocol.validation_error(f"WarmStartConfig: parent tuning job {parent_job.name!r} is "
                                                f"{parent_job.status}; a parent must have ended.")
        arn = tuner_module.tuning_job_arn(region, params["TrainingJobDefinition"]["RoleArn"], name)
        if not records.add_tuning_job(self.store, name, arn, region, params, params.get("Tags", [])):
            raise protocol.ApiError("ResourceInUse", f"Hyperparameter tuning job names must be unique within an AWS "
                                                     f"account and region, and {name} already exists ({arn})")
        self.tuner.wake()
        return {"HyperParameterTuningJobArn": arn}

    def op_DescribeHyperParameterTuningJob(self, params: dict, region: str) -> dict:  # noqa: N802
        tuning = self._tuning(params["HyperParameterTuningJobName"])
        request = tuning.request
        config = json.loads(json.dumps(tuning.config))
        config["ParameterRanges"] = space.ranges_of(config)
        config.setdefault("TrainingJobEarlyStoppingType", "Off")
        if config["Strategy"] == "Grid":
            config["ResourceLimits"].setdefault("MaxNumberOfTrainingJobs", space.max_jobs(config))
        definition = json.loads(json.dumps(request["TrainingJobDefinition"]))
        definition["StaticHyperParameters"] = {
            **(definition.get("StaticHyperParameters") or {}),
            "_tuning_objective_metric": config["HyperParameterTuningJobObjective"]["MetricName"]}
        summaries = self._summaries(tuning)
        jobs, objectives = self._counters(summaries)
        answer = {"HyperParameterTuningJobName": tuning.name, "HyperParameterTuningJobArn": tuning.arn,
                  "HyperParameterTuningJobConfig": config, "TrainingJobDefinition": definition,
                  "HyperParameterTuningJobStatus": tuning.status, "CreationTime": tuning.created,
                  "LastModifiedTime": tuning.modified, "TrainingJobStatusCounters": jobs,
                  "ObjectiveStatusCounters": objectives,
                  "ConsumedResources": {"RuntimeInSeconds": int(sum(
                      (j.state.get("TrainingEndTime") or 0) - (j.state.get("TrainingStartTime") or 0)
                      for _, j, _ in summaries if j.state.get("TrainingStartTime") and j.state.get("TrainingEndTime")))}}
        if tuning.ended:
            answer["HyperParameterTuningEndTime"] = tuning.ended
        if request.get("WarmStartConfig"):
            answer["WarmStartConfig"] = request["WarmStartConfig"]
        if tuning.failure:
            answer["FailureReason"] = tuning.failure
        best = self._best(tuning, summaries)
        if best:
            answer["BestTrainingJob"] = best
            overall = [best]
            for parent in (request.get("WarmStartConfig") or {}).get("ParentHyperParameterTuningJobs") or []:
                parent_job = records.tuning_job(self.store, parent["HyperParameterTuningJobName"])
                parent_best = parent_job and self._best(parent_job, self._summaries(parent_job))
                if parent_best:
                    overall.append(parent_best)
            maximize = config["HyperParameterTuningJobObjective"]["Type"] == "Maximize"
            answer["OverallBestTrainingJob"] = (max if maximize else min)(
                overall, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
        return answer

    def op_ListHyperParameterTuningJobs(self, params: dict, region: str) -> dict:  # noqa: N802
        tunings = [t for t in records.tuning_jobs(self.store) if _matches(t, params)]
        key = {"Name": lambda t: t.name, "Status": lambda t: (t.status, t.created)}.get(
            params.get("SortBy"), lambda t: (t.created, t.seq))
        tunings.sort(key=key, reverse=params.get("SortOrder", "Descending") == "Descending")
        summaries = []
        for tuning in tunings:
            jobs, objectives = self._counters(self._summaries(tuning))
            summary = {"HyperParameterTuningJobName": tuning.name, "HyperParameterTuningJobArn": tuning.arn,
                       "HyperParameterTuningJobStatus": tuning.status, "Strategy": tuning.config["Strategy"],
                       "CreationTime": tuning.created, "LastModifiedTime": tuning.modified,
                       "TrainingJobStatusCounters": jobs, "ObjectiveStatusCounters": objectives,
                       "ResourceLimits": tuning.config["ResourceLimits"]}
            if tuning.ended:
                summary["HyperParameterTuningEndTime"] = tuning.ended
            summaries.append(summary)
        return _page(summaries, params, "HyperParameterTuningJobSummaries")

    def op_ListTrainingJobsForHyperParameterTuningJob(self, params: dict, region: str) -> dict:  # noqa: N802
        tuning = self._tuning(params["HyperParameterTuningJobName"])
        summaries = [s for _, _, s in self._summaries(tuning)
                     if not params.get("StatusEquals") or s["TrainingJobStatus"] == params["StatusEquals"]]
        descending = params.get("SortOrder", "Descending") == "Descending"
        sort_by = params.get("SortBy", "CreationTime")
        if sort_by == "FinalObjectiveMetricValue":  # jobs without a value come last, either way
            valued = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            valued.sort(key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], reverse=descending)
            summaries = valued + [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" not in s]
        else:
            key = {"Name": lambda s: s["TrainingJobName"], "Status": lambda s: (s["TrainingJobStatus"],
                                                                                s["CreationTime"])}.get(
                sort_by, lambda s: (s["CreationTime"], s["TrainingJobName"]))
            summaries.sort(key=key, reverse=descending)
        return _page(summaries, params, "TrainingJobSummaries")

    def op_StopHyperParameterTuningJob(self, params: dict, region: str) -> dict:  # noqa: N802
        name = params["HyperParameterTuningJobName"]
        tuning = self._tuning(name)
        if tuning.status != "InProgress":
            raise protocol.validation_error(f"The request was rejected because the tuning job is in status "
                                            f"{tuning.status}.")
        records.request_stop(self.store, name)
        self.tuner.wake()
        return {}


def _matches(tuning, params: dict) -> bool:
    return matches_filters(params, tuning.name, tuning.created, tuning.modified, lambda: tuning.status)
