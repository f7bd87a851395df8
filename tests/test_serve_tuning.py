"""Hyperparameter tuning jobs through ``sagemaker-training serve``, with boto3: real serve on
loopback, real (tiny, plain-script) training jobs. Grid with MaxParallelTrainingJobs and the
listing calls, a job without an objective, early stopping (the median rule), warm start, a
restart mid-tuning, StopHyperParameterTuningJob through SDK 1.72.1's attach(), bad input."""

from __future__ import annotations

import io
import itertools
import json
import os
import tarfile
import time

import pytest
from botocore.exceptions import ClientError

from serve_helpers import REPO, ROLE, Server, job_request, put_code, run_client, sdk_fixture, stream_messages

BUCKET = "tuning-tests"
CLIENTS = os.path.join(REPO, "tests", "serve_clients")

# A job whose loss depends on its hyperparameters: --lr (best at 0.3) and --curve (good: three
# falling values at once; bad: a high, rising loss, slowly; silent: no objective line at all;
# evil: one loss, then a line of "a"s, then waiting for the file --release names).
# SIGTERM saves a marker in the model dir, so a stopped job's artifacts show it.
TUNED = """
    import argparse, os, signal, sys, time

    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.3)
        parser.add_argument("--curve", default="good")
        parser.add_argument("--steps", type=int, default=3)
        parser.add_argument("--step_seconds", type=float, default=0)
        parser.add_argument("--release")
        args, _ = parser.parse_known_args()
        if args.curve == "evil":  # a line on which the test's objective regex takes 2^40 steps
            print("step 0 loss=0.5", flush=True)
            print("a" * 40 + "!", flush=True)
            while not os.path.exists(args.release):
                time.sleep(0.1)
            sys.exit(0)

        def on_term(signum, frame):
            open(os.path.join(os.environ["SM_MODEL_DIR"], "stopped.txt"), "w").write("saved")
            sys.exit(0)

        signal.signal(signal.SIGTERM, on_term)
        steps = 60 if args.curve == "bad" else args.steps
        for step in range(steps):
            if args.curve == "bad":
                print(f"step {step} loss={10.0 + step:.6f}", flush=True)
                time.sleep(0.5)
                continue
            if args.curve != "silent":
                print(f"step {step} loss={(args.lr - 0.3) ** 2 + 1.0 / (step + 1):.6f}", flush=True)
            time.sleep(args.step_seconds)
        open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("done")
"""
METRICS = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(str(tmp_path_factory.mktemp("serve-tuning") / "state"), "--bucket", BUCKET,
                    "--max-running", "3", "--stop-grace", "5").start()
    put_code(server.client("s3"), BUCKET, script=TUNED)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sm(server):
    return server.client("sagemaker")


def definition(**static) -> dict:
    """A TrainingJobDefinition as boto3 users write it (plain-string static hyperparameters)."""
    body = job_request("unused", BUCKET, f"s3://{BUCKET}/code/sourcedir.tar.gz")
    body.pop("TrainingJobName")
    body["StaticHyperParameters"] = {**body.pop("HyperParameters"), **{k: str(v) for k, v in static.items()}}
    body["AlgorithmSpecification"]["MetricDefinitions"] = METRICS
    return body


def config(strategy: str, ranges: dict, max_jobs: int | None, parallel: int = 2, **extra) -> dict:
    limits = {"MaxParallelTrainingJobs": parallel}
    if max_jobs:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    return {"Strategy": strategy, "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": limits, "ParameterRanges": ranges, **extra}


def categorical(**values) -> dict:
    return {"CategoricalParameterRanges": [{"Name": k, "Values": v} for k, v in values.items()]}


def wait_tuning(sm, name: str, timeout: float = 300, until=None) -> dict:
    """DescribeHyperParameterTuningJob once the job has ended (or ``until(answer)`` holds)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if (until(answer) if until else answer["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping")):
            return answer
        assert time.monotonic() < deadline, f"{name}: {answer['HyperParameterTuningJobStatus']} {answer}"
        time.sleep(0.3)


def training_jobs(sm, name: str, **kwargs) -> list[dict]:
    summaries, token = [], None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, MaxResults=4, **({"NextToken": token} if token else {}), **kwargs)
        summaries.extend(page["TrainingJobSummaries"])
        token = page.get("NextToken")
        if not token:
            return summaries


def most_at_once(sm, names) -> int:
    """The most training jobs that ran at the same moment, from their start and end times."""
    edges = []
    for name in names:
        job = sm.describe_training_job(TrainingJobName=name)
        edges += [(job["TrainingStartTime"].timestamp(), 1), (job["TrainingEndTime"].timestamp(), -1)]
    running = most = 0
    for _, change in sorted(edges, key=lambda e: (e[0], e[1])):
        running += change
        most = max(most, running)
    return most


def members(server, uri: str) -> list[str]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    data = server.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return sorted(tar.getnames())


@pytest.fixture(scope="module")
def grid_job(sm):
    """Grid over lr x curve (6 combinations, 2 at a time); the 'silent' jobs log no objective."""
    name = "grid-1"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition(),
        HyperParameterTuningJobConfig=config("Grid", categorical(lr=["0.1", "0.3", "0.5"], curve=["good", "silent"]),
                                             None, RandomSeed=11),
        Tags=[{"Key": "team", "Value": "tuning"}])
    return name, wait_tuning(sm, name)


def test_grid_runs_each_combination_once_two_at_a_time(sm, grid_job):
    name, answer = grid_job
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 6
    summaries = training_jobs(sm, name)
    combos = sorted((s["TunedHyperParameters"]["lr"], s["TunedHyperParameters"]["curve"]) for s in summaries)
    assert combos == sorted(itertools.product(["0.1", "0.3", "0.5"], ["good", "silent"]))
    assert most_at_once(sm, [s["TrainingJobName"] for s in summaries]) <= 2
    assert answer["TrainingJobStatusCounters"] == {"Completed": 6, "InProgress": 0, "RetryableError": 0,
                                                   "NonRetryableError": 0, "Stopped": 0}
    # a job that logged no objective: ObjectiveStatus Failed, never the best
    assert answer["ObjectiveStatusCounters"] == {"Succeeded": 3, "Pending": 0, "Failed": 3}
    best = answer["BestTrainingJob"]
    assert best["TunedHyperParameters"] == {"lr": "0.3", "curve": "good"}
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(1 / 3, abs=1e-6)
    assert best["TrainingJobName"].startswith(f"{name}-") and len(best["TrainingJobName"].split("-")[-1]) == 8
    # each training job is an ordinary one: listed, described, with the hyperparameters it got
    job = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert job["HyperParameters"]["_tuning_objective_metric"] == "loss"
    assert job["HyperParameters"]["lr"] == "0.3" and job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    listed = {j["TrainingJobName"] for j in sm.list_training_jobs(NameContains=name, MaxResults=100)[
        "TrainingJobSummaries"]}
    assert listed == {s["TrainingJobName"] for s in summaries}
    assert sm.list_tags(ResourceArn=answer["HyperParameterTuningJobArn"])["Tags"] == [
        {"Key": "team", "Value": "tuning"}]


def test_listing_sorts_filters_and_pages(sm, grid_job):
    name, _ = grid_job
    ranked = training_jobs(sm, name, SortBy="FinalObjectiveMetricValue", SortOrder="Ascending")
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in ranked
              if "FinalHyperParameterTuningJobObjectiveMetric" in s]
    assert values == sorted(values) and len(values) == 3
    assert all("FinalHyperParameterTuningJobObjectiveMetric" not in s for s in ranked[3:])
    first = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, MaxResults=4)
    assert len(first["TrainingJobSummaries"]) == 4 and first["NextToken"]
    assert training_jobs(sm, name, StatusEquals="Failed") == []
    for call in (sm.describe_hyper_parameter_tuning_job, sm.stop_hyper_parameter_tuning_job,
                 sm.list_training_jobs_for_hyper_parameter_tuning_job):
        with pytest.raises(ClientError) as unknown:
            call(HyperParameterTuningJobName="no-such-tuning")
        assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"
    tunings = sm.list_hyper_parameter_tuning_jobs(NameContains="grid")["HyperParameterTuningJobSummaries"]
    assert [(t["HyperParameterTuningJobName"], t["Strategy"], t["HyperParameterTuningJobStatus"]) for t in tunings] \
        == [(name, "Grid", "Completed")]


def test_warm_start_from_the_grid_job(sm, grid_job):
    parent, parent_answer = grid_job
    name = "warm-1"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition(curve="good"),
        HyperParameterTuningJobConfig=config(
            "Bayesian", {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.0", "MaxValue": "1.0"}]},
            2, RandomSeed=5),
        WarmStartConfig={"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
                         "WarmStartType": "IdenticalDataAndAlgorithm"})
    answer = wait_tuning(sm, name)
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["WarmStartConfig"]["ParentHyperParameterTuningJobs"] == [{"HyperParameterTuningJobName": parent}]
    assert answer["TrainingJobStatusCounters"]["Completed"] == 2
    own = answer["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    parents = parent_answer["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    overall = answer["OverallBestTrainingJob"]
    assert overall["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == min(own, parents)
    with pytest.raises(ClientError) as missing:
        sm.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="warm-2", TrainingJobDefinition=definition(curve="good"),
            HyperParameterTuningJobConfig=config("Random", categorical(lr=["0.1"]), 1),
            WarmStartConfig={"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "no-such"}],
                             "WarmStartType": "TransferLearning"})
    assert missing.value.response["Error"]["Code"] == "ValidationException"


def test_early_stopping_stops_the_bad_curve(server, sm):
    name = "early-1"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition(),
        HyperParameterTuningJobConfig=config("Grid", categorical(curve=["good", "bad", "good-too"]), None,
                                             TrainingJobEarlyStoppingType="Auto", RandomSeed=3))
    answer = wait_tuning(sm, name)
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["TrainingJobStatusCounters"]["Completed"] == 2
    assert answer["TrainingJobStatusCounters"]["Stopped"] == 1
    [bad] = [s for s in training_jobs(sm, name) if s["TunedHyperParameters"]["curve"] == "bad"]
    assert bad["TrainingJobStatus"] == "Stopped"
    job = sm.describe_training_job(TrainingJobName=bad["TrainingJobName"])
    assert "stopped.txt" in members(server, job["ModelArtifacts"]["S3ModelArtifacts"])  # its artifacts kept
    assert answer["BestTrainingJob"]["TunedHyperParameters"]["curve"] != "bad"


def test_a_catastrophic_objective_regex_stalls_nothing_but_its_own_job(server, sm, tmp_path):
    """The tuner's intermediate values (early stopping reads them every turn) come from the job's own
    matcher process: the objective's regex, which takes 2^40 steps on the job's line of "a"s,
    never runs in serve, where it would hold the GIL and every answer with it."""
    release = tmp_path / "release"
    body = definition(curve="evil", release=str(release))
    body["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": r"loss=([0-9.]+)|(?:a+)+$"}]
    name = "evil-1"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=body,
        HyperParameterTuningJobConfig=config(
            "Random", {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.25", "MaxValue": "0.35"}]}, 1,
            parallel=1, TrainingJobEarlyStoppingType="Auto"))
    wait_tuning(sm, name, until=lambda answer: answer["TrainingJobStatusCounters"]["InProgress"])
    [job] = training_jobs(sm, name)
    logs = server.client("logs")
    while not any("a" * 40 in m for s in logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job["TrainingJobName"])["logStreams"]
            for m in stream_messages(logs, s["logStreamName"])):
        time.sleep(0.2)
    release.write_text("go")
    # the job ends; the tuner reads its curve (the median rule's "completed" curves) and ends the
    # tuning job, all while this client, which gives up after 20 s of silence, keeps asking
    impatient = server.client("sagemaker", read_timeout=20, retries={"max_attempts": 1})
    answer = wait_tuning(impatient, name, timeout=120)
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0.5


def test_stop_tuning_job_with_sdk_v1_attach(server, sm, sdk_v1):
    name = "stop-1"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition(steps=200, step_seconds=0.5),
        HyperParameterTuningJobConfig=config(
            "Random", {"IntegerParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "9"}]}, 4))
    wait_tuning(sm, name, until=lambda a: a["ObjectiveStatusCounters"]["Pending"] == 2 and all(
        sm.describe_training_job(TrainingJobName=s["TrainingJobName"]).get("FinalMetricDataList")
        for s in training_jobs(sm, name)))
    output = run_client(sdk_v1, server, os.path.join(CLIENTS, "v1_tune_stop.py"), name)[0]
    assert "STOPPED Stopping" in output or "STOPPED Stopped" in output
    answer = wait_tuning(sm, name)
    assert answer["HyperParameterTuningJobStatus"] == "Stopped"
    assert answer["TrainingJobStatusCounters"] == {"Completed": 0, "InProgress": 0, "RetryableError": 0,
                                                   "NonRetryableError": 0, "Stopped": 2}
    with pytest.raises(ClientError) as again:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert again.value.response["Error"]["Code"] == "ValidationException"


sdk_v1 = sdk_fixture("sdk-v1")


@pytest.mark.parametrize("case, message", [
    ("objective", "The objective metric 'accuracy' is not among"),
    ("min_max", "MinValue 5 is greater than MaxValue 2"),
    ("grid_31", "Member must have length less than or equal to 30"),
    ("grid_continuous", "The Grid strategy takes categorical ranges only"),
])
def test_bad_input_is_a_validation_exception(sm, case, message):
    cfg = config("Random", {"IntegerParameterRanges": [{"Name": "lr", "MinValue": "1", "MaxValue": "2"}]}, 2)
    if case == "objective":
        cfg["HyperParameterTuningJobObjective"]["MetricName"] = "accuracy"
    elif case == "min_max":
        cfg["ParameterRanges"]["IntegerParameterRanges"][0].update(MinValue="5", MaxValue="2")
    elif case == "grid_31":
        cfg = config("Grid", categorical(lr=[str(i) for i in range(31)]), None)
    else:
        cfg = config("Grid", {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1"}]}, None)
    with pytest.raises(ClientError) as error:
        sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName=f"bad-{case.replace('_', '-')}",
                                             TrainingJobDefinition=definition(), HyperParameterTuningJobConfig=cfg)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert message in error.value.response["Error"]["Message"]
    assert not sm.list_hyper_parameter_tuning_jobs(NameContains="bad-")["HyperParameterTuningJobSummaries"]


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_mid_tuning_loses_no_finished_job(tmp_path, how):
    """serve stopped (its running jobs end Stopped) or killed (they end Failed, orphaned) while a
    tuning job runs: the restarted serve goes on with it; the interrupted jobs are run again."""
    state = str(tmp_path / "state")
    server = Server(state, "--bucket", BUCKET, "--max-running", "2", "--stop-grace", "2").start()
    name = "restart-1"
    try:
        sm = server.client("sagemaker")
        put_code(server.client("s3"), BUCKET, script=TUNED)
        sm.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, TrainingJobDefinition=definition(steps=4, step_seconds=1),
            HyperParameterTuningJobConfig=config(
                "Random", {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1"}]}, 4,
                RandomSeed=1))
        wait_tuning(sm, name, until=lambda a: a["TrainingJobStatusCounters"]["Completed"] >= 1
                    and a["TrainingJobStatusCounters"]["InProgress"] >= 1)
        before = {s["TrainingJobName"]: s for s in training_jobs(sm, name) if s["TrainingJobStatus"] == "Completed"}
        if how == "sigkill":
            server.process.kill()
            server.process.wait()
    finally:
        server.stop()
    server = Server(state, "--bucket", BUCKET, "--max-running", "2").start()
    try:
        sm = server.client("sagemaker")
        answer = wait_tuning(sm, name)
        after = {s["TrainingJobName"]: s for s in training_jobs(sm, name)}
    finally:
        server.stop()
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    for job, summary in before.items():  # every job finished before the restart, as it was
        assert after[job]["TrainingJobStatus"] == "Completed"
        assert after[job]["FinalHyperParameterTuningJobObjectiveMetric"] == \
            summary["FinalHyperParameterTuningJobObjectiveMetric"]
    counters = answer["TrainingJobStatusCounters"]
    assert counters["Completed"] == 4  # the jobs the restart interrupted were run again, not counted
    assert len(after) == 4 + counters["Stopped"] + counters["RetryableError"]
    assert answer["ObjectiveStatusCounters"]["Succeeded"] == 4 and answer["ObjectiveStatusCounters"]["Pending"] == 0


def test_target_objective_value_ends_the_tuning_job(sm):
    name = "target-1"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=definition(),
        HyperParameterTuningJobConfig=config(
            "Random", {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.25", "MaxValue": "0.35"}]}, 10,
            parallel=1, TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 0.5}))
    answer = wait_tuning(sm, name)
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["TrainingJobStatusCounters"]["Completed"] == 1  # every job reaches 0.34 at most
    assert answer["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] <= 0.5


# TensorFlow script mode under tuning, as the TensorFlow toolkit's own tuning test script checks it:
# the SDK's model_dir names the tuning job; each training job must get a model_dir of its own.
TF_ENTRY = """
    import argparse, json, os

    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--model_dir")
        parser.add_argument("--lr", type=float)
        args, _ = parser.parse_known_args()
        job = os.environ["TRAINING_JOB_NAME"]
        assert json.loads(os.environ["SM_TRAINING_ENV"])["job_name"] == job
        assert args.model_dir.endswith(f"/{job}/model"), args.model_dir
        print(f"model_dir {args.model_dir} loss={args.lr}", flush=True)
"""


def test_tensorflow_script_mode_jobs_get_a_model_dir_each(server, sm):
    code = put_code(server.client("s3"), BUCKET, key="tfcode/sourcedir.tar.gz", script=TF_ENTRY)
    name = "tf-dirs-1"
    body = definition()
    body["AlgorithmSpecification"]["TrainingImage"] = \
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:2.14-cpu-py310"
    body["StaticHyperParameters"].update({  # what SDK v2's tuner sends a TensorFlow estimator's jobs
        "sagemaker_submit_directory": json.dumps(code), "model_dir": json.dumps(f"s3://{BUCKET}/{name}/model"),
        "sagemaker_job_name": json.dumps(name), "sagemaker_region": json.dumps("us-east-1"),
        "sagemaker_estimator_class_name": json.dumps("TensorFlow"),
        "sagemaker_estimator_module": json.dumps("sagemaker.tensorflow.estimator")})
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, TrainingJobDefinition=body,
        HyperParameterTuningJobConfig=config("Random", categorical(lr=["0.1", "0.2"]), 2))
    answer = wait_tuning(sm, name)
    assert answer["TrainingJobStatusCounters"]["Completed"] == 2, answer.get("FailureReason")
    assert answer["ObjectiveStatusCounters"]["Succeeded"] == 2
