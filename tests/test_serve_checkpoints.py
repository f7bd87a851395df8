"""``sagemaker-training serve`` and local mode: CheckpointConfig honoured as the platform does (a
stopped job resumes when run again), two jobs at once never share a port or a directory, and
DescribeTrainingJob redacts secret-named values. The real server as a subprocess, its embedded
S3, real hosts as process trees."""

from __future__ import annotations

import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from serve_helpers import server_fixture, job_request, put_code, stream_messages, wait_for

BUCKET = "serve-checkpoints"

CHECKPOINTING = """
    import os, time
    ckpt = os.path.join(os.path.dirname(os.environ["SM_MODEL_DIR"]), "checkpoints")
    found = sorted(os.listdir(ckpt)) if os.path.isdir(ckpt) else None
    print("restored: " + (",".join(found) if found else "-"), flush=True)
    first = len(found or [])
    for i in range(first, first + int(os.environ["STEPS"])):
        with open(os.path.join(ckpt, f"step-{i}"), "w") as f:
            f.write(str(i))
        print(f"saved step-{i}", flush=True)
        time.sleep(0.2)
"""

PORTS = """
    import json, os, time
    names = ("SAGEMAKER_TF_PORT", "SAGEMAKER_TF_PS_PORT", "SAGEMAKER_MXNET_PORT", "SAGEMAKER_PORT_STRIDE")
    print("ports: " + json.dumps({n: os.environ.get(n) for n in names}), flush=True)
    print("base: " + os.path.dirname(os.environ["SM_MODEL_DIR"]), flush=True)
    # both jobs' hosts are up at the same time: each says so in MEET_DIR and waits for all the others
    meet = os.environ["MEET_DIR"]
    open(os.path.join(meet, os.environ["SM_CURRENT_HOST"] + "-" + str(os.getpid())), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(meet)) < int(os.environ["MEET_COUNT"]):
        if time.monotonic() > deadline:
            raise SystemExit("the other jobs' hosts never came")
        time.sleep(0.05)
"""


server = server_fixture("serve-ckpt", "--bucket", BUCKET, "--max-running", "2", "--stop-grace", "5", env={"SAGEMAKER_CHECKPOINT_SYNC_SECONDS": "0.3"})


@pytest.fixture(scope="module")
def clients(server):
    sm, s3, logs = server.client("sagemaker"), server.client("s3"), server.client("logs")
    put_code(s3, BUCKET)
    return sm, s3, logs


def _keys(s3, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def _messages(logs, job: str, host: str = "algo-1") -> list[str]:
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job}/")
    name = [s["logStreamName"] for s in streams["logStreams"] if s["logStreamName"].startswith(f"{job}/{host}-")][0]
    return stream_messages(logs, name)


def test_a_stopped_job_resumes_from_its_checkpoints_when_run_again(clients):
    sm, s3, logs = clients
    code = put_code(s3, BUCKET, key="ckpt-code/sourcedir.tar.gz", script=CHECKPOINTING)
    checkpoint = {"S3Uri": f"s3://{BUCKET}/checkpoints/run-1"}
    sm.create_training_job(**job_request("ckpt-first", BUCKET, code, env={"STEPS": "600"},
                                         CheckpointConfig=checkpoint))
    # uploaded as files appear, while the job runs
    deadline = time.monotonic() + 120
    while len(_keys(s3, "checkpoints/run-1/")) < 3:
        assert time.monotonic() < deadline, sm.describe_training_job(TrainingJobName="ckpt-first")
        time.sleep(0.2)
    assert sm.describe_training_job(TrainingJobName="ckpt-first")["TrainingJobStatus"] == "InProgress"
    sm.stop_training_job(TrainingJobName="ckpt-first")
    first = wait_for(sm, "ckpt-first", timeout=60)
    assert (first["TrainingJobStatus"], first["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert first["CheckpointConfig"] == checkpoint
    messages = _messages(logs, "ckpt-first")
    saved = [m.split(" ", 1)[1] for m in messages if m.startswith("saved step-")]
    assert [m for m in messages if m.startswith("restored: ")] == ["restored: -"]  # nothing there the first time
    assert len(saved) >= 3
    # every file written before the stop is in the bucket (the last sync), and nothing else
    assert _keys(s3, "checkpoints/run-1/") == sorted(f"checkpoints/run-1/{name}" for name in saved)

    # a new job with the same S3Uri sees them before its script starts
    sm.create_training_job(**job_request("ckpt-second", BUCKET, code, env={"STEPS": "2"},
                                         CheckpointConfig=checkpoint))
    second = wait_for(sm, "ckpt-second")
    assert second["TrainingJobStatus"] == "Completed", second.get("FailureReason")
    messages = _messages(logs, "ckpt-second")
    assert f"restored: {','.join(sorted(saved))}" in messages
    assert f"saved step-{len(saved)}" in messages and f"saved step-{len(saved) + 1}" in messages
    assert len(_keys(s3, "checkpoints/run-1/")) == len(saved) + 2


def test_a_local_path_outside_opt_ml_is_refused_naming_it(clients):
    """Refused by CreateTrainingJob itself (issue 19): a ValidationException naming the field, and no job."""
    sm, s3, _ = clients
    code = put_code(s3, BUCKET, key="ckpt-code/sourcedir.tar.gz", script=CHECKPOINTING)
    with pytest.raises(ClientError) as info:
        sm.create_training_job(**job_request("ckpt-outside", BUCKET, code, env={"STEPS": "1"},
                                             CheckpointConfig={"S3Uri": f"s3://{BUCKET}/c", "LocalPath": "/tmp/ckpt"}))
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(
        "CheckpointConfig.LocalPath /tmp/ckpt is outside /opt/ml: local mode gives each host its own "
        "/opt/ml (its base dir)"), error["Message"]
    with pytest.raises(ClientError) as missing:
        sm.describe_training_job(TrainingJobName="ckpt-outside")
    assert missing.value.response["Error"]["Code"] == "ValidationException"  # "Requested resource not found."


def test_two_jobs_started_at_once_share_no_port_and_no_directory(clients, tmp_path):
    sm, s3, logs = clients
    meet = tmp_path / "meet"
    meet.mkdir()
    code = put_code(s3, BUCKET, key="ports-code/sourcedir.tar.gz", script=PORTS)
    names = ("ports-a", "ports-b")
    barrier = threading.Barrier(len(names))

    def create(name):
        barrier.wait()
        sm.create_training_job(**job_request(name, BUCKET, code, hosts=2,
                                             env={"MEET_DIR": str(meet), "MEET_COUNT": str(2 * len(names))}))

    threads = [threading.Thread(target=create, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ports, bases = {}, {}
    for name in names:
        answer = wait_for(sm, name)
        assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
        ports[name], bases[name] = set(), set()
        for index, host in enumerate(("algo-1", "algo-2")):
            messages = _messages(logs, name, host)
            env = json.loads([m for m in messages if m.startswith("ports: ")][0][len("ports: "):])
            stride = int(env["SAGEMAKER_PORT_STRIDE"])
            for variable in ("SAGEMAKER_TF_PORT", "SAGEMAKER_TF_PS_PORT", "SAGEMAKER_MXNET_PORT"):
                ports[name].add(int(env[variable]) + index * stride)  # the port this host serves on
            bases[name].add([m for m in messages if m.startswith("base: ")][0][len("base: "):])
        assert len(ports[name]) == 6 and len(bases[name]) == 2
    # both ran at the same time, and their hosts' ports and base dirs are disjoint
    a, b = (sm.describe_training_job(TrainingJobName=n) for n in names)
    assert a["TrainingStartTime"] < b["TrainingEndTime"] and b["TrainingStartTime"] < a["TrainingEndTime"]
    assert not ports["ports-a"] & ports["ports-b"]
    assert not bases["ports-a"] & bases["ports-b"]


def test_describe_redacts_secret_named_values_as_local_mode_does(clients):
    sm, s3, _ = clients
    code = put_code(s3, BUCKET)
    request = job_request("redacted", BUCKET, code, env={"DB_PASSWORD": "hunter2-hunter2", "STEPS": "1"})
    request["HyperParameters"].update({"api_token": json.dumps("tok-0123456789abcdef"), "learning_rate": "0.1"})
    sm.create_training_job(**request)
    answer = wait_for(sm, "redacted")
    assert answer["TrainingJobStatus"] == "Completed", answer.get("FailureReason")
    assert answer["HyperParameters"]["api_token"] == "****"
    assert answer["HyperParameters"]["learning_rate"] == "0.1"
    assert answer["HyperParameters"]["sagemaker_program"] == json.dumps("train.py")
    assert answer["Environment"] == {"DB_PASSWORD": "****", "STEPS": "1"}
    assert "tok-0123456789abcdef" not in json.dumps(answer, default=str)
