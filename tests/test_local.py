"""Local mode end to end: ``sagemaker-training local`` as a subprocess, real S3, real frameworks.

The request-file jobs talk to an S3 endpoint outside the command (moto's server,
the ``s3_endpoint`` fixture), reached through the standard AWS variables, so that
the test can stage the channels first and read the artifacts and checkpoints
after. The flags-form job uses ``--embedded-s3`` and ``--download-artifacts``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
import textwrap
import time

import boto3
import pytest

from local_jobs import ROOT, explain, request, run_local, write_request

BUCKET = "local-mode-tests"
REGION = "us-west-2"
TF_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow:1.4.1-cpu-py2"
MX_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/sagemaker-mxnet:1.9.1-cpu-py3"
SCRIPT_IMAGE = "local/plain-script:latest"  # names no framework: these jobs pass --framework script
# No TensorFlow worker start delay, quick peer polling (the TensorFlow runner's knobs).
TF_FAST = {"SAGEMAKER_TF_WORKER_DELAY_SECONDS": "0", "SAGEMAKER_TF_PEER_POLL_SECONDS": "0.2"}


@pytest.fixture
def s3(s3_endpoint):
    """A client of the test endpoint with the bucket, and the variables that point the CLI at it."""
    env = {"AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    try:
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    client.env = env
    return client


def upload_dir(client, directory: str, prefix: str) -> str:
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            client.upload_file(path, BUCKET, f"{prefix}/{os.path.relpath(path, directory)}")
    return f"s3://{BUCKET}/{prefix}"


def upload_code(client, files: dict, key: str) -> str:
    """sourcedir.tar.gz of ``files`` (name -> text or a path to copy) at ``key``; returns its URI."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            if os.path.isfile(content):
                with open(content, "rb") as f:
                    data = f.read()
            else:
                data = textwrap.dedent(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    client.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return f"s3://{BUCKET}/{key}"


def s3_tar_names(client, uri: str) -> list[str]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return tar.getnames()


def keys(client, prefix: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def toolkit_hps(program: str, submit: str, job: str) -> dict:
    return {"sagemaker_program": program, "sagemaker_submit_directory": submit, "sagemaker_region": REGION,
            "sagemaker_job_name": job, "sagemaker_container_log_level": 20}


def assert_description(description: dict, body: dict, status: str, secondary: str):
    assert description["TrainingJobName"] == body["TrainingJobName"]
    assert re.fullmatch(r"arn:aws:sagemaker:[a-z0-9-]+:\d{12}:training-job/[a-z0-9-]+",
                        description["TrainingJobArn"]), description["TrainingJobArn"]
    assert description["TrainingJobStatus"] == status
    assert description["SecondaryStatus"] == secondary
    for field in ("AlgorithmSpecification", "HyperParameters", "InputDataConfig", "OutputDataConfig",
                  "ResourceConfig", "RoleArn"):
        assert description[field] == body[field], field
    assert description["StoppingCondition"]["MaxRuntimeInSeconds"] == body["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert description["CreationTime"] <= description["TrainingStartTime"] <= description["TrainingEndTime"]
    assert description["TrainingTimeInSeconds"] >= 1
    assert description["BillableTimeInSeconds"] == description["TrainingTimeInSeconds"]
    assert description["SecondaryStatusTransitions"][-1]["Status"] == secondary


# -- the frameworks, distributed, from request files -------------------------------------


def test_tensorflow_parameter_server_job_on_two_hosts(tmp_path, s3):
    job = "tf-ps-local"
    data = upload_dir(s3, os.path.join(ROOT, "examples", "tensorflow", "data"), "iris/data")
    code = upload_code(s3, {"iris_dnn_classifier.py": os.path.join(ROOT, "examples", "tensorflow",
                                                                   "iris_dnn_classifier.py")},
                       f"code/{job}/source/sourcedir.tar.gz")
    checkpoints = f"s3://{BUCKET}/checkpoints/{job}"
    body = request(f"s3://{BUCKET}/output", {"training": data}, job_name=job, image=TF_IMAGE, instance_count=2,
                   hyperparameters={"training_steps": 30, "evaluation_steps": 2, "checkpoint_path": checkpoints,
                                    **toolkit_hps("iris_dnn_classifier.py", code, job)},
                   environment=TF_FAST)
    started = time.monotonic()
    proc, description = run_local(["--request", write_request(tmp_path, body)], env=s3.env, timeout=240)
    assert proc.returncode == 0, explain(proc)
    assert_description(description, body, "Completed", "Completed")
    model = f"s3://{BUCKET}/output/{job}/output/model.tar.gz"
    assert description["ModelArtifacts"] == {"S3ModelArtifacts": model}
    names = s3_tar_names(s3, model)
    assert any(re.fullmatch(r"export/Servo/\d+/saved_model\.pb", n) for n in names), names
    assert f"output/{job}/output/output.tar.gz" in keys(s3, f"output/{job}/output/")
    assert any(k.endswith(".index") for k in keys(s3, f"checkpoints/{job}/")), "checkpoints reach S3"
    for host in ("algo-1", "algo-2"):
        assert f"[{host}]" in proc.stderr
    assert proc.stdout.lstrip().startswith("{"), "stdout is the description only"
    print(f"2-host TensorFlow job: {time.monotonic() - started:.1f}s")


MNIST_WORKER = """
    import json, os
    import mnist

    def train(output_data_dir, **kwargs):
        model = mnist.train(**kwargs)
        kv = model._kvstore
        with open(os.path.join(output_data_dir, "kvstore.json"), "w") as f:
            json.dump({"type": kv.type, "num_workers": kv.num_workers, "rank": kv.rank}, f)
        return model
"""


def test_mxnet_dist_sync_job_on_two_hosts(tmp_path, s3):
    from mxnet_jobs import mnist_channels

    job = "mx-dist-sync-local"
    slices = mnist_channels(str(tmp_path / "mnist"), train=600, test=100)
    channels = {name: upload_dir(s3, path, f"mnist/{name}") for name, path in slices.items()}
    code = upload_code(s3, {"worker.py": MNIST_WORKER,
                            "mnist.py": os.path.join(ROOT, "examples", "mxnet", "mnist.py")},
                       f"code/{job}/source/sourcedir.tar.gz")
    body = request(f"s3://{BUCKET}/output", channels, job_name=job, image=MX_IMAGE, instance_count=2,
                   hyperparameters={"learning_rate": 0.1, "epochs": 1, **toolkit_hps("worker.py", code, job)})
    work = tmp_path / "work"
    proc, description = run_local(["--request", write_request(tmp_path, body), "--work-dir", str(work)],
                                  env=s3.env, timeout=240)
    assert proc.returncode == 0, explain(proc)
    assert_description(description, body, "Completed", "Completed")
    model = description["ModelArtifacts"]["S3ModelArtifacts"]
    assert sorted(s3_tar_names(s3, model)) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
    seen = []
    for host in ("algo-1", "algo-2"):
        with open(work / host / "output" / "data" / "kvstore.json", encoding="utf-8") as f:
            seen.append(json.load(f))
        assert sorted(os.listdir(work / host / "input" / "data")) == ["test", "train"]
    assert [(s["type"], s["num_workers"]) for s in seen] == [("dist_sync", 2)] * 2
    assert sorted(s["rank"] for s in seen) == [0, 1]
    assert "kvstore.json" in s3_tar_names(s3, f"s3://{BUCKET}/output/{job}/output/output.tar.gz")


# -- how jobs end ------------------------------------------------------------------------


def test_a_failing_host_fails_the_job_with_the_users_message(tmp_path, s3):
    job = "failing-local"
    code = upload_code(s3, {"train.py": """
        import os, time
        if os.environ["SM_CURRENT_HOST"] == "algo-2":
            raise ValueError("learning_rate must be below 1, got 7")
        time.sleep(120)
    """}, f"code/{job}/source/sourcedir.tar.gz")
    data = upload_dir(s3, os.path.join(ROOT, "examples", "tensorflow", "data"), "failing/data")
    body = request(f"s3://{BUCKET}/output", {"training": data}, job_name=job, image=SCRIPT_IMAGE, instance_count=2,
                   hyperparameters=toolkit_hps("train.py", code, job))
    started = time.monotonic()
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script",
                                   "--stop-grace", "3"], env=s3.env, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, explain(proc)
    assert_description(description, body, "Failed", "Failed")
    reason = description["FailureReason"]
    assert len(reason) <= 1024
    assert "ValueError: learning_rate must be below 1, got 7" in reason
    assert "algo-2" in reason.splitlines()[0]
    assert "ModelArtifacts" not in description
    assert keys(s3, f"output/{job}/output/model.tar.gz") == [], "no model is packed for a failed job"
    assert elapsed < 60, "the other host is stopped, not waited for"


def test_max_runtime_stops_a_sleeping_job(tmp_path):
    """MaxRuntimeInSeconds: every host gets SIGTERM, then the job is Stopped / MaxRuntimeExceeded."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(textwrap.dedent("""
        import os, signal, sys, time
        def on_term(signum, frame):
            open(os.path.join(os.environ["SM_MODEL_DIR"], "saved-on-sigterm"), "w").close()
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        print("sleeping", flush=True)
        time.sleep(600)
    """))
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("1\n")
    job = "sleepy-local"
    body = request(str(tmp_path / "out"), {"training": str(data)}, job_name=job, image=SCRIPT_IMAGE,
                   instance_count=2, max_run=4,
                   hyperparameters=toolkit_hps("train.py", str(code), job))
    started = time.monotonic()
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script",
                                   "--stop-grace", "5"], timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, explain(proc)
    assert_description(description, body, "Stopped", "MaxRuntimeExceeded")
    assert 4 <= elapsed < 30, elapsed
    # As on the platform, what the job saved during the grace period is uploaded.
    model = tmp_path / "out" / job / "output" / "model.tar.gz"
    assert description["ModelArtifacts"]["S3ModelArtifacts"] == f"file://{model}"
    with tarfile.open(model) as tar:
        assert tar.getnames() == ["saved-on-sigterm"]


# -- the flags form ------------------------------------------------------------------------

FLAGS_SCRIPT = """
    import argparse, json, os
    import helper
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--optimizer")
    args = parser.parse_args()
    channel = os.environ["SM_CHANNEL_TRAINING"]
    result = {"epochs": args.epochs, "optimizer": args.optimizer, "files": sorted(os.listdir(channel)),
              "helper": helper.NAME, "hosts": json.loads(os.environ["SM_HOSTS"]),
              "module_dir": os.environ["SM_MODULE_DIR"]}
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "result.json"), "w") as f:
        json.dump(result, f)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w") as f:
        json.dump({"loss": 0.1}, f)
"""


def test_flags_form_with_embedded_s3(tmp_path):
    """The SDK's fit(): local data uploaded to S3 first, source dir packed to the code location,
    every URI of the job on the embedded endpoint; artifacts copied out before it stops."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "entry.py").write_text(textwrap.dedent(FLAGS_SCRIPT))
    (src / "helper.py").write_text("NAME = 'packed with the source dir'\n")
    data = tmp_path / "data"
    (data / "part").mkdir(parents=True)
    (data / "a.csv").write_text("1,2\n")
    (data / "part" / "b.csv").write_text("3,4\n")
    artifacts = tmp_path / "artifacts"
    proc, description = run_local([
        "--embedded-s3", "--upload-data", f"{data}=s3://flags-data/train",
        "--framework", "script", "--entry-point", "entry.py", "--source-dir", str(src),
        "--hyperparameter", "epochs=3", "--hyperparameter", "optimizer=adam",
        "--channel", "s3://flags-data/train", "--output-path", "s3://flags-out/jobs",
        "--code-location", "s3://flags-code/prefix", "--instance-count", "2", "--max-run", "300",
        "--job-name", "flags-job", "--download-artifacts", str(artifacts), "--region", REGION,
    ], timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    hps = description["HyperParameters"]
    assert hps["epochs"] == "3" and hps["optimizer"] == '"adam"'
    assert json.loads(hps["sagemaker_submit_directory"]) == "s3://flags-code/prefix/flags-job/source/sourcedir.tar.gz"
    assert json.loads(hps["sagemaker_program"]) == "entry.py"
    assert json.loads(hps["sagemaker_job_name"]) == "flags-job"
    assert json.loads(hps["sagemaker_region"]) == REGION
    assert description["InputDataConfig"][0]["ChannelName"] == "training"
    assert description["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://flags-data/train"
    assert description["ResourceConfig"]["InstanceCount"] == 2
    assert description["StoppingCondition"] == {"MaxRuntimeInSeconds": 300}
    assert description["ModelArtifacts"]["S3ModelArtifacts"] == "s3://flags-out/jobs/flags-job/output/model.tar.gz"
    with tarfile.open(artifacts / "flags-job" / "model.tar.gz") as tar:
        result = json.load(tar.extractfile("result.json"))
    assert result == {"epochs": 3, "optimizer": "adam", "files": ["a.csv", "part"],
                      "helper": "packed with the source dir", "hosts": ["algo-1", "algo-2"],
                      "module_dir": "s3://flags-code/prefix/flags-job/source/sourcedir.tar.gz"}
    with tarfile.open(artifacts / "flags-job" / "output.tar.gz") as tar:
        assert tar.getnames() == ["metrics.json"]
    assert "embedded S3 endpoint on http://127.0.0.1:" in proc.stderr


def test_sharded_local_channel_and_local_output(tmp_path):
    """No S3 at all: a local channel dealt out by ShardedByS3Key, artifacts to a local output path."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(textwrap.dedent("""
        import json, os
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "files.json"), "w") as f:
            json.dump(sorted(os.listdir(os.environ["SM_CHANNEL_TRAINING"])), f)
    """))
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        (data / f"part-{i}.csv").write_text(f"{i}\n")
    body = request(f"file://{tmp_path / 'out'}", {"training": str(data)}, job_name="sharded", image=SCRIPT_IMAGE,
                   instance_count=2, hyperparameters=toolkit_hps("train.py", str(code), "sharded"))
    body["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DistributionType"] = "ShardedByS3Key"
    work = tmp_path / "work"
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script",
                                   "--work-dir", str(work)], timeout=60)
    assert proc.returncode == 0, explain(proc)
    shares = {}
    for host in ("algo-1", "algo-2"):
        with open(work / host / "model" / "files.json", encoding="utf-8") as f:
            shares[host] = json.load(f)
    assert shares == {"algo-1": ["part-0.csv", "part-2.csv", "part-4.csv"], "algo-2": ["part-1.csv", "part-3.csv"]}
    with open(work / "algo-1" / "input" / "config" / "inputdataconfig.json", encoding="utf-8") as f:
        assert json.load(f)["training"]["S3DistributionType"] == "ShardedByS3Key"
    assert description["ModelArtifacts"]["S3ModelArtifacts"] == f"file://{tmp_path / 'out' / 'sharded'}/output/model.tar.gz"
    shutil.rmtree(work)
