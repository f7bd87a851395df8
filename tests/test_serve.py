"""``sagemaker-training serve`` through boto3 directly: the real server as a subprocess,
real jobs (hosts as process trees), the embedded S3, the logs API, validation."""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import tarfile
import time

import pytest
from botocore.exceptions import ClientError

from conftest import S3_TEST_CREDENTIALS
from serve_helpers import server_fixture, Server, job_request, put_code, sdk_python, stream_messages, wait_for

BUCKET = "serve-tests"
GROUP = "/aws/sagemaker/TrainingJobs"


server = server_fixture("serve", "--bucket", BUCKET, "--max-running", "2", "--stop-grace", "5")


@pytest.fixture(scope="module")
def clients(server):
    sm, s3, logs = server.client("sagemaker"), server.client("s3"), server.client("logs")
    code = put_code(s3, BUCKET)
    return sm, s3, logs, code


def _error(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def _raw(server, target: str, body) -> tuple[int, dict]:
    """POST a JSON 1.1 body as is (signed with the server's key); (status, decoded answer)."""
    status, _, answer = server.request("POST", "/", json.dumps(body).encode(), {
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    return status, json.loads(answer)


def _model_files(s3, uri: str) -> list[str]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return sorted(tar.getnames())


def test_ready_line_and_exports(server):
    assert server.stdout_lines[-1] == f"ready {server.url}"
    assert server.url.startswith("http://127.0.0.1:")
    assert server.environ["AWS_ENDPOINT_URL"] == server.url
    with open(server.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"], encoding="utf-8") as f:
        assert "TelemetryOptOut: true" in f.read()


def test_a_two_host_job_completes_with_logs_metrics_and_artifacts(clients):
    sm, s3, logs, code = clients
    request = job_request("two-hosts", BUCKET, code, hosts=2)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}]
    arn = sm.create_training_job(**request)["TrainingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:training-job/two-hosts"
    answer = wait_for(sm, "two-hosts")
    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
    assert answer["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in answer["SecondaryStatusTransitions"]] == \
        ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert answer["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/output/two-hosts/output/model.tar.gz"
    assert _model_files(s3, answer["ModelArtifacts"]["S3ModelArtifacts"]) == ["model.txt"]
    assert answer["OutputDataConfig"]["KmsKeyId"] == ""
    assert answer["HyperParameters"] == request["HyperParameters"]
    assert answer["TrainingTimeInSeconds"] >= 1 and answer["BillableTimeInSeconds"] == answer["TrainingTimeInSeconds"]
    assert answer["TrainingStartTime"] <= answer["TrainingEndTime"] <= answer["LastModifiedTime"]
    assert [(m["MetricName"], m["Value"]) for m in answer["FinalMetricDataList"]] == [("loss", 0.3333)]

    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="two-hosts/")
    names = [s["logStreamName"] for s in streams["logStreams"]]
    assert "nextToken" not in streams
    assert [n.rsplit("-", 1)[0] for n in names] == ["two-hosts/algo-1", "two-hosts/algo-2"]
    for host, name in zip(("algo-1", "algo-2"), names):
        messages = stream_messages(logs, name)
        assert f"hello from {host}" in messages
        assert messages.index("step 0 loss=1.0000") < messages.index("step 2 loss=0.3333")


def test_validation_errors_are_aws_shaped(server, clients):
    _, _, _, code = clients
    sm = server.client("sagemaker", validate=False)  # what a client without botocore's checks sends
    good = job_request("valid-name", BUCKET, code)
    missing_role = {k: v for k, v in good.items() if k != "RoleArn"}
    cases = [
        ({"TrainingJobName": "bad name"},
         "1 validation error detected: Value 'bad name' at 'trainingJobName' failed to satisfy constraint: "
         "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"),
        ({"AlgorithmSpecification": {**good["AlgorithmSpecification"], "TrainingInputMode": "Filed"}},
         "1 validation error detected: Value 'Filed' at 'algorithmSpecification.trainingInputMode' failed to "
         "satisfy constraint: Member must satisfy enum value set: [Pipe, File, FastFile]"),
        ({"StoppingCondition": {"MaxRuntimeInSeconds": 0}},
         "1 validation error detected: Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy "
         "constraint: Member must have value greater than or equal to 1"),
        ({"ResourceConfig": {**good["ResourceConfig"], "InstanceType": "ml.laptop"}},
         "1 validation error detected: Value 'ml.laptop' at 'resourceConfig.instanceType' failed to satisfy "
         "constraint: Member must satisfy enum value set: [ml.m4.xlarge, "),
        ({"ResourceConfig": {**good["ResourceConfig"], "VolumeSizeInGB": "ten"}},
         "1 validation error detected: Value 'ten' at 'resourceConfig.volumeSizeInGB' failed to satisfy "
         "constraint: Member must be of type int"),
        ({"TrainingJobName": "", "StoppingCondition": {"MaxRuntimeInSeconds": 0}},
         "3 validation errors detected: Value '' at 'trainingJobName' failed to satisfy constraint: Member must "
         "satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; Value '' at 'trainingJobName' "
         "failed to satisfy constraint: Member must have length greater than or equal to 1; "),
    ]
    for change, message in cases:
        code_, text = _error(sm.create_training_job, **{**good, **change})
        assert code_ == "ValidationException"
        assert text.startswith(message), text
    assert _error(sm.create_training_job, **missing_role) == (
        "ValidationException", "1 validation error detected: Value null at 'roleArn' failed to satisfy "
                               "constraint: Member must not be null")
    # a member the API does not have (boto3 cannot even send it)
    status, answer = _raw(server, "SageMaker.CreateTrainingJob", {**good, "Color": "blue"})
    assert status == 400 and answer["__type"] == "ValidationException"
    assert answer["message"].startswith("1 validation error detected: Unknown member 'Color': it is not a member "
                                        "of this request (valid: TrainingJobName, HyperParameters, ")
    assert _raw(server, "SageMaker.CreateTrainingJob", [1]) == \
        (400, {"__type": "SerializationException", "message": "The request body must be a JSON object."})
    # nothing was created by any of them
    assert _error(sm.describe_training_job, TrainingJobName="valid-name") == \
        ("ValidationException", "Requested resource not found.")


def test_fields_of_the_api_that_local_mode_does_not_act_on_are_accepted(clients):
    sm, _, _, code = clients
    request = job_request("with-extras", BUCKET, code, CheckpointConfig={"S3Uri": f"s3://{BUCKET}/ckpt"},
                          RemoteDebugConfig={"EnableRemoteDebug": False}, Tags=[{"Key": "team", "Value": "ml"}])
    arn = sm.create_training_job(**request)["TrainingJobArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    answer = wait_for(sm, "with-extras")
    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
    assert answer["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/ckpt"}


def test_duplicate_name_is_resource_in_use(clients):
    sm, _, _, code = clients
    sm.create_training_job(**job_request("taken", BUCKET, code))
    code_, message = _error(sm.create_training_job, **job_request("taken", BUCKET, code))
    assert code_ == "ResourceInUse"
    assert "a training job with this name already exists" in message
    wait_for(sm, "taken")


def test_unknown_job(clients):
    sm, _, logs, _ = clients
    assert _error(sm.describe_training_job, TrainingJobName="never-made") == \
        ("ValidationException", "Requested resource not found.")
    assert _error(sm.stop_training_job, TrainingJobName="never-made") == \
        ("ResourceNotFound", "Could not find training job 'never-made'.")
    assert logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="never-made/")["logStreams"] == []
    assert _error(logs.get_log_events, logGroupName=GROUP, logStreamName="never-made/algo-1-1") == \
        ("ResourceNotFoundException", "The specified log stream does not exist.")


def test_a_failing_script_fails_the_job_with_the_users_message(clients):
    sm, _, _, code = clients
    sm.create_training_job(**job_request("fails", BUCKET, code, env={"FAIL_WITH": "the learning rate is negative"}))
    answer = wait_for(sm, "fails")
    assert answer["TrainingJobStatus"] == "Failed"
    first = answer["FailureReason"].splitlines()[0]
    assert first.startswith("UserError: ")
    assert "ValueError: the learning rate is negative" in first
    assert answer["SecondaryStatusTransitions"][-1]["Status"] == "Failed"


def test_a_missing_channel_fails_the_job_as_a_client_error(clients):
    sm, _, _, code = clients
    request = job_request("no-data", BUCKET, code)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/nothing-here"
    sm.create_training_job(**request)
    answer = wait_for(sm, "no-data")
    assert answer["TrainingJobStatus"] == "Failed"
    assert answer["FailureReason"].startswith(
        f"ClientError: InputDataConfig[0].DataSource.S3DataSource.S3Uri: there are no objects under "
        f"s3://{BUCKET}/nothing-here"), answer["FailureReason"]


def _wait_for_line_on_every_host(logs, job: str, text: str, hosts: int, timeout: float = 120) -> None:
    """Until each of the job's ``hosts`` log streams holds a line with ``text``."""
    deadline = time.monotonic() + timeout
    while True:
        streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{job}/")["logStreams"]
        said = [s for s in streams if any(text in m for m in stream_messages(logs, s["logStreamName"]))]
        if len(said) >= hosts:
            return
        assert time.monotonic() < deadline, f"{len(said)} of {hosts} hosts logged {text!r} within {timeout}s"
        time.sleep(0.2)


def test_stop_goes_through_stopping_to_stopped(clients):
    sm, s3, logs, code = clients
    sm.create_training_job(**job_request("stopped", BUCKET, code, hosts=2,
                                         env={"STEPS": "600", "STEP_SECONDS": "0.1"}))
    wait_for(sm, "stopped", statuses=("InProgress",), secondary="Training")
    _wait_for_line_on_every_host(logs, "stopped", "step 0 loss=", hosts=2)  # their SIGTERM handlers are set
    sm.stop_training_job(TrainingJobName="stopped")
    stopping = sm.describe_training_job(TrainingJobName="stopped")
    assert (stopping["TrainingJobStatus"], stopping["SecondaryStatus"]) == ("InProgress", "Stopping")
    answer = wait_for(sm, "stopped", timeout=60)
    assert (answer["TrainingJobStatus"], answer["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in answer["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]
    assert _model_files(s3, answer["ModelArtifacts"]["S3ModelArtifacts"]) == ["stopped.txt"]
    assert _error(sm.stop_training_job, TrainingJobName="stopped") == \
        ("ValidationException", "The request was rejected because the training job is in status Stopped.")


def test_a_stop_right_after_create_ends_stopped_never_failed(clients):
    """StopTrainingJob at once: the job's process may not have its own SIGTERM handler yet (still
    Starting); the job is Stopped all the same, not Failed."""
    sm, _, _, code = clients
    for index in range(3):
        name = f"stopped-at-once-{index}"
        sm.create_training_job(**job_request(name, BUCKET, code, env={"STEPS": "600", "STEP_SECONDS": "0.1"}))
        sm.stop_training_job(TrainingJobName=name)
        answer = wait_for(sm, name, timeout=60)
        assert (answer["TrainingJobStatus"], answer.get("FailureReason")) == ("Stopped", None), answer


def test_a_next_token_of_deep_json_is_a_validation_error(clients):
    import base64

    sm = clients[0]
    token = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode()
    assert _error(sm.list_training_jobs, NextToken=token) == (
        "ValidationException", "Invalid pagination token: give back a NextToken exactly as it was returned.")


def test_list_filters_sorts_and_pages(clients):
    sm, _, _, code = clients
    names = [f"listed-{i}" for i in range(5)]
    for index, name in enumerate(names):
        if index == 3:  # boto3 sends timestamps in whole seconds
            time.sleep(1.1)
            mark = datetime.datetime.now(datetime.timezone.utc)
        sm.create_training_job(**job_request(name, BUCKET, code))
    for name in names:
        wait_for(sm, name)
    pages = list(sm.get_paginator("list_training_jobs").paginate(NameContains="listed-",
                                                                   PaginationConfig={"PageSize": 2}))
    assert [len(p["TrainingJobSummaries"]) for p in pages] == [2, 2, 1]
    assert [s["TrainingJobName"] for p in pages for s in p["TrainingJobSummaries"]] == names[::-1]
    by_name = sm.list_training_jobs(NameContains="listed-", SortBy="Name", SortOrder="Ascending", MaxResults=3)
    assert [s["TrainingJobName"] for s in by_name["TrainingJobSummaries"]] == names[:3]
    assert "NextToken" in by_name
    summary = by_name["TrainingJobSummaries"][0]
    assert summary["TrainingJobStatus"] == "Completed" and "TrainingEndTime" in summary
    later = sm.list_training_jobs(NameContains="listed-", CreationTimeAfter=mark)["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in later] == names[:2:-1]
    earlier = sm.list_training_jobs(NameContains="listed-", CreationTimeBefore=mark)["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in earlier] == names[2::-1]
    failed = sm.list_training_jobs(StatusEquals="Failed", MaxResults=100)["TrainingJobSummaries"]
    assert all(s["TrainingJobStatus"] == "Failed" for s in failed)
    assert _error(sm.list_training_jobs, NextToken="not-a-token")[0] == "ValidationException"


def test_get_log_events_tokens_times_and_the_empty_last_page(clients):
    sm, _, logs, code = clients
    sm.create_training_job(**job_request("logged", BUCKET, code, env={"STEPS": "4"}))
    wait_for(sm, "logged")
    stream = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="logged/")["logStreams"][0]
    name = stream["logStreamName"]
    everything = logs.get_log_events(logGroupName=GROUP, logStreamName=name, startFromHead=True)["events"]
    times = [e["timestamp"] for e in everything]
    assert times == sorted(times) and all(isinstance(t, int) for t in times)
    assert stream["firstEventTimestamp"] == times[0] and stream["lastEventTimestamp"] == times[-1]
    # startTime is inclusive
    middle = everything[len(everything) // 2]["timestamp"]
    later = logs.get_log_events(logGroupName=GROUP, logStreamName=name, startFromHead=True, startTime=middle)
    assert later["events"][0]["timestamp"] == middle
    assert [e["message"] for e in later["events"]] == [e["message"] for e in everything if e["timestamp"] >= middle]
    # paging forward ends with an empty page whose token stays put
    first = logs.get_log_events(logGroupName=GROUP, logStreamName=name, startFromHead=True, limit=3)
    assert len(first["events"]) == 3
    assert stream_messages(logs, name) == [e["message"] for e in everything]
    last = logs.get_log_events(logGroupName=GROUP, logStreamName=name, nextToken=first["nextForwardToken"],
                               limit=10000)
    end = logs.get_log_events(logGroupName=GROUP, logStreamName=name, nextToken=last["nextForwardToken"])
    assert end["events"] == [] and end["nextForwardToken"] == last["nextForwardToken"]
    # without startFromHead: the newest events
    tail = logs.get_log_events(logGroupName=GROUP, logStreamName=name, limit=2)["events"]
    assert [e["message"] for e in tail] == [e["message"] for e in everything[-2:]]
    # DescribeLogStreams gives a nextToken only when there are more streams
    both = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="two-hosts/", limit=1)
    assert len(both["logStreams"]) == 1 and "nextToken" in both
    rest = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="two-hosts/", limit=1,
                                     nextToken=both["nextToken"])
    assert len(rest["logStreams"]) == 1 and "nextToken" not in rest
    assert _error(logs.describe_log_streams, logGroupName="/aws/other")[0] == "ResourceNotFoundException"


def test_sts_and_s3_through_the_same_port(server):
    assert server.client("sts").get_caller_identity()["Account"] == "000000000000"
    s3 = server.client("s3")
    s3.upload_fileobj(io.BytesIO(b"x" * (9 * 1024 * 1024)), BUCKET, "big/object.bin")  # multipart
    assert s3.head_object(Bucket=BUCKET, Key="big/object.bin")["ContentLength"] == 9 * 1024 * 1024
    assert s3.get_object(Bucket=BUCKET, Key="big/object.bin", Range="bytes=0-3")["Body"].read() == b"xxxx"


def test_verbose_log_names_requests_but_no_secret(tmp_path):
    server = Server(str(tmp_path / "state"), "--bucket", BUCKET, "--verbose").start()
    try:
        import boto3

        key, secret = server.environ["AWS_ACCESS_KEY_ID"], server.environ["AWS_SECRET_ACCESS_KEY"]
        session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                        aws_session_token="session-token-secret-value", region_name="us-east-1")
        sm = session.client("sagemaker", endpoint_url=server.url)
        s3 = session.client("s3", endpoint_url=server.url)
        s3.put_object(Bucket=BUCKET, Key="k.txt", Body=b"x")
        s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "k.txt"})
        with pytest.raises(ClientError):
            sm.describe_training_job(TrainingJobName="absent")
    finally:
        server.stop()
    log = server.log()
    assert "SageMaker DescribeTrainingJob -> 400" in log
    assert "s3 PUT /serve-tests/k.txt" in log
    for text in (secret, "session-token-secret-value", "Signature", "Authorization", key):
        assert text not in log


def test_jobs_use_the_s3_endpoint_named_by_s3_endpoint(tmp_path, s3, s3_bucket, s3_endpoint):
    bucket = s3_bucket("named")
    code = put_code(s3, bucket)
    # the server's own credentials are the jobs' (as a role's would be)
    made = f"{bucket}-made"
    server = Server(str(tmp_path / "state"), "--s3-endpoint", s3_endpoint, "--bucket", made,
                    env=S3_TEST_CREDENTIALS).start()
    try:
        s3.head_bucket(Bucket=made)  # --bucket made it there
        assert server.environ["AWS_ENDPOINT_URL_S3"] == s3_endpoint
        assert not os.path.exists(os.path.join(server.state_dir, "s3"))  # no embedded S3 started
        sm = server.client("sagemaker")
        sm.create_training_job(**job_request("elsewhere", bucket, code))
        answer = wait_for(sm, "elsewhere")
        assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
        assert _model_files(s3, answer["ModelArtifacts"]["S3ModelArtifacts"]) == ["model.txt"]  # in moto
    finally:
        server.stop()


def test_the_aws_cli_pages_lists_and_reads_logs(server, clients):
    sm, _, _, code = clients
    aws = os.path.join(os.path.dirname(sdk_python("awscli")), "aws")
    names = [f"cli-{i}" for i in range(3)]
    for name in names:
        request = job_request(name, BUCKET, code, env={"STEPS": "1"})
        if name != "cli-0":  # no data: fails at once
            request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/none"
        sm.create_training_job(**request)
    for name in names:
        wait_for(sm, name)

    def cli(*args) -> dict:
        result = subprocess.run([aws, *args, "--output", "json"], env=server.client_environ(), capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    first = cli("sagemaker", "list-training-jobs", "--name-contains", "cli-", "--sort-by", "Name",
                "--sort-order", "Ascending", "--page-size", "1", "--max-items", "2")
    assert [s["TrainingJobName"] for s in first["TrainingJobSummaries"]] == names[:2]
    rest = cli("sagemaker", "list-training-jobs", "--name-contains", "cli-", "--sort-by", "Name",
               "--sort-order", "Ascending", "--page-size", "1", "--starting-token", first["NextToken"])
    assert [s["TrainingJobName"] for s in rest["TrainingJobSummaries"]] == names[2:]
    described = cli("sagemaker", "describe-training-job", "--training-job-name", "cli-1")
    assert described["TrainingJobStatus"] == "Failed" and described["FailureReason"].startswith("ClientError: ")
    streams = cli("logs", "describe-log-streams", "--log-group-name", GROUP, "--log-stream-name-prefix", "cli-0/")
    assert [s["logStreamName"].rsplit("-", 1)[0] for s in streams["logStreams"]] == ["cli-0/algo-1"]
    events = cli("logs", "get-log-events", "--log-group-name", GROUP, "--start-from-head",
                 "--log-stream-name", streams["logStreams"][0]["logStreamName"])["events"]
    assert "step 0 loss=1.0000" in [e["message"] for e in events]
    result = subprocess.run([aws, "sagemaker", "describe-training-job", "--training-job-name", "cli-9"],
                            env=server.client_environ(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 255  # the AWS CLI v1 exit code of a service error
    assert "An error occurred (ValidationException) when calling the DescribeTrainingJob operation: Requested " \
           "resource not found." in result.stderr


PIPE_HOLDER = """
    import os, sys, threading
    data = os.path.join(os.environ["SM_INPUT_DIR"], "data")
    with open(os.path.join(data, "training_0"), "rb") as f:
        print(f"read {len(f.read(10))} bytes, holding the FIFO", flush=True)
        threading.Event().wait()  # never reads on: the feeder waits for room in the FIFO
"""


def test_stop_during_a_blocked_pipe_write(clients):
    sm, s3, logs, _ = clients
    code = put_code(s3, BUCKET, key="code/pipe-holder.tar.gz", script=PIPE_HOLDER)
    s3.put_object(Bucket=BUCKET, Key="pipe-big/blob.bin", Body=os.urandom(4 << 20))  # far more than a FIFO holds
    request = job_request("pipe-stop", BUCKET, code, AlgorithmSpecification={
        "TrainingImage": "123.dkr.ecr.us-west-2.amazonaws.com/sagemaker-mxnet:1.9.0-cpu-py38",
        "TrainingInputMode": "Pipe"})
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/pipe-big"
    sm.create_training_job(**request)
    deadline = time.monotonic() + 120
    while not any("holding the FIFO" in m for m in _job_messages(logs, "pipe-stop")):
        assert time.monotonic() < deadline, sm.describe_training_job(TrainingJobName="pipe-stop")
        time.sleep(0.3)
    sm.stop_training_job(TrainingJobName="pipe-stop")
    answer = wait_for(sm, "pipe-stop", timeout=60)
    assert (answer["TrainingJobStatus"], answer["SecondaryStatus"]) == ("Stopped", "Stopped"), answer
    assert "read 10 bytes, holding the FIFO" in _job_messages(logs, "pipe-stop")


def _job_messages(logs, job: str) -> list:
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{job}/")["logStreams"]
    return [m for s in streams for m in stream_messages(logs, s["logStreamName"])]
